//! What a write may do: one rule set, decided from the record before the write, the record
//! after it, who writes, and the few facts about the case that the rules need. The desktop
//! app's store runs it before it writes (for the worker's convenience: an error at once), and
//! the central service runs it on every pushed change after the merge (the authority: a
//! modified client meets the same rules).
//!
//! The rules over a single field (lengths, formats, dates) and over a whole record (a closed
//! case has a reason, an agreement one responsible) are each record's `validate`. The rules
//! here compare the change with the stored state and with the writer:
//!
//! - A note's author is fixed when it is created, to the worker who creates it; only the
//!   author changes, signs or discards a draft; a signed note never changes and its hash is
//!   the hash of its content; an addendum refers to a signed note of the same case.
//! - A case is opened by a member of its team, who is its coordinator. Its team never changes.
//!   The coordinator changes only by a handover, written by the coordinator (or a leader on
//!   the case's team), from the coordinator of record. Deleting a case is for its coordinator
//!   or a leader on its team.
//! - The participants of a case (who may see a protected address, and on what legal basis)
//!   are changed by its coordinator or a leader on its team.
//! - A protected address is unprotected only by the coordinator or a leader on the team; a
//!   worker who may not see a protected address cannot change it either.
//! - A withdrawn consent never changes. A case's content does not change while it is closed.
//! - Conflicts are found by the central service; a worker only marks one resolved, as
//!   themselves.

use crate::model::*;
use crate::rules;
use crate::ValidationError;
use feltkontor_wire::{
    CaseId, CaseStatus, EntityKind, NoteId, NoteStatus, PersonId, Profession, StaffId, TeamId,
};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// Any synced record, typed.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Team(Team),
    Staff(Staff),
    TeamMember(TeamMember),
    Case(Case),
    Participant(Participant),
    Handover(Handover),
    Person(Person),
    Phone(Phone),
    Relation(Relation),
    Note(CaseNote),
    Consent(Consent),
    Agreement(Agreement),
    Conflict(Conflict),
    Appointment(Appointment),
}

macro_rules! into_record {
    ($($ty:ident => $variant:ident),* $(,)?) => {
        $(impl From<$ty> for Record {
            fn from(r: $ty) -> Record {
                Record::$variant(r)
            }
        })*
    };
}

into_record!(
    Team => Team,
    Staff => Staff,
    TeamMember => TeamMember,
    Case => Case,
    Participant => Participant,
    Handover => Handover,
    Person => Person,
    Phone => Phone,
    Relation => Relation,
    CaseNote => Note,
    Consent => Consent,
    Agreement => Agreement,
    Conflict => Conflict,
    Appointment => Appointment,
);

/// The fields of each kind of record, as they are serialised (and stored, and synced); `id`
/// first. A change that names any other field (besides `archived`, the tombstone) is refused.
pub const fn fields_of(kind: EntityKind) -> &'static [&'static str] {
    match kind {
        EntityKind::Team => &["id", "name", "district"],
        EntityKind::Staff => &["id", "name", "initials", "profession", "sector"],
        EntityKind::TeamMember => &["id", "team_id", "staff_id"],
        EntityKind::Case => &[
            "id",
            "team_id",
            "child_name",
            "child_birth_date",
            "child_cpr",
            "child_institution",
            "status",
            "closed_reason",
            "coordinator_id",
            "opened_on",
            "first_concern_on",
            "first_meeting_on",
        ],
        EntityKind::Participant => &["id", "case_id", "staff_id", "role", "legal_basis"],
        EntityKind::Handover => &[
            "id",
            "case_id",
            "from_staff_id",
            "to_staff_id",
            "note",
            "at",
        ],
        EntityKind::Person => &[
            "id",
            "case_id",
            "name",
            "relation",
            "custody",
            "email",
            "address",
            "protected_address",
            "language",
            "interpreter_needed",
            "do_not_contact",
            "do_not_contact_reason",
        ],
        EntityKind::Phone => &["id", "case_id", "person_id", "number", "label"],
        EntityKind::Relation => &[
            "id",
            "case_id",
            "from_person_id",
            "to_person_id",
            "quality",
            "as_of",
        ],
        EntityKind::Note => &[
            "id",
            "case_id",
            "author_id",
            "kind",
            "occurred_at",
            "body",
            "child_words",
            "family_perspective",
            "statutory",
            "audience",
            "status",
            "signed_at",
            "content_hash",
            "addendum_to",
        ],
        EntityKind::Consent => &[
            "id",
            "case_id",
            "given_by",
            "sectors",
            "valid_from",
            "valid_to",
            "withdrawn_at",
        ],
        EntityKind::Agreement => &[
            "id",
            "case_id",
            "what",
            "responsible_staff_id",
            "responsible_person_id",
            "due_on",
            "done_at",
        ],
        EntityKind::Appointment => &[
            "id",
            "case_id",
            "kind",
            "starts_at",
            "place",
            "invited_persons",
            "invited_staff",
            "note_id",
            "cancelled",
        ],
        EntityKind::Conflict => &[
            "id",
            "case_id",
            "entity",
            "entity_id",
            "field",
            "kept_value",
            "kept_hlc",
            "kept_by",
            "other_value",
            "other_hlc",
            "other_by",
            "detected_at",
            "resolved_at",
            "resolved_by",
        ],
    }
}

