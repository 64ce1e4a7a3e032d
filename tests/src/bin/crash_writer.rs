//! The crash test's child: opens the store in `dir` and saves notes in a loop, printing
//! `saved <index> <note id>` after each save has returned. The parent kills it with SIGKILL.

use anyhow::Context;
use feltkontor_core::store::{Store, StoreLocation};
use feltkontor_core::{Clock, SystemClock};
use feltkontor_tests::{crash_note, CRASH_PASSPHRASE};
use feltkontor_wire::{CaseId, NoteId};
use std::io::Write;
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .context("usage: crash-writer DIR CASE_ID FIRST_INDEX")?;
    let case_id: CaseId = args.next().context("case id")?.parse()?;
    let first: u64 = args.next().context("first index")?.parse()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut store = Store::open(&StoreLocation::new(dir), CRASH_PASSPHRASE, clock.clone())?;
    let author = store.worker_id();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    for i in first.. {
        let id = NoteId::new();
        let note = crash_note(
            i,
            id,
            case_id,
            author,
            clock.now() - time::Duration::minutes(1),
        );
        store.write(|w| w.save_note(&note))?;
        writeln!(out, "saved {i} {id}")?;
        out.flush()?;
    }
    Ok(())
}
