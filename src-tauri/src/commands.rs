//! The app's commands. Store work runs on a blocking thread, never on the UI thread.

use crate::ipc::{IpcError, IpcResult};
use crate::session::Session;
use feltkontor_core::domain::{CaseNote, SensitiveText, Staff};
use feltkontor_core::store::queries::{
    CaseFilter, CaseOverview, CaseSummary, TimelineCursor, TimelinePage,
};
use feltkontor_core::store::search::SearchResults;
use feltkontor_core::store::Store;
use feltkontor_core::{SystemClock, ValidationError};
use feltkontor_wire::{Audience, CaseId, CaseStatus, NoteId, NoteKind, NoteStatus, Profession};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tauri::State;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const MAX_PASSPHRASE_BYTES: usize = 1024;
const MAX_FILTER_BYTES: usize = 200;
/// The three text fields of a note together; the core's per-field limit is in characters.
const MAX_NOTE_BYTES: usize = 1_200_000;
const MAX_QUERY_BYTES: usize = 500;
const TIMELINE_PAGE: u32 = 30;
const SEARCH_LIMIT: u32 = 20;

async fn blocking<T: Send + 'static>(
    session: &Arc<Session>,
    f: impl FnOnce(&Session) -> IpcResult<T> + Send + 'static,
) -> IpcResult<T> {
    let session = Arc::clone(session);
    tauri::async_runtime::spawn_blocking(move || f(&session))
        .await
        .map_err(|_| IpcError::internal())?
}

fn with_store<T>(session: &Session, f: impl FnOnce(&Store) -> IpcResult<T>) -> IpcResult<T> {
    let guard = session.store.lock().map_err(|_| IpcError::internal())?;
    let store = guard.as_ref().ok_or_else(IpcError::locked)?;
    f(store)
}

#[derive(Serialize, specta::Type)]
pub struct AppStatus {
    has_local_data: bool,
    unlocked: bool,
}

#[tauri::command]
#[specta::specta]
pub async fn app_status(session: State<'_, Arc<Session>>) -> IpcResult<AppStatus> {
    blocking(&session, |s| {
        Ok(AppStatus {
            has_local_data: s.location.exists(),
            unlocked: s.store.lock().map_err(|_| IpcError::internal())?.is_some(),
        })
    })
    .await
}

#[derive(Serialize, specta::Type)]
pub struct Worker {
    name: String,
    initials: String,
    profession: Option<Profession>,
}

