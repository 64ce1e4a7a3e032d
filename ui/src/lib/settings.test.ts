import { beforeEach, describe, expect, it } from "vitest";
import { DEFAULTS, loadSettings, saveSettings } from "./settings";

describe("settings", () => {
  beforeEach(() => localStorage.clear());

  it("defaults to Danish and a 5-minute auto-lock", () => {
    expect(loadSettings()).toEqual(DEFAULTS);
    expect(DEFAULTS).toEqual({ lang: "da", autoLockMinutes: 5 });
  });

  it("round-trips and ignores nonsense", () => {
    saveSettings({ lang: "en", autoLockMinutes: 10 });
    expect(loadSettings()).toEqual({ lang: "en", autoLockMinutes: 10 });
    localStorage.setItem("feltkontor.settings", '{"lang":"xx","autoLockMinutes":-3}');
    expect(loadSettings()).toEqual(DEFAULTS);
    localStorage.setItem("feltkontor.settings", "not json");
    expect(loadSettings()).toEqual(DEFAULTS);
  });
});
