// Connecting a new computer in the real window: first run against a real central service on
// loopback (server URL, user name, one-time code, password, passphrase), the first sync brings
// the worker's cases, the status bar says online; with the service stopped, a saved change
// waits and the bar says offline; with the service back, the change is sent by itself.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { hostname } from "node:os";
import { join } from "node:path";
import { assertAccessible, Session, startDriver, showCases } from "./webdriver.mjs";
import { demoCentral, enrollmentCode, fillConnect, freePort, password, serverBin, startServer, waitHealthy, waitText as waitTextIn } from "./central.mjs";

const app = process.env.FELTKONTOR_APP;
const shots = process.env.FELTKONTOR_SCREENSHOTS;
let driver;
let session;
let server;

after(async () => {
  await session?.end().catch(() => {});
  driver?.kill();
  server?.kill();
});

const waitText = (css, re, timeoutMs) => waitTextIn(session, css, re, timeoutMs);

test("connect a new computer, sync, go offline and come back", async () => {
  const dir = mkdtempSync(join(process.env.FELTKONTOR_WORK ?? "/tmp", "connect-"));
  const db = join(dir, "central.db");
  const [[username, staffName]] = demoCentral(db);
  const code = enrollmentCode(db, username);
  const port = await freePort();
  const log = join(process.cwd(), "target", "server-logs", "e2e-connect.log");
  server = startServer(db, port, log);
  await waitHealthy(port);

  const d = await startDriver(4444, {
    ...process.env,
    FELTKONTOR_DATA_DIR: join(dir, "profile"),
    FELTKONTOR_SERVER_URL: `http://127.0.0.1:${port}`,
  });
  driver = d.driver;
  session = await Session.start(d.base, app);

  const [url] = await session.waitFor("#connect-url");
  assert.equal(await session.cmd("GET", `/element/${url}/property/value`), `http://127.0.0.1:${port}`);
  await fillConnect(session, { username, code: "12", passphrase: "blåbær tromle fyrtårn 42" });
  await waitText("[role=alert]", /Engangskoden skrives som fire plus fire tegn/);
  const wrongCode = await session.find("#connect-code");
  await session.clear(wrongCode);
  await session.type(wrongCode, "K7QM-3XPT");
  await session.click(await session.find("[data-testid=first-run-submit]"));
  await waitText("[role=alert]", /engangskode er forkert/);
  await assertAccessible(session, "connect, wrong code");
  const codeField = await session.find("#connect-code");
  await session.clear(codeField);
  await session.type(codeField, code);
  await session.click(await session.find("[data-testid=first-run-submit]"));

  // The first sync brings the worker's cases; the bar says online and nothing waits. Until
  // then nothing says "offline" or "you have no cases": the bar says connecting or syncing,
  // and an empty list says the cases are on their way.
  const seen = new Set();
  for (const until = Date.now() + 60000; ; ) {
    const [st] = await session.findAll("[data-testid=sync-state]");
    const state = st ? await session.text(st).catch(() => "") : "";
    if (state) seen.add(`bar: ${state}`);
    for (const e of await session.findAll("[data-testid=cases-empty]")) {
      seen.add(`list: ${await session.cmd("GET", `/element/${e}/attribute/data-reason`).catch(() => "?")}`);
    }
    if (state === "Online") break;
    assert.ok(Date.now() < until, `the first sync ends online (saw ${[...seen]})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(!seen.has("bar: Offline"), `no "offline" during a first sync: ${[...seen]}`);
  assert.ok(!seen.has("list: none"), `no "you have no cases" during a first sync: ${[...seen]}`);
  await showCases(session, 30000);
  // The header names the worker as the service knows them, once the first sync brought it.
  await waitText("header .who", new RegExp(staffName));
  assert.match(await session.text(await session.find("[data-testid=sync-pending]")), /Alt er sendt/);
  assert.match(await session.text(await session.find("[data-testid=sync-last]")), /Sidst synkroniseret/);
  await session.screenshot(`${shots}/60-connected.png`);
  // IT tells the laptop apart by its name: the computer's host name and the worker.
  const devices = execFileSync(serverBin, ["--database-url", `sqlite:${db}`, "admin", "devices", "--username", username]).toString();
  assert.match(devices, new RegExp(`"name":"${hostname()} \\(${username}\\)"`), devices);
  await assertAccessible(session, "connected, case list with sync bar");

  // A case's change history, read from the service: who changed what, from which computer.
  await session.click((await session.findAll("[data-testid=open-case]"))[0]);
  await session.waitFor("#case-heading");
  await session.click(await session.find("[data-testid=history-toggle]"));
  await session.waitFor("[data-testid=history-list]");
  for (const until = Date.now() + 10000; ; ) {
    const items = await session.findAll("[data-testid=history-list] li");
    const errors = await session.findAll("[data-testid=history-error]");
    assert.equal(errors.length, 0, errors.length ? await session.text(errors[0]) : "");
    if (items.length) break;
    assert.ok(Date.now() < until, "the history answers");
    await new Promise((r) => setTimeout(r, 100));
  }
  await session.screenshot(`${shots}/62-case-history.png`);
  await assertAccessible(session, "case history");
  await showCases(session);

  // The service goes away: a sync attempt fails quietly and the bar says offline.
  server.kill("SIGKILL");
  await session.click(await session.find("[data-testid=sync-now]"));
  await waitText("[data-testid=sync-state]", /^Offline$/, 30000);

  // Back on network: the next attempt runs by itself (backoff timer) and the bar says online.
  server = startServer(db, port, log);
  await waitHealthy(port);
  await waitText("[data-testid=sync-state]", /^Online$/, 30000);
  await session.click(await session.find("[data-testid=sync-details]"));
  await session.waitFor("[data-testid=no-conflicts]");
  await session.screenshot(`${shots}/61-sync-view.png`);
  await assertAccessible(session, "sync view");
  assert.equal(readFileSync(log, "utf8").includes(password), false);
});
