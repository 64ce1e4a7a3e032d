// Every screen by keyboard alone, in the real window: unlock, my cases, a case, the network
// map, a new note, search (Ctrl+K), settings, a new case. Only key presses move focus and
// activate controls, and every focus stop is visibly marked.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Session, startDriver, showCases } from "./webdriver.mjs";

const app = process.env.FELTKONTOR_APP;
const passphrase = process.env.FELTKONTOR_E2E_PASSPHRASE;
const TAB = "\uE004";
const ENTER = "\uE007";
const ESCAPE = "\uE00C";
const CONTROL = "\uE009";
let driver;
let session;

before(async () => {
  assert.ok(app && passphrase, "run through scripts/e2e.sh");
  // The app's own default rendering (compositing off): e2e.sh turns it on for the others.
  const env = { ...process.env };
  delete env.WEBKIT_DISABLE_COMPOSITING_MODE;
  const d = await startDriver(4444, env);
  driver = d.driver;
  session = await Session.start(d.base, app);
});

after(async () => {
  await session?.end().catch(() => {});
  driver?.kill();
});

/** Types `text` into whatever has focus, key by key. */
async function keys(text) {
  const actions = [];
  for (const ch of text) actions.push({ type: "keyDown", value: ch }, { type: "keyUp", value: ch });
  await session.cmd("POST", "/actions", { actions: [{ type: "key", id: "keyboard", actions }] });
  await session.cmd("DELETE", "/actions");
}

async function chord(modifier, key) {
  await session.cmd("POST", "/actions", {
    actions: [{
      type: "key",
      id: "keyboard",
      actions: [
        { type: "keyDown", value: modifier },
        { type: "keyDown", value: key },
        { type: "keyUp", value: key },
        { type: "keyUp", value: modifier },
      ],
    }],
  });
  await session.cmd("DELETE", "/actions");
}

/** What has focus, and whether its focus is visibly marked (outline, ring or the map's stroke). */
function focused() {
  return session.cmd("POST", "/execute/sync", {
    script: `const e = document.activeElement; const s = getComputedStyle(e);
      const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || (s.boxShadow && s.boxShadow !== 'none');
      const mapNode = e.matches('.person:focus-visible') && getComputedStyle(e.querySelector('rect')).strokeWidth === '3px';
      return { tag: e.tagName, id: e.id, testid: e.getAttribute('data-testid'), text: (e.textContent || '').trim().slice(0, 40), visible: ring || mapNode };`,
    args: [],
  });
}

/** Presses Tab until focus is on an element `match` accepts; every stop must be visible. */
async function tabTo(what, match, max = 120) {
  for (let i = 0; i < max; i++) {
    await session.press(TAB);
    const f = await focused();
    if (f.tag !== "BODY") assert.ok(f.visible, `focus is not visible on ${f.tag}#${f.id} [${f.testid}] "${f.text}"`);
    if (match(f)) return f;
  }
  throw new Error(`Tab never reached ${what}`);
}

const byTestId = (id) => (f) => f.testid === id;

test("every screen can be used with the keyboard alone, with visible focus", async () => {
  // Unlock: the passphrase field has focus from the start.
  await session.waitFor("#passphrase");
  let f = await focused();
  assert.equal(f.id, "passphrase", "the unlock screen puts focus in the passphrase field");
  await keys(passphrase);
  await session.press(ENTER);
  // "Min uge" is the start screen; the case list is one key press away.
  await session.waitFor("#week-heading", { timeoutMs: 30000 });
  await tabTo("my cases", byTestId("open-cases"));
  await session.press(ENTER);
  await session.waitFor("[data-testid=case-row]", { timeoutMs: 30000 });

  // My cases → open the first case.
  await tabTo("a case in the list", byTestId("open-case"));
  await session.press(ENTER);
  await session.waitFor("#case-heading");

  // The network map: a person is reachable and opens with Enter.
  await session.waitFor("[data-testid=map-person]", { timeoutMs: 30000 });
  await tabTo("a person on the map", byTestId("map-person"));
  await session.press(ENTER);
  await session.waitFor("#p-name", { timeoutMs: 10000 });
  await tabTo("the person editor's cancel button", (x) => x.tag === "BUTTON" && x.text === "Annullér");
  await session.press(ENTER);
  assert.equal((await session.findAll("#p-name")).length, 0, "the editor closes");

  // A new note: write in it by keyboard.
  await tabTo("new note", byTestId("new-note"));
  await session.press(ENTER);
  await session.waitFor("#note-body");
  await tabTo("the note text", (x) => x.id === "note-body");
  await keys("Skrevet med tastaturet alene.");
  const value = await session.cmd("POST", "/execute/sync", { script: "return document.getElementById('note-body').value;", args: [] });
  assert.equal(value, "Skrevet med tastaturet alene.");

  // Search with Ctrl+K, type, reach a hit, close with Escape.
  await chord(CONTROL, "k");
  await session.waitFor("#search-input");
  for (let i = 0; i < 20 && (f = await focused()).id !== "search-input"; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(f.id, "search-input", "Ctrl+K puts focus in the search field");
  await keys("mor");
  await session.waitFor("[role=dialog] .hit", { timeoutMs: 10000 });
  await tabTo("a search hit", (x) => x.tag === "BUTTON" || x.tag === "A", 10);
  await session.press(ESCAPE);
  assert.equal((await session.findAll("#search-input")).length, 0, "Escape closes search");

  // Settings.
  await tabTo("settings", byTestId("settings"));
  await session.press(ENTER);
  await session.waitFor("#device-heading");
  await tabTo("the language choice", (x) => x.tag === "SELECT" || x.tag === "INPUT");

  // A new case, from the case list.
  await tabTo("back to the case list", (x) => x.tag === "BUTTON" && x.text === "Tilbage til mine sager");
  await session.press(ENTER);
  await showCases(session);
  await tabTo("new case", byTestId("new-case"));
  await session.press(ENTER);
  await session.waitFor("#nc-name");
  await tabTo("the child's name", (x) => x.id === "nc-name");
  await keys("Tastatur Testbarn");
});
