// Dates as a Danish worker reads and types them, whatever the computer's locale: "dd.mm.åååå"
// and "dd.mm.åååå tt:mm". The browser's own date inputs follow the machine's locale (US order
// on an English machine), so the forms use text fields with these parsers instead.

const pad = (n: number) => String(n).padStart(2, "0");

function validDate(y: number, m: number, d: number): boolean {
  if (y < 1000 || y > 9999 || m < 1 || m > 12 || d < 1) return false;
  return d <= new Date(Date.UTC(y, m, 0)).getUTCDate();
}

/** "2026-12-07" → "07.12.2026"; anything else is shown as it is. */
export function toDanishDate(iso: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
  return m ? `${m[3]}.${m[2]}.${m[1]}` : iso;
}

/** A date typed as d.m.åååå (or with - or / between, or ddmmåååå, or ISO) → "åååå-mm-dd";
 *  `null` when it is not a real date. */
export function parseDanishDate(text: string): string | null {
  const s = text.trim();
  let y: number, mo: number, d: number;
  let m = /^(\d{1,2})[.\-/ ](\d{1,2})[.\-/ ](\d{4})$/.exec(s);
  if (m) [d, mo, y] = [Number(m[1]), Number(m[2]), Number(m[3])];
  else if ((m = /^(\d{2})(\d{2})(\d{4})$/.exec(s))) [d, mo, y] = [Number(m[1]), Number(m[2]), Number(m[3])];
  else if ((m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s))) [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  else return null;
  return validDate(y, mo, d) ? `${y}-${pad(mo)}-${pad(d)}` : null;
}

/** "2026-12-07T09:05" → "07.12.2026 09:05". */
export function toDanishDateTime(local: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})/.exec(local);
  return m ? `${toDanishDate(m[1])} ${m[2]}:${m[3]}` : local;
}

/** A date and time typed as "d.m.åååå t:mm" (or "t.mm", or ISO "åååå-mm-ddTtt:mm") →
 *  "åååå-mm-ddTtt:mm" (local time); `null` when it is not a real date and time. */
export function parseDanishDateTime(text: string): string | null {
  const s = text.trim().replace(/\s*(kl\.?)\s*/i, " ");
  const m = /^(\S+)[ T](\d{1,2})[:.](\d{2})$/.exec(s);
  if (!m) return null;
  const date = parseDanishDate(m[1]);
  const [h, min] = [Number(m[2]), Number(m[3])];
  if (!date || h > 23 || min > 59) return null;
  return `${date}T${pad(h)}:${pad(min)}`;
}
