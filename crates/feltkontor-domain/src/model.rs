//! The entities of a district team's work and the rules each one must satisfy on its own.
//! Rules that need the stored state (a signed note never changes, a handover needs a note)
//! live in [`super::rules`].

use crate::cpr::Cpr;
use crate::error::ValidationError;
use crate::text::{self, SensitiveText, NAME_MAX, NOTE_TEXT_MAX, SHORT_TEXT_MAX};
use feltkontor_wire::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::macros::date;
use time::{Date, OffsetDateTime};

/// No date in the system lies before this (a child born before it is not a child's case).
const EARLIEST: Date = date!(1990 - 01 - 01);
/// Notes may be dated slightly ahead of the device clock (a colleague's clock runs fast).
pub const CLOCK_SLACK: time::Duration = time::Duration::minutes(5);

/// Timestamps are stored in UTC with whole seconds, so their text form sorts like time.
pub fn normalize_timestamp(t: OffsetDateTime) -> OffsetDateTime {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t)
}

fn not_before(
    field: &'static str,
    d: Date,
    min: Date,
    other: &'static str,
) -> Result<(), ValidationError> {
    if d < min {
        Err(ValidationError::DateBefore { field, other })
    } else {
        Ok(())
    }
}

fn plausible(field: &'static str, d: Date) -> Result<(), ValidationError> {
    if d < EARLIEST || d.year() > 2200 {
        Err(ValidationError::InvalidDate { field })
    } else {
        Ok(())
    }
}

fn not_future(field: &'static str, d: Date, today: Date) -> Result<(), ValidationError> {
    plausible(field, d)?;
    if d > today {
        Err(ValidationError::DateInFuture { field })
    } else {
        Ok(())
    }
}

fn opt_line(field: &'static str, s: &Option<String>, max: usize) -> Result<(), ValidationError> {
    s.as_deref()
        .map_or(Ok(()), |s| text::optional_line(field, s, max))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Team {
    pub id: TeamId,
    pub name: String,
    /// The lokaldistrikt, e.g. "Søndervang".
    pub district: String,
}

impl Team {
    pub fn validate(&self) -> Result<(), ValidationError> {
        text::required_line("name", &self.name, NAME_MAX)?;
        text::required_line("district", &self.district, NAME_MAX)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Staff {
    pub id: StaffId,
    pub name: String,
    pub initials: String,
    pub profession: Profession,
    pub sector: StaffSector,
}

impl Staff {
    pub fn validate(&self) -> Result<(), ValidationError> {
        text::required_line("name", &self.name, NAME_MAX)?;
        let n = self.initials.chars().count();
        if !(2..=6).contains(&n) || !self.initials.chars().all(char::is_alphabetic) {
            return Err(ValidationError::InvalidInitials);
        }
        Ok(())
    }
}

/// A staff member's membership of a team (a row of a set: concurrent additions never conflict).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TeamMember {
    pub id: RowId,
    pub team_id: TeamId,
    pub staff_id: StaffId,
}

/// One child's case. `coordinator_id` is not optional: an open case has exactly one
/// coordinator by construction, and it changes only through a [`Handover`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Case {
    pub id: CaseId,
    pub team_id: TeamId,
    pub child_name: String,
    pub child_birth_date: Date,
    pub child_cpr: Option<Cpr>,
    /// The child's school or daycare.
    pub child_institution: Option<String>,
    pub status: CaseStatus,
    pub closed_reason: Option<String>,
    pub coordinator_id: StaffId,
    pub opened_on: Date,
    pub first_concern_on: Option<Date>,
    pub first_meeting_on: Option<Date>,
}

impl Case {
    pub fn validate(&self, today: Date) -> Result<(), ValidationError> {
        self.validate_fields(today)?;
        self.validate_record()
    }

    /// Each field on its own.
    pub fn validate_fields(&self, today: Date) -> Result<(), ValidationError> {
        text::required_line("child_name", &self.child_name, NAME_MAX)?;
        not_future("child_birth_date", self.child_birth_date, today)?;
        if let Some(cpr) = &self.child_cpr {
            cpr.birth_date()?;
        }
        opt_line("child_institution", &self.child_institution, SHORT_TEXT_MAX)?;
        not_future("opened_on", self.opened_on, today)?;
        if let Some(d) = self.first_concern_on {
            not_future("first_concern_on", d, today)?;
        }
        if let Some(d) = self.first_meeting_on {
            plausible("first_meeting_on", d)?;
        }
        if let Some(r) = &self.closed_reason {
            text::optional_line("closed_reason", r, SHORT_TEXT_MAX)?;
        }
        Ok(())
    }

    /// The rules between fields.
    pub fn validate_record(&self) -> Result<(), ValidationError> {
        if let Some(cpr) = &self.child_cpr {
            if cpr.birth_date()? != self.child_birth_date {
                return Err(ValidationError::CprBirthDateMismatch);
            }
        }
        not_before(
            "opened_on",
            self.opened_on,
            self.child_birth_date,
            "child_birth_date",
        )?;
        if let Some(d) = self.first_concern_on {
            not_before(
                "first_concern_on",
                d,
                self.child_birth_date,
                "child_birth_date",
            )?;
        }
        if let Some(d) = self.first_meeting_on {
            not_before(
                "first_meeting_on",
                d,
                self.first_concern_on.unwrap_or(self.child_birth_date),
                "first_concern_on",
            )?;
        }
        match self.status {
            CaseStatus::Open => {
                if self.closed_reason.is_some() {
                    return Err(ValidationError::WrongCase {
                        what: "closed_reason",
                    });
                }
            }
            CaseStatus::Closed => match &self.closed_reason {
                Some(r) if !r.trim().is_empty() => {}
                _ => return Err(ValidationError::CloseReasonRequired),
            },
        }
        Ok(())
    }
}

/// A member of staff taking part in a case, with their role on it. `legal_basis` records why a
/// participant from a sector no consent covers may take part (e.g. cross-sector exchange under
/// the law, with a written reason).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Participant {
    pub id: RowId,
    pub case_id: CaseId,
    pub staff_id: StaffId,
    pub role: String,
    pub legal_basis: Option<String>,
}