/// Whether a change may name `field` of a `kind` record (`archived` is the tombstone).
pub fn is_field(kind: EntityKind, field: &str) -> bool {
    field == "archived" || (field != "id" && fields_of(kind).contains(&field))
}

impl Record {
    pub fn kind(&self) -> EntityKind {
        match self {
            Record::Team(_) => EntityKind::Team,
            Record::Staff(_) => EntityKind::Staff,
            Record::TeamMember(_) => EntityKind::TeamMember,
            Record::Case(_) => EntityKind::Case,
            Record::Participant(_) => EntityKind::Participant,
            Record::Handover(_) => EntityKind::Handover,
            Record::Person(_) => EntityKind::Person,
            Record::Phone(_) => EntityKind::Phone,
            Record::Relation(_) => EntityKind::Relation,
            Record::Note(_) => EntityKind::Note,
            Record::Consent(_) => EntityKind::Consent,
            Record::Agreement(_) => EntityKind::Agreement,
            Record::Conflict(_) => EntityKind::Conflict,
            Record::Appointment(_) => EntityKind::Appointment,
        }
    }

    /// Reads a record's JSON form (with its `id`) as its type. The error names no value.
    pub fn from_json(
        kind: EntityKind,
        data: &Map<String, Value>,
    ) -> Result<Record, ValidationError> {
        fn de<T: serde::de::DeserializeOwned>(
            data: &Map<String, Value>,
        ) -> Result<T, ValidationError> {
            // serde's message can quote a value: it is not kept.
            T::deserialize(&Value::Object(data.clone())).map_err(|_| ValidationError::Malformed)
        }
        if let Some(f) = data.keys().find(|k| !fields_of(kind).contains(&k.as_str())) {
            let _ = f;
            return Err(ValidationError::UnknownField);
        }
        Ok(match kind {
            EntityKind::Team => Record::Team(de(data)?),
            EntityKind::Staff => Record::Staff(de(data)?),
            EntityKind::TeamMember => Record::TeamMember(de(data)?),
            EntityKind::Case => Record::Case(de(data)?),
            EntityKind::Participant => Record::Participant(de(data)?),
            EntityKind::Handover => Record::Handover(de(data)?),
            EntityKind::Person => Record::Person(de(data)?),
            EntityKind::Phone => Record::Phone(de(data)?),
            EntityKind::Relation => Record::Relation(de(data)?),
            EntityKind::Note => Record::Note(de(data)?),
            EntityKind::Consent => Record::Consent(de(data)?),
            EntityKind::Agreement => Record::Agreement(de(data)?),
            EntityKind::Conflict => Record::Conflict(de(data)?),
            EntityKind::Appointment => Record::Appointment(de(data)?),
        })
    }

