//! The signed-in worker's session: where their local data lives and, while unlocked, the
//! open store. Locking drops the store, which closes the database and wipes key material.
//! The background sync task shares it.

use feltkontor_core::store::{Store, StoreLocation};
use std::path::PathBuf;
use std::sync::Mutex;

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
}
