import { fireEvent, render, screen } from "@testing-library/svelte";
import { beforeEach, describe, expect, it, vi } from "vitest";

const invoke = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...args: unknown[]) => invoke(...args) }));

import Unlock from "./Unlock.svelte";
import { setLang } from "../lib/i18n.svelte";

describe("Unlock", () => {
  beforeEach(() => {
    invoke.mockReset();
    setLang("da");
  });

  it("shows the wrong-passphrase error in Danish and keeps the worker on the screen", async () => {
    invoke.mockRejectedValueOnce({ code: "unlock.wrong_passphrase", message: "the passphrase is wrong" });
    const onunlocked = vi.fn();
    render(Unlock, { props: { onunlocked } });
    await fireEvent.input(screen.getByLabelText("Adgangssætning"), { target: { value: "forkert" } });
    await fireEvent.click(screen.getByRole("button", { name: "Lås op" }));
    expect(await screen.findByRole("alert")).toHaveProperty("textContent", "Adgangssætningen er forkert. Prøv igen.");
    expect(invoke).toHaveBeenCalledWith("unlock", { passphrase: "forkert" });
    expect(onunlocked).not.toHaveBeenCalled();
  });

  it("tells how long to wait after too many attempts", async () => {
    invoke.mockRejectedValueOnce({ code: "unlock.throttled", message: "", retry_after_secs: 8 });
    render(Unlock, { props: { onunlocked: vi.fn() } });
    await fireEvent.input(screen.getByLabelText("Adgangssætning"), { target: { value: "forkert" } });
    await fireEvent.click(screen.getByRole("button", { name: "Lås op" }));
    expect((await screen.findByRole("alert")).textContent).toContain("Vent 8 sekunder");
  });

  it("hands the worker on when the passphrase is right", async () => {
    invoke.mockResolvedValueOnce({ name: "Mette Kjær", initials: "MK", profession: "caseworker" });
    const onunlocked = vi.fn();
    render(Unlock, { props: { onunlocked } });
    await fireEvent.input(screen.getByLabelText("Adgangssætning"), { target: { value: "rigtig lang sætning" } });
    await fireEvent.click(screen.getByRole("button", { name: "Lås op" }));
    await vi.waitFor(() => expect(onunlocked).toHaveBeenCalledWith({ name: "Mette Kjær", initials: "MK", profession: "caseworker" }));
  });

  it("offers to renew an expired lease with the password, then unlocks", async () => {
    invoke.mockRejectedValueOnce({ code: "unlock.lease_expired", message: "" });
    const onunlocked = vi.fn();
    render(Unlock, { props: { onunlocked } });
    await fireEvent.input(screen.getByLabelText("Adgangssætning"), { target: { value: "rigtig lang sætning" } });
    await fireEvent.click(screen.getByRole("button", { name: "Lås op" }));
    expect((await screen.findByRole("alert")).textContent).toContain("Gå på netværket");
    await fireEvent.input(screen.getByLabelText("Brugernavn"), { target: { value: "mette" } });
    await fireEvent.input(screen.getByLabelText("Adgangskode"), { target: { value: "kommunens kodeord" } });
    invoke.mockResolvedValueOnce(null);
    invoke.mockResolvedValueOnce({ name: "Mette Kjær", initials: "MK", profession: "caseworker" });
    await fireEvent.click(screen.getByRole("button", { name: "Forny og lås op" }));
    await vi.waitFor(() => expect(onunlocked).toHaveBeenCalled());
    expect(invoke).toHaveBeenCalledWith("renew_lease", { input: { username: "mette", password: "kommunens kodeord", passphrase: "rigtig lang sætning" } });
    expect(invoke).toHaveBeenLastCalledWith("unlock", { passphrase: "rigtig lang sætning" });
  });

  it("says so when the computer was revoked while away", async () => {
    invoke.mockRejectedValueOnce({ code: "unlock.lease_expired", message: "" });
    const onwiped = vi.fn();
    render(Unlock, { props: { onunlocked: vi.fn(), onwiped } });
    await fireEvent.input(screen.getByLabelText("Adgangssætning"), { target: { value: "rigtig lang sætning" } });
    await fireEvent.click(screen.getByRole("button", { name: "Lås op" }));
    await screen.findByRole("alert");
    await fireEvent.input(screen.getByLabelText("Brugernavn"), { target: { value: "mette" } });
    await fireEvent.input(screen.getByLabelText("Adgangskode"), { target: { value: "kommunens kodeord" } });
    invoke.mockRejectedValueOnce({ code: "lease.device_revoked", message: "" });
    await fireEvent.click(screen.getByRole("button", { name: "Forny og lås op" }));
    await vi.waitFor(() => expect(onwiped).toHaveBeenCalled());
  });
});