    /// The record's fields in their one written form (each id hyphenated in lower case, each
    /// date and time as the model writes it).
    pub fn to_json(&self) -> Map<String, Value> {
        fn ser<T: serde::Serialize>(r: &T) -> Map<String, Value> {
            match serde_json::to_value(r) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            }
        }
        match self {
            Record::Team(r) => ser(r),
            Record::Staff(r) => ser(r),
            Record::TeamMember(r) => ser(r),
            Record::Case(r) => ser(r),
            Record::Participant(r) => ser(r),
            Record::Handover(r) => ser(r),
            Record::Person(r) => ser(r),
            Record::Phone(r) => ser(r),
            Record::Relation(r) => ser(r),
            Record::Note(r) => ser(r),
            Record::Consent(r) => ser(r),
            Record::Agreement(r) => ser(r),
            Record::Conflict(r) => ser(r),
            Record::Appointment(r) => ser(r),
        }
    }

    /// Refuses a field of `written` that is not in the record's one written form: the same
    /// value written another way (`{…}` or upper-case ids, a timestamp in another offset or
    /// with fractions of a second) would be read as equal by the rules and as different by
    /// whatever compares text or days.
    pub fn check_canonical<'k>(
        &self,
        written: impl IntoIterator<Item = (&'k String, &'k Value)>,
    ) -> Result<(), ValidationError> {
        let canonical = self.normalized().to_json();
        for (field, value) in written {
            if canonical.get(field).is_some_and(|c| c != value) {
                return Err(ValidationError::Malformed);
            }
        }
        Ok(())
    }

    /// The case the record belongs to (the case itself for a case); `None` for reference data.
    pub fn case_id(&self) -> Option<CaseId> {
        Some(match self {
            Record::Team(_) | Record::Staff(_) | Record::TeamMember(_) => return None,
            Record::Case(c) => c.id,
            Record::Participant(r) => r.case_id,
            Record::Handover(r) => r.case_id,
            Record::Person(r) => r.case_id,
            Record::Phone(r) => r.case_id,
            Record::Relation(r) => r.case_id,
            Record::Note(r) => r.case_id,
            Record::Consent(r) => r.case_id,
            Record::Agreement(r) => r.case_id,
            Record::Conflict(r) => r.case_id,
            Record::Appointment(r) => r.case_id,
        })
    }

    /// The record's own rules, over each field and over the whole record, on `now`.
    pub fn validate(&self, now: OffsetDateTime) -> Result<(), ValidationError> {
        self.validate_fields(now)?;
        self.validate_record()
    }

    /// The rules between the record's fields (a closed case has a reason, an agreement one
    /// responsible, …): what two valid writes of different fields can break together.
    pub fn validate_record(&self) -> Result<(), ValidationError> {
        match self {
            Record::Case(r) => r.validate_record(),
            Record::Handover(r) => r.validate_record(),
            Record::Person(r) => r.validate_record(),
            Record::Relation(r) => r.validate_record(),
            Record::Note(r) => r.validate_record(),
            Record::Consent(r) => r.validate_record(),
            Record::Agreement(r) => r.validate_record(),
            Record::Appointment(r) => r.validate_record(),
            Record::Team(_)
            | Record::Staff(_)
            | Record::TeamMember(_)
            | Record::Participant(_)
            | Record::Phone(_)
            | Record::Conflict(_) => Ok(()),
        }
    }

    /// Each field's own rules (lengths, formats, dates), on `now`.
    pub fn validate_fields(&self, now: OffsetDateTime) -> Result<(), ValidationError> {
        let today = now.date();
        match self {
            Record::Team(r) => r.validate(),
            Record::Staff(r) => r.validate(),
            Record::TeamMember(_) => Ok(()),
            Record::Case(r) => r.validate_fields(today),
            Record::Participant(r) => r.validate(),
            Record::Handover(r) => r.validate_fields(),
            Record::Person(r) => r.validate_fields(),
            Record::Phone(r) => r.validate(),
            Record::Relation(r) => r.validate_fields(today),
            Record::Note(r) => r.validate_fields(now),
            Record::Consent(r) => {
                r.validate_fields()?;
                not_ahead("withdrawn_at", r.withdrawn_at, now)
            }
            Record::Agreement(r) => {
                r.validate_fields()?;
                not_ahead("done_at", r.done_at, now)
            }
            Record::Conflict(_) => Ok(()),
            Record::Appointment(r) => r.validate_fields(),
        }
    }

    /// The record with every timestamp in its one form: UTC, whole seconds
    /// ([`crate::model::normalize_timestamp`]), as the app writes them.
    pub fn normalized(&self) -> Record {
        use crate::model::normalize_timestamp as n;
        let mut r = self.clone();
        match &mut r {
            Record::Note(x) => {
                x.occurred_at = n(x.occurred_at);
                x.signed_at = x.signed_at.map(n);
            }
            Record::Consent(x) => x.withdrawn_at = x.withdrawn_at.map(n),
            Record::Agreement(x) => x.done_at = x.done_at.map(n),
            Record::Appointment(x) => x.starts_at = n(x.starts_at),
            Record::Handover(x) => x.at = n(x.at),
            Record::Conflict(x) => {
                x.detected_at = n(x.detected_at);
                x.resolved_at = x.resolved_at.map(n);
            }
            _ => {}
        }
        r
    }
}

