// What a worker sees without scrolling on a 1366×768 laptop: the case list shows at least 12
// cases; a case shows the child, the coordinator, the consent status, what is due next and the
// latest notes; the note editor keeps "Underskriv" and the save status in view.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { Session, showCases, startDriver, unlock } from "./webdriver.mjs";

const app = process.env.FELTKONTOR_APP;
const passphrase = process.env.FELTKONTOR_E2E_PASSPHRASE;
const shots = process.env.FELTKONTOR_SCREENSHOTS;
let driver;
let session;

after(async () => {
  await session?.end().catch(() => {});
  driver?.kill();
});

/** The elements matching `css` whose box lies wholly inside the window's viewport. */
function inView(css) {
  return session.cmd("POST", "/execute/sync", {
    script: `return [...document.querySelectorAll(arguments[0])].filter((e) => {
      const r = e.getBoundingClientRect();
      return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight;
    }).length;`,
    args: [css],
  });
}

test("the screens a worker uses most fit a 1366×768 window", async () => {
  const d = await startDriver();
  driver = d.driver;
  session = await Session.start(d.base, app);
  const size = await session.cmd("POST", "/execute/sync", { script: "return [window.innerWidth, window.innerHeight, screen.width, screen.height];", args: [] });
  assert.ok(size[2] === 1366 && size[3] === 768, `the screen is 1366×768 (${size})`);
  await unlock(session, passphrase);
  await showCases(session);
  const rows = await inView("[data-testid=case-row]");
  await session.screenshot(`${shots}/70-layout-cases.png`);
  // Room for at least 12 rows below the first (the e2e caseload may hold fewer), and every
  // row there is shown whole.
  const room = await session.cmd("POST", "/execute/sync", {
    script: `const r = document.querySelector('[data-testid=case-row]').getBoundingClientRect();
      return Math.floor((window.innerHeight - r.top) / r.height);`,
    args: [],
  });
  const total = (await session.findAll("[data-testid=case-row]")).length;
  assert.ok(room >= 12, `room for at least 12 cases without scrolling (${room} in a ${size[0]}×${size[1]} window)`);
  assert.equal(rows, Math.min(total, room), "the rows there are shown whole");

  await session.click((await session.findAll("[data-testid=open-case]"))[0]);
  await session.waitFor("#case-heading");
  await session.waitFor("[data-testid=case-glance]");
  for (const css of ["#case-heading", ".coordinator", "[data-testid=case-consent]", "[data-testid=case-glance]"]) {
    assert.equal(await inView(css), 1, `${css} is above the fold`);
  }
  await session.screenshot(`${shots}/71-layout-case.png`);

  await session.click(await session.find("[data-testid=new-note]"));
  await session.waitFor("#note-body");
  for (const css of ["[data-testid=sign]", "[data-testid=save-status]", "#note-heading"]) {
    assert.equal(await inView(css), 1, `${css} is in view in the note editor`);
  }
  await session.screenshot(`${shots}/72-layout-note.png`);
});

