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
