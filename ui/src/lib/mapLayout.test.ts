import { describe, expect, it } from "vitest";
import { anyOverlap, layoutMap, wrap } from "./mapLayout";

// A stand-in for the browser's text measure: 7.5 px per character (the real window is tested
// end to end).
const measure = (s: string) => [...s].length * 7.5;

describe("the network map's layout", () => {
  it("wraps a long name instead of cutting it, and breaks a very long word", () => {
    expect(wrap("Anne-Marie Kristensen-Østergaard Holm", 170, "", measure)).toEqual(["Anne-Marie", "Kristensen-Østergaard", "Holm"]);
    const lines = wrap("Xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 170, "", measure);
    expect(lines.join("")).toBe("Xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    expect(lines.every((l) => measure(l) <= 170)).toBe(true);
  });

  it("places 25 people with long, right-to-left and emoji names without any overlap", () => {
    const names = [
      "Anne-Marie Kristensen-Østergaard", "محمد عبد الرحمن الحسيني", "Søren 🎸 Åberg", "Mette", "Jens Peter Holm Nielsen",
      "שרה לוי", "Bedstemor Inger fra Thisted", "Naboen Hr. Børgesen", "Klasselærer Lise Møller-Andersen",
      "Pædagog i Børnehuset Solsikken", "Farfar", "Morfar Ole", "Ahmad", "Fatima Yilmaz-Hansen", "Lærke",
      "Onkel Bent", "Moster Karen 🌻", "Fodboldtræner Kim", "Sundhedsplejerske Hanne", "PPR-psykolog Per",
      "Plejefamilien Thomsen", "Storebror Oliver", "Lillesøster Ida", "Halvbror Mikkel", "Veninde Sofie",
    ];
    const people = names.map((name, i) => ({ id: String(i), name, sub: ["relation"], inner: i % 2 === 0 }));
    const layout = layoutMap("Alexander Christoffer Vestergaard-Frederiksen", people, measure);
    expect(layout.boxes).toHaveLength(25);
    expect(anyOverlap(layout)).toBe(false);
    for (const b of layout.boxes) {
      expect(b.x - b.w / 2).toBeGreaterThanOrEqual(0);
      expect(b.y - b.h / 2).toBeGreaterThanOrEqual(0);
      expect(b.x + b.w / 2).toBeLessThanOrEqual(layout.width);
      expect(b.y + b.h / 2).toBeLessThanOrEqual(layout.height);
      for (const l of b.lines) expect(measure(l) + 24).toBeLessThanOrEqual(b.w + 0.5);
    }
  });
});
