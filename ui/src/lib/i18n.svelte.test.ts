import { describe, expect, it } from "vitest";
import { errorText, formatDate, setLang, t } from "./i18n.svelte";

describe("i18n", () => {
  it("speaks Danish by default and fills in values", () => {
    setLang("da");
    expect(t("cases.heading")).toBe("Mine sager");
    expect(t("cases.days_ago", { n: 3 })).toBe("3 dage siden");
  });

  it("maps error codes to plain-language messages and unknown codes to a safe fallback", () => {
    setLang("da");
    expect(errorText("unlock.wrong_passphrase")).toBe("Adgangssætningen er forkert. Prøv igen.");
    expect(errorText("unlock.throttled", { n: 4 })).toContain("4 sekunder");
    expect(errorText("store.database")).toBe(t("error.unknown"));
  });

  it("formats dates for da-DK", () => {
    setLang("da");
    expect(formatDate("2026-11-23")).toMatch(/23\. nov\.? 2026/);
    setLang("en");
    expect(t("cases.heading")).toBe("My cases");
    setLang("da");
  });
});
