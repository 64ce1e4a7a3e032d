// A worker's note, end to end in the real window: write a draft (autosaved), kill the app with
// SIGKILL, restart, find the draft, sign it, see it locked, write an addendum, find the note by
// search, lock.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { assertAccessible, Session, startDriver, unlock, showCases } from "./webdriver.mjs";

const app = process.env.FELTKONTOR_APP;
const passphrase = process.env.FELTKONTOR_E2E_PASSPHRASE;
const shots = process.env.FELTKONTOR_SCREENSHOTS;
const marker = `Zebrafinke${Date.now().toString(36)}`;
let driver;
let session;

after(async () => {
  await session?.end().catch(() => {});
  driver?.kill();
});

async function launchAndUnlock() {
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

/** The app started afresh (the test before may end locked, or in a note), in the first case. */
async function freshStartInACase() {
  await session?.end().catch(() => {});
  await sleep(300);
  await launchAndUnlock();
  const [someCase] = await session.waitFor("[data-testid=open-case]");
  await session.click(someCase);
  await session.waitFor("#case-heading");
}

function appPid() {
  return execFileSync("pgrep", ["-f", "-x", app], { encoding: "utf8" }).trim().split("\n")[0];
}

test("a draft survives SIGKILL, is signed, locked, supplemented and found", async () => {
  await launchAndUnlock();
  const [firstCase] = await session.waitFor("[data-testid=open-case]");
  const childName = await session.text(firstCase);
  await session.click(firstCase);
  await session.waitFor("#case-heading");
  await session.screenshot(`${shots}/10-case-overview.png`);
  await assertAccessible(session, "case overview");

  await session.click(await session.find("[data-testid=new-note]"));
  const [body] = await session.waitFor("#note-body");
  await session.type(body, `Hjemmebesøg. ${marker} blev nævnt af barnet.`);
  await session.type(await session.find("#note-child-words"), "Jeg vil gerne vise jer min fugl");
  const typedAt = Date.now();
  await waitForText("[data-testid=save-status]", (t) => t.startsWith("Gemt"), 2000);
  assert.ok(Date.now() - typedAt <= 2000, "the draft is saved within 2 s of typing");
  await session.screenshot(`${shots}/11-note-draft-saved.png`);
  await assertAccessible(session, "note editor");

  process.kill(Number(appPid()), "SIGKILL");
  await session.end().catch(() => {});
  await sleep(300);

  await launchAndUnlock();
  const cases = await session.findAll("[data-testid=open-case]");
  let opened = false;
  for (const c of cases) {
    if ((await session.text(c)) === childName) {
      await session.click(c);
      opened = true;
      break;
    }
  }
  assert.ok(opened, "the case is still listed");
  const drafts = await session.waitFor("[data-testid=timeline-note][data-status=draft]");
  let draft = null;
  for (const d of drafts) {
    if ((await session.text(d)).includes(marker)) draft = d;
  }
  assert.ok(draft, "the draft written before the kill is there");
  await session.click(draft);
  const [restored] = await session.waitFor("#note-body");
  assert.match(await session.cmd("GET", `/element/${restored}/property/value`), new RegExp(marker));

  await session.click(await session.find("[data-testid=sign]"));
  await session.click((await session.waitFor("[data-testid=confirm-sign]"))[0]);
  await waitForText("[data-testid=note-locked]", (t) => t.includes("Låst"));
  assert.equal((await session.findAll("#note-body")).length, 0, "a signed note offers no field to edit");
  assert.match(await session.text(await session.find("[data-testid=signed-body]")), new RegExp(marker));
  await session.screenshot(`${shots}/12-note-signed.png`);
  await assertAccessible(session, "signed note");

  await session.click(await session.find("[data-testid=write-addendum]"));
  const [addendum] = await session.waitFor("#note-body");
  await session.type(addendum, "Tillæg: besøget varede en time.");
  await waitForText("[data-testid=save-status]", (t) => t.startsWith("Gemt"), 2000);
  await session.screenshot(`${shots}/13-addendum.png`);
  await assertAccessible(session, "addendum editor");

  await session.click(await session.find("[data-testid=open-search]"));
  const [search] = await session.waitFor("#search-input");
  await session.type(search, marker.toLowerCase());
  const [hit] = await session.waitFor("[data-testid=search-note]");
  assert.match(await session.text(hit), new RegExp(marker));
  await session.screenshot(`${shots}/14-search.png`);
  await assertAccessible(session, "search");
  await session.click(hit);
  await waitForText("[data-testid=note-locked]", (t) => t.includes("Låst"));

  await session.click(await session.find("[data-testid=lock]"));
  await session.waitFor("#passphrase");
});

test("what is signed is what is on screen: an emptied draft is refused, an emptied field is not signed", async () => {
  await freshStartInACase();
  const selectAllAndDelete = "\uE009a\uE000\uE003";
  const first = `Førsteudkast${Date.now().toString(36)}`;
  await session.click(await session.find("[data-testid=new-note]"));
  const [body] = await session.waitFor("#note-body");
  await session.type(body, `${first} skrevet først.`);
  const childWords = await session.find("#note-child-words");
  await session.type(childWords, "Et gammelt citat");
  await waitForText("[data-testid=save-status]", (t) => t.startsWith("Gemt"), 3000);

  // Every field emptied, then signed at once: refused with a message, nothing locked.
  await session.type(body, selectAllAndDelete);
  await session.type(childWords, selectAllAndDelete);
  await session.click(await session.find("[data-testid=sign]"));
  await session.click((await session.waitFor("[data-testid=confirm-sign]"))[0]);
  const refusal = await waitForText("[data-testid=note-error]", (t) => t.length > 0);
  assert.match(refusal, /Udfyld/);
  assert.equal((await session.findAll("[data-testid=note-locked]")).length, 0, "nothing was signed");
  await session.screenshot(`${shots}/15-note-empty-refused.png`);

  // New text in the body, the child's words left empty, signed before any autosave: the
  // signed note holds exactly that.
  const second = `Andetudkast${Date.now().toString(36)}`;
  await session.type(body, `${second} er det, der står nu.`);
  await session.click(await session.find("[data-testid=sign]"));
  await session.click((await session.waitFor("[data-testid=confirm-sign]"))[0]);
  await waitForText("[data-testid=note-locked]", (t) => t.includes("Låst"));
  const signedText = await session.text(await session.find("[data-testid=signed-note]"));
  assert.match(signedText, new RegExp(second));
  assert.doesNotMatch(signedText, new RegExp(first), "the deleted text is not signed");
  assert.doesNotMatch(signedText, /Et gammelt citat/, "the deleted child's words are not signed");
  await session.screenshot(`${shots}/16-note-signed-as-seen.png`);
});

test("a discarded draft is gone from the case and from search", async () => {
  await freshStartInACase();
  const gone = `Kasseret${Date.now().toString(36)}`;
  await session.click(await session.find("[data-testid=new-note]"));
  const [body] = await session.waitFor("#note-body");
  await session.type(body, `${gone} skulle ikke have været skrevet.`);
  await waitForText("[data-testid=save-status]", (t) => t.startsWith("Gemt"), 3000);
  await session.click(await session.find("[data-testid=discard]"));
  await session.screenshot(`${shots}/17-note-discard-confirm.png`);
  await assertAccessible(session, "discard confirmation");
  await session.click((await session.waitFor("[data-testid=confirm-discard]"))[0]);
  await session.waitFor("#case-heading");
  await sleep(300);
  for (const n of await session.findAll("[data-testid=timeline-note]")) {
    assert.doesNotMatch(await session.text(n), new RegExp(gone), "the discarded draft is not in the case");
  }
  await session.click(await session.find("[data-testid=open-search]"));
  const [search] = await session.waitFor("#search-input");
  await session.type(search, gone.toLowerCase());
  await sleep(800);
  assert.equal((await session.findAll("[data-testid=search-note]")).length, 0, "nor found by search");
});
