//! Notes refused by the central service because their author had lost access to the case
//! while offline wait there in quarantine, never discarded. The case's coordinator, or a leader
//! on its team, decides on them here: accepted, the note is written into the case as its
//! author's; kept out, it stays only on the service. Both need the network.

use crate::commands::{blocking, with_store};
use crate::ipc::{IpcError, IpcResult};
use crate::session::Session;
use feltkontor_sync::SyncError;
use feltkontor_wire::sync::{QuarantineDecision, QuarantinedNote};
use feltkontor_wire::{CaseId, NoteId};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use tauri::State;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A waiting note as the app shows it.
#[derive(Serialize, specta::Type)]
pub struct QuarantinedNoteView {
    note_id: NoteId,
    case_id: CaseId,
    child_name: String,
    author_name: String,
    /// RFC 3339: when it reached the service.
    received_at: String,
    /// `home_visit`, `meeting`, … as the note's kind.
    kind: Option<String>,
    /// RFC 3339.
    occurred_at: Option<String>,
    body: String,
    child_words: String,
    family_perspective: String,
    signed: bool,
    /// The note is for one discipline: its text is shown only to that discipline's
    /// participants (the service withholds it).
    withheld: bool,
}

fn view(n: QuarantinedNote) -> QuarantinedNoteView {
    let text = |k: &str| {
        n.fields
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let optional = |k: &str| n.fields.get(k).and_then(Value::as_str).map(str::to_owned);
    QuarantinedNoteView {
        note_id: NoteId(n.note_id),
        case_id: CaseId(n.case_id),
        child_name: n.child_name.clone(),
        author_name: n.author_name.clone(),
        received_at: OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(n.received_at_ms) * 1_000_000,
        )
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default(),
        kind: optional("kind"),
        occurred_at: optional("occurred_at"),
        body: text("body"),
        child_words: text("child_words"),
        family_perspective: text("family_perspective"),
        signed: n.fields.get("status").and_then(Value::as_str) == Some("signed"),
        withheld: !n.withheld.is_empty(),
    }
}

fn error(e: SyncError) -> IpcError {
    match &e {
        SyncError::Network(_) => IpcError::new(
            "quarantine.offline",
            "the central service could not be reached",
        ),
        SyncError::Refused { status: 404, .. } => IpcError::new(
            "quarantine.gone",
            "the note no longer waits for your decision",
        ),
        SyncError::Locked => IpcError::locked(),
        _ => {
            tracing::warn!("quarantine: {e}");
            IpcError::new(
                "quarantine.refused",
                "the central service refused the decision",
            )
        }
    }
}

async fn account(
    session: &Arc<Session>,
) -> IpcResult<feltkontor_core::store::account::SyncAccount> {
    blocking(session, |s| {
        with_store(s, |store| Ok(store.sync_account()?))
    })
    .await?
    .ok_or_else(|| {
        IpcError::new(
            "quarantine.local_only",
            "this computer is not connected to a central service",
        )
    })
}

/// The quarantined notes this worker decides on, oldest first (empty for everyone else).
#[tauri::command]
#[specta::specta]
pub async fn quarantined_notes(
    session: State<'_, Arc<Session>>,
) -> IpcResult<Vec<QuarantinedNoteView>> {
    let account = account(&session).await?;
    let list = crate::sync::call(&session, &account, |remote| async move {
        remote.quarantined().await
    })
    .await
    .map_err(error)?;
    session.sync.set_quarantined(list.notes.len());
    Ok(list.notes.into_iter().map(view).collect())
}

/// Accepts a quarantined note into its case (`accept`), or keeps it out; then syncs, so an
/// accepted note is on this computer at once.
#[tauri::command]
#[specta::specta]
pub async fn resolve_quarantined(
    session: State<'_, Arc<Session>>,
    note_id: NoteId,
    accept: bool,
) -> IpcResult<()> {
    let account = account(&session).await?;
    let decision = QuarantineDecision {
        note_id: note_id.0,
        accept,
    };
    crate::sync::call(&session, &account, |remote| {
        let decision = decision.clone();
        async move { remote.resolve_quarantined(&decision).await }
    })
    .await
    .map_err(error)?;
    session.sync.quarantine_decided();
    if accept {
        if let Err(e) = crate::sync::round(&session, &account).await {
            tracing::info!("after a quarantine decision, the sync failed: {e}");
        }
    }
    Ok(())
}