test("a family of 25 with long, right-to-left and emoji names: no label overlaps another or leaves its box", async () => {
  const child = `Alexander Christoffer Vestergaard-Frederiksen ${Date.now().toString(36)}`;
  const names = [
    "Anne-Marie Kristensen-Østergaard", "محمد عبد الرحمن الحسيني", "Søren 🎸 Åberg", "Mette", "Jens Peter Holm Nielsen",
    "שרה לוי", "Bedstemor Inger fra Thisted", "Naboen Hr. Børgesen", "Klasselærer Lise Møller-Andersen",
    "Pædagog i Børnehuset Solsikken", "Farfar", "Morfar Ole", "Ahmad", "Fatima Yilmaz-Hansen", "Lærke",
    "Onkel Bent", "Moster Karen 🌻", "Fodboldtræner Kim", "Sundhedsplejerske Hanne", "PPR-psykolog Per",
    "Plejefamilien Thomsen", "Storebror Oliver", "Lillesøster Ida", "Halvbror Mikkel", "Veninde Sofie",
  ];
  const relations = ["mother", "father", "sibling", "grandparent", "other_family", "friend_neighbour", "teacher", "daycare_educator", "other_professional"];
  // The family is entered through the app's own commands (as the person form would).
  const made = await session.cmd("POST", "/execute/async", {
    script: `const [child, names, relations, done] = arguments;
      const invoke = window.__TAURI_INTERNALS__.invoke;
      (async () => {
        const caseId = await invoke("open_case", { newCase: { child_name: child, child_birth_date: "2016-05-04", child_cpr: null, child_institution: null, first_concern_on: null, first_meeting_on: null } });
        for (let i = 0; i < names.length; i++) {
          await invoke("save_person", { person: { id: null, case_id: caseId, name: names[i], relation: relations[i % relations.length], custody: false, email: null, address: null, protected_address: false, language: null, interpreter_needed: false, do_not_contact: false, do_not_contact_reason: null, phones: [], quality: null, quality_as_of: null } });
        }
        return caseId;
      })().then((id) => done({ ok: id }), (e) => done({ error: JSON.stringify(e) }));`,
    args: [child, names, relations],
  });
  assert.ok(made.ok, `the family was entered: ${made.error}`);
  await session.click(await session.find("[data-testid=open-week]"));
  await session.waitFor("#week-heading");
  await showCases(session);
  let opened = false;
  for (const c of await session.findAll("[data-testid=open-case]")) {
    if ((await session.text(c)) === child) {
      await session.click(c);
      opened = true;
      break;
    }
  }
  assert.ok(opened, "the new case is listed");
  await session.waitFor("[data-testid=map-person]", { min: 25, timeoutMs: 15000 });
  await session.cmd("POST", "/execute/sync", { script: "document.querySelector('[data-testid=network-map]').scrollIntoView({ block: 'center' }); return true;", args: [] });
  const report = await session.cmd("POST", "/execute/sync", {
    script: `const boxes = [...document.querySelectorAll('[data-testid=map-person] rect'), document.querySelector('[data-testid=map-child] rect')].map((r) => r.getBoundingClientRect());
      const texts = [...document.querySelectorAll('[data-testid=map-person], [data-testid=map-child]')].map((g) => [g.querySelector('rect').getBoundingClientRect(), [...g.querySelectorAll('text')].map((t) => t.getBoundingClientRect())]);
      const overlaps = [];
      for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i], b = boxes[j];
        if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) overlaps.push([i, j]);
      }
      const outside = [];
      texts.forEach(([box, spans], i) => spans.forEach((s) => {
        if (s.left < box.left - 0.5 || s.right > box.right + 0.5 || s.top < box.top - 0.5 || s.bottom > box.bottom + 0.5) outside.push(i);
      }));
      const svg = document.querySelector('[data-testid=network-map]').getBoundingClientRect();
      const figure = document.querySelector('[data-testid=network-map]').parentElement.getBoundingClientRect();
      return { count: boxes.length - 1, overlaps, outside, fits: svg.width <= figure.width + 0.5 };`,
    args: [],
  });
  await session.screenshot(`${shots}/73-layout-network-25.png`);
  assert.equal(report.count, 25);
  assert.deepEqual(report.overlaps, [], "no two boxes overlap");
  assert.deepEqual(report.outside, [], "every name and relation stays inside its box");
  assert.ok(report.fits, "the map scales to the window");
  // Clicking a person opens the editor in view with focus in it.
  // (WebDriver cannot click an SVG group here: the click is dispatched as a pointer would.)
  await session.cmd("POST", "/execute/sync", {
    script: "document.querySelectorAll('[data-testid=map-person]')[7].dispatchEvent(new MouseEvent('click', { bubbles: true })); return true;",
    args: [],
  });
  await session.waitFor("#p-name");
  const focus = await session.cmd("POST", "/execute/sync", {
    script: "const e = document.activeElement; const r = e.getBoundingClientRect(); return [e.id, r.top >= 0 && r.bottom <= window.innerHeight];",
    args: [],
  });
  assert.deepEqual(focus, ["p-name", true], "the editor is in view with focus in its first field");
});
