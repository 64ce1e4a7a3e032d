//! Typed errors. Each has a stable `code()` that the UI and the IPC edge switch on; the
//! `Display` text is a plain English message for logs and developers (the UI shows its own
//! Danish text per code). No message ever contains a CPR number, note text or an address.

use std::path::PathBuf;

pub use feltkontor_domain::ValidationError;

#[derive(Debug, thiserror::Error, strum::EnumCount)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("the passphrase is wrong")]
    WrongPassphrase,
    #[error("too many failed attempts; try again in {retry_after_secs} seconds")]
    Throttled { retry_after_secs: u64 },
    /// The device's lease from the central service ran out (or its secret is gone): the store
    /// cannot be unlocked until the service renews it.
    #[error("this device's lease has run out: connect to the network and renew it")]
    LeaseExpired,
    #[error("the passphrase is too easy to guess: use at least {min} characters, several words that do not belong together")]
    WeakPassphrase { min: usize },
    #[error("the local database was written by a newer version of Feltkontor (schema {found}, this version knows up to {known}); update the app")]
    SchemaTooNew { found: u32, known: u32 },
    #[error("the local database's set-up (migration {version}, {name}) was changed after this computer applied it; contact IT support (the data is untouched)")]
    MigrationChanged { version: u32, name: String },
    #[error("the database engine is not SQLCipher; refusing to store data unencrypted")]
    EncryptionUnavailable,
    #[error("no local data exists for this worker yet at {0}")]
    NoStore(PathBuf),
    #[error("local data already exists at {0}")]
    StoreExists(PathBuf),
    #[error("the key file is damaged: {0}")]
    KeyFileDamaged(String),
    #[error("the local database is damaged or does not match its key file")]
    DatabaseDamaged,
    #[error("{entity} {id} was not found")]
    NotFound { entity: &'static str, id: String },
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("the central service sent data this version cannot use: {0}")]
    SyncData(String),
}

impl Error {
    /// A stable identifier for the kind of error; never changes once released.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid(v) => v.code(),
            Error::WrongPassphrase => "unlock.wrong_passphrase",
            Error::Throttled { .. } => "unlock.throttled",
            Error::LeaseExpired => "unlock.lease_expired",
            Error::WeakPassphrase { .. } => "unlock.weak_passphrase",
            Error::SchemaTooNew { .. } => "store.schema_too_new",
            Error::MigrationChanged { .. } => "store.migration_changed",
            Error::EncryptionUnavailable => "store.encryption_unavailable",
            Error::NoStore(_) => "store.missing",
            Error::StoreExists(_) => "store.exists",
            Error::KeyFileDamaged(_) => "store.key_file_damaged",
            Error::DatabaseDamaged => "store.damaged",
            Error::NotFound { .. } => "not_found",
            Error::Database(_) => "store.database",
            Error::Io(_) => "store.io",
            Error::Corrupt(_) => "store.corrupt",
            Error::SyncData(_) => "sync.bad_data",
        }
    }

    /// Every code a store error can have, validation errors' included (for the test that the
    /// UI has a text for each).
    pub fn all_codes() -> Vec<&'static str> {
        let own = [
            Error::WrongPassphrase,
            Error::Throttled {
                retry_after_secs: 1,
            },
            Error::LeaseExpired,
            Error::WeakPassphrase { min: 1 },
            Error::SchemaTooNew { found: 2, known: 1 },
            Error::MigrationChanged {
                version: 1,
                name: String::new(),
            },
            Error::EncryptionUnavailable,
            Error::NoStore(PathBuf::new()),
            Error::StoreExists(PathBuf::new()),
            Error::KeyFileDamaged(String::new()),
            Error::DatabaseDamaged,
            Error::not_found("x", ""),
            Error::Database(rusqlite::Error::InvalidQuery),
            Error::Io(std::io::Error::other("x")),
            Error::Corrupt(String::new()),
            Error::SyncData(String::new()),
        ];
        // `Invalid` is the one kind not listed above: its codes are the validation errors'.
        assert_eq!(
            own.len() + 1,
            <Error as strum::EnumCount>::COUNT,
            "a kind of store error is missing from Error::all_codes"
        );
        own.iter()
            .map(Error::code)
            .chain(ValidationError::all_codes())
            .collect()
    }

    pub(crate) fn not_found(entity: &'static str, id: impl ToString) -> Self {
        Error::NotFound {
            entity,
            id: id.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
