//! The domain's rule set ([`feltkontor_domain::write`]) run on every merged change: the same
//! rules the app's store runs, decided here from the service's own records, so a modified
//! client meets them too.

use crate::authz::{Actor, Scope};
use crate::db::Conn;
use crate::error::{ErrorCode, Result, ServiceError};
use crate::params;
use crate::records::{self, Merge};
use feltkontor_domain::write::{self, Change, Facts, Record, Refusal, Validation, Writer};
use feltkontor_domain::*;
use feltkontor_wire::{CaseId, ChangeEntry, EntityKind, NoteId, PersonId, StaffId, TeamId};
use serde_json::Value;
use time::OffsetDateTime;

/// The facts the rules need, read from the service's records inside the push's transaction.
pub struct ServiceFacts<'c> {
    pub conn: &'c mut dyn Conn,
    /// A quarantined note accepted by the case's coordinator goes in even if the case was
    /// closed since it was written.
    pub closing_counts: bool,
}

impl Facts for ServiceFacts<'_> {
    type Error = ServiceError;

    fn case(&mut self, id: CaseId) -> Result<Option<Case>> {
        let case: Option<Case> = records::get_as(self.conn, EntityKind::Case, id.0)?;
        Ok(case.map(|mut c| {
            if !self.closing_counts {
                c.status = feltkontor_wire::CaseStatus::Open;
            }
            c
        }))
    }

    fn staff(&mut self, id: StaffId) -> Result<Option<Staff>> {
        records::get_as(self.conn, EntityKind::Staff, id.0)
    }

    fn person(&mut self, id: PersonId) -> Result<Option<Person>> {
        records::get_as(self.conn, EntityKind::Person, id.0)
    }

    fn note(&mut self, id: NoteId) -> Result<Option<CaseNote>> {
        records::get_as(self.conn, EntityKind::Note, id.0)
    }

    fn persons(&mut self, case: CaseId) -> Result<Vec<Person>> {
        records::of_case_kind(self.conn, case.0, EntityKind::Person)?
            .iter()
            .filter(|s| !s.archived)
            .map(records::decode)
            .collect()
    }

    fn consents(&mut self, case: CaseId) -> Result<Vec<Consent>> {
        records::of_case_kind(self.conn, case.0, EntityKind::Consent)?
            .iter()
            .map(records::decode)
            .collect()
    }

    fn is_member(&mut self, team: TeamId, staff: StaffId) -> Result<bool> {
        Ok(self
            .conn
            .query_one(
                "SELECT 1 FROM members_index WHERE team_id = $1 AND staff_id = $2",
                params![team.0, staff.0],
            )?
            .is_some())
    }

    fn handover(&mut self, case: CaseId, from: StaffId, to: StaffId) -> Result<bool> {
        Ok(
            records::of_case_kind(self.conn, case.0, EntityKind::Handover)?
                .iter()
                .filter_map(|s| records::decode::<Handover>(s).ok())
                .any(|h| h.from_staff_id == from && h.to_staff_id == to),
        )
    }
}

/// The worker in relation to the case (`scope` from the scope check; `None` for a new case).
pub fn writer(actor: &Actor, scope: Option<&Scope>) -> Writer {
    Writer {
        staff_id: StaffId(actor.staff_id),
        profession: actor.profession,
        team_member: scope.is_some_and(|s| s.team_member),
        coordinator: scope.is_some_and(|s| s.coordinator),
        participant: scope.is_some_and(|s| s.participant),
    }
}

/// What to do with a merge the rules allow.
pub enum Checked {
    /// Write it.
    Apply,
    /// The merge breaks a rule over the whole record that the write, as written, kept: the
    /// record stays as it was (see `sync::keep_as_it_was`).
    KeepAsItWas,
}

fn decode(kind: EntityKind, data: &serde_json::Map<String, Value>) -> Result<Record> {
    Record::from_json(kind, data).map_err(refusal)
}

