// Every string the UI shows, in Danish (default) and English.

export type Lang = "da" | "en";

const da = {
  "app.title": "Feltkontor",
  "unlock.heading": "Lås op",
  "unlock.intro": "Dine sager er krypteret på denne computer. Skriv din adgangssætning for at åbne dem.",
  "unlock.passphrase": "Adgangssætning",
  "unlock.submit": "Lås op",
  "unlock.working": "Åbner …",
  "unlock.no_data": "Der er ingen lokale data på denne computer endnu.",
  "lock.button": "Lås",
  "cases.heading": "Mine sager",
  "cases.empty": "Du har ingen sager, der passer til filteret.",
  "cases.child": "Barn",
  "cases.coordinator": "Tovholder",
  "cases.district": "Distrikt",
  "cases.next_agreement": "Næste aftale",
  "cases.last_contact": "Seneste kontakt",
  "cases.days_ago": "{n} dage siden",
  "cases.today": "i dag",
  "cases.none": "—",
  "cases.mine": "Du er tovholder",
  "cases.filter.district": "Distrikt",
  "cases.filter.status": "Status",
  "cases.filter.all": "Alle",
  "status.open": "Åben",
  "status.closed": "Lukket",
  "error.unlock.wrong_passphrase": "Adgangssætningen er forkert. Prøv igen.",
  "error.unlock.throttled": "For mange forkerte forsøg. Vent {n} sekunder, og prøv igen.",
  "error.store.schema_too_new": "Dine data er gemt af en nyere version af Feltkontor. Opdatér programmet.",
  "error.store.missing": "Der er ingen lokale data på denne computer endnu.",
  "error.store.damaged": "De lokale data kan ikke læses. Kontakt IT-supporten; slet ikke noget.",
  "error.store.key_file_damaged": "Nøglefilen er beskadiget. Kontakt IT-supporten; slet ikke noget.",
  "error.store.encryption_unavailable": "Krypteringen virker ikke på denne computer. Kontakt IT-supporten.",
  "error.session.locked": "Feltkontor er låst. Lås op for at fortsætte.",
  "error.input.too_long": "Teksten er for lang.",
  "error.unknown": "Noget gik galt. Prøv igen; hvis det sker igen, så kontakt IT-supporten.",
} as const;

export type Key = keyof typeof da;

const en: Record<Key, string> = {
  "app.title": "Feltkontor",
  "unlock.heading": "Unlock",
  "unlock.intro": "Your cases are encrypted on this computer. Enter your passphrase to open them.",
  "unlock.passphrase": "Passphrase",
  "unlock.submit": "Unlock",
  "unlock.working": "Opening …",
  "unlock.no_data": "There is no local data on this computer yet.",
  "lock.button": "Lock",
  "cases.heading": "My cases",
  "cases.empty": "You have no cases matching the filter.",
  "cases.child": "Child",
  "cases.coordinator": "Coordinator",
  "cases.district": "District",
  "cases.next_agreement": "Next agreement",
  "cases.last_contact": "Last contact",
  "cases.days_ago": "{n} days ago",
  "cases.today": "today",
  "cases.none": "—",
  "cases.mine": "You are the coordinator",
  "cases.filter.district": "District",
  "cases.filter.status": "Status",
  "cases.filter.all": "All",
  "status.open": "Open",
  "status.closed": "Closed",
  "error.unlock.wrong_passphrase": "The passphrase is wrong. Try again.",
  "error.unlock.throttled": "Too many wrong attempts. Wait {n} seconds and try again.",
  "error.store.schema_too_new": "Your data was saved by a newer version of Feltkontor. Update the app.",
  "error.store.missing": "There is no local data on this computer yet.",
  "error.store.damaged": "The local data cannot be read. Contact IT support; do not delete anything.",
  "error.store.key_file_damaged": "The key file is damaged. Contact IT support; do not delete anything.",
  "error.store.encryption_unavailable": "Encryption does not work on this computer. Contact IT support.",
  "error.session.locked": "Feltkontor is locked. Unlock to continue.",
  "error.input.too_long": "The text is too long.",
  "error.unknown": "Something went wrong. Try again; if it happens again, contact IT support.",
};

const catalogs: Record<Lang, Record<Key, string>> = { da, en };

let lang: Lang = "da";

export function setLang(l: Lang) {
  lang = l;
}

export function t(key: Key, vars: Record<string, string | number> = {}): string {
  const text = catalogs[lang][key] ?? catalogs.da[key];
  return text.replace(/\{(\w+)\}/g, (_, name: string) => String(vars[name] ?? ""));
}

/** The message for an error code from a command, in the worker's language. */
export function errorText(code: string, vars: Record<string, string | number> = {}): string {
  const key = `error.${code}` as Key;
  return key in catalogs.da ? t(key, vars) : t("error.unknown");
}

export function formatDate(iso: string): string {
  const d = new Date(iso.length === 10 ? `${iso}T12:00:00Z` : iso);
  return new Intl.DateTimeFormat(lang === "da" ? "da-DK" : "en-GB", { day: "numeric", month: "short", year: "numeric" }).format(d);
}
