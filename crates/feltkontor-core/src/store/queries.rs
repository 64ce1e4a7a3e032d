//! The reads the app is built on: my cases, a case's overview, the notes timeline, the people
//! and network of a case, the change log. Reads that show personal data write an access-log
//! entry in the same transaction.

use super::access;
use super::record::{from_row, qualified_columns, select_sql, Record};
use super::Store;
use crate::domain::*;
use crate::error::{Error, Result};
use feltkontor_wire::*;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

/// Notes the worker may read: the case team's notes, and one-discipline notes of the worker's
/// own discipline. Expects the worker's id as `?2`.
pub(crate) const NOTE_VISIBLE: &str = "(notes.audience = 'case_team' OR notes.author_id = ?2
    OR (SELECT profession FROM staff WHERE id = notes.author_id) = (SELECT profession FROM staff WHERE id = ?2))";

/// Note kinds that are contact with the family.
const CONTACT_KINDS: &str = "('home_visit', 'meeting', 'phone_call', 'network_meeting')";

const PREVIEW_CHARS: usize = 240;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct StaffRef {
    pub id: StaffId,
    pub name: String,
    pub initials: String,
}

/// A note with what the editor shows around it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct NoteView {
    pub note: CaseNote,
    pub author: Option<StaffRef>,
    /// Written by the worker at this computer: only then is a draft editable.
    pub mine: bool,
    pub child_name: String,
    /// The addenda written to this note, oldest first.
    pub addenda: Vec<NoteSummary>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CaseFilter {
    pub district: Option<String>,
    pub status: Option<CaseStatus>,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CaseSummary {
    pub case_id: CaseId,
    pub child_name: String,
    pub status: CaseStatus,
    pub team_name: String,
    pub district: String,
    pub coordinator: Option<StaffRef>,
    pub i_am_coordinator: bool,
    pub next_agreement_due: Option<Date>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "specta", specta(type = Option<String>))]
    pub last_family_contact: Option<OffsetDateTime>,
    pub days_since_last_contact: Option<i32>,
    /// The best state of the case's consents today; `None` when none is recorded.
    pub consent: Option<ConsentState>,
    /// A sync brought a change to the case (a colleague's) since the worker last opened it here.
    pub new_since_last_open: bool,
}

/// A consent with its state today and who gave it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ConsentView {
    pub consent: Consent,
    pub state: ConsentState,
    /// The name of the family member who gave it.
    pub given_by_name: String,
}

/// For one sector: the best state of the consents covering it today (`None`: no consent
/// names the sector), so adding a participant from it can say whether a consent covers it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SectorConsent {
    pub sector: ConsentSector,
    pub state: Option<ConsentState>,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ParticipantView {
    pub participant: Participant,
    pub staff: Option<Staff>,
    /// From a sector that needs a consent, and today neither a consent in force covers it nor
    /// a standard legal basis is recorded (a consent ran out or was withdrawn since).
    pub uncovered: bool,
    /// On what the family's information is shared with this participant today: the consent
    /// (who gave it, until when) or the recorded legal basis; `None` for the social services'
    /// own staff, who need neither.
    pub disclosure: Option<Disclosure>,
    /// Since when the participant takes part (the family's information is shared with them
    /// from then): when they were added, by the clock of the device that added them.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "specta", specta(type = Option<String>))]
    pub since: Option<OffsetDateTime>,
}

