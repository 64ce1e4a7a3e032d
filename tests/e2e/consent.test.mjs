// Consent, participants and agreements on a new case: a health visitor can only join on a
// recorded legal basis while no consent covers her sector; a consent is recorded and
// withdrawn; an agreement is made with a parent and marked done.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { assertAccessible, Session, startDriver, unlock, showCases } from "./webdriver.mjs";

const app = process.env.FELTKONTOR_APP;
const passphrase = process.env.FELTKONTOR_E2E_PASSPHRASE;
const shots = process.env.FELTKONTOR_SCREENSHOTS;
let driver;
let session;

after(async () => {
  await session?.end().catch(() => {});
  driver?.kill();
});

async function selectOptionContaining(selectCss, text) {
  const el = await session.find(selectCss);
  const ok = await session.cmd("POST", "/execute/sync", {
    script:
      "const s = arguments[0]; const o = [...s.options].find((o) => o.textContent.includes(arguments[1]));" +
      "if (!o) return false; s.value = o.value; s.dispatchEvent(new Event('change', { bubbles: true })); return true;",
    args: [{ "element-6066-11e4-a52e-4f735466cecf": el }, text],
  });
  assert.ok(ok, `no option containing ${text} in ${selectCss}`);
}

async function texts(css) {
  const els = await session.waitFor(css);
  return Promise.all(els.map((e) => session.text(e)));
}

test("legal basis, consent and agreements on a case", async () => {
  const d = await startDriver();
  driver = d.driver;
  session = await Session.start(d.base, app);
  await unlock(session, passphrase);
  await showCases(session);

  await session.click((await session.waitFor("[data-testid=new-case]"))[0]);
  await session.type((await session.waitFor("#nc-name"))[0], "Vigga Holm");
  await session.setValue(await session.find("#nc-birth"), "03.02.2019");
  await session.click(await session.find("[data-testid=create-case]"));
  await session.waitFor("#case-heading");

  await session.click((await session.waitFor("[data-testid=add-participant]"))[0]);
  await session.waitFor("#f-staff option");
  await selectOptionContaining("#f-staff", "Sundhedsplejerske");
  await session.type(await session.find("#f-role"), "Sundhedsplejerske for familien");
  await session.click(await session.find("[data-testid=participant-save]"));
  const [err] = await session.waitFor("[data-testid=form-error]");
  assert.match(await session.text(err), /Intet gyldigt samtykke dækker medarbejderens sektor/);
  await session.screenshot(`${shots}/50-legal-basis-required.png`);
  await assertAccessible(session, "participant form with error");
  // The basis is one of the standard ones, with its reason: never free text alone.
  await session.setValue(await session.find("#f-basis-kind"), "cross_sector_exchange");
  await session.click(await session.find("[data-testid=participant-save]"));
  await session.waitFor("[data-testid=form-error]");
  await session.type((await session.waitFor("#f-basis"))[0], "Nødvendigt for at følge op på barnets sundhed med familien");
  await session.click(await session.find("[data-testid=participant-save]"));
  await session.waitFor("[data-testid=participant-row]");
  const participants = await texts("[data-testid=participant-row]");
  assert.ok(
    participants.some((p) => /Sundhedsplejerske for familien/.test(p) && /Lovgrundlag: Udveksling efter servicelovens § 49 b: Nødvendigt/.test(p)),
    participants.join("\n"),
  );

  await session.click((await session.waitFor("[data-testid=add-person]"))[0]);
  await session.type((await session.waitFor("#p-name"))[0], "Line Holm");
  await session.click(await session.find("#p-custody"));
  await session.click(await session.find("[data-testid=save-person]"));
  await session.waitFor("[data-testid=person-row]");

  await session.click((await session.waitFor("[data-testid=add-consent]"))[0]);
  await session.click((await session.waitFor("[data-sector=school]"))[0]);
  await session.click(await session.find("[data-sector=health_visitor]"));
  await session.click(await session.find("[data-testid=consent-save]"));
  const [withdraw] = await session.waitFor("[data-testid=withdraw-consent]");
  await session.screenshot(`${shots}/51-consent.png`);
  await assertAccessible(session, "case with consent");
  await session.click(withdraw);
  await session.click((await session.waitFor("[data-testid=confirm-withdraw]"))[0]);
  await session.waitFor("li.withdrawn");

  await session.click((await session.waitFor("[data-testid=add-agreement]"))[0]);
  await session.type((await session.waitFor("#f-what"))[0], "Mor ringer til skolen om fravær hver fredag");
  await session.waitFor("#f-responsible option[value^=person]");
  await selectOptionContaining("#f-responsible", "Line Holm");
  // A due date already passed is refused until the worker confirms a late registration.
  const danish = (d) => `${String(d.getDate()).padStart(2, "0")}.${String(d.getMonth() + 1).padStart(2, "0")}.${d.getFullYear()}`;
  await session.setValue(await session.find("#f-due"), danish(new Date(Date.now() - 3 * 86400000)));
  await session.click(await session.find("[data-testid=agreement-save]"));
  const [late] = await session.waitFor("[data-testid=form-error]");
  assert.match(await session.text(late), /Fristen er allerede overskredet/);
  await session.click((await session.waitFor("[data-testid=confirm-late]"))[0]);
  await session.click(await session.find("[data-testid=agreement-save]"));
  const [doneButton] = await session.waitFor("[data-testid=agreement-done]");
  await session.click(doneButton);
  await session.waitFor("li.done");
  await session.screenshot(`${shots}/52-agreement-done.png`);
  await assertAccessible(session, "case with agreement done");

  await session.click(await session.find("[data-testid=open-handover]"));
  await session.waitFor("#h-to option");
  await selectOptionContaining("#h-to", "PPR-psykolog");
  await session.click(await session.find("[data-testid=handover-save]"));
  const [herr] = await session.waitFor("[data-testid=handover-error]");
  assert.match(await session.text(herr), /Skriv et overdragelsesnotat/);
  await assertAccessible(session, "handover form with error");
  await session.type(await session.find("#h-note"), "Familien kender dig fra PPR; mor ønsker møder om fredagen.");
  // A warm handover: whether a joint meeting with the family is planned must be answered.
  await session.click(await session.find("[data-testid=handover-save]"));
  assert.match(await session.text((await session.waitFor("[data-testid=handover-error]"))[0]), /fælles møde/);
  await session.click(await session.find("[data-testid=meeting-not-planned]"));
  await session.click(await session.find("[data-testid=handover-save]"));
  await session.waitFor("[data-testid=open-handover]");
  const coordinator = await session.text(await session.find(".coordinator"));
  assert.match(await session.text(await session.find("[data-testid=handover-note]")), /Overdragelse fra/);
  assert.ok(!coordinator.includes("Birgitte Madsen"), coordinator);
  assert.match(await session.text(await session.find("section.head")), /Tidligere tovholdere: .*Birgitte Madsen →/);
  await session.screenshot(`${shots}/53-handover.png`);

  await session.click(await session.find("[data-testid=new-note]"));
  await session.waitFor("#note-body");
  await session.setValue(await session.find("#note-kind"), "network_meeting");
  await session.click(await session.find("[data-testid=insert-template]"));
  const body = await session.cmd("GET", `/element/${await session.find("#note-body")}/property/value`);
  assert.match(body, /^Deltagere \(familie og netværk\):/);
});
