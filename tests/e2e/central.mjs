// The central service for the end-to-end tests: a real server process on a loopback port with
// a demo municipality in its own SQLite file, and the app's connect step (first run) driven in
// the real window.
import { execFileSync, spawn } from "node:child_process";
import { openSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export const serverBin = join(process.env.FELTKONTOR_APP ?? "target/debug/feltkontor", "..", "feltkontor-server");
export const password = "e2e-server-kodeord";

export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A demo municipality in `db`; returns its accounts as [username, name, profession, team]. */
export function demoCentral(db, cases = 12) {
  const accounts = execFileSync(serverBin, ["--database-url", `sqlite:${db}`, "admin", "demo", "--cases", String(cases)], {
    input: `${password}\n`,
    stdio: ["pipe", "pipe", "ignore"],
  }).toString();
  return accounts
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => l.split("\t"));
}

export function enrollmentCode(db, username) {
  return execFileSync(serverBin, ["--database-url", `sqlite:${db}`, "admin", "enrollment-code", "--username", username])
    .toString()
    .trim();
}

export function startServer(db, port, log) {
  const out = openSync(log, "a");
  return spawn(serverBin, ["--database-url", `sqlite:${db}`, "serve", "--listen", `127.0.0.1:${port}`], {
    stdio: ["ignore", "ignore", out],
  });
}

export async function waitHealthy(port) {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) return;
    } catch {}
    await sleep(100);
  }
  throw new Error("the central service did not start");
}

/** Waits until the text of `css` matches `re`; returns the text. */
export async function waitText(session, css, re, timeoutMs = 30000) {
  const until = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    let el;
    try {
      [el] = await session.waitFor(css, { timeoutMs });
    } catch (e) {
      // What the window showed instead, for the failure's message.
      const page = await session.cmd("POST", "/execute/sync", { script: "return document.body.innerText.slice(0, 600);", args: [] }).catch(() => "?");
      throw new Error(`${e.message}; the window showed: ${JSON.stringify(page)}`);
    }
    last = await session.text(el).catch(() => "");
    if (re.test(last)) return last;
    if (Date.now() > until) throw new Error(`${css}: waited for ${re}, last saw "${last}"`);
    await sleep(200);
  }
}

/** Fills the first-run connect form (the server URL is prefilled) and submits it. */
export async function fillConnect(session, { username, code, passphrase }) {
  await session.type(await session.find("#connect-username"), username);
  await session.type(await session.find("#connect-code"), code);
  await session.type(await session.find("#connect-password"), password);
  await session.type(await session.find("#first-passphrase"), passphrase);
  await session.type(await session.find("#first-repeat"), passphrase);
  await session.click(await session.find("[data-testid=first-run-submit]"));
}
