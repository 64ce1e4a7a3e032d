//! The encrypted local store: one SQLCipher database per signed-in worker.
//!
//! Opening: unwrap the database key ([`keys`]), key SQLCipher with it as a raw key, prove that
//! SQLCipher is active and the key is right, refuse a schema newer than this build knows, set
//! WAL + `synchronous=FULL`, then apply missing migrations in one transaction. Our copy of the
//! key is zeroized as soon as SQLCipher has it; SQLCipher wipes its own copy when the
//! connection closes, which [`Store::lock`] does.
//!
//! Writing: every mutation goes through [`Store::write`], whose [`Writer`] writes the rows and
//! one change-log entry per mutation in the same transaction.

pub mod access;
pub mod account;
pub mod keys;
mod migrate;
mod ops;
pub mod queries;
mod record;
mod rules;
pub mod search;
pub mod sheet;
pub mod sync;
pub mod unsaved;
pub mod week;

pub use keys::KdfParams;
pub use migrate::{Migration, MIGRATIONS};
pub use record::{Record, Writer};

use crate::clock::Clock;
use crate::error::{Error, Result};
use feltkontor_wire::{DeviceId, StaffId};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Where one worker's local data lives: a folder with the database and its key file.
#[derive(Clone, Debug)]
pub struct StoreLocation {
    dir: PathBuf,
}

impl StoreLocation {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StoreLocation { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn database(&self) -> PathBuf {
        self.dir.join("feltkontor.db")
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.join("feltkontor.key")
    }

    pub fn attempts_file(&self) -> PathBuf {
        self.dir.join("unlock-attempts.json")
    }

    /// The central service's lease (connected devices only): see [`keys`].
    pub fn lease_file(&self) -> PathBuf {
        self.dir.join("feltkontor.lease")
    }

    /// The lease as kept on disk (no passphrase needed): its expiry and where to renew it.
    pub fn lease(&self) -> Result<Option<keys::LeaseFile>> {
        keys::read_lease_file(&self.lease_file())
    }

    /// The device id in the key file's header (readable without the passphrase).
    pub fn device_id(&self) -> Result<DeviceId> {
        keys::device_of(&self.key_file())
    }

    /// Deletes the local data here for good (see [`Store::wipe`]): the key file and the lease
    /// first, so an interrupted wipe leaves only unreadable ciphertext. Also for a store that
    /// is locked (a revoked device found out at unlock).
    pub fn wipe(&self) -> Result<()> {
        let db = self.database();
        let mut wal = db.clone().into_os_string();
        wal.push("-wal");
        let mut shm = db.clone().into_os_string();
        shm.push("-shm");
        for path in [
            self.key_file(),
            self.lease_file(),
            db,
            wal.into(),
            shm.into(),
            self.attempts_file(),
        ] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Whether local data has been set up here.
    pub fn exists(&self) -> bool {
        self.key_file().exists()
    }
}

/// An unlocked store. Dropping it (or [`Store::lock`]) closes the database.
pub struct Store {
    conn: Connection,
    device_id: DeviceId,
    worker_id: StaffId,
    clock: Arc<dyn Clock>,
    location: StoreLocation,
    /// Large pulled pages left the write-ahead log uncopied (see [`Store::checkpoint`]).
    wal_behind: bool,
    /// The search vocabulary (`temp.search_terms`) holds every word of the search index (see
    /// [`search`]): built at the first search, kept by every row indexed after.
    vocabulary_ready: std::cell::Cell<bool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .field("device_id", &self.device_id)
            .finish()
    }
}

impl Store {
    /// Sets up local data for `worker_id` at `location` with a new random database key.
    pub fn create(
        location: &StoreLocation,
        passphrase: &str,
        worker_id: StaffId,
        clock: Arc<dyn Clock>,
    ) -> Result<Store> {
        Self::create_with(
            location,
            passphrase,
            worker_id,
            DeviceId::new(),
            KdfParams::default(),
            clock,
        )
    }

    pub fn create_with(
        location: &StoreLocation,
        passphrase: &str,
        worker_id: StaffId,
        device_id: DeviceId,
        kdf: KdfParams,
        clock: Arc<dyn Clock>,
    ) -> Result<Store> {
        Self::create_at_schema(
            location,
            passphrase,
            None,
            worker_id,
            device_id,
            kdf,
            clock,
            migrate::latest(),
        )
    }

