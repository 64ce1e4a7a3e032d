//! The signed-in worker's session: where their local data lives and, while unlocked, the
//! open store. Locking drops the store, which closes the database and wipes key material.
//! The background sync task shares it.

use feltkontor_core::store::{Store, StoreLocation};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

pub struct Session {
    pub location: StoreLocation,
    pub store: Mutex<Option<Store>>,
    pub sync: crate::sync::Sync,
}

impl Session {
    pub fn new(dir: PathBuf) -> Self {
        Session {
            location: StoreLocation::new(dir),
            store: Mutex::new(None),
            sync: crate::sync::Sync::default(),
        }
    }

    /// The open store (`None` while locked). A panic in an earlier store operation does not
    /// make every later command fail: its transaction was rolled back when the panic unwound
    /// through it, so the store is as it was before that operation, and the lock is taken
    /// again.
    pub fn store(&self) -> MutexGuard<'_, Option<Store>> {
        self.store.lock().unwrap_or_else(|poisoned| {
            tracing::error!("a store operation panicked earlier; its transaction was rolled back");
            self.store.clear_poison();
            poisoned.into_inner()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic inside a store operation poisons the lock; the next command still gets the
    /// store (the panicked transaction was rolled back as it unwound) instead of failing
    /// until the app restarts.
    #[test]
    fn a_panic_in_a_store_operation_does_not_break_later_commands() {
        let dir = tempfile::tempdir().unwrap();
        let session = std::sync::Arc::new(Session::new(dir.path().join("profile")));
        let s = session.clone();
        let panicked = std::thread::spawn(move || {
            let _guard = s.store.lock().unwrap();
            panic!("a store operation panics while it holds the store");
        })
        .join();
        assert!(panicked.is_err());
        assert!(session.store.is_poisoned());
        assert!(session.store().is_none(), "the lock is taken again");
        assert!(!session.store.is_poisoned(), "and the poison is cleared");
        let answer = crate::commands::with_store(&session, |_| Ok(()));
        assert_eq!(
            answer.unwrap_err().code,
            "session.locked",
            "a later command answers as for any locked store, not `internal`"
        );
        use feltkontor_sync::StoreAccess;
        let s = session.clone();
        let _ = std::thread::spawn(move || {
            let _guard = s.store.lock().unwrap();
            panic!("again, for the sync task's access");
        })
        .join();
        let sync = session.store.with(|_| Ok(()));
        assert!(matches!(sync, Err(feltkontor_sync::SyncError::Locked)));
    }
}
