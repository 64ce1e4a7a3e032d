//! "Min uge": what needs the worker across all their cases this week, read in one go for the
//! start screen: agreements overdue or due within a week, consents running out or run out on
//! cases they coordinate, their unsigned drafts, their notes not yet sent, text kept after a
//! refused save, and handovers to them not yet acknowledged.

use super::queries::{parse_date, parse_id, parse_time};
use super::unsaved::UnsavedNote;
use super::Store;
use crate::domain::*;
use crate::error::Result;
use feltkontor_wire::*;
use rusqlite::params;
use serde::Serialize;
use time::{Date, Duration, OffsetDateTime};

/// How far ahead "this week" looks for due dates.
pub const WEEK_AHEAD_DAYS: i64 = 7;

/// The worker's cases: those they coordinate and those they take part in. Expects the
/// worker's id as `?1`.
const MINE: &str =
    "SELECT id FROM cases WHERE coordinator_id = ?1 AND archived = 0 AND status = 'open'
     UNION SELECT p.case_id FROM participants p JOIN cases c ON c.id = p.case_id
       WHERE p.staff_id = ?1 AND p.archived = 0 AND c.archived = 0 AND c.status = 'open'";

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct WeekAgreement {
    pub agreement_id: AgreementId,
    pub case_id: CaseId,
    pub child_name: String,
    pub what: String,
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub due_on: Date,
    /// The due date has passed.
    pub overdue: bool,
    /// Who is responsible: a member of staff or someone of the family, by name.
    pub responsible: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct WeekConsent {
    pub case_id: CaseId,
    pub child_name: String,
    /// The case's best consent state: expires soon, expired, not yet valid or withdrawn;
    /// `None` when no consent is recorded at all.
    pub state: Option<ConsentState>,
    /// The last day of the consent shown (for one that expires soon or expired).
    #[cfg_attr(feature = "specta", specta(type = Option<String>))]
    pub valid_to: Option<Date>,
    /// Its first day (for one not valid yet).
    #[cfg_attr(feature = "specta", specta(type = Option<String>))]
    pub valid_from: Option<Date>,
    /// When it was withdrawn.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "specta", specta(type = Option<String>))]
    pub withdrawn_at: Option<OffsetDateTime>,
    /// Who gave it.
    pub given_by: String,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct WeekNote {
    pub note_id: NoteId,
    pub case_id: CaseId,
    pub child_name: String,
    pub kind: NoteKind,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub occurred_at: OffsetDateTime,
    pub status: NoteStatus,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct WeekUnsaved {
    pub child_name: String,
    pub unsaved: UnsavedNote,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct WeekHandover {
    pub handover_id: RowId,
    pub case_id: CaseId,
    pub child_name: String,
    pub from_name: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub at: OffsetDateTime,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct WeekAppointment {
    pub child_name: String,
    pub appointment: Appointment,
}

#[derive(Clone, Debug, Default, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct MyWeek {
    /// Visits and meetings planned from now until a week ahead, soonest first.
    pub appointments: Vec<WeekAppointment>,
    /// Overdue first (oldest first), then due within [`WEEK_AHEAD_DAYS`].
    pub agreements: Vec<WeekAgreement>,
    /// Cases the worker coordinates with no consent in force, or one that runs out soon.
    pub consents: Vec<WeekConsent>,
    /// The worker's unsigned drafts, oldest first.
    pub drafts: Vec<WeekNote>,
    /// The worker's notes saved here and not yet sent to the central service.
    pub unsent: Vec<WeekNote>,
    /// Text kept after a refused save.
    pub unsaved: Vec<WeekUnsaved>,
    /// Cases handed over to the worker, not yet acknowledged.
    pub handovers: Vec<WeekHandover>,
}

impl Store {
    /// What needs the worker this week, across all their open cases.
    pub fn my_week(&self) -> Result<MyWeek> {
        let today = self.clock().today();
        let worker = self.worker_id().to_string();
        let conn = self.conn();
        let mut week = MyWeek::default();

        let horizon = today + Duration::days(WEEK_AHEAD_DAYS);
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT a.id, a.case_id, c.child_name, a.what, a.due_on,
                    COALESCE(s.name, p.name)
             FROM agreements a JOIN cases c ON c.id = a.case_id
             LEFT JOIN staff s ON s.id = a.responsible_staff_id AND s.archived = 0
             LEFT JOIN persons p ON p.id = a.responsible_person_id AND p.archived = 0
             WHERE a.archived = 0 AND a.done_at IS NULL AND a.due_on IS NOT NULL
               AND a.due_on <= ?2 AND a.case_id IN ({MINE})
             ORDER BY a.due_on, c.child_name, a.id"
        ))?;
        let rows = stmt.query_map(params![worker, horizon.to_string()], |r| {
            let due_on = parse_date(&r.get::<_, String>(4)?)?;
            Ok(WeekAgreement {
                agreement_id: parse_id(r.get(0)?)?,
                case_id: parse_id(r.get(1)?)?,
                child_name: r.get(2)?,
                what: r.get(3)?,
                overdue: due_on < today,
                due_on,
                responsible: r.get(5)?,
            })
        })?;
        week.agreements = rows.collect::<rusqlite::Result<_>>()?;

        let from = crate::domain::normalize_timestamp(self.clock().now() - Duration::hours(2));
        let until = (today + Duration::days(WEEK_AHEAD_DAYS + 1))
            .midnight()
            .assume_utc();
        let fmt = |t: OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| crate::Error::Corrupt(e.to_string()))
        };
        for a in self.records::<Appointment>(
            &format!(
                "cancelled = 0 AND case_id IN ({MINE}) AND starts_at >= ?2 AND starts_at < ?3
                 ORDER BY starts_at, id"
            ),
            params![worker, fmt(from)?, fmt(until)?],
        )? {
            let child_name = self
                .get::<Case>(a.case_id.0)?
                .map(|c| c.child_name)
                .unwrap_or_default();
            week.appointments.push(WeekAppointment {
                child_name,
                appointment: a,
            });
        }

        // Consents: on cases the worker coordinates (the coordinator renews them with the
        // family), the best state when it needs them.
        let mut cases = conn.prepare_cached(
            "SELECT id, child_name FROM cases
             WHERE coordinator_id = ?1 AND archived = 0 AND status = 'open' ORDER BY child_name, id",
        )?;
        let coordinated: Vec<(String, String)> = cases
            .query_map([&worker], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (case_id, child_name) in coordinated {
            let consents = self.records::<Consent>("case_id = ?1", [&case_id])?;
            let best = ConsentState::best(consents.iter().map(|c| c.state(today)));
            if best == Some(ConsentState::Valid) {
                continue;
            }
            let shown = consents
                .iter()
                .filter(|c| Some(c.state(today)) == best)
                .max_by_key(|c| c.valid_to);
            let given_by = match shown {
                Some(c) => self
                    .get::<Person>(c.given_by.0)?
                    .map(|p| p.name)
                    .unwrap_or_default(),
                None => String::new(),
            };
            week.consents.push(WeekConsent {
                case_id: case_id
                    .parse()
                    .map(CaseId)
                    .map_err(|_| crate::Error::Corrupt("case id".into()))?,
                child_name,
                state: best,
                valid_to: shown.and_then(|c| c.valid_to),
                valid_from: shown.map(|c| c.valid_from),
                withdrawn_at: shown.and_then(|c| c.withdrawn_at),
                given_by,
            });
        }

        let note_rows = |sql: &str| -> Result<Vec<WeekNote>> {
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map([&worker], |r| {
                Ok(WeekNote {
                    note_id: parse_id(r.get(0)?)?,
                    case_id: parse_id(r.get(1)?)?,
                    child_name: r.get(2)?,
                    kind: super::queries::parse_enum(r.get(3)?)?,
                    occurred_at: parse_time(&r.get::<_, String>(4)?)?,
                    status: super::queries::parse_enum(r.get(5)?)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        };
        week.drafts = note_rows(
            "SELECT n.id, n.case_id, c.child_name, n.kind, n.occurred_at, n.status
             FROM notes n JOIN cases c ON c.id = n.case_id AND c.status = 'open'
             WHERE n.author_id = ?1 AND n.archived = 0 AND n.status = 'draft'
             ORDER BY n.occurred_at, n.id",
        )?;
        // Signed notes waiting to be sent (drafts are listed above); none on a computer that
        // is not connected to a service, where nothing is ever sent.
        if self.sync_account()?.is_some() {
            week.unsent = note_rows(
                "SELECT n.id, n.case_id, c.child_name, n.kind, n.occurred_at, n.status
             FROM notes n JOIN cases c ON c.id = n.case_id
             WHERE n.author_id = ?1 AND n.archived = 0 AND n.status = 'signed'
               AND EXISTS (SELECT 1 FROM change_log l
                           WHERE l.entity = 'note' AND l.entity_id = n.id AND l.pushed = 0)
             ORDER BY n.occurred_at, n.id",
            )?;
        }

        for u in self.unsaved_notes()? {
            let child_name = self
                .get::<Case>(u.draft.case_id.0)?
                .map(|c| c.child_name)
                .unwrap_or_default();
            week.unsaved.push(WeekUnsaved {
                child_name,
                unsaved: u,
            });
        }

        let mut stmt = conn.prepare_cached(
            "SELECT h.id, h.case_id, c.child_name, COALESCE(s.name, ''), h.at
             FROM handovers h JOIN cases c ON c.id = h.case_id AND c.archived = 0
             LEFT JOIN staff s ON s.id = h.from_staff_id
             WHERE h.archived = 0 AND h.to_staff_id = ?1 AND c.coordinator_id = ?1
               AND NOT EXISTS (SELECT 1 FROM handover_seen seen WHERE seen.handover_id = h.id)
             ORDER BY h.at DESC",
        )?;
        let rows = stmt.query_map([&worker], |r| {
            Ok(WeekHandover {
                handover_id: parse_id(r.get(0)?)?,
                case_id: parse_id(r.get(1)?)?,
                child_name: r.get(2)?,
                from_name: r.get(3)?,
                at: parse_time(&r.get::<_, String>(4)?)?,
            })
        })?;
        week.handovers = rows.collect::<rusqlite::Result<_>>()?;
        Ok(week)
    }

    /// The worker acknowledged a handover to them: it leaves "Min uge".
    pub fn acknowledge_handover(&self, handover: RowId) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO handover_seen (handover_id) VALUES (?1)",
            [handover.to_string()],
        )?;
        Ok(())
    }
}
