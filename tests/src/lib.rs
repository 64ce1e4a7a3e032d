//! Shared pieces of the cross-crate tests.

use feltkontor_core::domain::{CaseNote, SensitiveText};
use feltkontor_wire::{Audience, CaseId, NoteId, NoteKind, NoteStatus, StaffId};
use time::OffsetDateTime;

pub const CRASH_PASSPHRASE: &str = "crash test passphrase";

/// The body of crash-test note number `i`: long enough to span pages, and self-describing so
/// a torn write would show as a body that does not match its index.
pub fn crash_body(i: u64) -> String {
    let line = format!("Notat {i}: hjemmebesøg, barnet fortalte om skolen. ");
    line.repeat(20 + (i % 40) as usize)
}

pub fn crash_note(
    i: u64,
    id: NoteId,
    case_id: CaseId,
    author: StaffId,
    at: OffsetDateTime,
) -> CaseNote {
    CaseNote {
        id,
        case_id,
        author_id: author,
        kind: NoteKind::HomeVisit,
        occurred_at: at,
        body: SensitiveText(crash_body(i)),
        child_words: SensitiveText(format!("ord {i}")),
        family_perspective: SensitiveText::default(),
        statutory: true,
        audience: Audience::CaseTeam,
        status: NoteStatus::Draft,
        signed_at: None,
        content_hash: None,
        addendum_to: None,
    }
}