/// Runs the rule set on a merge. The record as its writer wrote it (the stored record with
/// every field of the change) must pass every field's rules and every rule of the write; so
/// must the record after the merge. When the merge took only part of the write and that
/// breaks a rule between fields (each write valid, the two together not: an agreement with
/// two responsible), the stated policy applies: [`Checked::KeepAsItWas`], never a refusal.
pub fn check_merge(
    conn: &mut dyn Conn,
    m: &Merge,
    e: &ChangeEntry,
    who: &Writer,
    now: OffsetDateTime,
    accepting_quarantined: bool,
) -> Result<Checked> {
    let kind = m.entity;
    // The stored record, deleted or not: every rule that compares with the old state compares
    // with it (deleting a record and changing it then is no way around them).
    let before = m
        .before
        .as_ref()
        .and_then(|b| Record::from_json(kind, &b.data).ok());
    let before_archived = m.before.as_ref().is_some_and(|b| b.archived);
    let after = decode(kind, &m.data)?;
    let (written_data, written_archived) = m.as_written(e);
    let written = decode(kind, &written_data)?;
    let mut facts = ServiceFacts {
        conn,
        closing_counts: !accepting_quarantined,
    };
    let mut run = |record: &Record, archives: bool| {
        write::check(
            &Change {
                before: before.as_ref(),
                after: record,
                archives,
                before_archived,
                now,
                validation: Validation::None,
            },
            who,
            &mut facts,
        )
        .map_err(into_error)
    };
    // The fields the change writes, besides the tombstone.
    let writes_fields = e.fields.keys().any(|f| f != "archived");
    if !written_archived || writes_fields {
        written.validate_fields(now).map_err(refusal)?;
    }
    written
        .check_canonical(
            e.fields
                .iter()
                .filter(|(f, _)| f.as_str() != "archived")
                .map(|(f, c)| (f, &c.value)),
        )
        .map_err(refusal)?;
    // A protected address is not written by whoever may not see it, whatever the value: an
    // answer that told a right guess from a wrong one would show it.
    if let Some(Record::Person(b)) = before.as_ref() {
        if b.protected_address && !who.participant && e.fields.contains_key("address") {
            return Err(refusal(ValidationError::Privileged {
                what: "protected_address",
            }));
        }
    }
    // A case's status and closing reason, its coordinator, and a person's address protection
    // are written only by whoever may change them, whatever the value: a write of the same
    // value with a clock ahead would otherwise win the field and silently veto the
    // coordinator's own later change.
    let privileged_fields: &[&str] = match written {
        Record::Case(_) => &["status", "closed_reason", "coordinator_id"],
        Record::Person(_) => &["protected_address"],
        _ => &[],
    };
    if before.is_some() && !who.privileged() {
        if let Some(f) = privileged_fields
            .iter()
            .find(|f| e.fields.contains_key(**f))
        {
            // Leaving the protection on is anyone's to keep; only lifting it is privileged
            // (checked by the rule itself), so an unchanged `true` is not refused here.
            let keeps_protection =
                *f == "protected_address" && e.fields[*f].value == serde_json::Value::Bool(true);
            if !keeps_protection {
                return Err(refusal(ValidationError::Privileged { what: f }));
            }
        }
    }
    run(&written, written_archived)?;
    // The merge took every field of the write (the usual case): the same record, checked once.
    if m.changed && (after != written || m.archived != written_archived) {
        run(&after, m.archived)?;
    }
    if m.archived || !m.changed {
        return Ok(Checked::Apply);
    }
    after.validate_fields(now).map_err(refusal)?;
    match after.validate_record() {
        Ok(()) => Ok(Checked::Apply),
        Err(broken) => {
            // Each field is valid and the record was valid before: the write met a state its
            // writer had not seen (on one device the app keeps every rule). A new record has
            // no such excuse.
            if !before_archived && before.as_ref().is_some_and(|b| b.validate(now).is_ok()) {
                Ok(Checked::KeepAsItWas)
            } else {
                Err(refusal(broken))
            }
        }
    }
}

fn into_error(r: Refusal<ServiceError>) -> ServiceError {
    match r {
        Refusal::Facts(e) => e,
        Refusal::Rule(e) => refusal(e),
    }
}

/// A broken rule as the service's answer: who-may refusals are `forbidden`, a changed signed
/// note is `conflict` (audited as a security event), a closed case `conflict`, the rest
/// `invalid_input` naming the field.
pub fn refusal(e: ValidationError) -> ServiceError {
    use ValidationError as V;
    let message = e.to_string();
    match e {
        V::NotAuthor | V::Privileged { .. } => {
            let mut err = ServiceError::new(ErrorCode::Forbidden, message);
            err.internal = Some(e.code().into());
            err
        }
        V::NoteSigned | V::SignatureInvalid => {
            let mut err = ServiceError::new(
                ErrorCode::Conflict,
                "The note is signed and cannot be changed; write an addendum instead.",
            );
            if e == V::SignatureInvalid {
                err.detail = "The signed note's content does not match its signature.".into();
            }
            err.internal = Some("signed_note_changed".into());
            err
        }
        V::CaseClosed => {
            let mut err = ServiceError::new(ErrorCode::Conflict, message);
            err.internal = Some("case_closed".into());
            err
        }
        other => ServiceError::invalid(other.field().unwrap_or("fields"), message),
    }
}
