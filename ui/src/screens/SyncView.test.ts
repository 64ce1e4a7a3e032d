import { fireEvent, render, screen } from "@testing-library/svelte";
import { beforeEach, describe, expect, it, vi } from "vitest";

const invoke = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...args: unknown[]) => invoke(...args) }));

import SyncView from "./SyncView.svelte";
import { setLang } from "../lib/i18n.svelte";

const waiting = {
  note_id: "0190a000-0000-7000-8000-000000000001",
  case_id: "0190a000-0000-7000-8000-000000000002",
  child_name: "Alma Testbarn",
  author_name: "Tove Teamsen",
  received_at: "2026-11-30T09:00:00Z",
  kind: "home_visit",
  occurred_at: "2026-11-29T14:00:00Z",
  body: "Mor fortæller om ugen",
  child_words: "Jeg vil gerne bo hos mor",
  family_perspective: "",
  signed: true,
};

describe("SyncView: notes in quarantine", () => {
  beforeEach(() => {
    invoke.mockReset();
    setLang("da");
  });

  it("shows a waiting note with its author and takes it into the case when asked", async () => {
    let decided = false;
    invoke.mockImplementation(async (cmd: string, args: { noteId?: string; accept?: boolean }) => {
      if (cmd === "conflicts" || cmd === "rejected_changes") return [];
      if (cmd === "quarantined_notes") return decided ? [] : [waiting];
      if (cmd === "resolve_quarantined") {
        decided = true;
        return null;
      }
      throw new Error(`unexpected ${cmd} ${JSON.stringify(args)}`);
    });
    render(SyncView, { props: { onback: vi.fn() } });
    const note = await screen.findByTestId("quarantined-note");
    expect(note.textContent).toContain("Hjemmebesøg");
    expect(note.textContent).toContain("Alma Testbarn");
    expect(note.textContent).toContain("Skrevet af Tove Teamsen");
    expect(note.textContent).toContain("underskrevet");
    expect(note.textContent).toContain("Jeg vil gerne bo hos mor");
    await fireEvent.click(screen.getByRole("button", { name: "Tag med i sagen" }));
    await vi.waitFor(() => expect(screen.queryByTestId("quarantined-note")).toBeNull());
    expect(invoke).toHaveBeenCalledWith("resolve_quarantined", { noteId: waiting.note_id, accept: true });
  });

  it("says the notes need the network when offline, and nothing for a local-only profile", async () => {
    invoke.mockImplementation(async (cmd: string) => {
      if (cmd === "conflicts" || cmd === "rejected_changes") return [];
      if (cmd === "quarantined_notes") throw { code: "quarantine.offline", message: "" };
      throw new Error(`unexpected ${cmd}`);
    });
    const view = render(SyncView, { props: { onback: vi.fn() } });
    const hint = await screen.findByTestId("quarantine-unavailable");
    expect(hint.textContent).toContain("kun ses og afgøres på netværket");
    view.unmount();

    invoke.mockImplementation(async (cmd: string) => {
      if (cmd === "conflicts" || cmd === "rejected_changes") return [];
      if (cmd === "quarantined_notes") throw { code: "quarantine.local_only", message: "" };
      throw new Error(`unexpected ${cmd}`);
    });
    render(SyncView, { props: { onback: vi.fn() } });
    await screen.findByTestId("no-conflicts");
    expect(screen.queryByText("Notater i karantæne")).toBeNull();
  });
});
