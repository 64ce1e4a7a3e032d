// Settings and auto-lock: the language switches the whole UI; after the idle time the session
// locks by itself, hides the case, keeps what was typed, and unlocking returns to the note.
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


async function textOf(css) {
  return session.text(await session.find(css));
}

test("language, auto-lock that keeps the draft, device information", async () => {
  const d = await startDriver();
  driver = d.driver;
  session = await Session.start(d.base, app);
  // The webview keeps localStorage between runs: start from the defaults.
  await session.waitFor("#passphrase");
  await session.cmd("POST", "/execute/sync", {
    script: "localStorage.removeItem('feltkontor.settings'); location.reload(); return true;",
    args: [],
  });
  await unlock(session, passphrase);
  await showCases(session);

  await session.click(await session.find("[data-testid=settings]"));
  await session.waitFor("#settings-heading");
  const info = await session.waitFor("#device-heading");
  assert.ok(info.length === 1);
  assert.match(await textOf("dl"), /SQLCipher 4\./);
  // The demo profile is local only: settings offers to connect it to a server.
  assert.match(await textOf("[data-testid=settings-server]"), /kun lokale data/);
  assert.equal(await textOf("#retire-heading"), "Forbind computeren til kommunens server");
  assert.equal(await session.cmd("GET", `/element/${await session.find("#set-autolock")}/property/value`), "5", "auto-lock defaults to 5 minutes");
  await session.screenshot(`${shots}/40-settings.png`);
  await assertAccessible(session, "settings");

  await session.setValue(await session.find("#set-lang"), "en");
  assert.equal(await textOf("#settings-heading"), "Settings");
  assert.equal(await textOf("[data-testid=lock]"), "Lock");
  await session.screenshot(`${shots}/41-settings-english.png`);
  await session.setValue(await session.find("#set-lang"), "da");
  assert.equal(await textOf("#settings-heading"), "Indstillinger");

  // A 3-second idle time, which only a test sets (the screen offers 1–60 minutes).
  await session.cmd("POST", "/execute/sync", {
    script: "localStorage.setItem('feltkontor.settings', JSON.stringify({ lang: 'da', autoLockMinutes: 0.05 })); location.reload(); return true;",
    args: [],
  });
  await unlock(session, passphrase);
  await showCases(session);
  await session.click((await session.waitFor("[data-testid=open-case]"))[0]);
  const childName = await session.text((await session.waitFor("#case-heading"))[0]);
  await session.click((await session.waitFor("[data-testid=new-note]"))[0]);
  const words = "Skrevet lige før computeren blev forladt";
  await session.type((await session.waitFor("#note-body"))[0], words);

  await sleep(5000);
  const [notice] = await session.waitFor("[data-testid=locked-notice]");
  assert.match(await session.text(notice), /Det, du skrev, er gemt/);
  const page = await session.cmd("POST", "/execute/sync", { script: "return document.body.innerText;", args: [] });
  assert.ok(!page.includes(childName) && !page.includes(words), "nothing of the case is shown while locked");
  await session.screenshot(`${shots}/42-auto-locked.png`);
  await assertAccessible(session, "auto-locked");

  await unlock(session, passphrase);
  const [body] = await session.waitFor("#note-body");
  assert.equal(await session.cmd("GET", `/element/${body}/property/value`), words, "back in the note, with what was typed");
  await session.cmd("POST", "/execute/sync", {
    script: "localStorage.removeItem('feltkontor.settings'); return true;",
    args: [],
  });
});
