//! The signed-in worker's session: where their local data lives and, while unlocked, the
//! open store. Locking drops the store, which closes the database and wipes key material.

use feltkontor_core::store::{Store, StoreLocation};
use std::path::PathBuf;
use std::sync::Mutex;

pub struct Session {
    pub location: StoreLocation,
    pub store: Mutex<Option<Store>>,
}

impl Session {
    pub fn new(dir: PathBuf) -> Self {
        Session {
            location: StoreLocation::new(dir),
            store: Mutex::new(None),
        }
    }
}
