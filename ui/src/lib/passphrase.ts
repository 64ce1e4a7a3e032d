// A rough passphrase strength estimate for the first-run screen: length counts most, then
// variety; common words and repeats count against it. The store itself refuses fewer than
// MIN_LENGTH characters.

export const MIN_LENGTH = 10;

const COMMON = ["password", "kodeord", "adgang", "123456", "qwerty", "aarhus", "århus", "feltkontor", "sommer", "vinter", "hej"];

/** 0 (very weak) to 4 (very strong). */
export function strength(p: string): 0 | 1 | 2 | 3 | 4 {
  if (p.length < MIN_LENGTH) return 0;
  const lower = p.toLowerCase();
  const classes = [/[a-zæøå]/, /[A-ZÆØÅ]/, /[0-9]/, /[^A-Za-zÆØÅæøå0-9]/].filter((r) => r.test(p)).length;
  const words = p.trim().split(/\s+/).filter((w) => w.length >= 3).length;
  let score = (p.length >= 14 ? 1 : 0) + (p.length >= 20 ? 1 : 0) + (classes >= 3 ? 1 : 0) + (words >= 3 ? 1 : 0) + (classes >= 2 ? 1 : 0);
  if (COMMON.some((c) => lower.includes(c))) score -= 2;
  if (/(.)\1{3,}/.test(p)) score -= 2;
  return Math.max(1, Math.min(4, score)) as 1 | 2 | 3 | 4;
}
