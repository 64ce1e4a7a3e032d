// Nothing typed is lost when a save is refused, a colleague's draft cannot be edited, and the
// consent shown is the consent in force today. In the real window, on the demo data.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { assertAccessible, Session, startDriver, unlock, showCases } from "./webdriver.mjs";

const app = process.env.FELTKONTOR_APP;
const passphrase = process.env.FELTKONTOR_E2E_PASSPHRASE;
const shots = process.env.FELTKONTOR_SCREENSHOTS;
let driver;
let session;

after(async () => {
  await session?.end().catch(() => {});
  driver?.kill();
});

async function fresh() {
  await session?.end().catch(() => {});
  await sleep(300);
  const d = driver ? { base: `http://127.0.0.1:4444` } : await startDriver();
  if (!driver) driver = d.driver;
  session = await Session.start(d.base, app);
  await unlock(session, passphrase);
  await showCases(session);
}

async function waitForText(css, predicate, timeoutMs = 5000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const [el] = await session.waitFor(css);
    const text = await session.text(el);
    if (predicate(text)) return text;
    if (Date.now() > until) throw new Error(`${css}: unexpected text ${JSON.stringify(text)}`);
    await sleep(100);
  }
}

const value = (el) => session.cmd("GET", `/element/${el}/property/value`);

async function openFirstCase() {
  const [c] = await session.waitFor("[data-testid=open-case]");
  const name = await session.text(c);
  await session.click(c);
  await session.waitFor("#case-heading");
  return name;
}

