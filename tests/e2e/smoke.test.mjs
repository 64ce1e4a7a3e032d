// The app opens in a real window, refuses a wrong passphrase in Danish, unlocks the encrypted
// demo store with the right one and lists the worker's cases, then locks again.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { assertAccessible, Session, startDriver, showCases } from "./webdriver.mjs";

const app = process.env.FELTKONTOR_APP;
const passphrase = process.env.FELTKONTOR_E2E_PASSPHRASE;
const shots = process.env.FELTKONTOR_SCREENSHOTS;
let driver;
let session;

before(async () => {
  assert.ok(app && passphrase && shots, "run through scripts/e2e.sh");
  const d = await startDriver();
  driver = d.driver;
  session = await Session.start(d.base, app);
});

after(async () => {
  await session?.end().catch(() => {});
  driver?.kill();
});

test("unlock the encrypted store and see my cases in the real window", async () => {
  const [input] = await session.waitFor("#passphrase");
  await session.screenshot(`${shots}/01-unlock.png`);
  await assertAccessible(session, "unlock");

  await session.type(input, "forkert kodeord");
  await session.click(await session.find("button[type=submit]"));
  const [error] = await session.waitFor("#unlock-error");
  assert.equal(await session.text(error), "Adgangssætningen er forkert. Prøv igen.");
  await session.screenshot(`${shots}/02-wrong-passphrase.png`);
  await assertAccessible(session, "unlock with error");

  await session.clear(input);
  await session.type(input, passphrase);
  await session.click(await session.find("button[type=submit]"));
  const rows = await showCases(session);
  assert.ok(rows.length > 0, "the worker has cases");
  assert.equal(await session.text(await session.find("h1")), "Mine sager");
  const mine = await session.text(await session.findIn(rows[0], ".badge"));
  assert.equal(mine, "dig", "cases the worker coordinates come first (the coordinator column says \"dig\")");
  await session.screenshot(`${shots}/03-my-cases.png`);
  await assertAccessible(session, "my cases");

  await session.click(await session.find("[data-testid=lock]"));
  await session.waitFor("#passphrase");
  assert.equal((await session.findAll("[data-testid=case-row]")).length, 0, "nothing shown when locked");
});

test("the app process writes no core dumps", () => {
  const pids = execFileSync("pgrep", ["-f", "-x", app], { encoding: "utf8" }).trim().split("\n");
  assert.ok(pids.length >= 1 && pids[0], "the app is running");
  const limits = readFileSync(`/proc/${pids[0]}/limits`, "utf8");
  assert.match(limits, /^Max core file size\s+0\s+0\s+bytes/m);
});

test("the accessibility check fails on a real violation", async () => {
  await session.cmd("POST", "/execute/sync", {
    script: "const b = document.createElement('button'); b.id = 'unnamed'; document.body.appendChild(b); return true;",
    args: [],
  });
  await assert.rejects(assertAccessible(session, "planted violation"), /button-name/);
  await session.cmd("POST", "/execute/sync", { script: "document.getElementById('unnamed').remove(); return true;", args: [] });
});
