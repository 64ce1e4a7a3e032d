//! Typed errors. Each has a stable `code()` that the UI and the IPC edge switch on; the
//! `Display` text is a plain English message for logs and developers (the UI shows its own
//! Danish text per code). No message ever contains a CPR number, note text or an address.

use std::path::PathBuf;

/// A field or rule that input broke. `field` names the offending field as the UI knows it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{field} is required")]
    Required { field: &'static str },
    #[error("{field} is too long ({len} characters, at most {max})")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{field} contains control characters")]
    ControlCharacters { field: &'static str },
    #[error("CPR number is not in the form DDMMÅÅ-SSSS or is not a real date")]
    InvalidCpr,
    #[error("CPR number does not match the child's date of birth")]
    CprBirthDateMismatch,
    #[error("{field} is not a valid date")]
    InvalidDate { field: &'static str },
    #[error("{field} lies in the future")]
    DateInFuture { field: &'static str },
    #[error("{field} must not be before {other}")]
    DateBefore {
        field: &'static str,
        other: &'static str,
    },
    #[error("{field} is not a valid e-mail address")]
    InvalidEmail { field: &'static str },
    #[error("{field} is not a valid phone number")]
    InvalidPhone { field: &'static str },
    #[error("initials must be 2 to 6 letters")]
    InvalidInitials,
    #[error("a consent must cover at least one sector")]
    NoSectors,
    #[error("a do-not-contact flag needs a reason")]
    DoNotContactReasonRequired,
    #[error("an agreement needs exactly one responsible: a member of staff or a family member")]
    ResponsibleRequired,
    #[error("a signed note can never be changed; write an addendum instead")]
    NoteSigned,
    #[error("an addendum must refer to a signed note in the same case")]
    AddendumTargetInvalid,
    #[error("a change of coordinator needs a handover note")]
    HandoverNoteRequired,
    #[error("the new coordinator is already the coordinator")]
    SameCoordinator,
    #[error("the case is closed")]
    CaseClosed,
    #[error("closing a case needs a reason")]
    CloseReasonRequired,
    #[error("{what} does not belong to this case")]
    WrongCase { what: &'static str },
    #[error("the consent is already withdrawn")]
    ConsentAlreadyWithdrawn,
    #[error("the agreement is already done")]
    AgreementAlreadyDone,
    #[error("a relation must connect two different people")]
    RelationToSelf,
    #[error("the search text is empty")]
    EmptySearch,
    #[error("only the author can change or sign a draft")]
    NotAuthor,
    #[error("{what} is already on the case")]
    AlreadyOnCase { what: &'static str },
    #[error("the coordinator cannot be removed; hand the case over first")]
    CoordinatorCannotBeRemoved,
    #[error(
        "no valid consent covers this participant's sector; record the legal basis for sharing"
    )]
    LegalBasisRequired,
}

impl ValidationError {
    pub fn code(&self) -> &'static str {
        use ValidationError::*;
        match self {
            Required { .. } => "validation.required",
            TooLong { .. } => "validation.too_long",
            ControlCharacters { .. } => "validation.control_characters",
            InvalidCpr => "validation.invalid_cpr",
            CprBirthDateMismatch => "validation.cpr_birth_date_mismatch",
            InvalidDate { .. } => "validation.invalid_date",
            DateInFuture { .. } => "validation.date_in_future",
            DateBefore { .. } => "validation.date_before",
            InvalidEmail { .. } => "validation.invalid_email",
            InvalidPhone { .. } => "validation.invalid_phone",
            InvalidInitials => "validation.invalid_initials",
            NoSectors => "validation.no_sectors",
            DoNotContactReasonRequired => "validation.do_not_contact_reason_required",
            ResponsibleRequired => "validation.responsible_required",
            NoteSigned => "rule.note_signed",
            AddendumTargetInvalid => "rule.addendum_target_invalid",
            HandoverNoteRequired => "rule.handover_note_required",
            SameCoordinator => "rule.same_coordinator",
            CaseClosed => "rule.case_closed",
            CloseReasonRequired => "rule.close_reason_required",
            WrongCase { .. } => "rule.wrong_case",
            ConsentAlreadyWithdrawn => "rule.consent_already_withdrawn",
            AgreementAlreadyDone => "rule.agreement_already_done",
            RelationToSelf => "rule.relation_to_self",
            EmptySearch => "validation.empty_search",
            NotAuthor => "rule.not_author",
            AlreadyOnCase { .. } => "rule.already_on_case",
            CoordinatorCannotBeRemoved => "rule.coordinator_cannot_be_removed",
            LegalBasisRequired => "rule.legal_basis_required",
        }
    }

    /// The field the UI should mark, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        use ValidationError::*;
        match self {
            Required { field }
            | TooLong { field, .. }
            | ControlCharacters { field }
            | InvalidDate { field }
            | DateInFuture { field }
            | DateBefore { field, .. }
            | InvalidEmail { field }
            | InvalidPhone { field } => Some(field),
            InvalidCpr | CprBirthDateMismatch => Some("child_cpr"),
            InvalidInitials => Some("initials"),
            LegalBasisRequired => Some("legal_basis"),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
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
    #[error("the passphrase is too weak: use at least {min} characters")]
    WeakPassphrase { min: usize },
    #[error("the local database was written by a newer version of Feltkontor (schema {found}, this version knows up to {known}); update the app")]
    SchemaTooNew { found: u32, known: u32 },
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

    pub(crate) fn not_found(entity: &'static str, id: impl ToString) -> Self {
        Error::NotFound {
            entity,
            id: id.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
