// `make bench-app`: the desktop app's performance on the bench-size data set, in the real
// window (release build, Xvfb). Prints a Markdown table and writes target/bench/app.md.
//   cold start: launch to unlock screen, and unlock to the case list shown
//   search while typing: keystroke to results shown, measured in the page
//   typing during autosave: how late keystroke handling runs while drafts are being saved
//   memory: RSS of the app and its WebKit processes after visiting every screen, against the
//           same build showing an empty page, measured in the same run
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { Session, startDriver } from "../webdriver.mjs";

const app = process.env.FELTKONTOR_APP;
const passphrase = process.env.FELTKONTOR_E2E_PASSPHRASE;
const out = process.env.FELTKONTOR_BENCH_OUT;
const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

function pct(values, p) {
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.ceil(v.length * p) - 1)];
}

/** Resident memory (KiB) of a process and all its descendants. */
function treeRss(root) {
  const children = new Map();
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1];
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(pid);
    } catch {
      // gone
    }
  }
  let total = 0;
  const names = [];
  const stack = [String(root)];
  while (stack.length) {
    const pid = stack.pop();
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      names.push(/Name:\s+(\S+)/.exec(status)?.[1]);
    } catch {
      // gone
    }
    stack.push(...(children.get(pid) ?? []));
  }
  return { kib: total, names };
}

function appPid() {
  return execFileSync("pgrep", ["-f", "-x", app], { encoding: "utf8" }).trim().split("\n")[0];
}

async function launch(env) {
  const d = await startDriver(4444, { ...process.env, ...env });
  const t0 = performance.now();
  const session = await Session.start(d.base, app);
  return { driver: d.driver, session, t0 };
}

const results = [];

// Cold start, five times.
const toUnlock = [];
const toCases = [];
for (let i = 0; i < 5; i++) {
  const { driver, session, t0 } = await launch({});
  const [input] = await session.waitFor("#passphrase", { timeoutMs: 30000 });
  toUnlock.push(performance.now() - t0);
  await session.setValue(input, passphrase);
  const t1 = performance.now();
  await session.click(await session.find("button[type=submit]"));
  await session.waitFor("[data-testid=case-row]", { timeoutMs: 30000 });
  toCases.push(performance.now() - t1);
  await session.end();
  driver.kill();
  await sleep(500);
}
results.push(["cold start: launch to unlock screen shown", pct(toUnlock, 0.5), pct(toUnlock, 1), ""]);
results.push(["unlock (Argon2id) to case list shown", pct(toCases, 0.5), pct(toCases, 1), ""]);
results.push([
  "cold start to case list (sum of the two, without typing)",
  pct(toUnlock, 0.5) + pct(toCases, 0.5),
  pct(toUnlock, 1) + pct(toCases, 1),
  "≤ 1,500 ms",
]);

// One session visits every screen, measures search and typing, then memory.
const { driver, session } = await launch({});
const [input] = await session.waitFor("#passphrase", { timeoutMs: 30000 });
await session.setValue(input, passphrase);
await session.click(await session.find("button[type=submit]"));
await session.waitFor("[data-testid=case-row]", { timeoutMs: 30000 });

await session.click((await session.findAll("[data-testid=open-case]"))[0]);
await session.waitFor("[data-testid=map-person]", { timeoutMs: 30000 });
await session.click((await session.waitFor("[data-testid=timeline-note]"))[0]);
await session.waitFor("#note-heading");
await session.click(await session.find("main section button.secondary"));
await session.click((await session.waitFor("[data-testid=new-note]"))[0]);
const [body] = await session.waitFor("#note-body");

// Typing during autosave: 300 keystrokes, 15 ms apart, each an input event that schedules
// autosave; records how late each keystroke's handler ran after it was due.
const lateness = await session.cmd("POST", "/execute/async", {
  script: `const done = arguments[arguments.length - 1]; const el = arguments[0];
    const late = []; let i = 0;
    const text = "Hjemmebesøg hos familien, mor fortæller om morgenerne og skolen. ";
    function tick(due) {
      const now = performance.now(); late.push(now - due);
      el.value += text[i % text.length]; el.dispatchEvent(new Event("input", { bubbles: true }));
      if (++i < 300) { const next = now + 15; setTimeout(() => tick(next), 15); } else done(late);
    }
    tick(performance.now());`,
  args: [{ [ELEMENT]: body }],
});
results.push(["typing during autosave: keystroke handled late by", pct(lateness, 0.5), pct(lateness, 0.99), "never waits on storage"]);
await sleep(1500);

await session.click(await session.find("[data-testid=open-search]"));
const [search] = await session.waitFor("#search-input");
const latencies = [];
for (const query of ["søvn", "mor", "fravær", "skole", "hjemmebesøg", "netværk", "bedstemor", "aarhus"]) {
  for (let n = 1; n <= query.length; n++) {
    const ms = await session.cmd("POST", "/execute/async", {
      script: `const done = arguments[arguments.length - 1]; const el = arguments[0]; const q = arguments[1];
        const panel = el.closest("[role=dialog]");
        const t0 = performance.now();
        const obs = new MutationObserver(() => { obs.disconnect(); done(performance.now() - t0); });
        obs.observe(panel, { childList: true, subtree: true, characterData: true });
        el.value = q; el.dispatchEvent(new Event("input", { bubbles: true }));
        setTimeout(() => { obs.disconnect(); done(-1); }, 3000);`,
      args: [{ [ELEMENT]: search }, query.slice(0, n)],
    });
    if (ms >= 0) latencies.push(ms);
    await sleep(200);
  }
}
results.push(["search while typing: keystroke to results shown", pct(latencies, 0.5), pct(latencies, 0.95), "≤ 100 ms"]);
await session.click(await session.find("[role=dialog] button.close"));
await session.click(await session.find("[data-testid=settings]"));
await session.waitFor("#device-heading");
await session.click(await session.find("main button.secondary"));
await session.click((await session.waitFor("[data-testid=new-case]"))[0]);
await session.waitFor("#nc-name");
await sleep(3000);
const used = treeRss(appPid());
await session.end();
driver.kill();
await sleep(1000);

const empty = await launch({ FELTKONTOR_EMPTY_WINDOW: "1" });
await sleep(4000);
const baseline = treeRss(appPid());
await empty.session.end();
empty.driver.kill();

const ratio = used.kib / baseline.kib;
let md = "| measurement | p50 | worst (or p95/p99) | target |\n|---|---|---|---|\n";
for (const [name, p50, tail, target] of results) md += `| ${name} | ${p50.toFixed(0)} ms | ${tail.toFixed(0)} ms | ${target} |\n`;
md += `\nMemory after visiting every screen with the bench-size data set open: ${(used.kib / 1024).toFixed(0)} MiB `;
md += `(${used.names.join(", ")}); empty Tauri window of the same build: ${(baseline.kib / 1024).toFixed(0)} MiB `;
md += `(${baseline.names.join(", ")}). Ratio **${ratio.toFixed(2)}×** (target ≤ 1.3×).\n`;
console.log(md);
mkdirSync(out.replace(/\/[^/]+$/, ""), { recursive: true });
writeFileSync(out, md);
