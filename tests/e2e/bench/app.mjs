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
import { Session, startDriver, showCases } from "../webdriver.mjs";

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
  const parts = [];
  const stack = [String(root)];
  while (stack.length) {
    const pid = stack.pop();
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const field = (f) => Number(new RegExp(`${f}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
      const name = /Name:\s+(\S+)/.exec(status)?.[1];
      total += field("VmRSS");
      names.push(name);
      parts.push({ name, rss: field("VmRSS"), anon: field("RssAnon"), file: field("RssFile"), shmem: field("RssShmem") });
    } catch {
      // gone
    }
    stack.push(...(children.get(pid) ?? []));
  }
  return { kib: total, names, parts };
}

function appPid() {
  const pids = execFileSync("pgrep", ["-f", "-x", app], { encoding: "utf8" }).trim().split("\n");
  if (process.env.FELTKONTOR_BENCH_DEBUG) {
    console.error(pids, execFileSync("ps", ["-eo", "pid,ppid,rss,args", "--forest"], { encoding: "utf8" }).split("\n").filter((l) => /feltkontor|WebKit/.test(l)).join("\n"));
  }
  if (pids.length !== 1) throw new Error(`expected one app process, found ${pids.join(", ")}`);
  return pids[0];
}

/** Ends a session and makes sure its app is gone: killing the driver leaves the app running. */
async function stop(session, driver) {
  await session.end().catch(() => {});
  driver.kill();
  try {
    execFileSync("pkill", ["-f", "-x", app]);
  } catch {
    // none left
  }
  await sleep(500);
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
  await showCases(session, 30000);
  toCases.push(performance.now() - t1);
  await stop(session, driver);
}
results.push(["cold start: launch to unlock screen shown", pct(toUnlock, 0.5), pct(toUnlock, 1), ""]);
results.push(["unlock (Argon2id) to case list shown", pct(toCases, 0.5), pct(toCases, 1), ""]);
results.push([
  "cold start to case list (sum of the two, without typing)",
  pct(toUnlock, 0.5) + pct(toCases, 0.5),
  pct(toUnlock, 1) + pct(toCases, 1),
  "≤ 1,500 ms",
]);

// One session visits every screen, measures search and typing, then memory, then the timeline
// stress and memory once more.
const { driver, session } = await launch({});
const [input] = await session.waitFor("#passphrase", { timeoutMs: 30000 });
await session.setValue(input, passphrase);
await session.click(await session.find("button[type=submit]"));
await showCases(session, 30000);

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

// Then the stress case, after the measurement above: paging through a long history keeps
// 1,000+ notes in the DOM, whose memory the web process keeps until its garbage collector
// runs; it is reported separately.
await session.click(await session.find("main section button.secondary"));
await showCases(session);
// The timeline of the case with the long history (3,000 notes): open it, then page through.
const longName = process.env.FELTKONTOR_LONG_CASE;
const findLong = () =>
  session.cmd("POST", "/execute/sync", {
    script: "return [...document.querySelectorAll('[data-testid=open-case]')].findIndex((b) => b.textContent.trim() === arguments[0]);",
    args: [longName],
  });
let longIx = await findLong();
while (longIx < 0 && (await session.findAll("[data-testid=more-cases]")).length > 0) {
  await session.click(await session.find("[data-testid=more-cases]"));
  longIx = await findLong();
}
if (!longName || longIx < 0) throw new Error(`the long case ${longName} is not in the case list`);
const tOpen = performance.now();
await session.click((await session.findAll("[data-testid=open-case]"))[longIx]);
await session.waitFor("[data-testid=timeline-note]", { min: 25, timeoutMs: 30000 });
const openMs = performance.now() - tOpen;
const pageMs = [];
for (let k = 0; k < 40; k++) {
  const ms = await session.cmd("POST", "/execute/async", {
    script: `const done = arguments[arguments.length - 1];
      const count = () => document.querySelectorAll('[data-testid=timeline-note]').length;
      const before = count();
      const more = document.querySelector('[data-testid=more-notes]');
      if (!more) { done(-1); return; }
      const t0 = performance.now();
      const obs = new MutationObserver(() => { if (count() > before) { obs.disconnect(); done(performance.now() - t0); } });
      obs.observe(document.body, { childList: true, subtree: true });
      more.click();
      setTimeout(() => { obs.disconnect(); done(-2); }, 5000);`,
    args: [],
  });
  if (ms < 0) break;
  pageMs.push(ms);
}
const shown = (await session.findAll("[data-testid=timeline-note]")).length;
results.push(["timeline, case with 3,000 notes: click to first page shown (WebDriver round trip included)", openMs, openMs, ""]);
results.push([`timeline: next page of 25 shown (${pageMs.length} pages, ${shown} notes on screen at the end)`, pct(pageMs, 0.5), pct(pageMs, 0.95), "fast with thousands of notes"]);
await session.click(await session.find("main > button.secondary"));
await showCases(session);

await sleep(3000);
const stressed = treeRss(appPid());
await stop(session, driver);

const empty = await launch({ FELTKONTOR_EMPTY_WINDOW: "1" });
await sleep(4000);
const baseline = treeRss(appPid());
await stop(empty.session, empty.driver);

const ratio = used.kib / baseline.kib;
let md = "| measurement | p50 | worst (or p95/p99) | target |\n|---|---|---|---|\n";
for (const [name, p50, tail, target] of results) md += `| ${name} | ${p50.toFixed(0)} ms | ${tail.toFixed(0)} ms | ${target} |\n`;
md += `\nMemory after visiting every screen with the bench-size data set open: ${(used.kib / 1024).toFixed(0)} MiB `;
md += `(${used.names.join(", ")}); empty Tauri window of the same build: ${(baseline.kib / 1024).toFixed(0)} MiB `;
md += `(${baseline.names.join(", ")}). Ratio **${ratio.toFixed(2)}×** (target ≤ 1.3×).\n`;
md += `\nAfter also paging the long case's timeline (${shown} notes on screen) and going back: ${(stressed.kib / 1024).toFixed(0)} MiB, `;
md += `${(stressed.kib / baseline.kib).toFixed(2)}× the empty window.\n`;
const mib = (k) => (k / 1024).toFixed(0);
const breakdown = (label, m) =>
  m.parts.map((p) => `| ${label} | ${p.name} | ${mib(p.rss)} | ${mib(p.anon)} | ${mib(p.file)} | ${mib(p.shmem)} |`).join("\n");
md += `\nResident memory per process (MiB):\n\n| run | process | RSS | anonymous | file-backed | shared memory |\n|---|---|---|---|---|---|\n`;
md += `${breakdown("app, every screen visited", used)}\n${breakdown("app, after the timeline stress", stressed)}\n${breakdown("empty window", baseline)}\n`;
console.log(md);
mkdirSync(out.replace(/\/[^/]+$/, ""), { recursive: true });
writeFileSync(out, md);