/// A moment that may not lie ahead of `now` (beyond the clocks' slack).
fn not_ahead(
    field: &'static str,
    t: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(), ValidationError> {
    match t {
        Some(t) if t > now + crate::model::CLOCK_SLACK => {
            Err(ValidationError::DateInFuture { field })
        }
        _ => Ok(()),
    }
}

/// Who writes, in relation to the case the record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Writer {
    pub staff_id: StaffId,
    pub profession: Profession,
    /// A member of the case's team.
    pub team_member: bool,
    /// The case's coordinator (of record, before this write).
    pub coordinator: bool,
    /// A participant of the case (the coordinator is one): may see a protected address.
    pub participant: bool,
}

impl Writer {
    /// The coordinator, or a leader on the case's team: may make the privileged changes.
    pub fn privileged(&self) -> bool {
        self.coordinator || (self.team_member && self.profession == Profession::Leader)
    }
}

/// What the rules need to know beyond the record itself, read by the caller from its store.
pub trait Facts {
    type Error;
    /// The live case.
    fn case(&mut self, id: CaseId) -> Result<Option<Case>, Self::Error>;
    fn staff(&mut self, id: StaffId) -> Result<Option<Staff>, Self::Error>;
    /// The live person.
    fn person(&mut self, id: PersonId) -> Result<Option<Person>, Self::Error>;
    /// The note, live or not.
    fn note(&mut self, id: NoteId) -> Result<Option<CaseNote>, Self::Error>;
    fn consents(&mut self, case: CaseId) -> Result<Vec<Consent>, Self::Error>;
    /// The live persons of the case (for the addresses that are protected).
    fn persons(&mut self, case: CaseId) -> Result<Vec<Person>, Self::Error>;
    fn is_member(&mut self, team: TeamId, staff: StaffId) -> Result<bool, Self::Error>;
    /// Whether a handover of `case` from `from` to `to` is recorded.
    fn handover(&mut self, case: CaseId, from: StaffId, to: StaffId) -> Result<bool, Self::Error>;
}

/// Why a write is refused: a broken rule, or a failure to read the facts.
#[derive(Debug)]
pub enum Refusal<E> {
    Rule(ValidationError),
    Facts(E),
}

impl<E> From<ValidationError> for Refusal<E> {
    fn from(e: ValidationError) -> Self {
        Refusal::Rule(e)
    }
}

/// One write of one record.
pub struct Change<'a> {
    /// The record before the write, deleted or not (`None` when it is new).
    pub before: Option<&'a Record>,
    /// The record after the write.
    pub after: &'a Record,
    /// The write deletes the record (sets its tombstone).
    pub archives: bool,
    /// `before` is deleted (the write changes, or restores, a deleted record).
    pub before_archived: bool,
    pub now: OffsetDateTime,
    /// Which of the record's own rules [`check`] runs (the service runs them itself, in its
    /// own order, to resolve concurrent writes by its policy).
    pub validation: Validation,
}

