//! The mutations of the domain. Each validates its input against the domain rules and the
//! stored state before it writes anything; an error rolls back the whole transaction, so no
//! partial rows and no change-log entries survive it.

use super::record::Writer;
use super::Store;
use crate::domain::rules;
use crate::domain::*;
use crate::error::{Result, ValidationError};
use feltkontor_wire::*;
use rusqlite::TransactionBehavior;

impl Store {
    /// Runs `f` in one immediate transaction: everything it writes, with its change-log
    /// entries, commits together when it returns `Ok`, and nothing at all when it returns `Err`.
    pub fn write<R>(&mut self, f: impl FnOnce(&mut Writer<'_>) -> Result<R>) -> Result<R> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut w = Writer::begin(tx, self.clock.as_ref(), self.worker_id)?;
        let r = f(&mut w)?;
        w.finish()?;
        Ok(r)
    }
}

impl Writer<'_> {
    fn today(&self) -> time::Date {
        self.now().date()
    }

    fn open_case_of(&self, case_id: CaseId) -> Result<Case> {
        let case: Case = self.require(case_id.0)?;
        rules::check_case_open(&case)?;
        Ok(case)
    }

    fn person_in_case(&self, person_id: PersonId, case_id: CaseId) -> Result<Person> {
        let p: Person = self.require(person_id.0)?;
        if p.case_id != case_id {
            return Err(ValidationError::WrongCase { what: "person" }.into());
        }
        Ok(p)
    }

    pub fn put_team(&mut self, team: &Team) -> Result<()> {
        team.validate()?;
        self.put(team)?;
        Ok(())
    }

    pub fn put_staff(&mut self, staff: &Staff) -> Result<()> {
        staff.validate()?;
        self.put(staff)?;
        Ok(())
    }

    pub fn add_team_member(&mut self, team_id: TeamId, staff_id: StaffId) -> Result<TeamMember> {
        self.require::<Team>(team_id.0)?;
        self.require::<Staff>(staff_id.0)?;
        let m = TeamMember {
            id: RowId::new(),
            team_id,
            staff_id,
        };
        self.put(&m)?;
        Ok(m)
    }

    /// Opens a new case. Its coordinator is set here and changes only by [`Writer::handover`].
    pub fn open_case(&mut self, case: &Case) -> Result<()> {
        if self.get::<Case>(case.id.0)?.is_some() {
            return Err(ValidationError::AlreadyOnCase { what: "case" }.into());
        }
        if case.status != CaseStatus::Open {
            return Err(ValidationError::CaseClosed.into());
        }
        case.validate(self.today())?;
        self.require::<Team>(case.team_id.0)?;
        self.require::<Staff>(case.coordinator_id.0)?;
        self.check_write(case, false)?;
        self.put(case)?;
        Ok(())
    }

    /// Changes the child's details and the case's dates. The coordinator and status change
    /// only through [`Writer::handover`] and [`Writer::close_case`].
    pub fn update_case(&mut self, case: &Case) -> Result<()> {
        let old = self.open_case_of(case.id)?;
        if old.coordinator_id != case.coordinator_id {
            return Err(ValidationError::HandoverNoteRequired.into());
        }
        if old.status != case.status {
            return Err(ValidationError::CloseReasonRequired.into());
        }
        case.validate(self.today())?;
        self.require::<Team>(case.team_id.0)?;
        self.check_write(case, false)?;
        self.put(case)?;
        Ok(())
    }

    /// Hands the case over to a new coordinator, with the note that tells them where it stands.
    pub fn handover(&mut self, case_id: CaseId, to: StaffId, note: &str) -> Result<Handover> {
        let mut case = self.open_case_of(case_id)?;
        self.require::<Staff>(to.0)?;
        let handover = Handover {
            id: RowId::new(),
            case_id,
            from_staff_id: case.coordinator_id,
            to_staff_id: to,
            note: SensitiveText(note.trim().to_owned()),
            at: self.now(),
        };
        handover.validate()?;
        self.check_write(&handover, false)?;
        self.put(&handover)?;
        case.coordinator_id = to;
        self.check_write(&case, false)?;
        self.put(&case)?;
        Ok(handover)
    }