#[tauri::command]
#[specta::specta]
pub async fn unlock(session: State<'_, Arc<Session>>, passphrase: String) -> IpcResult<Worker> {
    if passphrase.len() > MAX_PASSPHRASE_BYTES {
        return Err(IpcError::too_long("passphrase"));
    }
    blocking(&session, move |s| {
        let store = Store::open(&s.location, &passphrase, Arc::new(SystemClock))?;
        let staff: Option<Staff> = store.get(store.worker_id().0)?;
        let worker = Worker {
            name: staff.as_ref().map(|s| s.name.clone()).unwrap_or_default(),
            initials: staff
                .as_ref()
                .map(|s| s.initials.clone())
                .unwrap_or_default(),
            profession: staff.map(|s| s.profession),
        };
        *s.store.lock().map_err(|_| IpcError::internal())? = Some(store);
        Ok(worker)
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn lock(session: State<'_, Arc<Session>>) -> IpcResult<()> {
    blocking(&session, |s| {
        if let Some(store) = s.store.lock().map_err(|_| IpcError::internal())?.take() {
            store.lock();
        }
        Ok(())
    })
    .await
}

#[derive(Deserialize, Default, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct CaseFilterInput {
    district: Option<String>,
    status: Option<CaseStatus>,
}

#[tauri::command]
#[specta::specta]
pub async fn my_cases(
    session: State<'_, Arc<Session>>,
    filter: Option<CaseFilterInput>,
) -> IpcResult<Vec<CaseSummary>> {
    let filter = filter.unwrap_or_default();
    if filter
        .district
        .as_ref()
        .is_some_and(|d| d.len() > MAX_FILTER_BYTES)
    {
        return Err(IpcError::too_long("district"));
    }
    blocking(&session, move |s| {
        with_store(s, |store| {
            Ok(store.my_cases(&CaseFilter {
                district: filter.district,
                status: filter.status,
            })?)
        })
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn case_overview(
    session: State<'_, Arc<Session>>,
    case_id: CaseId,
) -> IpcResult<CaseOverview> {
    blocking(&session, move |s| {
        with_store(s, |store| Ok(store.case_overview(case_id)?))
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn notes_timeline(
    session: State<'_, Arc<Session>>,
    case_id: CaseId,
    after: Option<TimelineCursor>,
) -> IpcResult<TimelinePage> {
    blocking(&session, move |s| {
        with_store(s, |store| {
            Ok(store.notes_timeline(case_id, after.as_ref(), TIMELINE_PAGE)?)
        })
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn note(session: State<'_, Arc<Session>>, note_id: NoteId) -> IpcResult<CaseNote> {
    blocking(&session, move |s| {
        with_store(s, |store| Ok(store.note(note_id)?))
    })
    .await
}

/// A draft as the editor sends it. Without `id` it is a new note; the answer carries its id.
#[derive(Deserialize, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct NoteDraft {
    id: Option<NoteId>,
    case_id: CaseId,
    kind: NoteKind,
    /// RFC 3339.
    occurred_at: String,
    body: String,
    child_words: String,
    family_perspective: String,
    statutory: bool,
    audience: Audience,
    addendum_to: Option<NoteId>,
}

/// Saves a draft (the editor's autosave). Signed notes are refused by the core.
#[tauri::command]
#[specta::specta]
pub async fn save_draft(session: State<'_, Arc<Session>>, draft: NoteDraft) -> IpcResult<CaseNote> {
    let text_bytes = draft.body.len() + draft.child_words.len() + draft.family_perspective.len();
    if text_bytes > MAX_NOTE_BYTES {
        return Err(IpcError::too_long("note"));
    }
    let occurred_at = OffsetDateTime::parse(&draft.occurred_at, &Rfc3339).map_err(|_| {
        IpcError::from(feltkontor_core::Error::from(ValidationError::InvalidDate {
            field: "occurred_at",
        }))
    })?;
    blocking(&session, move |s| {
        let mut guard = s.store.lock().map_err(|_| IpcError::internal())?;
        let store = guard.as_mut().ok_or_else(IpcError::locked)?;
        let note = CaseNote {
            id: draft.id.unwrap_or_default(),
            case_id: draft.case_id,
            author_id: store.worker_id(),
            kind: draft.kind,
            occurred_at,
            body: SensitiveText(draft.body),
            child_words: SensitiveText(draft.child_words),
            family_perspective: SensitiveText(draft.family_perspective),
            statutory: draft.statutory,
            audience: draft.audience,
            status: NoteStatus::Draft,
            signed_at: None,
            content_hash: None,
            addendum_to: draft.addendum_to,
        };
        Ok(store.write(|w| w.save_note(&note))?)
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn sign_note(session: State<'_, Arc<Session>>, note_id: NoteId) -> IpcResult<CaseNote> {
    blocking(&session, move |s| {
        let mut guard = s.store.lock().map_err(|_| IpcError::internal())?;
        let store = guard.as_mut().ok_or_else(IpcError::locked)?;
        Ok(store.write(|w| w.sign_note(note_id))?)
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn search(session: State<'_, Arc<Session>>, query: String) -> IpcResult<SearchResults> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(IpcError::too_long("query"));
    }
    blocking(&session, move |s| {
        with_store(s, |store| Ok(store.search(&query, SEARCH_LIMIT)?))
    })
    .await
}
