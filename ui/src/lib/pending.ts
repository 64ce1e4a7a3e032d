// Work that must reach the store before the session locks (an editor's unsaved draft), and
// the questions to ask before the worker leaves a screen with text that is not saved.
// Locking calls `flushAll()` first, so nothing typed is lost; navigation asks `mayLeave()`.

type Flush = () => Promise<void>;
type Guard = () => Promise<boolean>;
const flushers = new Set<Flush>();
const guards = new Set<Guard>();

export function registerFlush(f: Flush): () => void {
  flushers.add(f);
  return () => flushers.delete(f);
}

export async function flushAll(): Promise<void> {
  await Promise.allSettled([...flushers].map((f) => f()));
}

/** A screen with text that may not be saved registers a guard: it saves what it can and,
 *  if something is still not saved, asks the worker whether to leave (true: leave). */
export function registerLeaveGuard(g: Guard): () => void {
  guards.add(g);
  return () => guards.delete(g);
}

/** Whether the worker may leave the current screen now (every guard agreed). */
export async function mayLeave(): Promise<boolean> {
  for (const g of [...guards]) {
    if (!(await g())) return false;
  }
  return true;
}
