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
  it("allows creating only with a long enough passphrase typed twice alike", async () => {
    setLang("da");
    render(FirstRun, { props: { onready: vi.fn() } });
    await fireEvent.click(screen.getByLabelText("Kun på denne computer"));
    const submit = screen.getByRole("button", { name: "Opret og arbejd offline" }) as HTMLButtonElement;
    await fireEvent.input(screen.getByLabelText("Dit navn"), { target: { value: "Karen Lund" } });
    await fireEvent.input(screen.getByLabelText("Initialer"), { target: { value: "KL" } });
    await fireEvent.input(screen.getByLabelText("Vælg en adgangssætning"), { target: { value: "kort" } });
    expect(screen.getByText(/Styrke: For kort/)).toBeTruthy();
    expect(submit.disabled).toBe(true);
    await fireEvent.input(screen.getByLabelText("Vælg en adgangssætning"), { target: { value: "aaaaaaaaaaaa" } });
    await fireEvent.input(screen.getByLabelText("Gentag adgangssætningen"), { target: { value: "aaaaaaaaaaaa" } });
    await waitFor(() => expect(screen.getByText(/For let at gætte/)).toBeTruthy());
    expect(submit.disabled, "a long but guessable passphrase is refused as the store refuses it").toBe(true);
    await fireEvent.input(screen.getByLabelText("Vælg en adgangssætning"), { target: { value: "blåbær tromle fyrtårn 42" } });
    await fireEvent.input(screen.getByLabelText("Gentag adgangssætningen"), { target: { value: "blåbær tromle fyrtårn 41" } });
    expect(screen.getByText("De to adgangssætninger er ikke ens.")).toBeTruthy();
    expect(submit.disabled).toBe(true);
    await fireEvent.input(screen.getByLabelText("Gentag adgangssætningen"), { target: { value: "blåbær tromle fyrtårn 42" } });
    await waitFor(() => expect(submit.disabled).toBe(false));
  });

  it("connects only with address, user name, code, password and a good passphrase", async () => {
    setLang("da");
    render(FirstRun, { props: { onready: vi.fn(), serverUrl: "https://feltkontor.example.dk" } });
    const submit = screen.getByRole("button", { name: "Forbind og hent mine sager" }) as HTMLButtonElement;
    expect((screen.getByLabelText("Serverens adresse") as HTMLInputElement).value).toBe("https://feltkontor.example.dk");
    await fireEvent.input(screen.getByLabelText("Brugernavn"), { target: { value: "karen" } });
    await fireEvent.input(screen.getByLabelText("Engangskode"), { target: { value: "K7QM-3XPT" } });
    await fireEvent.input(screen.getByLabelText("Vælg en adgangssætning"), { target: { value: "blåbær tromle fyrtårn 42" } });
    await fireEvent.input(screen.getByLabelText("Gentag adgangssætningen"), { target: { value: "blåbær tromle fyrtårn 42" } });
    expect(submit.disabled).toBe(true);
    await fireEvent.input(screen.getByLabelText("Adgangskode til kommunens server"), { target: { value: "hemmelig" } });
    await waitFor(() => expect(submit.disabled).toBe(false));
  });
});
