// The passphrase's strength as the store judges it: the app asks the Rust side (zxcvbn with
// Danish words), so the meter shows exactly the rule that is enforced.
import { commands } from "./bindings";

export const MIN_LENGTH = 10;

export type Verdict = { score: number; acceptable: boolean };

export const NONE: Verdict = { score: 0, acceptable: false };

export async function judge(passphrase: string): Promise<Verdict> {
  if (!passphrase) return NONE;
  try {
    const r = await commands.passphraseStrength(passphrase);
    return r.status === "ok" && r.data ? r.data : NONE;
  } catch {
    return NONE;
  }
}
