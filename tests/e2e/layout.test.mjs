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
