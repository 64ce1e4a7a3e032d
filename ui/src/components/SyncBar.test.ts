import { render, screen } from "@testing-library/svelte";
import { beforeEach, describe, expect, it, vi } from "vitest";

const invoke = vi.fn();
vi.mock("@tauri-apps/api/core", () => ({ invoke: (...args: unknown[]) => invoke(...args) }));

import SyncBar from "./SyncBar.svelte";
import { setLang } from "../lib/i18n.svelte";

const base = {
  state: "syncing",
  server_url: "https://feltkontor.aarhus.dk",
  pending: 0,
  last_sync_at: null,
  error: null,
  refused: null,
  open_conflicts: 0,
  rejected: 0,
  received: 0,
  expected: 0,
  data_version: 0,
  lease_expires_at: null,
  quarantined: 0,
};

describe("SyncBar", () => {
  beforeEach(() => {
    invoke.mockReset();
    setLang("da");
  });

  it("shows a progress bar with the total during a first sync", async () => {
    invoke.mockResolvedValue({ ...base, received: 2400, expected: 12200 });
    render(SyncBar, { props: { onopen: vi.fn(), onrevoked: vi.fn(), onchanged: vi.fn() } });
    const progress = await screen.findByTestId("sync-progress");
    expect(progress.textContent).toContain("Henter: 2.400 af ca. 12.200 poster");
    const bar = progress.querySelector("progress");
    expect(bar?.getAttribute("max")).toBe("12200");
    expect(bar?.getAttribute("value")).toBe("2400");
  });

  it("announces quarantined notes waiting for the worker's decision, and opens the sync view", async () => {
    invoke.mockResolvedValue({ ...base, state: "online", quarantined: 2 });
    const onopen = vi.fn();
    render(SyncBar, { props: { onopen, onrevoked: vi.fn(), onchanged: vi.fn() } });
    const notice = await screen.findByTestId("sync-quarantined");
    expect(notice.textContent?.trim()).toBe("2 notater venter på din beslutning");
    notice.click();
    expect(onopen).toHaveBeenCalledOnce();
  });

  it("says one note in the singular, and nothing when none waits", async () => {
    invoke.mockResolvedValue({ ...base, state: "online", quarantined: 1 });
    const first = render(SyncBar, { props: { onopen: vi.fn(), onrevoked: vi.fn(), onchanged: vi.fn() } });
    expect((await screen.findByTestId("sync-quarantined")).textContent?.trim()).toBe("1 notat venter på din beslutning");
    first.unmount();
    invoke.mockResolvedValue({ ...base, state: "online", quarantined: 0 });
    render(SyncBar, { props: { onopen: vi.fn(), onrevoked: vi.fn(), onchanged: vi.fn() } });
    await screen.findByTestId("sync-pending");
    expect(screen.queryByTestId("sync-quarantined")).toBeNull();
  });

  it("shows only the count when the total is not known", async () => {
    invoke.mockResolvedValue({ ...base, received: 40, expected: 0 });
    render(SyncBar, { props: { onopen: vi.fn(), onrevoked: vi.fn(), onchanged: vi.fn() } });
    await screen.findByText("40 poster hentet");
    expect(screen.queryByTestId("sync-progress")).toBeNull();
  });
});
