//! A case's change history (who changed what, when, from which device), read from the central
//! service: it needs the network. The service sends only changes of records the worker may see;
//! each is named here from the worker's own copy of the record.

use crate::commands::{blocking, with_store};
use crate::ipc::{IpcError, IpcResult};
use crate::session::Session;
use feltkontor_sync::SyncError;
use feltkontor_wire::{CaseId, EntityKind};
use serde::Serialize;
use std::sync::Arc;
use tauri::State;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One change as the app shows it.
#[derive(Debug, Serialize, specta::Type)]
pub struct HistoryItem {
    /// RFC 3339.
    pub at: String,
    pub staff_name: String,
    pub device_name: String,
    pub entity: EntityKind,
    /// The record's name from this computer's copy (a person's name, a note's first words);
    /// a date (`YYYY-MM-DD`) for an appointment (`label_is_date`); `None` when this computer
    /// does not hold it yet.
    pub label: Option<String>,
    pub label_is_date: bool,
    pub fields: Vec<String>,
}

#[derive(Debug, Serialize, specta::Type)]
pub struct HistoryPage {
    pub items: Vec<HistoryItem>,
    /// Pass back as `before` for older changes; `None` at the start of the history.
    #[specta(type = Option<f64>)]
    pub next_before: Option<i64>,
}

fn error(e: SyncError) -> IpcError {
    match &e {
        SyncError::Network(_) => IpcError::new(
            "history.offline",
            "the central service could not be reached",
        ),
        SyncError::Refused { status: 403, .. } => IpcError::new(
            "history.not_participant",
            "only the case's participants read its history",
        ),
        SyncError::Refused { status: 404, .. } => {
            IpcError::new("history.not_found", "the service does not show this case")
        }
        SyncError::Locked => IpcError::locked(),
        _ => {
            tracing::warn!("case history: {e}");
            IpcError::new("history.refused", "the central service refused")
        }
    }
}

/// A page of the case's change history, newest first.
#[tauri::command]
#[specta::specta]
pub async fn case_history(
    session: State<'_, Arc<Session>>,
    case_id: CaseId,
    before: Option<f64>,
) -> IpcResult<HistoryPage> {
    let before = match before {
        None => None,
        Some(b) if b.is_finite() && b >= 1.0 && b <= i64::MAX as f64 => Some(b as i64),
        Some(_) => return Err(IpcError::new("input.invalid", "before is not a page mark")),
    };
    let account = blocking(&session, |s| {
        with_store(s, |store| Ok(store.sync_account()?))
    })
    .await?
    .ok_or_else(|| {
        IpcError::new(
            "history.local_only",
            "this computer is not connected to a central service",
        )
    })?;
    let page = crate::sync::call(&session, &account, |remote| async move {
        remote.case_history(case_id.0, before).await
    })
    .await
    .map_err(error)?;
    blocking(&session, move |s| {
        with_store(s, |store| {
            let mut items = Vec::with_capacity(page.entries.len());
            for e in page.entries {
                items.push(HistoryItem {
                    at: OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.at_ms) * 1_000_000)
                        .ok()
                        .and_then(|t| t.format(&Rfc3339).ok())
                        .unwrap_or_default(),
                    label: Some(store.record_label(e.entity, e.entity_id)?.0)
                        .filter(|l| !l.is_empty()),
                    label_is_date: e.entity == EntityKind::Appointment,
                    staff_name: e.staff_name,
                    device_name: e.device_name,
                    entity: e.entity,
                    fields: e.fields,
                });
            }
            Ok(HistoryPage {
                items,
                next_before: page.next_before,
            })
        })
    })
    .await
}
