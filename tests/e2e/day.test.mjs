// A caseworker's whole day in the real window at 1366×768, on the demo caseload (a local-only
// computer: offline all day): unlock → Min uge → a visit planned for today → the note of a
// held meeting, written offline; a field cleared and the note signed as it stands → a refused
// save keeps the text and leaving asks first → an expired consent flagged when a school
// participant is added → a new case found by the child's name and by CPR number → a handover
// with its checklist → closing a case. A screenshot of every screen, axe on each.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { assertAccessible, Session, showCases, startDriver, unlock } from "./webdriver.mjs";

const app = process.env.FELTKONTOR_APP;
const passphrase = process.env.FELTKONTOR_E2E_PASSPHRASE;
const shots = process.env.FELTKONTOR_SCREENSHOTS;
let driver;
let session;

after(async () => {
  await session?.end().catch(() => {});
  driver?.kill();
});

const pad = (n) => String(n).padStart(2, "0");
const danish = (d) => `${pad(d.getDate())}.${pad(d.getMonth() + 1)}.${d.getFullYear()}`;
const value = (el) => session.cmd("GET", `/element/${el}/property/value`);

async function waitText(css, re, timeoutMs = 5000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = await session.findAll(css);
    const text = found.length ? await session.text(found[0]).catch(() => "") : "";
    if (re.test(text)) return text;
    if (Date.now() > until) throw new Error(`${css}: waited for ${re}, saw ${JSON.stringify(text)}`);
    await sleep(100);
  }
}

async function screen(name, what) {
  await session.screenshot(`${shots}/${name}.png`);
  await assertAccessible(session, what);
}

