//! The app's commands. Store work runs on a blocking thread, never on the UI thread.

use crate::ipc::{IpcError, IpcResult};
use crate::session::Session;
use feltkontor_core::domain::Staff;
use feltkontor_core::store::queries::{CaseFilter, CaseSummary};
use feltkontor_core::store::Store;
use feltkontor_core::SystemClock;
use feltkontor_wire::{CaseStatus, Profession};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tauri::State;

const MAX_PASSPHRASE_BYTES: usize = 1024;
const MAX_FILTER_BYTES: usize = 200;

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
