// Two app windows on two computers of one worker, against one central service: both edit the
// same family member's e-mail while the service is down; when it is back, both converge, the
// concurrent edit shows as one conflict in both windows, it is resolved in one, and the other
// window follows by itself (live updates).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { Session, startDriver, showCases } from "./webdriver.mjs";
import { demoCentral, enrollmentCode, fillConnect, freePort, startServer, waitHealthy, waitText } from "./central.mjs";

const app = process.env.FELTKONTOR_APP;
const shots = process.env.FELTKONTOR_SCREENSHOTS;
const apps = [];
let server;

after(async () => {
  for (const a of apps) {
    await a.session?.end().catch(() => {});
    a.driver?.kill();
  }
  server?.kill();
});

/** Opens the first case whose row reads `row` (or the first case), then the editor of its
 *  first family member; returns the row's text. */
async function openFirstPerson(session, row) {
  const rows = await showCases(session, 30000);
  let target = rows[0];
  if (row) {
    for (const r of rows) if ((await session.text(r)) === row) target = r;
  }
  const text = await session.text(target);
  await session.click(await session.findIn(target, "[data-testid=open-case]"));
  const [person] = await session.waitFor("[data-testid=person-row]", { timeoutMs: 30000 });
  const edit = await session.findIn(person, "[data-testid=edit-person]");
  await session.cmd("POST", "/execute/sync", { script: "arguments[0].scrollIntoView({ block: 'center' });", args: [{ "element-6066-11e4-a52e-4f735466cecf": edit }] });
  await session.click(edit);
  await session.waitFor("#p-email");
  return text;
}

async function setEmail(session, email) {
  const field = await session.find("#p-email");
  await session.clear(field);
  await session.type(field, email);
  await session.click(await session.find("[data-testid=save-person]"));
  // Saved: the editor closes.
  const until = Date.now() + 15000;
  while ((await session.findAll("#p-email")).length > 0) {
    if (Date.now() > until) throw new Error("the person was not saved");
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("two computers edit the same field offline, converge, and resolve the conflict once", async () => {
  const dir = mkdtempSync(join(process.env.FELTKONTOR_WORK ?? "/tmp", "two-apps-"));
  const db = join(dir, "central.db");
  const [[username]] = demoCentral(db, 6);
  const port = await freePort();
  const log = join(process.cwd(), "target", "server-logs", "e2e-two-apps.log");
  server = startServer(db, port, log);
  await waitHealthy(port);

  for (const [i, driverPort] of [4450, 4452].entries()) {
    const d = await startDriver(driverPort, {
      ...process.env,
      FELTKONTOR_DATA_DIR: join(dir, `profile-${i}`),
      FELTKONTOR_SERVER_URL: `http://127.0.0.1:${port}`,
    });
    const session = await Session.start(d.base, app);
    apps.push({ driver: d.driver, session });
    await session.waitFor("#connect-url");
    await fillConnect(session, { username, code: enrollmentCode(db, username), passphrase: `to computere, nummer ${i + 1}` });
  }
  for (const { session } of apps) {
    await waitText(session, "[data-testid=sync-state]", /^Online$/, 60000);
  }
  const [a, b] = apps.map((x) => x.session);
  const row = await openFirstPerson(a);
  await openFirstPerson(b, row);

  // The service goes away; both save an e-mail for the same person.
  server.kill("SIGKILL");
  await setEmail(a, "computer.en@example.dk");
  await setEmail(b, "computer.to@example.dk");
  for (const s of [a, b]) {
    await s.click(await s.find("[data-testid=sync-now]"));
    await waitText(s, "[data-testid=sync-state]", /^Offline$/, 30000);
    await waitText(s, "[data-testid=sync-pending]", /1 ændring venter/);
  }

  // Back: both send by themselves, and the conflict reaches both windows.
  server = startServer(db, port, log);
  await waitHealthy(port);
  for (const s of [a, b]) {
    await waitText(s, "[data-testid=sync-pending]", /Alt er sendt/, 60000);
    await waitText(s, "[data-testid=sync-details]", /Konflikter \(1\)/, 60000);
  }
  await a.screenshot(`${shots}/70-two-apps-conflict.png`);

  // Resolved in the first window: the other value is chosen.
  await a.click(await a.find("[data-testid=sync-details]"));
  await a.waitFor("[data-testid=conflict]");
  const other = await a.text(await a.find("[data-testid=other-value]"));
  assert.match(other, /computer\.(en|to)@example\.dk/);
  await a.click(await a.find("[data-testid=choose-other]"));
  await a.waitFor("[data-testid=no-conflicts]", { timeoutMs: 15000 });
  await a.screenshot(`${shots}/71-two-apps-resolved.png`);

  // The second window hears of it by itself: no conflict left, and the chosen value shows.
  await waitText(b, "[data-testid=sync-details]", /Konflikter \(0\)/, 60000);
  await waitText(a, "[data-testid=sync-details]", /Konflikter \(0\)/, 60000);
  for (const s of [a, b]) {
    await s.click(await s.find("[data-testid=back]"));
    await openFirstPerson(s, row);
    const email = await s.cmd("GET", `/element/${await s.find("#p-email")}/property/value`);
    assert.equal(email, other, "both computers hold the chosen value");
  }
});
