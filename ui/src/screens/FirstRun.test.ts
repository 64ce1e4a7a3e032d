import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";

// The store's judgement of a passphrase (zxcvbn on the Rust side), as a stand-in: long enough
// and more than one word.
vi.mock("@tauri-apps/api/core", () => ({
  invoke: vi.fn(async (cmd: string, args: { passphrase?: string }) =>
    cmd === "passphrase_strength"
      ? { score: 4, acceptable: (args.passphrase ?? "").length >= 10 && (args.passphrase ?? "").includes(" ") }
      : undefined,
  ),
}));

import FirstRun from "./FirstRun.svelte";
import { setLang } from "../lib/i18n.svelte";

describe("FirstRun", () => {
  /** Presses the submit button and returns the error shown next to `field`, if any. */
  async function refusal(submit: HTMLButtonElement, field: string): Promise<string | null> {
    await fireEvent.click(submit);
    return (await waitFor(() => screen.queryByTestId(`field-error-${field}`)))?.textContent ?? null;
  }

  it("creates only with a strong passphrase typed twice alike, and says what is missing next to the field", async () => {
    setLang("da");
    const onready = vi.fn();
    render(FirstRun, { props: { onready } });
    await fireEvent.click(screen.getByLabelText("Kun på denne computer"));
    const submit = screen.getByRole("button", { name: "Opret og arbejd offline" }) as HTMLButtonElement;
    expect(submit.disabled, "the button is never dead: pressing it says what is missing").toBe(false);
    // Empty form: the first field is named, next to it, with focus moved there.
    expect(await refusal(submit, "name")).toBe("Skriv dit navn.");
    await waitFor(() => expect(document.activeElement).toBe(screen.getByLabelText("Dit navn")));
    await fireEvent.input(screen.getByLabelText("Dit navn"), { target: { value: "Karen Lund" } });
    expect(await refusal(submit, "initials")).toMatch(/initialer/);
    await fireEvent.input(screen.getByLabelText("Initialer"), { target: { value: "KL" } });
    expect(await refusal(submit, "passphrase")).toMatch(/Vælg en adgangssætning/);
    await fireEvent.input(screen.getByLabelText("Vælg en adgangssætning"), { target: { value: "kort" } });
    expect(screen.getByText(/Styrke: For kort/)).toBeTruthy();
    await fireEvent.input(screen.getByLabelText("Vælg en adgangssætning"), { target: { value: "aaaaaaaaaaaa" } });
    await fireEvent.input(screen.getByLabelText("Gentag adgangssætningen"), { target: { value: "aaaaaaaaaaaa" } });
    await waitFor(() => expect(screen.getByText(/For let at gætte/)).toBeTruthy());
    expect(await refusal(submit, "passphrase"), "a long but guessable passphrase is refused as the store refuses it").toMatch(/for let at gætte/);
    await fireEvent.input(screen.getByLabelText("Vælg en adgangssætning"), { target: { value: "blåbær tromle fyrtårn 42" } });
    await fireEvent.input(screen.getByLabelText("Gentag adgangssætningen"), { target: { value: "blåbær tromle fyrtårn 41" } });
    expect(screen.getByText("De to adgangssætninger er ikke ens.")).toBeTruthy();
    await waitFor(() => expect(screen.getByText(/Styrke/)).toBeTruthy());
    expect(await refusal(submit, "repeat")).toBe("De to adgangssætninger er ikke ens.");
    expect(onready).not.toHaveBeenCalled();
  });

  it("connects only with address, user name, code, password and a good passphrase", async () => {
    setLang("da");
    render(FirstRun, { props: { onready: vi.fn(), serverUrl: "https://feltkontor.example.dk" } });
    const submit = screen.getByRole("button", { name: "Forbind og hent mine sager" }) as HTMLButtonElement;
    expect((screen.getByLabelText("Serverens adresse") as HTMLInputElement).value).toBe("https://feltkontor.example.dk");
    expect(await refusal(submit, "username")).toMatch(/brugernavn/);
    await fireEvent.input(screen.getByLabelText("Brugernavn"), { target: { value: "karen" } });
    expect(await refusal(submit, "code")).toMatch(/engangskoden/);
    await fireEvent.input(screen.getByLabelText("Engangskode"), { target: { value: "K7QM-3XPT" } });
    await fireEvent.input(screen.getByLabelText("Vælg en adgangssætning"), { target: { value: "blåbær tromle fyrtårn 42" } });
    await fireEvent.input(screen.getByLabelText("Gentag adgangssætningen"), { target: { value: "blåbær tromle fyrtårn 42" } });
    expect(await refusal(submit, "password")).toBe("Skriv din adgangskode.");
    await waitFor(() => expect(document.activeElement).toBe(screen.getByLabelText("Adgangskode til kommunens server")));
    // The browser's own validation bubbles never appear: the form is novalidate.
    expect(screen.getByRole("button", { name: "Forbind og hent mine sager" }).closest("form")?.noValidate).toBe(true);
  });

  it("judges the passphrase as sent when the meter has not caught up with the last keystrokes", async () => {
    setLang("da");
    const { invoke } = await import("@tauri-apps/api/core");
    const mocked = vi.mocked(invoke);
    // The meter's answers are slow (a busy machine); the one asked at submit is prompt.
    let slow = true;
    mocked.mockImplementation(async (cmd: string, args?: unknown) => {
      const p = (args as { passphrase?: string } | undefined)?.passphrase ?? "";
      if (cmd !== "passphrase_strength") return undefined;
      if (slow) await new Promise((r) => setTimeout(r, 5_000));
      return { score: 4, acceptable: p.length >= 10 && p.includes(" ") };
    });
    const onready = vi.fn();
    render(FirstRun, { props: { onready } });
    await fireEvent.click(screen.getByLabelText("Kun på denne computer"));
    await fireEvent.input(screen.getByLabelText("Dit navn"), { target: { value: "Karen Lund" } });
    await fireEvent.input(screen.getByLabelText("Initialer"), { target: { value: "KL" } });
    await fireEvent.input(screen.getByLabelText("Vælg en adgangssætning"), { target: { value: "blåbær tromle fyrtårn 42" } });
    await fireEvent.input(screen.getByLabelText("Gentag adgangssætningen"), { target: { value: "blåbær tromle fyrtårn 42" } });
    slow = false;
    await fireEvent.click(screen.getByRole("button", { name: "Opret og arbejd offline" }));
    await waitFor(() => expect(mocked).toHaveBeenCalledWith("first_run", expect.anything()));
    expect(screen.queryByTestId("field-error-passphrase"), "not refused on the meter's stale verdict").toBeNull();
  });
});