    /// Sets up local data for a device the central service enrolled: the key file needs the
    /// passphrase *and* the service's lease, kept in the lease file with its expiry.
    #[allow(clippy::too_many_arguments)]
    pub fn create_connected(
        location: &StoreLocation,
        passphrase: &str,
        lease: &keys::Lease,
        server_url: &str,
        worker_id: StaffId,
        device_id: DeviceId,
        kdf: KdfParams,
        clock: Arc<dyn Clock>,
    ) -> Result<Store> {
        Self::create_at_schema(
            location,
            passphrase,
            Some((lease, server_url)),
            worker_id,
            device_id,
            kdf,
            clock,
            migrate::latest(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn create_at_schema(
        location: &StoreLocation,
        passphrase: &str,
        lease: Option<(&keys::Lease, &str)>,
        worker_id: StaffId,
        device_id: DeviceId,
        kdf: KdfParams,
        clock: Arc<dyn Clock>,
        schema: u32,
    ) -> Result<Store> {
        if location.exists() || location.database().exists() {
            return Err(Error::StoreExists(location.dir().to_owned()));
        }
        keys::check_passphrase_strength(passphrase)?;
        std::fs::create_dir_all(location.dir())?;
        // The lease first: a key file that needs it is never left without it.
        if let Some((lease, server_url)) = lease {
            keys::write_lease(
                &location.lease_file(),
                &location.key_file(),
                lease,
                Some(server_url),
            )?;
        }
        let unwrapped = keys::create(
            &location.key_file(),
            passphrase,
            lease,
            device_id,
            worker_id,
            kdf,
        )?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let mut conn = Connection::open_with_flags(location.database(), flags)?;
        key_connection(&conn, &unwrapped.key)?;
        drop(unwrapped.key);
        configure(&conn)?;
        migrate::apply(&mut conn, schema)?;
        search::prepare_connection(&conn)?;
        let hlc = feltkontor_wire::Hlc::zero(device_id);
        conn.execute(
            "INSERT INTO device_state (singleton, device_id, worker_id, next_seq, hlc) VALUES (1, ?1, ?2, 1, ?3)",
            rusqlite::params![device_id.to_string(), worker_id.to_string(), hlc.to_string()],
        )?;
        Ok(Store {
            conn,
            device_id,
            worker_id,
            clock,
            location: location.clone(),
            wal_behind: false,
            vocabulary_ready: Default::default(),
        })
    }

    /// Unlocks the store with the worker's passphrase (and, on a connected device, the lease:
    /// `Error::LeaseExpired` once it ran out).
    pub fn open(
        location: &StoreLocation,
        passphrase: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Store> {
        if !location.exists() {
            return Err(Error::NoStore(location.dir().to_owned()));
        }
        let unwrapped = keys::unwrap(
            &location.key_file(),
            &location.attempts_file(),
            &location.lease_file(),
            passphrase,
            clock.as_ref(),
        )?;
        if !location.database().exists() {
            return Err(Error::DatabaseDamaged);
        }
        let mut conn =
            Connection::open_with_flags(location.database(), OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        key_connection(&conn, &unwrapped.key)?;
        let (device_id, worker_id) = (unwrapped.device_id, unwrapped.worker_id);
        let found = migrate::current_version(&conn)?;
        let known = migrate::latest();
        if found > known {
            return Err(Error::SchemaTooNew { found, known });
        }
        configure(&conn)?;
        migrate::apply(&mut conn, known)?;
        migrate::verify(&conn)?;
        search::prepare_connection(&conn)?;
        let store = Store {
            conn,
            device_id,
            worker_id,
            clock,
            location: location.clone(),
            wal_behind: false,
            vocabulary_ready: Default::default(),
        };
        // The key file records the service's address from inside the encrypted store (a
        // file from before addresses were recorded gets it at this unlock), so a lapsed lease
        // is renewed only there ([`keys::service_url`]).
        if let Some(account) = store.sync_account()? {
            keys::record_service_url(
                &location.key_file(),
                &location.lease_file(),
                &unwrapped,
                passphrase,
                &account.server_url,
            )?;
        }
        Ok(store)
    }

    /// Closes the database; SQLCipher wipes its key material with the connection.
    pub fn lock(self) {
        drop(self);
    }

    /// Deletes this device's local data for good (the device was revoked, or retired after
    /// everything was pushed). The key file goes first: without it the database is unreadable
    /// ciphertext even if deleting the database itself is interrupted.
    pub fn wipe(self) -> Result<()> {
        let location = self.location.clone();
        drop(self);
        location.wipe()
    }

    /// Re-wraps the database key under a new passphrase after checking the old one.
    pub fn change_passphrase(&self, old: &str, new: &str) -> Result<()> {
        keys::check_passphrase_strength(new)?;
        let unwrapped = keys::unwrap(
            &self.location.key_file(),
            &self.location.attempts_file(),
            &self.location.lease_file(),
            old,
            self.clock.as_ref(),
        )?;
        keys::rewrap(
            &self.location.key_file(),
            &self.location.lease_file(),
            &unwrapped,
            new,
        )
    }

    /// Keeps the lease the central service just renewed (at a token refresh). A device
    /// connected before leases existed gets it too; its key file is re-wrapped to need it at
    /// the next unlock.
    pub fn renew_lease(&self, lease: &keys::Lease) -> Result<()> {
        let server_url = self.sync_account()?.map(|a| a.server_url);
        keys::write_lease(
            &self.location.lease_file(),
            &self.location.key_file(),
            lease,
            server_url.as_deref(),
        )
    }

    pub fn worker_id(&self) -> StaffId {
        self.worker_id
    }

    pub fn device_id(&self) -> DeviceId {
        self.device_id
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// Read-only access for queries and tests; all writes go through [`Store::write`].
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32> {
        migrate::current_version(&self.conn)
    }

    /// The SQLCipher version the database is encrypted with.
    pub fn cipher_version(&self) -> Result<String> {
        Ok(self
            .conn
            .query_row("PRAGMA cipher_version", [], |r| r.get(0))?)
    }

    /// `PRAGMA integrity_check`: `true` when the database reports "ok".
    pub fn integrity_ok(&self) -> Result<bool> {
        let r: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        Ok(r == "ok")
    }
}

/// Gives SQLCipher the raw 256-bit key and proves it is SQLCipher and the key fits.
fn key_connection(conn: &Connection, key: &[u8; 32]) -> Result<()> {
    register_functions(conn)?;
    let pragma = Zeroizing::new(format!("PRAGMA key = \"x'{}'\";", hex::encode(key)));
    conn.execute_batch(&pragma)?;
    drop(pragma);
    let version: Option<String> = conn
        .query_row("PRAGMA cipher_version", [], |r| r.get(0))
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    if version.is_none_or(|v| v.trim().is_empty()) {
        return Err(Error::EncryptionUnavailable);
    }
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            Err(Error::DatabaseDamaged)
        }
        Err(e) => Err(e.into()),
    }
}

/// WAL with `synchronous=FULL`: a commit that returned is on disk, not only in the OS cache.
/// A 32 MiB page cache: every page read from disk is decrypted and authenticated, so hot
/// pages are worth keeping.
fn configure(conn: &Connection) -> Result<()> {
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Corrupt(format!(
            "could not switch to WAL (got {mode})"
        )));
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = OFF;
         PRAGMA busy_timeout = 5000;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -32768;",
    )?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(())
}

fn register_functions(conn: &Connection) -> Result<()> {
    use rusqlite::functions::FunctionFlags;
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("fold_da", 1, flags, |ctx| {
        let s: Option<String> = ctx.get(0)?;
        Ok(s.map(|s| search::fold_da(&s)))
    })?;
    conn.create_scalar_function("relation_label_da", 1, flags, |ctx| {
        let s: Option<String> = ctx.get(0)?;
        Ok(s.map(|s| search::relation_label_da(&s).to_owned()))
    })?;
    Ok(())
}

#[cfg(test)]
pub(crate) fn create_at_schema_for_tests(
    location: &StoreLocation,
    passphrase: &str,
    worker_id: StaffId,
    kdf: KdfParams,
    clock: Arc<dyn Clock>,
    schema: u32,
) -> Result<Store> {
    Store::create_at_schema(
        location,
        passphrase,
        None,
        worker_id,
        DeviceId::new(),
        kdf,
        clock,
        schema,
    )
}
