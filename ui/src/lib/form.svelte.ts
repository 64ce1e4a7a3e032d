// The submit cycle every form shares: one call at a time, the error in the worker's language,
// and the field the core named marked as invalid.
import { tick } from "svelte";
import type { IpcError } from "./bindings";
import { errorText, t } from "./i18n.svelte";

type Result<T> = { status: "ok"; data: T } | { status: "error"; error: IpcError };

export class FormStatus {
  working = $state(false);
  error = $state("");
  field: string | null = $state(null);
  /** The stable code of the last error. */
  code: string | null = $state(null);

  /** Runs `call` unless one is under way; `onok` gets its data. */
  async run<T>(call: () => Promise<Result<T>>, onok: (data: T) => void): Promise<void> {
    if (this.working) return;
    this.working = true;
    this.error = "";
    this.field = null;
    this.code = null;
    try {
      const r = await call();
      if (r.status === "ok") onok(r.data);
      else {
        this.error = errorText(r.error.code, { n: r.error.retry_after_secs ?? 0 });
        this.field = r.error.field ?? null;
        this.code = r.error.code;
        // Focus moves to the field the error names, so the worker sees where to act; an
        // error of the whole form is brought into view (it may sit below the fold).
        await tick();
        if (this.field) document.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
        else document.querySelector<HTMLElement>('[role="alert"]')?.scrollIntoView?.({ block: "nearest" });
      }
    } catch {
      this.error = t("error.unknown");
    } finally {
      this.working = false;
    }
  }

  /** A check the form makes itself before calling (a required field left empty): the error
   *  is shown next to `field`, and focus moves there. */
  async fail(field: string, message: string): Promise<void> {
    this.error = message;
    this.field = field;
    this.code = null;
    await tick();
    document.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus();
  }

  /** The worker changed `field`: its error is out of date. */
  edited(field: string): void {
    if (this.field === field) {
      this.error = "";
      this.field = null;
      this.code = null;
    }
  }

  /** The fields that show their own error next to them (`FieldError`). */
  slots = new Set<string>();

  /** Whether the error is shown next to its field (so not again below the form). */
  shownAtField(): boolean {
    return this.field !== null && this.slots.has(this.field);
  }

  /** `aria-invalid` for an input bound to `name`. */
  invalid(name: string): "true" | undefined {
    return this.field === name ? "true" : undefined;
  }
}