impl Participant {
    pub fn validate(&self) -> Result<(), ValidationError> {
        text::required_line("role", &self.role, NAME_MAX)?;
        opt_line("legal_basis", &self.legal_basis, SHORT_TEXT_MAX)
    }
}

/// A change of coordinator, with the handover note that explains it to the next one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Handover {
    pub id: RowId,
    pub case_id: CaseId,
    pub from_staff_id: StaffId,
    pub to_staff_id: StaffId,
    pub note: SensitiveText,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub at: OffsetDateTime,
}

impl Handover {
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.validate_fields()?;
        self.validate_record()
    }

    pub fn validate_fields(&self) -> Result<(), ValidationError> {
        if self.note.is_empty() {
            return Err(ValidationError::HandoverNoteRequired);
        }
        text::optional_text("note", self.note.as_str(), NOTE_TEXT_MAX)
    }

    pub fn validate_record(&self) -> Result<(), ValidationError> {
        if self.from_staff_id == self.to_staff_id {
            return Err(ValidationError::SameCoordinator);
        }
        Ok(())
    }
}

/// Someone in the child's family or network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Person {
    pub id: PersonId,
    pub case_id: CaseId,
    pub name: String,
    pub relation: RelationToChild,
    /// Holds parental custody (forældremyndighed).
    pub custody: bool,
    pub email: Option<String>,
    pub address: Option<SensitiveText>,
    /// Navne- og adressebeskyttelse: the address is shown only to the case's participants,
    /// never exported and never logged.
    pub protected_address: bool,
    pub language: Option<String>,
    pub interpreter_needed: bool,
    pub do_not_contact: bool,
    pub do_not_contact_reason: Option<String>,
}