/// Which of a record's own rules a check runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    /// Every field's and the rules between fields.
    Full,
    /// None: the caller validated.
    None,
}

fn privileged<E>(w: &Writer, what: &'static str) -> Result<(), Refusal<E>> {
    if w.privileged() {
        Ok(())
    } else {
        Err(ValidationError::Privileged { what }.into())
    }
}

fn facts<T, E>(r: Result<T, E>) -> Result<T, Refusal<E>> {
    r.map_err(Refusal::Facts)
}

/// Checks one write against every rule. Reference data (teams, staff, memberships) are
/// checked only for their own validity: who may write them is the caller's decision (the
/// service refuses them from devices).
pub fn check<F: Facts>(c: &Change<'_>, who: &Writer, f: &mut F) -> Result<(), Refusal<F::Error>> {
    let before = c.before;
    if let Some(b) = before {
        if b.kind() != c.after.kind() {
            return Err(ValidationError::WrongCase { what: "record" }.into());
        }
        if b.case_id() != c.after.case_id() {
            return Err(ValidationError::WrongCase { what: "record" }.into());
        }
    }
    if !c.archives && c.validation == Validation::Full {
        c.after.validate(c.now)?;
    }
    match c.after {
        Record::Team(_) | Record::Staff(_) | Record::TeamMember(_) => Ok(()),
        Record::Case(after) => {
            let before = match before {
                Some(Record::Case(b)) => Some(b),
                _ => None,
            };
            check_case(before, after, c.archives, who, f)
        }
        Record::Note(after) => {
            let before = match before {
                Some(Record::Note(b)) => Some(b),
                _ => None,
            };
            check_note(before, after, c.archives, who, f)
        }
        other => {
            let case_id = other.case_id().expect("case content has a case");
            let case = open_case(f, case_id)?;
            match other {
                Record::Participant(p) => {
                    // Who a participant row names is fixed: another worker is another row.
                    if let Some(Record::Participant(b)) = before {
                        if b.staff_id != p.staff_id {
                            return Err(ValidationError::RecordFixed {
                                what: "participant",
                            }
                            .into());
                        }
                    }
                    // Leaving a case oneself is never a privilege.
                    if c.archives && p.staff_id == who.staff_id {
                        return Ok(());
                    }
                    privileged(who, "participants")?;
                    if c.archives {
                        return Ok(());
                    }
                    let staff = facts(f.staff(p.staff_id))?
                        .ok_or(ValidationError::WrongCase { what: "staff" })?;
                    if case.coordinator_id == p.staff_id {
                        return Err(ValidationError::AlreadyOnCase {
                            what: "participant",
                        }
                        .into());
                    }
                    if let Some(sector) = rules::consent_sector(staff.profession) {
                        let today = c.now.date();
                        let covered = facts(f.consents(case_id))?
                            .iter()
                            .any(|c| c.covers(sector, today));
                        // A standard basis with its reason, never free text alone.
                        let has_basis = p
                            .legal_basis
                            .as_deref()
                            .and_then(crate::legal_basis::parse)
                            .is_some();
                        if !covered && !has_basis {
                            return Err(ValidationError::LegalBasisRequired.into());
                        }
                    }
                    Ok(())
                }
                Record::Handover(h) => {
                    if before.is_some() || c.archives {
                        return Err(ValidationError::RecordFixed { what: "handover" }.into());
                    }
                    privileged(who, "coordinator")?;
                    if h.from_staff_id != case.coordinator_id {
                        return Err(ValidationError::WrongCase {
                            what: "coordinator",
                        }
                        .into());
                    }
                    if facts(f.staff(h.to_staff_id))?.is_none() {
                        return Err(ValidationError::WrongCase { what: "staff" }.into());
                    }
                    Ok(())
                }
                Record::Person(p) => {
                    if let Some(Record::Person(b)) = before {
                        if b.protected_address && !who.participant && b.address != p.address {
                            return Err(ValidationError::Privileged {
                                what: "protected_address",
                            }
                            .into());
                        }
                        if b.protected_address && !p.protected_address {
                            privileged(who, "protected_address")?;
                        }
                    }
                    Ok(())
                }
                Record::Phone(p) => person_in_case(f, p.person_id, case_id),
                Record::Relation(r) => {
                    if c.archives {
                        return Ok(());
                    }
                    if let Some(from) = r.from_person_id {
                        person_in_case(f, from, case_id)?;
                    }
                    person_in_case(f, r.to_person_id, case_id)
                }
                Record::Consent(k) => {
                    // Deleting a consent (an entry made in error), or changing or restoring a
                    // deleted one, takes away or gives participants their access: privileged.
                    // Recording a withdrawal the parents made is not.
                    let deletes = c.archives && !c.before_archived && before.is_some();
                    if deletes || c.before_archived {
                        privileged(who, "consents")?;
                    }
                    if let Some(Record::Consent(b)) = before {
                        if b.withdrawn_at.is_some() && !c.archives {
                            return Err(ValidationError::ConsentAlreadyWithdrawn.into());
                        }
                    }
                    if c.archives {
                        return Ok(());
                    }
                    person_in_case(f, k.given_by, case_id)?;
                    // Consent to share is the parents' (those with custody): never a
                    // teacher's, a neighbour's or a sibling's.
                    if let Some(Record::Consent(b)) = before {
                        if b.given_by == k.given_by {
                            return Ok(());
                        }
                    }
                    match facts(f.person(k.given_by))? {
                        Some(p) if p.custody => Ok(()),
                        _ => Err(ValidationError::ConsentNotByCustodian.into()),
                    }
                }
                Record::Agreement(a) => {
                    if c.archives {
                        return Ok(());
                    }
                    if let Some(s) = a.responsible_staff_id {
                        if facts(f.staff(s))?.is_none() {
                            return Err(ValidationError::WrongCase { what: "staff" }.into());
                        }
                    }
                    if let Some(p) = a.responsible_person_id {
                        person_in_case(f, p, case_id)?;
                    }
                    Ok(())
                }
                Record::Appointment(a) => {
                    if c.archives {
                        return Ok(());
                    }
                    // The place is seen by everyone on the case and printed on the visit
                    // sheet: it may not be (or hold) a protected address.
                    let place = crate::text::address_key(&a.place);
                    if !place.is_empty() {
                        for p in facts(f.persons(case_id))? {
                            let Some(addr) = p.address.as_ref().filter(|_| p.protected_address)
                            else {
                                continue;
                            };
                            if crate::text::same_address(
                                &place,
                                &crate::text::address_key(addr.as_str()),
                            ) {
                                return Err(ValidationError::PlaceIsProtectedAddress.into());
                            }
                        }
                    }
                    // Who is invited: people of this case's network, and staff that exist.
                    for p in &a.invited_persons {
                        person_in_case(f, *p, case_id)?;
                    }
                    for s in &a.invited_staff {
                        if facts(f.staff(*s))?.is_none() {
                            return Err(ValidationError::WrongCase { what: "staff" }.into());
                        }
                    }
                    // The note of the meeting is a note of this case.
                    if let Some(n) = a.note_id {
                        match facts(f.note(n))? {
                            Some(note) if note.case_id == case_id => {}
                            _ => return Err(ValidationError::WrongCase { what: "note" }.into()),
                        }
                    }
                    Ok(())
                }
                Record::Conflict(k) => {
                    let Some(Record::Conflict(b)) = before else {
                        return Err(ValidationError::Privileged { what: "conflict" }.into());
                    };
                    let mut unresolved = k.clone();
                    unresolved.resolved_at = b.resolved_at;
                    unresolved.resolved_by = b.resolved_by;
                    if c.archives
                        || &unresolved != b
                        || k.resolved_by.is_some_and(|s| s != who.staff_id)
                    {
                        return Err(ValidationError::Privileged { what: "conflict" }.into());
                    }
                    Ok(())
                }
                Record::Team(_)
                | Record::Staff(_)
                | Record::TeamMember(_)
                | Record::Case(_)
                | Record::Note(_) => unreachable!("handled above"),
            }
        }
    }
}