    pub fn close_case(&mut self, case_id: CaseId, reason: &str) -> Result<Case> {
        let mut case = self.open_case_of(case_id)?;
        if reason.chars().all(crate::domain::text::is_invisible) {
            return Err(ValidationError::CloseReasonRequired.into());
        }
        case.status = CaseStatus::Closed;
        case.closed_reason = Some(reason.trim().to_owned());
        case.validate(self.today())?;
        self.check_write(&case, false)?;
        self.put(&case)?;
        Ok(case)
    }

    /// Opens a closed case again (the coordinator's or a leader's decision); the reason it was
    /// closed stays in its history.
    pub fn reopen_case(&mut self, case_id: CaseId) -> Result<Case> {
        let mut case: Case = self.require(case_id.0)?;
        if case.status == CaseStatus::Open {
            return Ok(case);
        }
        case.status = CaseStatus::Open;
        case.closed_reason = None;
        case.validate(self.today())?;
        self.check_write(&case, false)?;
        self.put(&case)?;
        Ok(case)
    }

    /// Adds a participant. One from a sector that no valid consent covers today needs a
    /// recorded legal basis (e.g. exchange under the law on cross-sector cooperation).
    pub fn add_participant(&mut self, p: &Participant) -> Result<()> {
        let case = self.open_case_of(p.case_id)?;
        self.require::<Staff>(p.staff_id.0)?;
        p.validate()?;
        let exists: bool = self.tx.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM participants WHERE case_id = ?1 AND staff_id = ?2 AND archived = 0 AND id <> ?3)",
        )?
        .query_row([p.case_id.to_string(), p.staff_id.to_string(), p.id.to_string()], |r| r.get(0))?;
        if exists || case.coordinator_id == p.staff_id {
            return Err(ValidationError::AlreadyOnCase {
                what: "participant",
            }
            .into());
        }
        self.check_write(p, false)?;
        self.put(p)?;
        Ok(())
    }

    pub fn remove_participant(&mut self, id: RowId) -> Result<()> {
        let p: Participant = self.require(id.0)?;
        self.open_case_of(p.case_id)?;
        self.check_archive::<Participant>(id.0)?;
        self.archive::<Participant>(id.0)?;
        Ok(())
    }

    pub fn put_person(&mut self, person: &Person) -> Result<()> {
        self.open_case_of(person.case_id)?;
        if let Some(old) = self.get::<Person>(person.id.0)? {
            if old.case_id != person.case_id {
                return Err(ValidationError::WrongCase { what: "person" }.into());
            }
        }
        person.validate()?;
        self.check_write(person, false)?;
        self.put(person)?;
        Ok(())
    }

    pub fn archive_person(&mut self, id: PersonId) -> Result<()> {
        let p: Person = self.require(id.0)?;
        self.open_case_of(p.case_id)?;
        self.check_archive::<Person>(id.0)?;
        self.archive::<Person>(id.0)?;
        Ok(())
    }

    pub fn add_phone(&mut self, phone: &Phone) -> Result<()> {
        self.open_case_of(phone.case_id)?;
        self.person_in_case(phone.person_id, phone.case_id)?;
        phone.validate()?;
        self.check_write(phone, false)?;
        self.put(phone)?;
        Ok(())
    }

    pub fn remove_phone(&mut self, id: RowId) -> Result<()> {
        let phone: Phone = self.require(id.0)?;
        self.open_case_of(phone.case_id)?;
        self.archive::<Phone>(id.0)?;
        Ok(())
    }

    /// Records a relation as of a date; an earlier relation of the same pair stays as history.
    pub fn add_relation(&mut self, r: &Relation) -> Result<()> {
        self.open_case_of(r.case_id)?;
        r.validate(self.today())?;
        if let Some(from) = r.from_person_id {
            self.person_in_case(from, r.case_id)?;
        }
        self.person_in_case(r.to_person_id, r.case_id)?;
        self.check_write(r, false)?;
        self.put(r)?;
        Ok(())
    }

    /// Creates or updates a draft note (also an addendum to a signed note). A signed note is
    /// never changed: saving over one is [`ValidationError::NoteSigned`].
    pub fn save_note(&mut self, note: &CaseNote) -> Result<CaseNote> {
        let mut note = note.clone();
        note.occurred_at = normalize_timestamp(note.occurred_at);
        let old = self.get::<CaseNote>(note.id.0)?;
        if let Some(old) = &old {
            rules::check_note_change(old, &note)?;
        }
        if note.status != NoteStatus::Draft
            || note.signed_at.is_some()
            || note.content_hash.is_some()
        {
            return Err(ValidationError::NoteSigned.into());
        }
        if note.author_id != self.worker() {
            return Err(ValidationError::NotAuthor.into());
        }
        note.validate(self.now())?;
        self.open_case_of(note.case_id)?;
        if let Some(target) = note.addendum_to {
            match self.get::<CaseNote>(target.0)? {
                Some(t) if t.case_id == note.case_id && t.status == NoteStatus::Signed => {}
                _ => return Err(ValidationError::AddendumTargetInvalid.into()),
            }
        }
        self.check_write(&note, false)?;
        self.put(&note)?;
        Ok(note)
    }

    /// Signs a draft: from now on it is a legal record that never changes.
    pub fn sign_note(&mut self, id: NoteId) -> Result<CaseNote> {
        let mut note: CaseNote = self.require(id.0)?;
        if note.status == NoteStatus::Signed {
            return Err(ValidationError::NoteSigned.into());
        }
        if note.author_id != self.worker() {
            return Err(ValidationError::NotAuthor.into());
        }
        self.open_case_of(note.case_id)?;
        note.status = NoteStatus::Signed;
        note.signed_at = Some(self.now());
        note.content_hash = Some(rules::content_hash(&note));
        self.check_write(&note, false)?;
        self.put(&note)?;
        Ok(note)
    }

    /// Discards a draft. Signed notes are never discarded.
    pub fn discard_draft(&mut self, id: NoteId) -> Result<()> {
        let note: CaseNote = self.require(id.0)?;
        if note.status == NoteStatus::Signed {
            return Err(ValidationError::NoteSigned.into());
        }
        if note.author_id != self.worker() {
            return Err(ValidationError::NotAuthor.into());
        }
        self.check_archive::<CaseNote>(id.0)?;
        self.archive::<CaseNote>(id.0)?;
        Ok(())
    }

    pub fn record_consent(&mut self, c: &Consent) -> Result<()> {
        self.open_case_of(c.case_id)?;
        self.person_in_case(c.given_by, c.case_id)?;
        if let Some(old) = self.get::<Consent>(c.id.0)? {
            if old.withdrawn_at.is_some() {
                return Err(ValidationError::ConsentAlreadyWithdrawn.into());
            }
        }
        c.validate()?;
        self.check_write(c, false)?;
        self.put(c)?;
        Ok(())
    }

    pub fn withdraw_consent(&mut self, id: ConsentId) -> Result<Consent> {
        let mut c: Consent = self.require(id.0)?;
        if c.withdrawn_at.is_some() {
            return Err(ValidationError::ConsentAlreadyWithdrawn.into());
        }
        c.withdrawn_at = Some(self.now());
        self.check_write(&c, false)?;
        self.put(&c)?;
        Ok(c)
    }

    /// Plans (or changes, or cancels) a home visit, meeting or network meeting.
    pub fn put_appointment(&mut self, a: &Appointment) -> Result<Appointment> {
        self.open_case_of(a.case_id)?;
        let mut a = a.clone();
        a.starts_at = normalize_timestamp(a.starts_at);
        a.place = a.place.trim().to_owned();
        a.validate()?;
        self.check_write(&a, false)?;
        self.put(&a)?;
        Ok(a)
    }

    pub fn put_agreement(&mut self, a: &Agreement) -> Result<()> {
        self.open_case_of(a.case_id)?;
        a.validate()?;
        if let Some(s) = a.responsible_staff_id {
            self.require::<Staff>(s.0)?;
        }
        if let Some(p) = a.responsible_person_id {
            self.person_in_case(p, a.case_id)?;
        }
        self.check_write(a, false)?;
        self.put(a)?;
        Ok(())
    }

    pub fn mark_agreement_done(&mut self, id: AgreementId) -> Result<Agreement> {
        let mut a: Agreement = self.require(id.0)?;
        self.open_case_of(a.case_id)?;
        if a.done_at.is_some() {
            return Err(ValidationError::AgreementAlreadyDone.into());
        }
        a.done_at = Some(self.now());
        self.check_write(&a, false)?;
        self.put(&a)?;
        Ok(a)
    }
}