/// The basis one disclosure to a participant rests on.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum Disclosure {
    Consent {
        sector: ConsentSector,
        given_by: String,
        #[cfg_attr(feature = "specta", specta(type = Option<String>))]
        valid_to: Option<Date>,
    },
    LegalBasis {
        sector: ConsentSector,
        text: String,
    },
    None {
        sector: ConsentSector,
    },
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ChildWords {
    pub note_id: NoteId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub occurred_at: OffsetDateTime,
    pub text: SensitiveText,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct NoteSummary {
    pub id: NoteId,
    pub kind: NoteKind,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub occurred_at: OffsetDateTime,
    pub author: Option<StaffRef>,
    pub status: NoteStatus,
    pub statutory: bool,
    pub audience: Audience,
    pub addendum_to: Option<NoteId>,
    pub preview: SensitiveText,
    pub has_child_words: bool,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct CaseOverview {
    pub case: Case,
    pub team: Option<Team>,
    pub coordinator: Option<Staff>,
    pub participants: Vec<ParticipantView>,
    pub consents: Vec<ConsentView>,
    /// The best state of the case's consents today; `None` when none is recorded.
    pub consent: Option<ConsentState>,
    /// Per sector, whether a consent covers it today.
    pub sector_consents: Vec<SectorConsent>,
    pub agreements: Vec<Agreement>,
    /// Planned visits and meetings from today on, and those held in the last two weeks whose
    /// note is not written yet; soonest first (cancelled ones too, marked).
    pub appointments: Vec<Appointment>,
    /// The child's own words from the latest notes, newest first.
    pub child_words: Vec<ChildWords>,
    pub latest_notes: Vec<NoteSummary>,
    pub person_count: u32,
    pub handovers: Vec<Handover>,
}

/// Where the next page of a timeline starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TimelineCursor {
    pub occurred_at: String,
    pub id: NoteId,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TimelinePage {
    pub notes: Vec<NoteSummary>,
    pub next: Option<TimelineCursor>,
}

/// A person as the worker may see them: a protected address is removed unless the worker
/// takes part in the case.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct PersonView {
    pub person: Person,
    pub address_hidden: bool,
    pub phones: Vec<Phone>,
}

pub(crate) fn parse_id<T: std::str::FromStr>(s: String) -> rusqlite::Result<T> {
    s.parse().map_err(|_| {
        rusqlite::Error::InvalidColumnType(0, "id".into(), rusqlite::types::Type::Text)
    })
}

pub(crate) fn parse_enum<T: std::str::FromStr>(s: String) -> rusqlite::Result<T> {
    s.parse()
        .map_err(|_| rusqlite::Error::InvalidColumnType(0, s.clone(), rusqlite::types::Type::Text))
}

pub(crate) fn parse_time(s: &str) -> rusqlite::Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(crate) fn parse_date(s: &str) -> rusqlite::Result<Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

const NOTE_SUMMARY_COLUMNS: &str =
    "notes.id, notes.kind, notes.occurred_at, notes.status, notes.statutory,
    notes.audience, notes.addendum_to, substr(notes.body, 1, 240), notes.child_words <> '',
    s.id, s.name, s.initials";

fn note_summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<NoteSummary> {
    let author = match r.get::<_, Option<String>>(9)? {
        Some(id) => Some(StaffRef {
            id: parse_id(id)?,
            name: r.get(10)?,
            initials: r.get(11)?,
        }),
        None => None,
    };
    let mut preview: String = r.get(7)?;
    if preview.chars().count() >= PREVIEW_CHARS {
        preview.push('…');
    }
    Ok(NoteSummary {
        id: parse_id(r.get(0)?)?,
        kind: parse_enum(r.get(1)?)?,
        occurred_at: parse_time(&r.get::<_, String>(2)?)?,
        status: parse_enum(r.get(3)?)?,
        statutory: r.get(4)?,
        audience: parse_enum(r.get(5)?)?,
        addendum_to: r.get::<_, Option<String>>(6)?.map(parse_id).transpose()?,
        preview: SensitiveText(preview),
        has_child_words: r.get(8)?,
        author,
    })
}

impl Store {
    pub(crate) fn records<T: Record>(
        &self,
        filter: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<T>> {
        let sql = format!("{} WHERE archived = 0 AND {filter}", select_sql::<T>());
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(params, from_row::<T>)?;
        Ok(rows.collect::<rusqlite::Result<Vec<T>>>()?)
    }

    /// Loads a live entity by id.
    pub fn get<T: Record>(&self, id: uuid::Uuid) -> Result<Option<T>> {
        Ok(self
            .records::<T>("id = ?1", [id.to_string()])?
            .into_iter()
            .next())
    }

    /// The teams the worker belongs to.
    pub fn worker_teams(&self) -> Result<Vec<Team>> {
        self.records::<Team>(
            "id IN (SELECT team_id FROM team_members WHERE staff_id = ?1 AND archived = 0) ORDER BY name",
            [self.worker_id().to_string()],
        )
    }

    /// Everyone on the worker's teams, the worker included.
    pub fn team_staff(&self) -> Result<Vec<Staff>> {
        self.records::<Staff>(
            "id IN (SELECT m.staff_id FROM team_members m WHERE m.archived = 0 AND m.team_id IN
                 (SELECT team_id FROM team_members WHERE staff_id = ?1 AND archived = 0)) ORDER BY name",
            [self.worker_id().to_string()],
        )
    }

    /// Whether the worker is the coordinator or a participant of the case.
    pub fn is_participant(&self, case_id: CaseId) -> Result<bool> {
        let worker = self.worker_id().to_string();
        Ok(self.conn().prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM cases WHERE id = ?1 AND coordinator_id = ?2 AND archived = 0)
                 OR EXISTS (SELECT 1 FROM participants WHERE case_id = ?1 AND staff_id = ?2 AND archived = 0)",
        )?
        .query_row(params![case_id.to_string(), worker], |r| r.get(0))?)
    }

    /// The worker's cases: those they coordinate first, then those they take part in.
    pub fn my_cases(&self, filter: &CaseFilter) -> Result<Vec<CaseSummary>> {
        let today = self.clock().today();
        let mut stmt = self.conn().prepare_cached(&format!(
            "WITH mine (case_id) AS (
                 SELECT id FROM cases WHERE coordinator_id = ?1 AND archived = 0
                 UNION
                 SELECT case_id FROM participants WHERE staff_id = ?1 AND archived = 0)
             SELECT c.id, c.child_name, c.status, t.name, t.district, s.id, s.name, s.initials,
                    c.coordinator_id = ?1 AS mine,
                    (SELECT min(a.due_on) FROM agreements a
                      WHERE a.case_id = c.id AND a.archived = 0 AND a.done_at IS NULL AND a.due_on IS NOT NULL),
                    (SELECT max(n.occurred_at) FROM notes n
                      WHERE n.case_id = c.id AND n.archived = 0 AND n.kind IN {CONTACT_KINDS}),
                    EXISTS (SELECT 1 FROM case_remote_change rc WHERE rc.case_id = c.id
                      AND rc.at > COALESCE((SELECT max(l.at) FROM access_log l
                        WHERE l.case_id = c.id AND l.action = 'open_case'), ''))
             FROM mine
             JOIN cases c ON c.id = mine.case_id AND c.archived = 0
             JOIN teams t ON t.id = c.team_id
             LEFT JOIN staff s ON s.id = c.coordinator_id
             WHERE (?2 IS NULL OR t.district = ?2)
               AND (?3 IS NULL OR c.status = ?3)
             ORDER BY mine DESC, c.status = 'closed', c.child_name COLLATE NOCASE, c.id"
        ))?;
        let rows = stmt.query_map(
            params![
                self.worker_id().to_string(),
                filter.district,
                filter.status.map(|s| s.as_str())
            ],
            |r| {
                let coordinator = match r.get::<_, Option<String>>(5)? {
                    Some(id) => Some(StaffRef {
                        id: parse_id(id)?,
                        name: r.get(6)?,
                        initials: r.get(7)?,
                    }),
                    None => None,
                };
                let last: Option<OffsetDateTime> = r
                    .get::<_, Option<String>>(10)?
                    .as_deref()
                    .map(parse_time)
                    .transpose()?;
                Ok(CaseSummary {
                    case_id: parse_id(r.get(0)?)?,
                    child_name: r.get(1)?,
                    status: parse_enum(r.get(2)?)?,
                    team_name: r.get(3)?,
                    district: r.get(4)?,
                    coordinator,
                    i_am_coordinator: r.get(8)?,
                    next_agreement_due: r
                        .get::<_, Option<String>>(9)?
                        .as_deref()
                        .map(parse_date)
                        .transpose()?,
                    days_since_last_contact: last.map(|t| (today - t.date()).whole_days() as i32),
                    last_family_contact: last,
                    consent: None,
                    new_since_last_open: r.get(11)?,
                })
            },
        )?;
        let mut cases = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let mut states: std::collections::HashMap<CaseId, Vec<ConsentState>> = Default::default();
        for c in self.records::<Consent>(
            "case_id IN (SELECT id FROM cases WHERE coordinator_id = ?1
                         UNION SELECT case_id FROM participants WHERE staff_id = ?1 AND archived = 0)",
            [self.worker_id().to_string()],
        )? {
            states.entry(c.case_id).or_default().push(c.state(today));
        }
        for case in &mut cases {
            case.consent = states.remove(&case.case_id).and_then(ConsentState::best);
        }
        Ok(cases)
    }

    /// Everything the case page shows at a glance. Logged as an opening of the case.
    pub fn case_overview(&self, case_id: CaseId) -> Result<CaseOverview> {
        let tx = self.conn().unchecked_transaction()?;
        let case: Case = self
            .get(case_id.0)?
            .ok_or_else(|| Error::not_found("case", case_id))?;
        let mut entry = self.access_entry(AccessAction::OpenCase);
        entry.case_id = Some(case_id);
        access::insert(&tx, &entry)?;
        let id = case_id.to_string();
        let team = self.get::<Team>(case.team_id.0)?;
        let coordinator = self.get::<Staff>(case.coordinator_id.0)?;
        let participants = self.records::<Participant>("case_id = ?1 ORDER BY rowid", [&id])?;
        let today = self.clock().today();
        let in_force = self.records::<Consent>("case_id = ?1", [&id])?;
        let participants = participants
            .into_iter()
            .map(|p| {
                let staff = self.get::<Staff>(p.staff_id.0)?;
                let uncovered = staff
                    .as_ref()
                    .and_then(|s| rules::consent_sector(s.profession))
                    .is_some_and(|sector| {
                        !in_force.iter().any(|c| c.covers(sector, today))
                            && p.legal_basis
                                .as_deref()
                                .and_then(crate::domain::legal_basis::parse)
                                .is_none()
                    });
                let disclosure = match staff
                    .as_ref()
                    .and_then(|s| rules::consent_sector(s.profession))
                {
                    None => None,
                    Some(sector) => Some(match in_force.iter().find(|c| c.covers(sector, today)) {
                        Some(c) => Disclosure::Consent {
                            sector,
                            given_by: self
                                .get::<Person>(c.given_by.0)?
                                .map(|p| p.name)
                                .unwrap_or_default(),
                            valid_to: c.valid_to,
                        },
                        None => match p.legal_basis.as_deref() {
                            Some(b) if crate::domain::legal_basis::parse(b).is_some() => {
                                Disclosure::LegalBasis {
                                    sector,
                                    text: b.to_owned(),
                                }
                            }
                            _ => Disclosure::None { sector },
                        },
                    }),
                };
                Ok(ParticipantView {
                    since: self.added_at::<Participant>(p.id.0, "staff_id")?,
                    staff,
                    participant: p,
                    uncovered,
                    disclosure,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let consents = self
            .records::<Consent>("case_id = ?1 ORDER BY valid_from DESC", [&id])?
            .into_iter()
            .map(|c| {
                Ok(ConsentView {
                    state: c.state(today),
                    given_by_name: self
                        .get::<Person>(c.given_by.0)?
                        .map(|p| p.name)
                        .unwrap_or_default(),
                    consent: c,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let consent = ConsentState::best(consents.iter().map(|c| c.state));
        let sector_consents = ConsentSector::ALL
            .iter()
            .map(|&sector| SectorConsent {
                sector,
                state: ConsentState::best(
                    consents
                        .iter()
                        .filter(|c| c.consent.sectors.contains(&sector))
                        .map(|c| c.state),
                ),
            })
            .collect();
        let agreements = self.records::<Agreement>(
            "case_id = ?1 ORDER BY done_at IS NOT NULL, due_on IS NULL, due_on, rowid",
            [&id],
        )?;
        let handovers = self.records::<Handover>("case_id = ?1 ORDER BY at DESC", [&id])?;
        // From today on, and those held in the last two weeks whose note is not written yet.
        let appointments = self.records::<Appointment>(
            "case_id = ?1 AND (starts_at >= ?2
               OR (note_id IS NULL AND cancelled = 0 AND starts_at >= ?3))
             ORDER BY starts_at, id",
            [
                &id,
                &format!("{}T00:00:00Z", today),
                &format!("{}T00:00:00Z", today - time::Duration::days(14)),
            ],
        )?;
        let child_words = self.child_words(case_id, 5)?;
        let latest_notes = self.notes_timeline(case_id, None, 10)?.notes;
        let person_count: u32 = self
            .conn()
            .prepare_cached("SELECT count(*) FROM persons WHERE case_id = ?1 AND archived = 0")?
            .query_row([&id], |r| r.get(0))?;
        tx.commit()?;
        Ok(CaseOverview {
            case,
            team,
            coordinator,
            participants,
            consents,
            consent,
            sector_consents,
            agreements,
            appointments,
            child_words,
            latest_notes,
            person_count,
            handovers,
        })
    }

    /// A page of a case's notes, newest first; pass the previous page's `next` to continue.
    pub fn notes_timeline(
        &self,
        case_id: CaseId,
        after: Option<&TimelineCursor>,
        limit: u32,
    ) -> Result<TimelinePage> {
        let limit = limit.clamp(1, 200);
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {NOTE_SUMMARY_COLUMNS} FROM notes LEFT JOIN staff s ON s.id = notes.author_id
             WHERE notes.case_id = ?1 AND notes.archived = 0 AND {NOTE_VISIBLE}
               AND (?3 IS NULL OR (notes.occurred_at, notes.id) < (?3, ?4))
             ORDER BY notes.occurred_at DESC, notes.id DESC LIMIT ?5"
        ))?;
        let rows = stmt.query_map(
            params![
                case_id.to_string(),
                self.worker_id().to_string(),
                after.map(|c| c.occurred_at.clone()),
                after.map(|c| c.id.to_string()),
                limit
            ],
            note_summary,
        )?;
        let notes = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        let next = if notes.len() as u32 == limit {
            notes.last().map(|n| TimelineCursor {
                occurred_at: n
                    .occurred_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                id: n.id,
            })
        } else {
            None
        };
        Ok(TimelinePage { notes, next })
    }

    /// One note, if the worker may read it.
    pub fn note(&self, id: NoteId) -> Result<CaseNote> {
        let sql = format!(
            "SELECT {} FROM notes WHERE notes.id = ?1 AND notes.archived = 0 AND {NOTE_VISIBLE}",
            qualified_columns::<CaseNote>()
        );
        self.conn()
            .prepare_cached(&sql)?
            .query_row(
                params![id.to_string(), self.worker_id().to_string()],
                from_row::<CaseNote>,
            )
            .optional()?
            .ok_or_else(|| Error::not_found("note", id))
    }

    /// One note as the editor shows it: with its author, the child and case it belongs to,
    /// whether it is the worker's own, and the addenda written to it.
    pub fn note_view(&self, id: NoteId) -> Result<NoteView> {
        let note = self.note(id)?;
        let author = self.get::<Staff>(note.author_id.0)?.map(|s| StaffRef {
            id: s.id,
            name: s.name,
            initials: s.initials,
        });
        let child_name = self
            .get::<Case>(note.case_id.0)?
            .map(|c| c.child_name)
            .unwrap_or_default();
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {NOTE_SUMMARY_COLUMNS} FROM notes LEFT JOIN staff s ON s.id = notes.author_id
             WHERE notes.addendum_to = ?1 AND notes.archived = 0 AND {NOTE_VISIBLE}
             ORDER BY notes.occurred_at, notes.id"
        ))?;
        let addenda = stmt
            .query_map(
                params![id.to_string(), self.worker_id().to_string()],
                note_summary,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(NoteView {
            mine: note.author_id == self.worker_id(),
            note,
            author,
            child_name,
            addenda,
        })
    }

    fn person_view(&self, mut person: Person, participant: bool) -> Result<PersonView> {
        let address_hidden = person.protected_address && !participant;
        if address_hidden {
            person.address = None;
        }
        let phones =
            self.records::<Phone>("person_id = ?1 ORDER BY rowid", [person.id.to_string()])?;
        Ok(PersonView {
            person,
            address_hidden,
            phones,
        })
    }

    /// The family and network of a case.
    pub fn persons_of_case(&self, case_id: CaseId) -> Result<Vec<PersonView>> {
        let participant = self.is_participant(case_id)?;
        self.records::<Person>(
            "case_id = ?1 ORDER BY name COLLATE NOCASE",
            [case_id.to_string()],
        )?
        .into_iter()
        .map(|p| self.person_view(p, participant))
        .collect()
    }

    /// One person. Logged as an opening of the person.
    pub fn person(&self, id: PersonId) -> Result<PersonView> {
        let person: Person = self
            .get(id.0)?
            .ok_or_else(|| Error::not_found("person", id))?;
        let mut entry = self.access_entry(AccessAction::OpenPerson);
        entry.case_id = Some(person.case_id);
        entry.person_id = Some(id);
        access::insert(self.conn(), &entry)?;
        let participant = self.is_participant(person.case_id)?;
        self.person_view(person, participant)
    }

    /// The family network as it stood on `as_of`: for each pair, its latest relation by then.
    pub fn network(&self, case_id: CaseId, as_of: Date) -> Result<Vec<Relation>> {
        self.records::<Relation>(
            "case_id = ?1 AND as_of <= ?2 AND NOT EXISTS (
                SELECT 1 FROM relations r2 WHERE r2.case_id = relations.case_id AND r2.archived = 0
                  AND r2.as_of <= ?2 AND r2.from_person_id IS relations.from_person_id
                  AND r2.to_person_id = relations.to_person_id
                  AND (r2.as_of > relations.as_of OR (r2.as_of = relations.as_of AND r2.id > relations.id)))
             ORDER BY as_of",
            params![case_id.to_string(), as_of.to_string()],
        )
    }

    /// The dates on which the case's network changed, oldest first (for stepping through its history).
    pub fn network_dates(&self, case_id: CaseId) -> Result<Vec<Date>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT DISTINCT as_of FROM relations WHERE case_id = ?1 AND archived = 0 ORDER BY as_of",
        )?;
        let rows = stmt.query_map([case_id.to_string()], |r| {
            parse_date(&r.get::<_, String>(0)?)
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Change-log entries after `after_seq`, oldest first.
    pub fn change_log(&self, after_seq: u64, limit: u32) -> Result<Vec<ChangeEntry>> {
        self.log_entries(&format!("seq > {after_seq}"), limit)
    }

    /// Change-log entries matching `filter` (SQL over the log's own columns), oldest first.
    pub(crate) fn log_entries(&self, filter: &str, limit: u32) -> Result<Vec<ChangeEntry>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT seq, op_id, device_id, entity, entity_id, hlc, fields, base FROM change_log WHERE {filter} ORDER BY seq LIMIT ?1"
        ))?;
        let rows = stmt.query_map(params![limit], |r| {
            Ok((
                r.get::<_, u64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, op, device, entity, entity_id, hlc, fields, base) = row?;
            let bad = |what: &str| Error::Corrupt(format!("change log {what} at seq {seq}"));
            out.push(ChangeEntry {
                seq,
                op_id: op.parse().map_err(|_| bad("op id"))?,
                device: device.parse().map_err(|_| bad("device"))?,
                entity: EntityKind::parse(&entity).ok_or_else(|| bad("entity"))?,
                entity_id: entity_id.parse().map_err(|_| bad("entity id"))?,
                fields: {
                    let hlc: Hlc = hlc.parse().map_err(|_| bad("hlc"))?;
                    let values: std::collections::BTreeMap<String, serde_json::Value> =
                        serde_json::from_str(&fields).map_err(|_| bad("fields"))?;
                    let base: std::collections::BTreeMap<String, Hlc> = match base {
                        Some(b) => serde_json::from_str(&b).map_err(|_| bad("base"))?,
                        None => Default::default(),
                    };
                    values
                        .into_iter()
                        .map(|(k, value)| {
                            let base = base.get(&k).copied();
                            (k, FieldChange { value, hlc, base })
                        })
                        .collect()
                },
            });
        }
        Ok(out)
    }
}

impl Store {
    /// What a record is, for people (a person's name, a note's first words, an agreement's
    /// text; an appointment's date as `YYYY-MM-DD`), and the case it belongs to, when this
    /// computer holds it: empty otherwise. A protected address is never part of a label.
    pub fn record_label(
        &self,
        entity: EntityKind,
        id: uuid::Uuid,
    ) -> Result<(String, Option<CaseId>)> {
        fn cut(s: &str) -> String {
            let mut out: String = s.chars().take(60).collect();
            if s.chars().count() > 60 {
                out.push('…');
            }
            out
        }
        let person_name = |p: PersonId| -> Result<String> {
            Ok(self.get::<Person>(p.0)?.map(|o| o.name).unwrap_or_default())
        };
        Ok(match entity {
            EntityKind::Case => (
                self.get::<Case>(id)?
                    .map(|c| c.child_name)
                    .unwrap_or_default(),
                Some(CaseId(id)),
            ),
            EntityKind::Person => self
                .get::<Person>(id)?
                .map(|p| (p.name, Some(p.case_id)))
                .unwrap_or_default(),
            EntityKind::Agreement => self
                .get::<Agreement>(id)?
                .map(|a| (cut(&a.what), Some(a.case_id)))
                .unwrap_or_default(),
            EntityKind::Note => self
                .get::<CaseNote>(id)?
                .map(|n| (cut(n.body.as_str()), Some(n.case_id)))
                .unwrap_or_default(),
            EntityKind::Phone => match self.get::<Phone>(id)? {
                Some(p) => (person_name(p.person_id)?, Some(p.case_id)),
                None => Default::default(),
            },
            EntityKind::Consent => match self.get::<Consent>(id)? {
                Some(c) => (person_name(c.given_by)?, Some(c.case_id)),
                None => Default::default(),
            },
            EntityKind::Participant => match self.get::<Participant>(id)? {
                Some(p) => (
                    self.get::<Staff>(p.staff_id.0)?
                        .map(|s| s.name)
                        .unwrap_or_default(),
                    Some(p.case_id),
                ),
                None => Default::default(),
            },
            EntityKind::Appointment => self
                .get::<Appointment>(id)?
                .map(|a| (a.starts_at.date().to_string(), Some(a.case_id)))
                .unwrap_or_default(),
            _ => Default::default(),
        })
    }
}

impl Store {
    /// When `field` of a record was last written, by the clock of the device that wrote it
    /// (its hybrid logical clock's wall time); `None` when the record keeps no clock for it.
    pub(crate) fn added_at<T: Record>(
        &self,
        id: uuid::Uuid,
        field: &str,
    ) -> Result<Option<OffsetDateTime>> {
        let text: Option<String> = self
            .conn()
            .prepare_cached(&format!("SELECT field_hlc FROM {} WHERE id = ?1", T::TABLE))?
            .query_row([id.to_string()], |r| r.get(0))
            .optional()?;
        let Some(text) = text else {
            return Ok(None);
        };
        let clocks: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&text).unwrap_or_default();
        Ok(clocks
            .get(field)
            .or_else(|| clocks.get("*"))
            .and_then(|c| c.parse::<Hlc>().ok())
            .and_then(|h| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(h.wall_ms) * 1_000_000).ok()
            })
            .map(crate::domain::normalize_timestamp))
    }
}
