// "Min uge", the start screen after unlock, on the demo caseload: overdue agreements marked in
// words, consents to renew, the worker's drafts; each item opens where it is handled.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { assertAccessible, Session, startDriver, unlock } from "./webdriver.mjs";

const app = process.env.FELTKONTOR_APP;
const passphrase = process.env.FELTKONTOR_E2E_PASSPHRASE;
const shots = process.env.FELTKONTOR_SCREENSHOTS;
let driver;
let session;

after(async () => {
  await session?.end().catch(() => {});
  driver?.kill();
});

test("Min uge shows what needs the worker this week, and each item opens where it is handled", async () => {
  const d = await startDriver();
  driver = d.driver;
  session = await Session.start(d.base, app);
  await unlock(session, passphrase);
  await session.waitFor("#week-heading");
  const overdue = await session.waitFor("[data-testid=week-agreement][data-overdue=true]");
  assert.match(await session.text(overdue[0]), /Frist overskredet/, "an overdue date says so in words");
  assert.ok((await session.findAll("[data-testid=week-consent]")).length > 0, "consents to renew");
  assert.ok((await session.findAll("[data-testid=week-draft]")).length > 0, "the worker's drafts");
  for (const c of await session.findAll("[data-testid=week-consent]")) {
    const state = await session.cmd("GET", `/element/${c}/attribute/data-state`);
    assert.notEqual(state, "valid", "only consents that need renewing are listed");
  }
  await session.screenshot(`${shots}/30-my-week.png`);
  await assertAccessible(session, "Min uge");

  // An agreement opens its case; a draft opens the note editor.
  const name = (await session.text(await session.findIn(overdue[0], "button"))).trim();
  await session.click(await session.findIn(overdue[0], "button"));
  const [heading] = await session.waitFor("#case-heading");
  assert.equal(await session.text(heading), name);
  await session.click(await session.find("[data-testid=open-week]"));
  const [draft] = await session.waitFor("[data-testid=week-draft]");
  await session.click(await session.findIn(draft, "button"));
  await session.waitFor("#note-body");
});

test("a visit is planned, shows on Min uge, and once held becomes its note in one step", async () => {
  const { showCases } = await import("./webdriver.mjs");
  await session.click(await session.find("[data-testid=open-week]"));
  await session.waitFor("[data-testid=week-appointment]");
  await session.screenshot(`${shots}/31-my-week-appointments.png`);
  // A meeting held yesterday: its note is written from it, filled in.
  await showCases(session);
  let found = false;
  let writable = 0;
  for (let i = 0; i < (await session.findAll("[data-testid=open-case]")).length && !found; i++) {
    await session.click((await session.findAll("[data-testid=open-case]"))[i]);
    await session.waitFor("#case-heading");
    await session.waitFor("#appointments-heading");
    const write = await session.findAll("[data-testid=appointment-write-note]");
    if (write.length > 0) {
      writable = write.length;
      await session.click(write[0]);
      found = true;
    } else {
      await session.click(await session.find("[data-testid=back]"));
      await showCases(session);
    }
  }
  assert.ok(found, "the demo caseload has a meeting held yesterday without its note");
  const [body] = await session.waitFor("#note-body");
  assert.match(await session.cmd("GET", `/element/${body}/property/value`), /^Til stede: /, "who was there is filled in");
  assert.equal(await session.cmd("GET", `/element/${await session.find("#note-kind")}/property/value`), "network_meeting");
  await session.type(body, "Vi aftalte næste skridt.");
  for (let i = 0; i < 40; i++) {
    if ((await session.text(await session.find("[data-testid=save-status]"))).startsWith("Gemt")) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await session.click(await session.find("[data-testid=note-back]"));
  await session.waitFor("#appointments-heading");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await session.findAll("[data-testid=appointment-write-note]")).length, writable - 1, "the meeting now has its note");
  const notes = await Promise.all((await session.findAll("[data-testid=timeline-note]")).map((n) => session.text(n)));
  assert.ok(notes.some((t) => /Til stede/.test(t) && /Netværksmøde/.test(t)), notes.slice(0, 3).join("\n"));

  // Planning a new one: tomorrow at 10, the family invited.
  const d = new Date(Date.now() + 86400000);
  const pad = (n) => String(n).padStart(2, "0");
  await session.click(await session.find("[data-testid=plan-appointment]"));
  await session.setValue((await session.waitFor("#ap-when"))[0], `${pad(d.getDate())}.${pad(d.getMonth() + 1)}.${d.getFullYear()} 10:00`);
  await session.type(await session.find("#ap-place"), "Hjemme hos familien");
  await session.click((await session.findAll("[data-testid=appointment-form] input[type=checkbox]"))[0]);
  await session.click(await session.find("[data-testid=appointment-save]"));
  await session.waitFor("[data-testid=appointment-cancel]");
  await session.screenshot(`${shots}/32-appointment-planned.png`);
  await assertAccessible(session, "case with appointments");
});
