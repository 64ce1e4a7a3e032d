//! The home-visit sheet: for one planned visit or meeting, what the worker needs on the
//! doorstep with no network (who lives there, warnings, open agreements, consent, the latest
//! notes and the child's latest words). Read from the local store only.
//!
//! A protected address is never on the sheet, not even for the case's participants: the sheet
//! is printed and carried, and a protected address is never exported.

use super::queries::{parse_id, parse_time, ChildWords, NoteSummary, StaffRef, NOTE_VISIBLE};
use super::Store;
use crate::domain::*;
use crate::error::{Error, Result};
use crate::store::access;
use feltkontor_wire::*;
use rusqlite::params;
use serde::Serialize;
use std::collections::BTreeMap;
use time::{Date, OffsetDateTime};

/// How many of the latest notes and of the child's latest words the sheet carries.
pub const SHEET_NOTES: u32 = 3;

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SheetPerson {
    pub id: PersonId,
    pub name: String,
    pub relation: RelationToChild,
    pub custody: bool,
    pub phones: Vec<String>,
    pub invited: bool,
}

/// The people of the family's network who share one address.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Household {
    /// `None` when the address is protected (the people are listed; where they live is not)
    /// or not recorded.
    pub address: Option<String>,
    pub protected: bool,
    pub persons: Vec<SheetPerson>,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SheetWarning {
    /// The family asked that this person not be contacted.
    DoNotContact {
        person: String,
        reason: Option<String>,
    },
    /// Bring an interpreter.
    Interpreter {
        person: String,
        language: Option<String>,
    },
    /// Where this person lives is protected (navne- og adressebeskyttelse).
    ProtectedAddress { person: String },
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SheetAgreement {
    pub what: String,
    pub responsible: String,
    #[cfg_attr(feature = "specta", specta(type = Option<String>))]
    pub due_on: Option<Date>,
    pub overdue: bool,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct SheetConsent {
    pub given_by: String,
    pub sectors: Vec<ConsentSector>,
    pub state: ConsentState,
    #[cfg_attr(feature = "specta", specta(type = Option<String>))]
    pub valid_to: Option<Date>,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct VisitSheet {
    /// The appointment; its place is blank when it was a protected address (`place_protected`).
    pub appointment: Appointment,
    pub place_protected: bool,
    pub case_id: CaseId,
    pub child_name: String,
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub child_birth_date: Date,
    pub child_institution: Option<String>,
    pub coordinator: Option<StaffRef>,
    pub invited_staff: Vec<StaffRef>,
    pub households: Vec<Household>,
    pub warnings: Vec<SheetWarning>,
    pub agreements: Vec<SheetAgreement>,
    /// The best state of the case's consents today; `None` when none is recorded.
    pub consent: Option<ConsentState>,
    pub consents: Vec<SheetConsent>,
    pub latest_notes: Vec<NoteSummary>,
    pub child_words: Vec<ChildWords>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "specta", specta(type = String))]
    pub prepared_at: OffsetDateTime,
}

use crate::domain::text::{address_key, same_address};

impl Store {
    fn staff_ref(&self, id: StaffId) -> Result<Option<StaffRef>> {
        Ok(self.get::<Staff>(id.0)?.map(|s| StaffRef {
            id: s.id,
            name: s.name,
            initials: s.initials,
        }))
    }

    /// The child's own words from the latest notes the worker may read, newest first.
    pub(crate) fn child_words(&self, case_id: CaseId, limit: u32) -> Result<Vec<ChildWords>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT notes.id, notes.occurred_at, notes.child_words FROM notes
             WHERE notes.case_id = ?1 AND notes.archived = 0 AND notes.child_words <> '' AND {NOTE_VISIBLE}
             ORDER BY notes.occurred_at DESC, notes.id DESC LIMIT ?3"
        ))?;
        let rows = stmt.query_map(
            params![case_id.to_string(), self.worker_id().to_string(), limit],
            |r| {
                Ok(ChildWords {
                    note_id: parse_id(r.get(0)?)?,
                    occurred_at: parse_time(&r.get::<_, String>(1)?)?,
                    text: text::SensitiveText(r.get(2)?),
                })
            },
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The sheet for one appointment. Logged as an opening of the case.
    pub fn visit_sheet(&self, id: AppointmentId) -> Result<VisitSheet> {
        let tx = self.conn().unchecked_transaction()?;
        let appointment: Appointment = self
            .get(id.0)?
            .ok_or_else(|| Error::not_found("appointment", id))?;
        let case: Case = self
            .get(appointment.case_id.0)?
            .ok_or_else(|| Error::not_found("case", appointment.case_id))?;
        let mut entry = self.access_entry(AccessAction::OpenCase);
        entry.case_id = Some(case.id);
        access::insert(&tx, &entry)?;
        let cid = case.id.to_string();
        let today = self.clock().today();

        let persons =
            self.records::<Person>("case_id = ?1 ORDER BY name COLLATE NOCASE", [&cid])?;
        // Where protected people live: never on the sheet, neither as the visit's place (an
        // appointment saved before the rule refused it) nor as a co-resident's address.
        let protected_keys: Vec<String> = persons
            .iter()
            .filter(|p| p.protected_address)
            .filter_map(|p| p.address.as_ref().map(|a| address_key(a.as_str())))
            .filter(|k| !k.is_empty())
            .collect();
        let is_protected = |a: &str| {
            let k = address_key(a);
            protected_keys.iter().any(|p| same_address(&k, p))
        };
        let mut appointment = appointment;
        let place_protected = is_protected(&appointment.place);
        if place_protected {
            appointment.place = String::new();
        }
        let phones = self.records::<Phone>("case_id = ?1 ORDER BY rowid", [&cid])?;
        let mut households: Vec<Household> = Vec::new();
        let mut by_address: BTreeMap<String, usize> = BTreeMap::new();
        // Each person whose address is protected on a row of their own: two of them are not
        // shown as living together.
        let mut protected: Vec<Household> = Vec::new();
        let mut no_address = Household {
            address: None,
            protected: false,
            persons: Vec::new(),
        };
        let mut warnings = Vec::new();
        for p in &persons {
            let sp = SheetPerson {
                id: p.id,
                name: p.name.clone(),
                relation: p.relation,
                custody: p.custody,
                phones: phones
                    .iter()
                    .filter(|ph| ph.person_id == p.id)
                    .map(|ph| match ph.label.as_deref().filter(|l| !l.is_empty()) {
                        Some(l) => format!("{} ({l})", ph.number),
                        None => ph.number.clone(),
                    })
                    .collect(),
                invited: appointment.invited_persons.contains(&p.id),
            };
            if p.do_not_contact {
                warnings.push(SheetWarning::DoNotContact {
                    person: p.name.clone(),
                    reason: p.do_not_contact_reason.clone().filter(|r| !r.is_empty()),
                });
            }
            if p.interpreter_needed {
                warnings.push(SheetWarning::Interpreter {
                    person: p.name.clone(),
                    language: p.language.clone().filter(|l| !l.is_empty()),
                });
            }
            if p.protected_address {
                warnings.push(SheetWarning::ProtectedAddress {
                    person: p.name.clone(),
                });
                protected.push(Household {
                    address: None,
                    protected: true,
                    persons: vec![sp],
                });
                continue;
            }
            if p.address.as_ref().is_some_and(|a| is_protected(a.as_str())) {
                // Lives with someone whose address is protected: so is theirs, here.
                protected.push(Household {
                    address: None,
                    protected: true,
                    persons: vec![sp],
                });
                continue;
            }
            match p
                .address
                .as_ref()
                .map(|a| a.as_str().trim())
                .filter(|a| !a.is_empty())
            {
                None => no_address.persons.push(sp),
                Some(a) => {
                    let key = address_key(a);
                    match by_address.get(&key) {
                        Some(&i) => {
                            // The custody holder's spelling of the shared address is shown.
                            let h = &mut households[i];
                            if sp.custody && !h.persons.iter().any(|p| p.custody) {
                                h.address = Some(a.to_owned());
                            }
                            h.persons.push(sp);
                        }
                        None => {
                            by_address.insert(key, households.len());
                            households.push(Household {
                                address: Some(a.to_owned()),
                                protected: false,
                                persons: vec![sp],
                            });
                        }
                    }
                }
            }
        }
        // The household the visit goes to first: the one whose address is the appointment's
        // place, else the one the custody holders live in, else the largest.
        let place = address_key(&appointment.place);
        households.sort_by_key(|h| {
            let key = h.address.as_deref().map(address_key).unwrap_or_default();
            (
                !(key == place || (!place.is_empty() && key.starts_with(&place))),
                !h.persons.iter().any(|p| p.custody),
                std::cmp::Reverse(h.persons.len()),
            )
        });
        households.extend(protected);
        if !no_address.persons.is_empty() {
            households.push(no_address);
        }

        let names: BTreeMap<PersonId, String> =
            persons.iter().map(|p| (p.id, p.name.clone())).collect();
        let agreements = self
            .records::<Agreement>(
                "case_id = ?1 AND done_at IS NULL ORDER BY due_on IS NULL, due_on, rowid",
                [&cid],
            )?
            .into_iter()
            .map(|a| {
                let responsible = match (a.responsible_staff_id, a.responsible_person_id) {
                    (Some(s), _) => self.staff_ref(s)?.map(|s| s.name).unwrap_or_default(),
                    (None, Some(p)) => names.get(&p).cloned().unwrap_or_default(),
                    (None, None) => String::new(),
                };
                Ok(SheetAgreement {
                    overdue: a.due_on.is_some_and(|d| d < today),
                    what: a.what,
                    responsible,
                    due_on: a.due_on,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let consents: Vec<SheetConsent> = self
            .records::<Consent>("case_id = ?1 ORDER BY valid_from DESC", [&cid])?
            .into_iter()
            .map(|c| SheetConsent {
                given_by: names.get(&c.given_by).cloned().unwrap_or_default(),
                sectors: c.sectors.iter().copied().collect(),
                state: c.state(today),
                valid_to: c.valid_to,
            })
            .collect();
        let consent = ConsentState::best(consents.iter().map(|c| c.state));
        let invited_staff = appointment
            .invited_staff
            .iter()
            .map(|&s| self.staff_ref(s))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        let latest_notes = self.notes_timeline(case.id, None, SHEET_NOTES)?.notes;
        let child_words = self.child_words(case.id, SHEET_NOTES)?;
        let coordinator = self.staff_ref(case.coordinator_id)?;
        tx.commit()?;
        Ok(VisitSheet {
            case_id: case.id,
            child_name: case.child_name,
            child_birth_date: case.child_birth_date,
            child_institution: case.child_institution,
            coordinator,
            invited_staff,
            households,
            warnings,
            agreements,
            consent,
            consents,
            latest_notes,
            child_words,
            prepared_at: crate::domain::normalize_timestamp(self.clock().now()),
            appointment,
            place_protected,
        })
    }

    /// Records that the sheet left the store as a file (a PDF to print): an export of the case.
    pub fn log_sheet_export(&self, case_id: CaseId) -> Result<()> {
        let mut entry = self.access_entry(AccessAction::Export);
        entry.case_id = Some(case_id);
        entry.criterion = Some("besøgsark (PDF)".into());
        access::insert(self.conn(), &entry)?;
        Ok(())
    }
}