fn open_case<F: Facts>(f: &mut F, id: CaseId) -> Result<Case, Refusal<F::Error>> {
    let case = facts(f.case(id))?.ok_or(ValidationError::WrongCase { what: "case" })?;
    rules::check_case_open(&case)?;
    Ok(case)
}

fn person_in_case<F: Facts>(
    f: &mut F,
    person: PersonId,
    case: CaseId,
) -> Result<(), Refusal<F::Error>> {
    match facts(f.person(person))? {
        Some(p) if p.case_id == case => Ok(()),
        _ => Err(ValidationError::WrongCase { what: "person" }.into()),
    }
}

fn check_case<F: Facts>(
    before: Option<&Case>,
    after: &Case,
    archives: bool,
    who: &Writer,
    f: &mut F,
) -> Result<(), Refusal<F::Error>> {
    let Some(before) = before else {
        if archives {
            return Err(ValidationError::WrongCase { what: "case" }.into());
        }
        if after.status != CaseStatus::Open {
            return Err(ValidationError::CaseClosed.into());
        }
        if after.coordinator_id != who.staff_id || !facts(f.is_member(after.team_id, who.staff_id))?
        {
            return Err(ValidationError::Privileged { what: "case" }.into());
        }
        return Ok(());
    };
    if before.team_id != after.team_id {
        return Err(ValidationError::RecordFixed { what: "team_id" }.into());
    }
    if archives {
        return privileged(who, "case");
    }
    if before.coordinator_id != after.coordinator_id {
        privileged(who, "coordinator")?;
        if !facts(f.handover(after.id, before.coordinator_id, after.coordinator_id))? {
            return Err(ValidationError::HandoverNoteRequired.into());
        }
    }
    if before.status == CaseStatus::Closed && after.status == CaseStatus::Closed && before != after
    {
        return Err(ValidationError::CaseClosed.into());
    }
    // Closing a case and reopening it are the coordinator's (or a leader's) decision; a
    // closed case names why.
    if before.status != after.status {
        privileged(who, "case status")?;
    }
    // Visible text: a reason of only spaces or invisible characters names nothing.
    if after.status == CaseStatus::Closed
        && after
            .closed_reason
            .as_deref()
            .is_none_or(|r| r.chars().all(crate::text::is_invisible))
    {
        return Err(ValidationError::CloseReasonRequired.into());
    }
    Ok(())
}

