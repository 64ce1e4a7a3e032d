import { describe, expect, it } from "vitest";
import { parseDanishDate, parseDanishDateTime, toDanishDate, toDanishDateTime } from "./dates";

describe("Danish dates", () => {
  it("shows day, month, year", () => {
    expect(toDanishDate("2026-12-07")).toBe("07.12.2026");
    expect(toDanishDateTime("2026-12-07T09:05")).toBe("07.12.2026 09:05");
  });

  it("reads what a Danish worker types, in day-month-year order", () => {
    expect(parseDanishDate("7.12.2026")).toBe("2026-12-07");
    expect(parseDanishDate("07-12-2026")).toBe("2026-12-07");
    expect(parseDanishDate("07/12/2026")).toBe("2026-12-07");
    expect(parseDanishDate("07122026")).toBe("2026-12-07");
    expect(parseDanishDate(" 2026-12-07 ")).toBe("2026-12-07");
    expect(parseDanishDateTime("7.12.2026 9:05")).toBe("2026-12-07T09:05");
    expect(parseDanishDateTime("07.12.2026 kl. 14.30")).toBe("2026-12-07T14:30");
  });

  it("refuses what is not a real date", () => {
    for (const bad of ["", "12/31/2026", "31.02.2026", "1.13.2026", "7.12.26", "i går", "2026-12-07T10:00"]) {
      expect(parseDanishDate(bad)).toBeNull();
    }
    for (const bad of ["7.12.2026", "7.12.2026 24:00", "7.12.2026 10:60", "31.02.2026 10:00"]) {
      expect(parseDanishDateTime(bad)).toBeNull();
    }
  });
});
