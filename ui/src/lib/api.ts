// The app's commands, typed. This is the only file that calls `invoke`; issue #3 replaces it
// with bindings generated from the Rust types.
import { invoke } from "@tauri-apps/api/core";

export type CaseStatus = "open" | "closed";

export interface AppStatus {
  has_local_data: boolean;
  unlocked: boolean;
}

export interface Worker {
  name: string;
  initials: string;
  profession: string | null;
}

export interface StaffRef {
  id: string;
  name: string;
  initials: string;
}

export interface CaseSummary {
  case_id: string;
  child_name: string;
  status: CaseStatus;
  team_name: string;
  district: string;
  coordinator: StaffRef | null;
  i_am_coordinator: boolean;
  next_agreement_due: string | null;
  last_family_contact: string | null;
  days_since_last_contact: number | null;
}

export interface CaseFilter {
  district?: string | null;
  status?: CaseStatus | null;
}

/** An error from a command: a stable code and a developer message. */
export interface IpcError {
  code: string;
  message: string;
  /** For `unlock.throttled`. */
  retry_after_secs?: number;
}

export function isIpcError(e: unknown): e is IpcError {
  return typeof e === "object" && e !== null && "code" in e && typeof (e as IpcError).code === "string";
}

export const api = {
  appStatus: () => invoke<AppStatus>("app_status"),
  unlock: (passphrase: string) => invoke<Worker>("unlock", { passphrase }),
  lock: () => invoke<void>("lock"),
  myCases: (filter: CaseFilter) => invoke<CaseSummary[]>("my_cases", { filter }),
};