impl Person {
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.validate_fields()?;
        self.validate_record()
    }

    pub fn validate_fields(&self) -> Result<(), ValidationError> {
        text::required_line("name", &self.name, NAME_MAX)?;
        if let Some(e) = self.email.as_deref().filter(|e| !e.is_empty()) {
            text::email("email", e)?;
        }
        if let Some(a) = &self.address {
            text::optional_text("address", a.as_str(), SHORT_TEXT_MAX)?;
        }
        opt_line("language", &self.language, NAME_MAX)?;
        opt_line(
            "do_not_contact_reason",
            &self.do_not_contact_reason,
            SHORT_TEXT_MAX,
        )
    }

    pub fn validate_record(&self) -> Result<(), ValidationError> {
        if self.do_not_contact {
            match &self.do_not_contact_reason {
                Some(r) if !r.trim().is_empty() => {}
                _ => return Err(ValidationError::DoNotContactReasonRequired),
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Phone {
    pub id: RowId,
    pub case_id: CaseId,
    pub person_id: PersonId,
    pub number: String,
    /// "mobil", "arbejde", …
    pub label: Option<String>,
}

impl Phone {
    pub fn validate(&self) -> Result<(), ValidationError> {
        text::phone("number", &self.number)?;
        opt_line("label", &self.label, NAME_MAX)
    }
}

/// A relation in the family network as of a date. A later row for the same pair supersedes an
/// earlier one from its date on, so the network's history can be stepped back in time.
/// `from_person_id: None` means the child.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Relation {
    pub id: RowId,
    pub case_id: CaseId,
    pub from_person_id: Option<PersonId>,
    pub to_person_id: PersonId,
    pub quality: RelationQuality,
    pub as_of: Date,
}

impl Relation {
    pub fn validate(&self, today: Date) -> Result<(), ValidationError> {
        self.validate_fields(today)?;
        self.validate_record()
    }

    pub fn validate_fields(&self, today: Date) -> Result<(), ValidationError> {
        not_future("as_of", self.as_of, today)
    }

    pub fn validate_record(&self) -> Result<(), ValidationError> {
        if self.from_person_id == Some(self.to_person_id) {
            return Err(ValidationError::RelationToSelf);
        }
        Ok(())
    }
}

/// A case note. Once `status` is `Signed` it is a legal record and never changes; corrections
/// are addenda: new notes with `addendum_to` set to the signed note.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CaseNote {
    pub id: NoteId,
    pub case_id: CaseId,
    pub author_id: StaffId,
    pub kind: NoteKind,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub occurred_at: OffsetDateTime,
    pub body: SensitiveText,
    /// The child's own words, verbatim.
    pub child_words: SensitiveText,
    /// The family's perspective.
    pub family_perspective: SensitiveText,
    /// A statutory note (notatpligt) rather than a working note.
    pub statutory: bool,
    pub audience: Audience,
    pub status: NoteStatus,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "specta", specta(type = Option<String>))]
    pub signed_at: Option<OffsetDateTime>,
    /// Hash of the signed content; set when signed, the proof that it never changed.
    pub content_hash: Option<String>,
    pub addendum_to: Option<NoteId>,
}

impl CaseNote {
    pub fn validate(&self, now: OffsetDateTime) -> Result<(), ValidationError> {
        self.validate_fields(now)?;
        self.validate_record()
    }

    pub fn validate_record(&self) -> Result<(), ValidationError> {
        if self.body.is_empty() && self.child_words.is_empty() && self.family_perspective.is_empty()
        {
            return Err(ValidationError::Required { field: "body" });
        }
        Ok(())
    }

    pub fn validate_fields(&self, now: OffsetDateTime) -> Result<(), ValidationError> {
        plausible("occurred_at", self.occurred_at.date())?;
        if let Some(signed) = self.signed_at {
            plausible("signed_at", signed.date())?;
            if signed > now + CLOCK_SLACK {
                return Err(ValidationError::DateInFuture { field: "signed_at" });
            }
        }
        if self.occurred_at > now + CLOCK_SLACK {
            return Err(ValidationError::DateInFuture {
                field: "occurred_at",
            });
        }
        text::optional_text("body", self.body.as_str(), NOTE_TEXT_MAX)?;
        text::optional_text("child_words", self.child_words.as_str(), NOTE_TEXT_MAX)?;
        text::optional_text(
            "family_perspective",
            self.family_perspective.as_str(),
            NOTE_TEXT_MAX,
        )
    }
}

/// The parents' consent to share information with the given sectors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Consent {
    pub id: ConsentId,
    pub case_id: CaseId,
    pub given_by: PersonId,
    pub sectors: BTreeSet<ConsentSector>,
    pub valid_from: Date,
    pub valid_to: Option<Date>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "specta", specta(type = Option<String>))]
    pub withdrawn_at: Option<OffsetDateTime>,
}

impl Consent {
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.validate_fields()?;
        self.validate_record()
    }

    pub fn validate_fields(&self) -> Result<(), ValidationError> {
        if self.sectors.is_empty() {
            return Err(ValidationError::NoSectors);
        }
        plausible("valid_from", self.valid_from)?;
        if let Some(to) = self.valid_to {
            plausible("valid_to", to)?;
        }
        Ok(())
    }

    pub fn validate_record(&self) -> Result<(), ValidationError> {
        if let Some(to) = self.valid_to {
            not_before("valid_to", to, self.valid_from, "valid_from")?;
        }
        Ok(())
    }

    /// Whether the consent covers `sector` on `day`.
    pub fn covers(&self, sector: ConsentSector, day: Date) -> bool {
        self.sectors.contains(&sector)
            && self.valid_from <= day
            && self.valid_to.is_none_or(|to| day <= to)
            && self.withdrawn_at.is_none_or(|w| day < w.date())
    }
}

/// What a consent means on a given day, from its dates and withdrawal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    /// In force, and not ending within [`CONSENT_EXPIRY_WARNING_DAYS`].
    Valid,
    /// In force, and ending within [`CONSENT_EXPIRY_WARNING_DAYS`]: renew it with the family.
    ExpiresSoon,
    /// Given, but in force only from a later day.
    NotYetValid,
    /// Its last day has passed.
    Expired,
    /// The family withdrew it.
    Withdrawn,
}

