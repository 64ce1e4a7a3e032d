// The worker's UI preferences on this computer. Nothing sensitive: kept in localStorage.
import type { Lang } from "./i18n.svelte";

export interface Settings {
  lang: Lang;
  /** Lock after this many minutes without activity. */
  autoLockMinutes: number;
}

const KEY = "feltkontor.settings";
export const DEFAULTS: Settings = { lang: "da", autoLockMinutes: 5 };
export const AUTOLOCK_MIN = 1;
export const AUTOLOCK_MAX = 60;

export function loadSettings(): Settings {
  try {
    const raw = JSON.parse(localStorage.getItem(KEY) ?? "{}") as Partial<Settings>;
    const lang = raw.lang === "en" ? "en" : "da";
    const minutes = Number(raw.autoLockMinutes);
    // Below one minute only tests set it (by hand, in localStorage); the UI offers 1–60.
    const autoLockMinutes = Number.isFinite(minutes) && minutes > 0 ? Math.min(minutes, AUTOLOCK_MAX) : DEFAULTS.autoLockMinutes;
    return { lang, autoLockMinutes };
  } catch {
    return { ...DEFAULTS };
  }
}

export function saveSettings(s: Settings) {
  localStorage.setItem(KEY, JSON.stringify(s));
}