fn check_note<F: Facts>(
    before: Option<&CaseNote>,
    after: &CaseNote,
    archives: bool,
    who: &Writer,
    f: &mut F,
) -> Result<(), Refusal<F::Error>> {
    if before.is_some_and(|b| b.status == NoteStatus::Signed) {
        return Err(ValidationError::NoteSigned.into());
    }
    // The author is fixed at creation to the worker who creates it.
    let author = before.map_or(after.author_id, |b| b.author_id);
    if author != who.staff_id || after.author_id != who.staff_id {
        return Err(ValidationError::NotAuthor.into());
    }
    if let Some(b) = before {
        rules::check_note_change(b, after)?;
    }
    open_case(f, after.case_id)?;
    if archives {
        return Ok(());
    }
    match after.status {
        NoteStatus::Draft => {
            if after.signed_at.is_some() || after.content_hash.is_some() {
                return Err(ValidationError::SignatureInvalid.into());
            }
        }
        NoteStatus::Signed => {
            if after.signed_at.is_none()
                || after.content_hash.as_deref() != Some(rules::content_hash(after).as_str())
            {
                return Err(ValidationError::SignatureInvalid.into());
            }
        }
    }
    if let Some(target) = after.addendum_to {
        match facts(f.note(target))? {
            Some(t) if t.case_id == after.case_id && t.status == NoteStatus::Signed => {}
            _ => return Err(ValidationError::AddendumTargetInvalid.into()),
        }
    }
    Ok(())
}
