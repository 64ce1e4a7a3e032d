// A minimal W3C WebDriver client over fetch, enough to drive the Tauri window through
// tauri-driver: sessions, elements, keys, clicks, text, screenshots.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";
const AXE_SOURCE = readFileSync(createRequire(new URL("../../ui/package.json", import.meta.url)).resolve("axe-core/axe.min.js"), "utf8");
const WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

function elementId(reference) {
  const id = reference?.[ELEMENT] ?? reference?.ELEMENT;
  if (typeof id !== "string") throw new Error(`not an element reference: ${JSON.stringify(reference)}`);
  return id;
}

/** Starts tauri-driver; the app it launches inherits `env` (e.g. FELTKONTOR_DATA_DIR). Its
 *  WebKitWebDriver listens on `port + 1`, so two drivers (two app windows) can run at once. */
export async function startDriver(port = 4444, env = process.env) {
  const args = ["--port", String(port), "--native-port", String(port + 1), "--native-driver", "/usr/bin/WebKitWebDriver"];
  const driver = spawn("tauri-driver", args, {
    stdio: ["ignore", "inherit", "inherit"],
    env,
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${base}/status`);
      if (r.ok) return { driver, base };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  driver.kill();
  throw new Error("tauri-driver did not start");
}

async function call(base, method, path, body) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    // No single command may hang a run: a stuck driver fails the test within a minute.
    signal: AbortSignal.timeout(60000),
  }).catch((e) => {
    throw new Error(`${method} ${path}: ${e.message}`);
  });
  const json = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json.value)}`);
  return json.value;
}

export class Session {
  static async start(base, application) {
    const value = await call(base, "POST", "/session", {
      capabilities: { alwaysMatch: { browserName: "wry", "tauri:options": { application } } },
    });
    const session = new Session(base, value.sessionId);
    // Scripts and page loads time out well before the app's five-minute auto-lock.
    await session.cmd("POST", "/timeouts", { script: 30000, pageLoad: 20000, implicit: 0 });
    return session;
  }

  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  cmd(method, path, body) {
    return call(this.base, method, `/session/${this.id}${path}`, body);
  }

  async find(css) {
    const v = await this.cmd("POST", "/element", { using: "css selector", value: css });
    return elementId(v);
  }

  /** The first element matching `css` inside element `el`. */
  async findIn(el, css) {
    const v = await this.cmd("POST", `/element/${el}/element`, { using: "css selector", value: css });
    return elementId(v);
  }

  async findAll(css) {
    const v = await this.cmd("POST", "/elements", { using: "css selector", value: css });
    return v.map(elementId);
  }

  /** Waits until `css` matches at least `min` elements; returns them. */
  async waitFor(css, { min = 1, timeoutMs = 15000 } = {}) {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = await this.findAll(css).catch(() => []);
      if (found.length >= min) return found;
      if (Date.now() > until) throw new Error(`timed out waiting for ${css}`);
      await sleep(100);
    }
  }

  type(el, text) {
    return this.cmd("POST", `/element/${el}/value`, { text });
  }

  clear(el) {
    return this.cmd("POST", `/element/${el}/clear`, {});
  }

  click(el) {
    return this.cmd("POST", `/element/${el}/click`, {});
  }

  /** Sets a form control's value the way typing or picking would, firing input and change. */
  setValue(el, value) {
    return this.cmd("POST", "/execute/sync", {
      script:
        "const el = arguments[0]; el.value = arguments[1];" +
        "el.dispatchEvent(new Event('input', { bubbles: true })); el.dispatchEvent(new Event('change', { bubbles: true }));",
      args: [{ [ELEMENT]: el }, value],
    });
  }

  focus(el) {
    return this.cmd("POST", "/execute/sync", { script: "arguments[0].focus(); return document.activeElement === arguments[0];", args: [{ [ELEMENT]: el }] });
  }

  /** Presses one key (a WebDriver key code such as "\uE007" for Enter) on the focused element. */
  async press(key) {
    await this.cmd("POST", "/actions", {
      actions: [{ type: "key", id: "keyboard", actions: [{ type: "keyDown", value: key }, { type: "keyUp", value: key }] }],
    });
    await this.cmd("DELETE", "/actions");
  }

  text(el) {
    return this.cmd("GET", `/element/${el}/text`);
  }

  /** Runs axe-core in the real window against the WCAG 2.1 A and AA rules; returns the
   *  violations as `rule: selectors` lines. */
  async axeViolations() {
    await this.cmd("POST", "/execute/sync", { script: `${AXE_SOURCE}; return true;`, args: [] });
    const result = await this.cmd("POST", "/execute/async", {
      script:
        "const done = arguments[arguments.length - 1];" +
        "axe.run(document, { runOnly: { type: 'tag', values: arguments[0] } })" +
        ".then((r) => done(r.violations.map((v) => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 4).map((n) => n.target.join(' ')).join(', '))))" +
        ".catch((e) => done(['axe failed: ' + e]));",
      args: [WCAG_21_AA],
    });
    return result;
  }

  async screenshot(path) {
    const b64 = await this.cmd("GET", "/screenshot");
    await writeFile(path, Buffer.from(b64, "base64"));
  }

  end() {
    return this.cmd("DELETE", "");
  }
}

/** Fails when axe-core finds WCAG 2.1 A/AA violations on the current screen. */
export async function assertAccessible(session, screen) {
  const violations = await session.axeViolations();
  if (violations.length > 0) {
    throw new Error(`WCAG 2.1 AA violations on ${screen}:\n${violations.join("\n")}`);
  }
}

/** Types the passphrase on the unlock screen and waits until the app has opened. */
export async function unlock(session, passphrase, timeoutMs = 15000) {
  // The unlock screen can be drawn again while the app starts (its status arrives): a
  // stale field is looked up afresh.
  for (let attempt = 0; ; attempt++) {
    try {
      const [input] = await session.waitFor("#passphrase");
      await session.clear(input);
      await session.type(input, passphrase);
      await session.click(await session.find("button[type=submit]"));
      break;
    } catch (e) {
      if (attempt >= 3 || !String(e.message).includes("stale element")) throw e;
      await sleep(200);
    }
  }
  const until = Date.now() + timeoutMs;
  while ((await session.findAll("#passphrase")).length > 0) {
    if (Date.now() > until) throw new Error("the app did not open after unlocking");
    await sleep(100);
  }
}

/** Shows the case list ("Mine sager"): the app starts on "Min uge" after unlocking. Returns the
 *  case rows. */
export async function showCases(session, timeoutMs = 15000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const rows = await session.findAll("[data-testid=case-row]").catch(() => []);
    if (rows.length > 0) return rows;
    const nav = await session.findAll("[data-testid=open-cases]").catch(() => []);
    if (nav.length > 0 && (await session.findAll("#cases-heading")).length === 0) {
      await session.click(nav[0]).catch(() => {});
    }
    if (Date.now() > until) throw new Error("timed out waiting for the case list");
    await sleep(150);
  }
}
