//! The domain's rule set ([`feltkontor_domain::write`]) run by the store before it writes: the
//! same rules the central service runs on every pushed change, so the worker hears of a broken
//! one at once, in their own words, instead of as a refused change later.

use super::record::{select_sql, Record, Writer};
use crate::domain::write::{self, Change, Facts, Refusal, Validation};
use crate::domain::*;
use crate::error::{Error, Result};
use feltkontor_wire::{CaseId, NoteId, PersonId, Profession, StaffId, TeamId};
use rusqlite::OptionalExtension;

/// The facts the rules need, read from this device's store inside the write's transaction.
struct LocalFacts<'a, 'w> {
    w: &'a Writer<'w>,
}

impl Facts for LocalFacts<'_, '_> {
    type Error = Error;

    fn case(&mut self, id: CaseId) -> Result<Option<Case>> {
        self.w.get(id.0)
    }

    fn staff(&mut self, id: StaffId) -> Result<Option<Staff>> {
        self.w.get(id.0)
    }

    fn person(&mut self, id: PersonId) -> Result<Option<Person>> {
        self.w.get(id.0)
    }

    fn note(&mut self, id: NoteId) -> Result<Option<CaseNote>> {
        self.w.get(id.0)
    }

    fn persons(&mut self, case: CaseId) -> Result<Vec<Person>> {
        let sql = format!(
            "{} WHERE case_id = ?1 AND archived = 0",
            select_sql::<Person>()
        );
        let mut stmt = self.w.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map([case.to_string()], super::record::from_row::<Person>)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn consents(&mut self, case: CaseId) -> Result<Vec<Consent>> {
        let sql = format!(
            "{} WHERE case_id = ?1 AND archived = 0",
            select_sql::<Consent>()
        );
        let mut stmt = self.w.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map([case.to_string()], super::record::from_row::<Consent>)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn is_member(&mut self, team: TeamId, staff: StaffId) -> Result<bool> {
        Ok(self
            .w
            .tx
            .prepare_cached(
                "SELECT 1 FROM team_members WHERE team_id = ?1 AND staff_id = ?2 AND archived = 0",
            )?
            .query_row([team.to_string(), staff.to_string()], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn handover(&mut self, case: CaseId, from: StaffId, to: StaffId) -> Result<bool> {
        Ok(self
            .w
            .tx
            .prepare_cached(
                "SELECT 1 FROM handovers WHERE case_id = ?1 AND from_staff_id = ?2 AND to_staff_id = ?3 AND archived = 0",
            )?
            .query_row(
                [case.to_string(), from.to_string(), to.to_string()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

impl Writer<'_> {
    /// The worker in relation to `case` (as this device knows it).
    fn writer_in(&self, case: Option<CaseId>) -> Result<write::Writer> {
        let me = self.worker();
        let profession = self
            .get::<Staff>(me.0)?
            .map_or(Profession::Caseworker, |s| s.profession);
        let stored = match case {
            Some(c) => self.get::<Case>(c.0)?,
            None => None,
        };
        let (team_member, coordinator, participant) = match &stored {
            Some(c) => {
                let member = LocalFacts { w: self }.is_member(c.team_id, me)?;
                let coordinator = c.coordinator_id == me;
                let participant = coordinator
                    || self
                        .tx
                        .prepare_cached(
                            "SELECT 1 FROM participants WHERE case_id = ?1 AND staff_id = ?2 AND archived = 0",
                        )?
                        .query_row([c.id.to_string(), me.to_string()], |_| Ok(()))
                        .optional()?
                        .is_some();
                (member, coordinator, participant)
            }
            None => (false, false, false),
        };
        Ok(write::Writer {
            staff_id: me,
            profession,
            team_member,
            coordinator,
            participant,
        })
    }

    /// Checks one write of `after` (deleting it when `archives`) against the domain's rules.
    pub(crate) fn check_write<T>(&self, after: &T, archives: bool) -> Result<()>
    where
        T: Record + Clone + Into<write::Record>,
    {
        let before: Option<write::Record> = self.get::<T>(after.uuid())?.map(Into::into);
        let after: write::Record = after.clone().into();
        let who = self.writer_in(after.case_id())?;
        write::check(
            &Change {
                before: before.as_ref(),
                after: &after,
                archives,
                before_archived: false,
                now: self.now(),
                validation: Validation::Full,
            },
            &who,
            &mut LocalFacts { w: self },
        )
        .map_err(|r| match r {
            Refusal::Rule(e) => Error::Invalid(e),
            Refusal::Facts(e) => e,
        })
    }

    /// Checks deleting the live record `id` of type `T`.
    pub(crate) fn check_archive<T>(&self, id: uuid::Uuid) -> Result<()>
    where
        T: Record + Clone + Into<write::Record>,
    {
        let current: T = self.require(id)?;
        self.check_write(&current, true)
    }

    /// Writes the rest of this transaction as `staff`: for generated data only (the demo writes
    /// each colleague's case as that colleague, as their own device would have).
    #[doc(hidden)]
    pub fn act_as(&mut self, staff: StaffId) {
        self.worker = staff;
    }
}