function tomorrowLocal() {
  const d = new Date(Date.now() + 36 * 3600 * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(d.getDate())}.${pad(d.getMonth() + 1)}.${d.getFullYear()} 10:00`;
}

test("a save refused for a future time keeps the text, says why, asks before leaving, and brings it back", async () => {
  await fresh();
  const childName = await openFirstCase();
  const marker = `Fremtidsbesøg${Date.now().toString(36)}`;
  await session.click(await session.find("[data-testid=new-note]"));
  const [body] = await session.waitFor("#note-body");
  const shown = await value(await session.find("#note-time"));
  assert.match(shown, /^\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}$/, `the time is shown in Danish order (${shown})`);
  const focused = await session.cmd("POST", "/execute/sync", { script: "return document.activeElement && document.activeElement.id;", args: [] });
  assert.equal(focused, "note-body", "the editor puts focus in the text");
  await session.setValue(await session.find("#note-time"), tomorrowLocal());
  await session.type(body, `${marker} planlagt til i morgen.`);
  const status = await waitForText("[data-testid=save-status]", (t) => t.startsWith("Ikke gemt:"), 4000);
  assert.match(status, /Tidspunkt/, "the status points to the field");
  assert.match(status, /bevaret på denne computer/, "and says the text is kept");
  const reason = await session.text(await session.find("[data-testid=occurred_at-error]"));
  assert.match(reason, /fremtiden/, "the field's message names the reason");
  assert.match(reason, /aftale/, "and says how to plan a future visit");
  assert.equal(await session.cmd("GET", `/element/${await session.find("#note-time")}/attribute/aria-invalid`), "true", "the time field is marked");
  await session.screenshot(`${shots}/20-note-refused-future.png`);
  await assertAccessible(session, "refused save");

  // More typing after the refusal is not lost either.
  await session.type(body, " Mere tekst efter afvisningen.");
  await sleep(1200);
  assert.match(await value(body), /Mere tekst efter afvisningen/);

  // Leaving asks first; staying keeps everything on screen.
  await session.click(await session.find("[data-testid=note-back]"));
  await session.waitFor("[data-testid=leave-question]");
  await session.screenshot(`${shots}/21-note-leave-question.png`);
  await assertAccessible(session, "leave question");
  await session.click(await session.find("[data-testid=leave-stay]"));
  assert.match(await value(await session.find("#note-body")), new RegExp(marker));

  // Leaving anyway: the case lists the kept text; opening it brings it back.
  await session.click(await session.find("[data-testid=note-back]"));
  await session.click((await session.waitFor("[data-testid=leave-anyway]"))[0]);
  await session.waitFor("#case-heading");
  const [kept] = await session.waitFor("[data-testid=unsaved-note]");
  assert.match(await session.text(kept), new RegExp(marker));
  assert.match(await session.text(kept), /Ikke gemt/);

  // It survives a lock and unlock too.
  await session.click(await session.find("[data-testid=lock]"));
  await unlock(session, passphrase);
  // Unlocking returns to the screen the worker left: the case.
  const [heading] = await session.waitFor("#case-heading");
  assert.equal(await session.text(heading), childName);
  await session.click((await session.waitFor("[data-testid=unsaved-note]"))[0]);
  const [again] = await session.waitFor("#note-body");
  assert.match(await value(again), new RegExp(`${marker}.*Mere tekst efter afvisningen`, "s"));
  await session.waitFor("[data-testid=note-restored]");

  // Fixing the time saves it: the kept copy is gone, the draft is in the timeline.
  const now = new Date(Date.now() - 3600 * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  await session.setValue(await session.find("#note-time"), `${pad(now.getDate())}.${pad(now.getMonth() + 1)}.${now.getFullYear()} ${pad(now.getHours())}:00`);
  await waitForText("[data-testid=save-status]", (t) => t.startsWith("Gemt"), 4000);
  await session.click(await session.find("[data-testid=note-back]"));
  await session.waitFor("#case-heading");
  await sleep(300);
  assert.equal((await session.findAll("[data-testid=unsaved-note]")).length, 0, "nothing is left kept once saved");
  let found = false;
  for (const n of await session.findAll("[data-testid=timeline-note][data-status=draft]")) {
    if ((await session.text(n)).includes(marker)) found = true;
  }
  assert.ok(found, "the saved draft is in the case");
});

test("a text past the limit is refused with the limit named, counted, and kept", async () => {
  await fresh();
  await openFirstCase();
  await session.click(await session.find("[data-testid=new-note]"));
  const [body] = await session.waitFor("#note-body");
  await session.type(body, "Start.");
  await waitForText("[data-testid=save-status]", (t) => t.startsWith("Gemt"), 4000);
  const long = "Langt notat. ".repeat(8000).slice(0, 100_050);
  await session.setValue(body, long);
  await waitForText("[data-testid=save-status]", (t) => t.startsWith("Ikke gemt:"), 6000);
  const reason = await session.text(await session.find("[data-testid=body-error]"));
  assert.match(reason, /100\.000 tegn/, "the limit is named");
  assert.match(reason, /50 tegn for meget/, "and how far over");
  assert.match(await session.text(await session.find("[data-testid=body-counter]")), /100\.050 af højst 100\.000 tegn/);
  await session.screenshot(`${shots}/22-note-too-long.png`);
  // Shortening it saves it.
  await session.setValue(body, long.slice(0, 99_000));
  await waitForText("[data-testid=save-status]", (t) => t.startsWith("Gemt"), 6000);
  assert.match(await session.text(await session.find("[data-testid=body-counter]")), /99\.000 af højst/);
  await session.click(await session.find("[data-testid=discard]"));
  await session.click((await session.waitFor("[data-testid=confirm-discard]"))[0]);
  await session.waitFor("#case-heading");
});

test("a colleague's draft opens read-only with its author named", async () => {
  await fresh();
  const me = await session.text(await session.find("header .who"));
  const myName = me.replace(/\s*\(.*\)$/, "");
  const cases = (await session.findAll("[data-testid=open-case]")).length;
  let opened = false;
  for (let i = 0; i < Math.min(cases, 25) && !opened; i++) {
    const c = (await session.findAll("[data-testid=open-case]"))[i];
    await session.click(c);
    await session.waitFor("#case-heading");
    await sleep(300);
    for (const n of await session.findAll("[data-testid=timeline-note][data-status=draft]")) {
      const text = await session.text(n);
      if (!text.includes(myName)) {
        await session.click(n);
        opened = true;
        break;
      }
    }
    if (!opened) {
      await session.click(await session.find("[data-testid=back]"));
      await showCases(session);
    }
  }
  assert.ok(opened, "the demo caseload has a colleague's draft");
  const notice = await waitForText("[data-testid=colleague-notice]", (t) => t.length > 0);
  assert.match(notice, /Kun forfatteren/);
  assert.equal((await session.findAll("#note-body")).length, 0, "no field to edit");
  assert.equal((await session.findAll("[data-testid=sign]")).length, 0, "no signing");
  assert.doesNotMatch(await session.text(await session.find("[data-testid=note-author]")), new RegExp(myName));
  await session.screenshot(`${shots}/23-colleague-draft.png`);
  await assertAccessible(session, "colleague's draft");
});

test("consents are shown as they stand today, in the list, on the case and when adding a participant", async () => {
  await fresh();
  const states = new Set();
  for (const b of await session.findAll("[data-testid=case-row] [data-testid=consent-state]")) {
    states.add(await session.cmd("GET", `/element/${b}/attribute/data-state`));
  }
  for (const s of ["valid", "expired"]) assert.ok(states.has(s), `the case list shows a ${s} consent (saw ${[...states]})`);
  await session.screenshot(`${shots}/24-cases-consent.png`);
  // A case whose consents have all run out: the case says so, and adding a school leader
  // (the school's sector) asks for the legal basis.
  let opened = false;
  for (const row of await session.findAll("[data-testid=case-row]")) {
    const badge = await session.findIn(row, "[data-testid=consent-state]");
    if ((await session.cmd("GET", `/element/${badge}/attribute/data-state`)) === "expired") {
      await session.click(await session.findIn(row, "[data-testid=open-case]"));
      opened = true;
      break;
    }
  }
  assert.ok(opened);
  const [caseBadge] = await session.waitFor("[data-testid=case-consent] [data-testid=consent-state]");
  assert.equal(await session.cmd("GET", `/element/${caseBadge}/attribute/data-state`), "expired");
  assert.match(await session.text(caseBadge), /Udløbet/);
  for (const row of await session.findAll("[data-testid=consent-row]")) {
    assert.doesNotMatch(await session.text(row), /Gyldigt/, "no expired consent is called valid");
  }
  await session.click(await session.find("[data-testid=add-participant]"));
  const [pick] = await session.waitFor("#f-staff");
  const options = await session.findAll("#f-staff option");
  let flagged = false;
  for (const o of options) {
    await session.setValue(pick, await session.cmd("GET", `/element/${o}/property/value`));
    await sleep(100);
    const hint = await session.findAll("[data-testid=participant-consent]");
    if (hint.length && ["expired", "none"].includes(await session.cmd("GET", `/element/${hint[0]}/attribute/data-state`))) {
      assert.match(await session.text(hint[0]), /Intet gyldigt samtykke/);
      flagged = true;
      break;
    }
  }
  assert.ok(flagged, "a participant from another sector is flagged as not covered");
  await session.screenshot(`${shots}/25-participant-consent-expired.png`);
  await assertAccessible(session, "participant form with an expired consent");
});
