//! Rules that compare a change with the state it changes.

use crate::error::ValidationError;
use crate::model::{Case, CaseNote};
use blake2::{digest::consts::U32, Blake2b, Digest};
use feltkontor_wire::{CaseStatus, ConsentSector, NoteStatus, Profession};

/// A note may change only while it is a draft, and never moves to another case or author.
pub fn check_note_change(old: &CaseNote, new: &CaseNote) -> Result<(), ValidationError> {
    if old.status == NoteStatus::Signed {
        return Err(ValidationError::NoteSigned);
    }
    if old.case_id != new.case_id || old.author_id != new.author_id {
        return Err(ValidationError::WrongCase { what: "note" });
    }
    Ok(())
}

/// Mutations of a case's content are refused once it is closed.
pub fn check_case_open(case: &Case) -> Result<(), ValidationError> {
    match case.status {
        CaseStatus::Open => Ok(()),
        CaseStatus::Closed => Err(ValidationError::CaseClosed),
    }
}

/// The hash of everything a signature covers. The same note signed anywhere gives the same
/// hash, so a signed note altered anywhere is detectable.
pub fn content_hash(note: &CaseNote) -> String {
    let signed = serde_json::json!({
        "id": note.id,
        "case_id": note.case_id,
        "author_id": note.author_id,
        "kind": note.kind,
        "occurred_at": note.occurred_at.unix_timestamp(),
        "body": note.body,
        "child_words": note.child_words,
        "family_perspective": note.family_perspective,
        "statutory": note.statutory,
        "audience": note.audience,
        "addendum_to": note.addendum_to,
        "signed_at": note.signed_at.map(|t| t.unix_timestamp()),
    });
    let mut h = Blake2b::<U32>::new();
    h.update(signed.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// The sector whose consent a participant of this profession needs to see a case's notes.
/// Social services own the case and need none.
pub fn consent_sector(profession: Profession) -> Option<ConsentSector> {
    match profession {
        Profession::Caseworker | Profession::SpecialEducator => None,
        Profession::Psychologist => Some(ConsentSector::Ppr),
        Profession::HealthVisitor => Some(ConsentSector::HealthVisitor),
        Profession::Educator => Some(ConsentSector::Daycare),
        Profession::Leader => Some(ConsentSector::School),
    }
}
