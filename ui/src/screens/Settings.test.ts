import { fireEvent, render, screen } from "@testing-library/svelte";
import { beforeEach, describe, expect, it, vi } from "vitest";

const invoke = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...args: unknown[]) => invoke(...args) }));

import Settings from "./Settings.svelte";
import { setLang } from "../lib/i18n.svelte";

describe("Settings: handing the computer back", () => {
  beforeEach(() => {
    invoke.mockReset();
    setLang("da");
  });

  it("shows what would be lost when changes were not sent, and deletes only when asked again", async () => {
    invoke.mockImplementation(async (cmd: string, args: { force?: boolean }) => {
      if (cmd === "device_info") throw { code: "session.locked", message: "" };
      if (cmd === "retire_device" && !args.force) {
        return {
          outcome: "unsynced",
          total: 2,
          changes: [{ entity: "note", record_label: "Mor fortæller", child_name: "Søren Åberg", at: "2026-11-23T09:00:00Z" }],
          access_entries: 3,
        };
      }
      if (cmd === "retire_device" && args.force) return { outcome: "wiped" };
      throw new Error(`unexpected ${cmd}`);
    });
    const onwiped = vi.fn();
    render(Settings, { props: { onback: vi.fn(), onchange: vi.fn(), onwiped } });
    await fireEvent.click(screen.getByRole("button", { name: "Aflever computeren …" }));
    await fireEvent.click(screen.getByRole("button", { name: "Send alt, og slet data" }));
    const alert = await screen.findByTestId("retire-unsynced");
    expect(alert.textContent).toContain("2 ændringer er ikke sendt");
    expect(alert.textContent).toContain("Notat: Mor fortæller (Søren Åberg)");
    expect(screen.getByTestId("retire-access").textContent).toContain("3 registreringer i adgangsloggen");
    expect(onwiped).not.toHaveBeenCalled();
    await fireEvent.click(screen.getByRole("button", { name: "Slet alligevel, og mist ændringerne" }));
    await vi.waitFor(() => expect(onwiped).toHaveBeenCalled());
    expect(invoke).toHaveBeenCalledWith("retire_device", { force: true });
  });

  it("offers a local-only profile to connect to a server, deleting the local data first", async () => {
    invoke.mockImplementation(async (cmd: string, args: { force?: boolean }) => {
      if (cmd === "device_info") {
        return {
          app_version: "0.1.0",
          device_id: "d",
          worker_name: "Demo",
          data_folder: "/tmp/p",
          schema_version: 4,
          encryption: "SQLCipher 4",
          server_url: null,
        };
      }
      if (cmd === "retire_device" && !args.force) return { outcome: "unsynced", total: 3, changes: [], access_entries: 0 };
      if (cmd === "retire_device" && args.force) return { outcome: "wiped" };
      throw new Error(`unexpected ${cmd}`);
    });
    const onwiped = vi.fn();
    render(Settings, { props: { onback: vi.fn(), onchange: vi.fn(), onwiped } });
    await screen.findByRole("heading", { name: "Forbind computeren til kommunens server" });
    expect(screen.getByTestId("settings-server").textContent).toContain("Ingen (kun lokale data)");
    await fireEvent.click(screen.getByRole("button", { name: "Forbind til en server …" }));
    await fireEvent.click(screen.getByRole("button", { name: "Slet lokale data, og forbind" }));
    const alert = await screen.findByTestId("retire-unsynced");
    expect(alert.textContent).toContain("3 ændringer findes kun på denne computer");
    await fireEvent.click(screen.getByRole("button", { name: "Slet alligevel, og forbind" }));
    await vi.waitFor(() => expect(onwiped).toHaveBeenCalled());
  });
});

describe("Settings: changing the passphrase", () => {
  beforeEach(() => {
    invoke.mockReset();
    setLang("da");
  });

  it("names each missing field next to it, and a wrong current passphrase at the current field", async () => {
    invoke.mockImplementation(async (cmd: string, args: { passphrase?: string }) => {
      if (cmd === "device_info") throw { code: "session.locked", message: "" };
      if (cmd === "passphrase_strength") return { score: 4, acceptable: (args.passphrase ?? "").includes(" ") };
      if (cmd === "change_passphrase") throw { code: "unlock.wrong_passphrase", message: "" };
      throw new Error(`unexpected ${cmd}`);
    });
    render(Settings, { props: { onback: vi.fn(), onchange: vi.fn() } });
    const change = screen.getByRole("button", { name: "Skift" });
    await fireEvent.click(change);
    expect((await screen.findByTestId("field-error-current")).textContent).toBe("Skriv din nuværende adgangssætning.");
    await fireEvent.input(screen.getByLabelText("Nuværende adgangssætning"), { target: { value: "gammel sætning her" } });
    await fireEvent.click(change);
    expect((await screen.findByTestId("field-error-new")).textContent).toMatch(/Vælg en adgangssætning/);
    await fireEvent.input(screen.getByLabelText("Ny adgangssætning"), { target: { value: "blåbær tromle fyrtårn 42" } });
    await vi.waitFor(() => expect(screen.getByText(/Styrke/)).toBeTruthy());
    await fireEvent.click(change);
    expect((await screen.findByTestId("field-error-repeat")).textContent).toBe("De to adgangssætninger er ikke ens.");
    await fireEvent.input(screen.getByLabelText("Gentag ny adgangssætning"), { target: { value: "blåbær tromle fyrtårn 42" } });
    await fireEvent.click(change);
    await vi.waitFor(() => expect(screen.getByTestId("field-error-current")).toBeTruthy());
    expect(invoke).toHaveBeenCalledWith("change_passphrase", expect.anything());
  });
});
