// Work that must reach the store before the session locks (an editor's unsaved draft).
// Locking calls `flushAll()` first, so nothing typed is lost.

type Flush = () => Promise<void>;
const flushers = new Set<Flush>();

export function registerFlush(f: Flush): () => void {
  flushers.add(f);
  return () => flushers.delete(f);
}

export async function flushAll(): Promise<void> {
  await Promise.allSettled([...flushers].map((f) => f()));
}