/// A consent ending within this many days is flagged for renewal.
pub const CONSENT_EXPIRY_WARNING_DAYS: i64 = 30;

impl ConsentState {
    /// Whether information may be shared under it today.
    pub fn in_force(self) -> bool {
        matches!(self, ConsentState::Valid | ConsentState::ExpiresSoon)
    }

    /// The state that tells most about a set of consents (the best one: a valid consent
    /// outweighs an expired one); `None` when there are none.
    pub fn best(states: impl IntoIterator<Item = ConsentState>) -> Option<ConsentState> {
        states.into_iter().min()
    }
}

impl Consent {
    /// The consent's state on `today` (agrees with [`Consent::covers`]).
    pub fn state(&self, today: Date) -> ConsentState {
        if self.withdrawn_at.is_some_and(|w| w.date() <= today) {
            ConsentState::Withdrawn
        } else if today < self.valid_from {
            ConsentState::NotYetValid
        } else {
            match self.valid_to {
                Some(to) if today > to => ConsentState::Expired,
                Some(to) if (to - today).whole_days() <= CONSENT_EXPIRY_WARNING_DAYS => {
                    ConsentState::ExpiresSoon
                }
                _ => ConsentState::Valid,
            }
        }
    }
}

/// An agreement (aftale) with the family: what, who is responsible, by when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Agreement {
    pub id: AgreementId,
    pub case_id: CaseId,
    pub what: String,
    pub responsible_staff_id: Option<StaffId>,
    pub responsible_person_id: Option<PersonId>,
    pub due_on: Option<Date>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "specta", specta(type = Option<String>))]
    pub done_at: Option<OffsetDateTime>,
}

impl Agreement {
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.validate_fields()?;
        self.validate_record()
    }

    pub fn validate_fields(&self) -> Result<(), ValidationError> {
        text::required_line("what", &self.what, SHORT_TEXT_MAX)?;
        if let Some(d) = self.due_on {
            plausible("due_on", d)?;
        }
        Ok(())
    }

    pub fn validate_record(&self) -> Result<(), ValidationError> {
        if self.responsible_staff_id.is_some() == self.responsible_person_id.is_some() {
            return Err(ValidationError::ResponsibleRequired);
        }
        Ok(())
    }
}

/// A planned home visit, meeting or network meeting: when, where, and who is invited from the
/// family's network and from the professionals. Once held it becomes the note of that meeting
/// (`note_id`); a cancelled one stays, marked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Appointment {
    pub id: AppointmentId,
    pub case_id: CaseId,
    pub kind: AppointmentKind,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub starts_at: OffsetDateTime,
    pub place: String,
    pub invited_persons: BTreeSet<PersonId>,
    pub invited_staff: BTreeSet<StaffId>,
    /// The note written of the meeting once it was held.
    pub note_id: Option<NoteId>,
    pub cancelled: bool,
}

/// The most people one appointment invites.
pub const MAX_INVITED: usize = 60;

impl Appointment {
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.validate_fields()?;
        self.validate_record()
    }

    pub fn validate_fields(&self) -> Result<(), ValidationError> {
        plausible("starts_at", self.starts_at.date())?;
        text::optional_line("place", &self.place, SHORT_TEXT_MAX)?;
        if self.invited_persons.len() + self.invited_staff.len() > MAX_INVITED {
            return Err(ValidationError::TooLong {
                field: "invited",
                len: self.invited_persons.len() + self.invited_staff.len(),
                max: MAX_INVITED,
            });
        }
        Ok(())
    }

    pub fn validate_record(&self) -> Result<(), ValidationError> {
        Ok(())
    }
}

/// Two devices changed the same field of a record without seeing each other's change. The
/// newer write (by hybrid logical clock, then device) is the field's value; the other value is
/// kept here, with who wrote each and when, until someone on the case picks one or writes a
/// merged value. Found by the central service; syncs like any record of the case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub id: RowId,
    pub case_id: CaseId,
    /// The record and field both changed.
    pub entity: EntityKind,
    pub entity_id: uuid::Uuid,
    pub field: String,
    /// The value the field holds (the newer write), as JSON text.
    pub kept_value: String,
    pub kept_hlc: Hlc,
    pub kept_by: Option<StaffId>,
    /// The concurrent value that lost, as JSON text.
    pub other_value: String,
    pub other_hlc: Hlc,
    pub other_by: Option<StaffId>,
    #[serde(with = "time::serde::rfc3339")]
    pub detected_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    pub resolved_by: Option<StaffId>,
}
