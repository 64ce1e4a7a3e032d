// A note in quarantine, end to end: a colleague's computer (here its sync calls, made directly)
// sends a note written while its worker was removed from the team; the service keeps it in
// quarantine. The case's coordinator connects in the real window: the status bar announces the
// waiting note, opens the sync view, the coordinator takes it into the case, and the
// announcement goes away.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { assertAccessible, Session, startDriver } from "./webdriver.mjs";
import { demoCentral, enrollmentCode, fillConnect, freePort, password, serverBin, startServer, waitHealthy, waitText } from "./central.mjs";

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

async function api(port, path, body, token) {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const answer = await r.json();
  if (!r.ok) throw new Error(`${path}: ${r.status} ${JSON.stringify(answer)}`);
  return answer;
}

/** Every record the device's worker may see, and the buckets visible. */
async function pullAll(port, token) {
  const cursors = {};
  const records = [];
  let visible = [];
  for (;;) {
    const page = await api(port, "/v1/sync/pull", { cursors, limit: 5000 }, token);
    for (const b of page.buckets) {
      cursors[b.bucket] = b.cursor;
      records.push(...b.records);
    }
    visible = page.visible;
    if (!page.more) return { records, visible };
  }
}

test("a quarantined note is announced to the coordinator, who takes it into the case", async () => {
  const dir = mkdtempSync(join(process.env.FELTKONTOR_WORK ?? "/tmp", "quarantine-"));
  const db = join(dir, "central.db");
  const accounts = demoCentral(db, 6);
  const port = await freePort();
  server = startServer(db, port, join(process.cwd(), "target", "server-logs", "e2e-quarantine.log"));
  await waitHealthy(port);

  // The author: the team's psychologist, who sees its cases as a member of the team (not as a
  // participant), so leaving the team ends the access.
  const [authorName, , , team] = accounts.find(([, , profession]) => profession === "psychologist");
  const author = await api(port, "/v1/enroll", {
    code: enrollmentCode(db, authorName),
    username: authorName,
    password,
    device_name: "Kollegaens bærbar",
  });
  const before = await pullAll(port, author.access_token);
  execFileSync(serverBin, ["--database-url", `sqlite:${db}`, "admin", "remove-member", "--username", authorName, "--team", team]);
  const after = await pullAll(port, author.access_token);
  const staff = new Map(before.records.filter((r) => r.entity === "staff").map((r) => [r.id, r.data.name]));
  const lost = before.records.find(
    (r) => r.entity === "case" && !after.visible.includes(`case:${r.id}`) && r.data.coordinator_id !== author.staff_id,
  );
  assert.ok(lost, "the author lost a case coordinated by someone else");
  const coordinatorName = staff.get(lost.data.coordinator_id);
  const [coordinator] = accounts.find(([, name, , t]) => name === coordinatorName && t === team);

  // Written while offline, sent now: refused, and kept in quarantine.
  const template = before.records.find((r) => r.entity === "note" && r.data.case_id === lost.id);
  assert.ok(template, "the case has a note");
  const hlc = `${Date.now().toString(16).padStart(16, "0")}.00000000.${author.device_id}`;
  const noteId = randomUUID();
  const body = "Hjemmebesøg skrevet uden net: mor fortæller, at det går bedre i skolen.";
  const data = {
    ...template.data,
    author_id: author.staff_id,
    body,
    child_words: "",
    family_perspective: "",
    status: "draft",
    signed_at: null,
    content_hash: null,
    addendum_to: null,
    archived: false,
  };
  const fields = Object.fromEntries(Object.entries(data).map(([k, value]) => [k, { value, hlc }]));
  const pushed = await api(
    port,
    "/v1/sync/push",
    { entries: [{ op_id: randomUUID(), seq: 1, device: author.device_id, entity: "note", entity_id: noteId, fields }] },
    author.access_token,
  );
  assert.equal(pushed.rejected.length, 1, JSON.stringify(pushed));
  assert.equal(pushed.rejected[0].code, "forbidden");

  // The coordinator connects: the first sync tells the app that one note waits.
  const d = await startDriver(4444, {
    ...process.env,
    FELTKONTOR_DATA_DIR: join(dir, "profile"),
    FELTKONTOR_SERVER_URL: `http://127.0.0.1:${port}`,
  });
  driver = d.driver;
  session = await Session.start(d.base, app);
  await session.waitFor("#connect-url");
  await fillConnect(session, { username: coordinator, code: enrollmentCode(db, coordinator), passphrase: "karantæne tovholder 7" });
  await waitText(session, "[data-testid=sync-state]", /^Online$/, 60000);
  await waitText(session, "[data-testid=sync-quarantined]", /^1 notat venter på din beslutning$/, 30000);
  await session.screenshot(`${shots}/80-quarantine-announced.png`);
  await assertAccessible(session, "quarantined note announced");

  // The announcement opens the sync view, where the note waits with its author.
  await session.click(await session.find("[data-testid=sync-quarantined]"));
  const [card] = await session.waitFor("[data-testid=quarantined-note]", { timeoutMs: 30000 });
  const text = await session.text(card);
  assert.match(text, /mor fortæller, at det går bedre i skolen/);
  assert.match(text, new RegExp(`Skrevet af ${staff.get(author.staff_id)}`));
  await session.click(await session.findIn(card, "[data-testid=quarantine-accept]"));

  // Decided: nothing waits, and the announcement goes away.
  const until = Date.now() + 30000;
  while ((await session.findAll("[data-testid=quarantined-note]")).length > 0) {
    if (Date.now() > until) throw new Error("the note still waits after the decision");
    await new Promise((r) => setTimeout(r, 200));
  }
  const gone = Date.now() + 30000;
  while ((await session.findAll("[data-testid=sync-quarantined]")).length > 0) {
    if (Date.now() > gone) throw new Error("the status bar still announces the note");
    await new Promise((r) => setTimeout(r, 200));
  }
  await session.screenshot(`${shots}/81-quarantine-decided.png`);
});