test("a caseworker's day, start to end", async () => {
  const d = await startDriver();
  driver = d.driver;
  session = await Session.start(d.base, app);
  await unlock(session, passphrase);

  // Morning: Min uge.
  await session.waitFor("#week-heading");
  await session.waitFor("[data-testid=week-agreement]");
  await screen("80-day-my-week", "Min uge");

  // Preparing a visit planned this week: its home-visit sheet, and the sheet printed to PDF.
  await session.click((await session.waitFor("[data-testid=week-sheet]"))[0]);
  await session.waitFor("#sheet-heading");
  await session.waitFor("[data-testid=sheet-warnings]");
  const lead = await session.text(await session.find("[data-testid=sheet-lead]"));
  assert.match(lead, /Barnet: /, "the sheet says whose visit it is");
  await screen("80b-day-visit-sheet", "home-visit sheet");
  await session.click(await session.find("[data-testid=sheet-pdf]"));
  const saved = await waitText("[data-testid=sheet-saved]", /\.pdf/, 20000);
  const pdfPath = saved.match(/Gemt som PDF: (.*\.pdf)/)[1];
  assert.ok(existsSync(pdfPath), `the PDF is on disk: ${pdfPath}`);
  const pdf = readFileSync(pdfPath);
  assert.equal(pdf.subarray(0, 5).toString(), "%PDF-");
  assert.match(pdf.toString("latin1"), /StructTreeRoot/, "a tagged PDF");
  assert.match(saved, /ikke krypteret/, "the worker is told the file is not encrypted");
  rmSync(pdfPath);
  await session.click(await session.find("[data-testid=sheet-back]"));
  await session.waitFor("#week-heading");

  // A meeting held yesterday: its note, written offline from the appointment.
  await showCases(session);
  let opened = false;
  for (let i = 0; i < (await session.findAll("[data-testid=open-case]")).length && !opened; i++) {
    await session.click((await session.findAll("[data-testid=open-case]"))[i]);
    await session.waitFor("#appointments-heading");
    const write = await session.findAll("[data-testid=appointment-write-note]");
    if (write.length) {
      await screen("81-day-case-with-appointment", "case with a held meeting");
      await session.click(write[0]);
      opened = true;
    } else {
      await session.click(await session.find("[data-testid=back]"));
      await showCases(session);
    }
  }
  assert.ok(opened, "a held meeting waits for its note");
  const [body] = await session.waitFor("#note-body");
  await session.type(body, "Mor fortalte om ugen. FJERNES FØR UNDERSKRIFT");
  const childWords = await session.find("#note-child-words");
  await session.type(childWords, "Jeg kan godt lide skolen nu");
  await waitText("[data-testid=save-status]", /^Gemt/, 4000);
  // A field cleared, signed at once: what is signed is what is on screen.
  await session.type(childWords, "\uE009a\uE000\uE003");
  await session.clear(body);
  await session.type(body, "Mor fortalte om ugen. Vi aftalte et nyt møde.");
  await session.click(await session.find("[data-testid=sign]"));
  await session.click((await session.waitFor("[data-testid=confirm-sign]"))[0]);
  await waitText("[data-testid=note-locked]", /Låst/);
  const signed = await session.text(await session.find("[data-testid=signed-note]"));
  assert.doesNotMatch(signed, /FJERNES|Jeg kan godt lide skolen/, "nothing deleted is signed");
  assert.match(signed, /Vi aftalte et nyt møde/);
  await screen("82-day-note-signed", "signed note");

  // A second note, with the time set in the future by mistake: refused, kept, leaving asks.
  await session.click(await session.find("[data-testid=note-back]"));
  await session.waitFor("#case-heading");
  await session.click(await session.find("[data-testid=new-note]"));
  const [second] = await session.waitFor("#note-body");
  const tomorrow = new Date(Date.now() + 86400000);
  await session.setValue(await session.find("#note-time"), `${danish(tomorrow)} 09:00`);
  await session.type(second, "Skrevet med forkert dato");
  await waitText("[data-testid=save-status]", /^Ikke gemt:/, 4000);
  await session.click(await session.find("[data-testid=note-back]"));
  await session.waitFor("[data-testid=leave-question]");
  await screen("83-day-leave-question", "leave question");
  await session.click(await session.find("[data-testid=leave-stay]"));
  assert.match(await value(await session.find("#note-body")), /forkert dato/);
  const hourAgo = new Date(Date.now() - 3600000);
  await session.setValue(await session.find("#note-time"), `${danish(hourAgo)} ${pad(hourAgo.getHours())}:00`);
  await waitText("[data-testid=save-status]", /^Gemt/, 4000);
  await session.click(await session.find("[data-testid=note-back]"));
  await session.waitFor("#case-heading");

  // A new case for a child who moved here, with a CPR number; found by name and by number.
  await showCases(session);
  const child = `Dagmar Dagsen ${Date.now().toString(36)}`;
  await session.click(await session.find("[data-testid=new-case]"));
  await session.type((await session.waitFor("#nc-name"))[0], child);
  await session.setValue(await session.find("#nc-birth"), "03.02.2019");
  await session.type(await session.find("#nc-cpr"), "030219-4421");
  await session.click(await session.find("[data-testid=create-case]"));
  await session.waitFor("#case-heading");
  await session.click(await session.find("[data-testid=open-search]"));
  const [search] = await session.waitFor("#search-input");
  await session.type(search, "dagmar");
  await waitText("[data-testid=search-case]", /Dagmar Dagsen/);
  await session.clear(search);
  await session.type(search, "030219-4421");
  await waitText("[data-testid=search-case]", /Fundet på CPR-nummer/);
  await screen("84-day-search-cpr", "search by CPR");
  await session.click(await session.find("[data-testid=search-case]"));
  await session.waitFor("#case-heading");

  // Adding a school leader to a case whose consents have run out: flagged.
  await showCases(session);
  let flagged = false;
  for (const row of await session.findAll("[data-testid=case-row]")) {
    const badge = await session.findIn(row, "[data-testid=consent-state]");
    if (["expired", "withdrawn"].includes(await session.cmd("GET", `/element/${badge}/attribute/data-state`))) {
      await session.click(await session.findIn(row, "[data-testid=open-case]"));
      await session.click((await session.waitFor("[data-testid=add-participant]"))[0]);
      const [pick] = await session.waitFor("#f-staff");
      for (const o of await session.findAll("#f-staff option")) {
        const v = await session.cmd("GET", `/element/${o}/property/value`);
        if (!v) continue;
        await session.setValue(pick, v);
        await sleep(100);
        const hint = await session.findAll("[data-testid=participant-consent]");
        if (hint.length && /Intet gyldigt samtykke/.test(await session.text(hint[0]))) {
          flagged = true;
          break;
        }
      }
      break;
    }
  }
  assert.ok(flagged, "the expired consent is flagged when a participant from another sector is added");
  await screen("85-day-participant-flagged", "participant form, consent expired");
  // Each disclosure is dated, and a family member's own record lists whom their information
  // is shared with.
  const disclosed = await session.findAll("[data-testid=disclosure-row]");
  if (disclosed.length) {
    assert.match(await session.text(disclosed[0]), /^Siden \d/, "a disclosure says since when");
    await session.click((await session.findAll("[data-testid=edit-person]"))[0]);
    const [shared] = await session.waitFor("[data-testid=person-disclosures]");
    assert.match(await session.text(shared), /deles med[\s\S]*Siden \d/);
    await screen("85b-day-person-disclosures", "a person's disclosures");
  }

  // Handing a case over, with the checklist; then closing the new case.
  await showCases(session);
  for (const c of await session.findAll("[data-testid=open-case]")) {
    if ((await session.text(c)) === child) {
      await session.click(c);
      break;
    }
  }
  await session.waitFor("#case-heading");
  await session.click(await session.find("[data-testid=close-case]"));
  await session.type((await session.waitFor("#close-reason"))[0], "Familien flyttede igen");
  await session.click(await session.find("[data-testid=close-save]"));
  await waitText("[data-testid=case-closed]", /Sagen er lukket: Familien flyttede igen/);
  assert.equal((await session.findAll("[data-testid=new-note]")).length, 0, "a closed case offers no new note");
  await screen("86-day-case-closed", "closed case");

  await showCases(session);
  // A case the worker coordinates (listed first), handed to a colleague.
  const rows = await session.findAll("[data-testid=case-row]");
  await session.click(await session.findIn(rows[0], "[data-testid=open-case]"));
  await session.waitFor("#case-heading");
  const handover = await session.findAll("[data-testid=open-handover]");
  if (handover.length) {
    await session.click(handover[0]);
    await session.waitFor("#h-to option");
    await session.type(await session.find("#h-note"), "Familien er tryg ved dig; mor ønsker møder om fredagen.");
    for (const box of await session.findAll("[data-testid=handover-checklist] input[type=checkbox]")) await session.click(box);
    await session.click(await session.find("[data-testid=meeting-not-planned]"));
    await screen("87-day-handover", "handover with checklist");
    await session.click(await session.find("[data-testid=handover-save]"));
    await waitText("[data-testid=handover-note]", /Overdragelse fra/);
  }
  await session.click(await session.find("[data-testid=lock]"));
  await session.waitFor("#passphrase");
});
