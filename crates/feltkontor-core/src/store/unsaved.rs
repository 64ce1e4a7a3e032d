//! Text a worker typed that the store refused to save as a draft (the note's time in the
//! future, a field past its length limit, a rule of the case): kept in the encrypted store,
//! never synced, until the note is saved or the worker deliberately discards it. A refused save
//! never loses what was typed.

use super::record::Writer;
use super::Store;
use crate::error::{Error, Result};
use feltkontor_wire::{Audience, CaseId, NoteId, NoteKind};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

/// A note as the editor has it on screen, every field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(deny_unknown_fields)]
pub struct NoteDraft {
    /// The saved draft this is; `None` for a note not saved yet.
    pub id: Option<NoteId>,
    /// The editor's own key for this piece of writing, the same for the editor's whole life
    /// (also before the note is first saved): a refused save keeps the text under it.
    pub key: Uuid,
    pub case_id: CaseId,
    pub kind: NoteKind,
    /// RFC 3339.
    pub occurred_at: String,
    pub body: String,
    pub child_words: String,
    pub family_perspective: String,
    pub statutory: bool,
    pub audience: Audience,
    pub addendum_to: Option<NoteId>,
}

/// Text kept after a refused save.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct UnsavedNote {
    pub draft: NoteDraft,
    /// The error code of the refusal, so the editor can say why and what to do.
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub kept_at: OffsetDateTime,
}

const COLUMNS: &str = "draft, reason, kept_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

fn parse((draft, reason, kept_at): (String, String, String)) -> Result<UnsavedNote> {
    Ok(UnsavedNote {
        draft: serde_json::from_str(&draft).map_err(|e| Error::Corrupt(e.to_string()))?,
        reason,
        kept_at: OffsetDateTime::parse(&kept_at, &Rfc3339)
            .map_err(|e| Error::Corrupt(e.to_string()))?,
    })
}

impl Store {
    /// Keeps `draft`, refused for `reason`, until it is saved or discarded. A later refusal of
    /// the same writing replaces it.
    pub fn keep_unsaved(&self, draft: &NoteDraft, reason: &str) -> Result<()> {
        let json = serde_json::to_string(draft).map_err(|e| Error::Corrupt(e.to_string()))?;
        let now = crate::domain::normalize_timestamp(self.clock().now())
            .format(&Rfc3339)
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        self.conn().execute(
            "INSERT INTO unsaved_note (key, case_id, note_id, draft, reason, kept_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (key) DO UPDATE SET note_id = COALESCE(excluded.note_id, note_id),
               draft = excluded.draft, reason = excluded.reason, kept_at = excluded.kept_at",
            params![
                draft.key.to_string(),
                draft.case_id.to_string(),
                draft.id.map(|n| n.to_string()),
                json,
                reason,
                now
            ],
        )?;
        Ok(())
    }

    /// The text kept for the writing `key`, or else for the saved draft `note_id`.
    pub fn unsaved_note(&self, key: Uuid, note_id: Option<NoteId>) -> Result<Option<UnsavedNote>> {
        let found = self
            .conn()
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM unsaved_note WHERE key = ?1
                       OR (?2 IS NOT NULL AND note_id = ?2)
                     ORDER BY key = ?1 DESC, kept_at DESC LIMIT 1"
                ),
                params![key.to_string(), note_id.map(|n| n.to_string())],
                row,
            )
            .optional()?;
        found.map(parse).transpose()
    }

    /// Every text kept in a case, newest first.
    pub fn unsaved_in_case(&self, case_id: CaseId) -> Result<Vec<UnsavedNote>> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {COLUMNS} FROM unsaved_note WHERE case_id = ?1 ORDER BY kept_at DESC, key"
        ))?;
        let rows = stmt
            .query_map([case_id.to_string()], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(parse).collect()
    }

    /// Every text kept, newest first (for the worker's overview).
    pub fn unsaved_notes(&self) -> Result<Vec<UnsavedNote>> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {COLUMNS} FROM unsaved_note ORDER BY kept_at DESC, key"
        ))?;
        let rows = stmt
            .query_map([], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(parse).collect()
    }

    /// Discards the text kept for `key` (the worker chose to).
    pub fn discard_unsaved(&self, key: Uuid) -> Result<()> {
        self.conn()
            .execute("DELETE FROM unsaved_note WHERE key = ?1", [key.to_string()])?;
        Ok(())
    }
}

impl Writer<'_> {
    /// Marks `case` as changed by a colleague now, as a pull that brings a colleague's change
    /// does (the demo caseload uses it for "nyt siden sidst").
    pub fn mark_changed_by_colleague(&mut self, case: CaseId) -> Result<()> {
        let now = crate::domain::normalize_timestamp(self.clock.now())
            .format(&Rfc3339)
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        self.tx.execute(
            "INSERT INTO case_remote_change (case_id, at) VALUES (?1, ?2)
             ON CONFLICT (case_id) DO UPDATE SET at = excluded.at",
            params![case.to_string(), now],
        )?;
        Ok(())
    }

    /// Forgets the text kept for `key` and for the draft `note_id`: it is saved now (called in
    /// the transaction that saves it, so the two never disagree).
    pub fn forget_unsaved(&mut self, key: Uuid, note_id: Option<NoteId>) -> Result<()> {
        self.tx.execute(
            "DELETE FROM unsaved_note WHERE key = ?1 OR (?2 IS NOT NULL AND note_id = ?2)",
            params![key.to_string(), note_id.map(|n| n.to_string())],
        )?;
        Ok(())
    }
}
