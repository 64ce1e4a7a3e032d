import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";

const invoke = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...args: unknown[]) => invoke(...args) }));

import Appointments from "./Appointments.svelte";
import { setLang } from "../lib/i18n.svelte";

describe("Appointments: planning a visit", () => {
  it("says at the field what is missing, keeps a refusal at its field, and forgets it all on cancel", async () => {
    setLang("da");
    invoke.mockImplementation(async (cmd: string) => {
      if (cmd === "save_appointment") throw { code: "rule.place_is_protected_address", message: "", field: "place" };
      throw new Error(`unexpected ${cmd}`);
    });
    render(Appointments, {
      props: { caseId: "c1", appointments: [], persons: [], team: [], open: true, onchanged: vi.fn(), onwritenote: vi.fn(), onopensheet: vi.fn() },
    });
    await fireEvent.click(screen.getByTestId("plan-appointment"));
    await fireEvent.click(screen.getByTestId("appointment-save"));
    expect((await screen.findByTestId("field-error-starts_at")).textContent).toMatch(/hvornår/);
    expect(invoke).not.toHaveBeenCalled();
    const when = screen.getByLabelText("Hvornår") as HTMLInputElement;
    await fireEvent.input(when, { target: { value: "08.12.2026 10:00" } });
    await fireEvent.input(screen.getByLabelText("Hvor"), { target: { value: "Hemmeligvej 13" } });
    await fireEvent.click(screen.getByTestId("appointment-save"));
    expect((await screen.findByTestId("field-error-place")).textContent).toMatch(/beskyttet adresse/);
    await fireEvent.click(screen.getByTestId("appointment-cancel-form"));
    await fireEvent.click(screen.getByTestId("plan-appointment"));
    expect((screen.getByLabelText("Hvor") as HTMLInputElement).value).toBe("");
    await waitFor(() => expect(screen.queryByTestId("field-error-place")).toBeNull());
  });
});
