import { describe, expect, it } from "vitest";
import { MIN_LENGTH, strength } from "./passphrase";

describe("passphrase strength", () => {
  it("is 0 below the minimum the store accepts", () => {
    expect(strength("a".repeat(MIN_LENGTH - 1))).toBe(0);
  });

  it("rewards length and several words", () => {
    expect(strength("korrekt hest batteri hæfteklamme")).toBe(4);
    expect(strength("abcdefghij")).toBeLessThanOrEqual(2);
  });

  it("punishes common words and repeats", () => {
    expect(strength("Kodeord12345678!")).toBeLessThan(strength("Blåbær Tromle 77!"));
    expect(strength("aaaaaaaaaaaaaaaa")).toBe(1);
  });
});
