//! The validation error: a field or rule that input broke, with a stable `code()` that the UI
//! and the service switch on. No message ever contains a CPR number, note text or an address.

/// A field or rule that input broke. `field` names the offending field as the UI knows it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, strum::EnumIter)]
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
    #[error("the record is incomplete or has a field of the wrong kind")]
    Malformed,
    #[error("the record has a field this version does not know")]
    UnknownField,
    #[error("only the case's coordinator or a leader on its team may change the {what}")]
    Privileged { what: &'static str },
    #[error("the {what} never changes once recorded")]
    RecordFixed { what: &'static str },
    #[error("the note's signature does not match its content")]
    SignatureInvalid,
    #[error("a consent is given by someone with custody of the child")]
    ConsentNotByCustodian,
    /// An appointment's place is a protected address (navne- og adressebeskyttelse): the place
    /// reaches everyone on the case and is printed on the visit sheet.
    #[error("an appointment's place may not be a protected address")]
    PlaceIsProtectedAddress,
}

impl ValidationError {
    /// Every code a validation error can have (for the test that the UI has a text for each).
    pub fn all_codes() -> impl Iterator<Item = &'static str> {
        <ValidationError as strum::IntoEnumIterator>::iter().map(|e| e.code())
    }

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
            Malformed => "validation.malformed",
            UnknownField => "validation.unknown_field",
            Privileged { .. } => "rule.privileged",
            RecordFixed { .. } => "rule.record_fixed",
            SignatureInvalid => "rule.signature_invalid",
            ConsentNotByCustodian => "rule.consent_not_by_custodian",
            PlaceIsProtectedAddress => "rule.place_is_protected_address",
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
            CloseReasonRequired => Some("closed_reason"),
            ConsentNotByCustodian => Some("given_by"),
            PlaceIsProtectedAddress => Some("place"),
            _ => None,
        }
    }
}
