// Note and person text is rendered inert: XSS payloads stored as note content and as a
// person's name execute nowhere (timeline, editor, signed view, search), and the webview can
// call no command outside the app's allowlist.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { assertAccessible, Session, showCases, startDriver, unlock } from "./webdriver.mjs";

const app = process.env.FELTKONTOR_APP;
const passphrase = process.env.FELTKONTOR_E2E_PASSPHRASE;
const shots = process.env.FELTKONTOR_SCREENSHOTS;
const tag = `xss${Date.now().toString(36)}`;
const PAYLOADS = [
  `<img src=x onerror="window.__xss='img'">`,
  `<script>window.__xss='script'</script>`,
  `<svg onload="window.__xss='svg'"></svg>`,
  `"><iframe src="javascript:window.parent.__xss='iframe'"></iframe>`,
  `<a href="javascript:window.__xss='href'" id="xss-link">klik</a>`,
  `<style>body{display:none}</style>`,
  `{@html '<b>svelte</b>'} \${window.__xss='template'}`,
];
const body = `${tag} ${PAYLOADS.join("\n")}`;
let driver;
let session;

after(async () => {
  await session?.end().catch(() => {});
  driver?.kill();
});

async function executed() {
  return session.cmd("POST", "/execute/sync", {
    script: "return [window.__xss ?? null, document.querySelectorAll('#xss-link, iframe, svg[onload], img[onerror]').length];",
    args: [],
  });
}

test("stored XSS payloads stay text and no foreign command can be called", async () => {
  const d = await startDriver();
  driver = d.driver;
  session = await Session.start(d.base, app);
  await unlock(session, passphrase);
  await showCases(session);
  await session.click((await session.waitFor("[data-testid=open-case]"))[0]);

  await session.click((await session.waitFor("[data-testid=add-person]"))[0]);
  await session.setValue((await session.waitFor("#p-name"))[0], `${tag} <img src=x onerror="window.__xss='person'">`);
  await session.click(await session.find("[data-testid=save-person]"));
  await session.waitFor("[data-testid=add-person]");

  await session.click(await session.find("[data-testid=new-note]"));
  await session.setValue((await session.waitFor("#note-body"))[0], body);
  await session.setValue(await session.find("#note-child-words"), PAYLOADS[0]);
  for (let i = 0; i < 40; i++) {
    if ((await session.text(await session.find("[data-testid=save-status]"))).startsWith("Gemt")) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(await executed(), [null, 0], "nothing ran in the editor");
  await session.click(await session.find("[data-testid=sign]"));
  await session.click((await session.waitFor("[data-testid=confirm-sign]"))[0]);
  const [signed] = await session.waitFor("[data-testid=signed-body]");
  assert.equal(await session.text(signed), body, "the payload shows as the text it is");
  assert.deepEqual(await executed(), [null, 0], "nothing ran in the signed view");
  await session.screenshot(`${shots}/30-xss-signed.png`);

  await session.click(await session.find("section button.secondary"));
  const notes = await session.waitFor("[data-testid=timeline-note]");
  assert.ok((await Promise.all(notes.map((n) => session.text(n)))).some((t) => t.includes(tag)));
  assert.deepEqual(await executed(), [null, 0], "nothing ran in the timeline or network list");

  await session.click(await session.find("[data-testid=open-search]"));
  await session.type((await session.waitFor("#search-input"))[0], tag);
  await session.waitFor("[data-testid=search-note]");
  await session.waitFor("[data-testid=search-person]");
  assert.deepEqual(await executed(), [null, 0], "nothing ran in the search results");
  await session.screenshot(`${shots}/31-xss-search.png`);
  await assertAccessible(session, "search with payloads");

  const refused = await session.cmd("POST", "/execute/async", {
    script: `const done = arguments[arguments.length - 1];
      const invoke = window.__TAURI_INTERNALS__.invoke;
      const attempts = [
        ["plugin:fs|read_text_file", { path: "/etc/passwd" }],
        ["plugin:shell|execute", { program: "sh", args: ["-c", "id"] }],
        ["plugin:window|close", {}],
        ["plugin:webview|internal_toggle_devtools", {}],
        ["not_a_command", {}],
        ["app_status", {}],
      ];
      Promise.all(attempts.map(([cmd, args]) => invoke(cmd, args).then(() => cmd + ": allowed", (e) => cmd + ": refused")))
        .then(done);`,
    args: [],
  });
  assert.equal(refused.pop(), "app_status: allowed", "the same call succeeds for the app's own command");
  assert.ok(refused.every((r) => r.endsWith("refused")), refused.join("\n"));

  // The app's own commands refuse unknown fields and oversize input with a stable code.
  const bad = await session.cmd("POST", "/execute/async", {
    script: `const done = arguments[arguments.length - 1];
      const invoke = window.__TAURI_INTERNALS__.invoke;
      const code = (p) => p.then(() => "accepted", (e) => (e && e.code) || String(e));
      Promise.all([
        code(invoke("my_cases", { filter: { district: null, status: null, sql: "1=1" } })),
        code(invoke("search", { query: "x".repeat(600) })),
        code(invoke("my_cases", { filter: { district: "x".repeat(300), status: null } })),
        code(invoke("my_cases", { filter: { district: null, status: null } })),
      ]).then(done);`,
    args: [],
  });
  assert.notEqual(bad[0], "accepted", "an unknown field is refused");
  assert.notEqual(bad[1], "accepted", "an oversize search is refused");
  assert.notEqual(bad[2], "accepted", "an oversize filter is refused");
  assert.equal(bad[3], "accepted", "the same command with valid input works");
});
