//! The app's commands. Store work runs on a blocking thread, never on the UI thread.

use crate::ipc::{IpcError, IpcResult};
use crate::session::Session;
use crate::setup::{self, FirstRun};
use feltkontor_core::domain::{
    Agreement, Appointment, Case, CaseNote, Consent, Cpr, Participant, Person, Phone, Relation,
    SensitiveText, Staff,
};
use feltkontor_core::store::queries::{
    CaseFilter, CaseOverview, CaseSummary, NoteView, PersonView, TimelineCursor, TimelinePage,
};
use feltkontor_core::store::search::SearchResults;
use feltkontor_core::store::sheet::VisitSheet;
use feltkontor_core::store::unsaved::{NoteDraft, UnsavedNote};
use feltkontor_core::store::week::MyWeek;
use feltkontor_core::store::Store;
use feltkontor_core::{SystemClock, ValidationError};
use feltkontor_wire::{
    AgreementId, AppointmentId, AppointmentKind, CaseId, CaseStatus, ConsentId, ConsentSector,
    NoteId, NoteStatus, PersonId, Profession, RelationQuality, RelationToChild, RowId, StaffId,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tauri::State;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::Date;
use time::OffsetDateTime;

const MAX_PASSPHRASE_BYTES: usize = 1024;
const MAX_FILTER_BYTES: usize = 200;
/// The three text fields of a note together; the core's per-field limit is in characters.
const MAX_NOTE_BYTES: usize = 1_200_000;
use feltkontor_core::domain::text::NOTE_TEXT_MAX;
const MAX_QUERY_BYTES: usize = 500;
const TIMELINE_PAGE: u32 = 30;
const SEARCH_LIMIT: u32 = 20;

pub(crate) async fn blocking<T: Send + 'static>(
    session: &Arc<Session>,
    f: impl FnOnce(&Session) -> IpcResult<T> + Send + 'static,
) -> IpcResult<T> {
    let session = Arc::clone(session);
    tauri::async_runtime::spawn_blocking(move || f(&session))
        .await
        .map_err(|_| IpcError::internal())?
}

pub(crate) fn with_store<T>(
    session: &Session,
    f: impl FnOnce(&Store) -> IpcResult<T>,
) -> IpcResult<T> {
    let guard = session.store();
    let store = guard.as_ref().ok_or_else(IpcError::locked)?;
    f(store)
}

fn with_store_mut<T>(
    session: &Session,
    f: impl FnOnce(&mut Store) -> IpcResult<T>,
) -> IpcResult<T> {
    let mut guard = session.store();
    let store = guard.as_mut().ok_or_else(IpcError::locked)?;
    let out = f(store)?;
    // A change was saved: the background task pushes it after a quiet moment.
    session.sync.poke();
    Ok(out)
}

#[derive(Serialize, specta::Type)]
pub struct AppStatus {
    has_local_data: bool,
    unlocked: bool,
    /// The central service's address to offer at first run (`FELTKONTOR_SERVER_URL`, set by
    /// the municipality's installation or `make run`).
    server_url: Option<String>,
}

#[tauri::command]
#[specta::specta]
pub async fn app_status(session: State<'_, Arc<Session>>) -> IpcResult<AppStatus> {
    blocking(&session, |s| {
        Ok(AppStatus {
            has_local_data: s.location.exists(),
            unlocked: s.store().is_some(),
            server_url: std::env::var("FELTKONTOR_SERVER_URL")
                .ok()
                .filter(|u| !u.trim().is_empty()),
        })
    })
    .await
}

#[derive(Serialize, specta::Type)]
pub struct Worker {
    id: StaffId,
    name: String,
    initials: String,
    profession: Option<Profession>,
}

fn worker_of(store: &Store) -> IpcResult<Worker> {
    let staff: Option<Staff> = store.get(store.worker_id().0)?;
    Ok(Worker {
        id: store.worker_id(),
        name: staff.as_ref().map(|s| s.name.clone()).unwrap_or_default(),
        initials: staff
            .as_ref()
            .map(|s| s.initials.clone())
            .unwrap_or_default(),
        profession: staff.map(|s| s.profession),
    })
}

/// The signed-in worker as the store knows them now (after a first sync brought their staff
/// record).
#[tauri::command]
#[specta::specta]
pub async fn worker(session: State<'_, Arc<Session>>) -> IpcResult<Worker> {
    blocking(&session, |s| with_store(s, worker_of)).await
}

#[tauri::command]
#[specta::specta]
pub async fn unlock(session: State<'_, Arc<Session>>, passphrase: String) -> IpcResult<Worker> {
    if passphrase.len() > MAX_PASSPHRASE_BYTES {
        return Err(IpcError::too_long("passphrase"));
    }
    blocking(&session, move |s| {
        let store = Store::open(&s.location, &passphrase, Arc::new(SystemClock))?;
        let worker = worker_of(&store)?;
        *s.store() = Some(store);
        // Back from a locked screen: catch up with colleagues' changes.
        s.sync.poke();
        Ok(worker)
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn lock(session: State<'_, Arc<Session>>) -> IpcResult<()> {
    blocking(&session, |s| {
        if let Some(store) = s.store().take() {
            store.lock();
        }
        Ok(())
    })
    .await
}

#[derive(Deserialize, Default, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct CaseFilterInput {
    district: Option<String>,
    status: Option<CaseStatus>,
}

#[tauri::command]
#[specta::specta]
pub async fn my_cases(
    session: State<'_, Arc<Session>>,
    filter: Option<CaseFilterInput>,
) -> IpcResult<Vec<CaseSummary>> {
    let filter = filter.unwrap_or_default();
    if filter
        .district
        .as_ref()
        .is_some_and(|d| d.len() > MAX_FILTER_BYTES)
    {
        return Err(IpcError::too_long("district"));
    }
    blocking(&session, move |s| {
        with_store(s, |store| {
            Ok(store.my_cases(&CaseFilter {
                district: filter.district,
                status: filter.status,
            })?)
        })
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn case_overview(
    session: State<'_, Arc<Session>>,
    case_id: CaseId,
) -> IpcResult<CaseOverview> {
    blocking(&session, move |s| {
        with_store(s, |store| Ok(store.case_overview(case_id)?))
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn notes_timeline(
    session: State<'_, Arc<Session>>,
    case_id: CaseId,
    after: Option<TimelineCursor>,
) -> IpcResult<TimelinePage> {
    blocking(&session, move |s| {
        with_store(s, |store| {
            Ok(store.notes_timeline(case_id, after.as_ref(), TIMELINE_PAGE)?)
        })
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn note(session: State<'_, Arc<Session>>, note_id: NoteId) -> IpcResult<NoteView> {
    blocking(&session, move |s| {
        with_store(s, |store| Ok(store.note_view(note_id)?))
    })
    .await
}

/// Saves a draft (the editor's autosave). A refused save keeps the text in the encrypted
/// store ([`Store::keep_unsaved`]) until it is saved or discarded, and answers why.
#[tauri::command]
#[specta::specta]
pub async fn save_draft(session: State<'_, Arc<Session>>, draft: NoteDraft) -> IpcResult<CaseNote> {
    blocking(&session, move |s| {
        with_store_mut(s, |store| {
            keeping_unsaved(store, &draft, |store, note| {
                store.write(|w| {
                    let saved = w.save_note(note)?;
                    w.forget_unsaved(draft.key, Some(saved.id))?;
                    Ok(saved)
                })
            })
        })
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn sign_note(session: State<'_, Arc<Session>>, draft: NoteDraft) -> IpcResult<CaseNote> {
    // What is signed is exactly what the worker sees: the draft as on screen, every field
    // (an emptied one too), saved and signed in one transaction. An empty note is refused.
    blocking(&session, move |s| {
        with_store_mut(s, |store| {
            keeping_unsaved(store, &draft, |store, note| {
                store.write(|w| {
                    let saved = w.save_note(note)?;
                    w.forget_unsaved(draft.key, Some(saved.id))?;
                    w.sign_note(saved.id)
                })
            })
        })
    })
    .await
}

/// Runs `save` on the note `draft` stands for; when it is refused, keeps the text (unless
/// there is none) under the draft's key and answers the refusal.
fn keeping_unsaved(
    store: &mut Store,
    draft: &NoteDraft,
    save: impl FnOnce(&mut Store, &CaseNote) -> feltkontor_core::Result<CaseNote>,
) -> IpcResult<CaseNote> {
    let refused = match checked_draft(draft) {
        Ok(occurred_at) => {
            let note = draft_note(draft, occurred_at, store.worker_id());
            match save(store, &note) {
                Ok(saved) => return Ok(saved),
                Err(e) => IpcError::from(e),
            }
        }
        Err(e) => e,
    };
    let has_text = [&draft.body, &draft.child_words, &draft.family_perspective]
        .iter()
        .any(|t| !t.trim().is_empty());
    if has_text && refused.code != "session.locked" {
        store.keep_unsaved(draft, refused.code)?;
    }
    Err(refused)
}

/// The text kept after a refused save of the writing `key` (or of the saved draft `note_id`).
#[tauri::command]
#[specta::specta]
pub async fn unsaved_note(
    session: State<'_, Arc<Session>>,
    key: uuid::Uuid,
    note_id: Option<NoteId>,
) -> IpcResult<Option<UnsavedNote>> {
    blocking(&session, move |s| {
        with_store(s, |store| Ok(store.unsaved_note(key, note_id)?))
    })
    .await
}

/// Every text kept after a refused save in the case, newest first.
#[tauri::command]
#[specta::specta]
pub async fn unsaved_in_case(
    session: State<'_, Arc<Session>>,
    case_id: CaseId,
) -> IpcResult<Vec<UnsavedNote>> {
    blocking(&session, move |s| {
        with_store(s, |store| Ok(store.unsaved_in_case(case_id)?))
    })
    .await
}

/// Discards the text kept for the writing `key` (the worker chose to, after confirming).
#[tauri::command]
#[specta::specta]
pub async fn discard_unsaved(session: State<'_, Arc<Session>>, key: uuid::Uuid) -> IpcResult<()> {
    blocking(&session, move |s| {
        with_store(s, |store| Ok(store.discard_unsaved(key)?))
    })
    .await
}

/// Discards the worker's own draft: deleted here and, at the next sync, everywhere. Text kept
/// after a refused save of it goes too.
#[tauri::command]
#[specta::specta]
pub async fn discard_draft(session: State<'_, Arc<Session>>, note_id: NoteId) -> IpcResult<()> {
    blocking(&session, move |s| {
        with_store_mut(s, |store| {
            Ok(store.write(|w| {
                w.discard_draft(note_id)?;
                w.forget_unsaved(uuid::Uuid::nil(), Some(note_id))
            })?)
        })
    })
    .await
}

/// The name this computer enrolls under, so IT can tell the right laptop apart in `admin
/// devices` before revoking one: the computer's host name and the worker's user name, without
/// control characters, at most 100 characters (the service's limit).
fn device_name(host: &str, username: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_control())
            .collect::<String>()
            .trim()
            .to_owned()
    };
    let host = clean(host);
    let host = if host.is_empty() || host == "localhost" {
        "Feltkontor".to_owned()
    } else {
        host
    };
    let name = format!("{host} ({})", clean(username));
    name.chars().take(100).collect()
}

/// The draft's size and time, checked before the store is asked: a field past the limit is
/// named with its length and the limit.
fn checked_draft(draft: &NoteDraft) -> IpcResult<OffsetDateTime> {
    for (field, text) in [
        ("body", &draft.body),
        ("child_words", &draft.child_words),
        ("family_perspective", &draft.family_perspective),
    ] {
        feltkontor_core::domain::text::optional_text(field, text, NOTE_TEXT_MAX)?;
    }
    let text_bytes = draft.body.len() + draft.child_words.len() + draft.family_perspective.len();
    if text_bytes > MAX_NOTE_BYTES {
        return Err(IpcError::too_long("note"));
    }
    OffsetDateTime::parse(&draft.occurred_at, &Rfc3339).map_err(|_| {
        IpcError::from(feltkontor_core::Error::from(ValidationError::InvalidDate {
            field: "occurred_at",
        }))
    })
}

/// The note a draft from the editor stands for, written by `author` (the store's worker).
fn draft_note(draft: &NoteDraft, occurred_at: OffsetDateTime, author: StaffId) -> CaseNote {
    CaseNote {
        id: draft.id.unwrap_or_default(),
        case_id: draft.case_id,
        author_id: author,
        kind: draft.kind,
        occurred_at,
        body: SensitiveText(draft.body.clone()),
        child_words: SensitiveText(draft.child_words.clone()),
        family_perspective: SensitiveText(draft.family_perspective.clone()),
        statutory: draft.statutory,
        audience: draft.audience,
        status: NoteStatus::Draft,
        signed_at: None,
        content_hash: None,
        addendum_to: draft.addendum_to,
    }
}

#[tauri::command]
#[specta::specta]
pub async fn search(session: State<'_, Arc<Session>>, query: String) -> IpcResult<SearchResults> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(IpcError::too_long("query"));
    }
    blocking(&session, move |s| {
        with_store(s, |store| Ok(store.search(&query, SEARCH_LIMIT)?))
    })
    .await
}

/// How hard a passphrase is to guess, as the store will judge it (zxcvbn with Danish words):
/// the meter shows exactly the rule that is enforced.
#[derive(Serialize, specta::Type)]
pub struct PassphraseStrength {
    /// 0 (guessed at once) to 4 (very hard to guess).
    score: u8,
    /// Whether the store accepts it.
    acceptable: bool,
}

#[tauri::command]
#[specta::specta]
pub async fn passphrase_strength(
    session: State<'_, Arc<Session>>,
    passphrase: String,
) -> IpcResult<PassphraseStrength> {
    if passphrase.len() > MAX_PASSPHRASE_BYTES {
        return Err(IpcError::too_long("passphrase"));
    }
    blocking(&session, move |_| {
        let s = feltkontor_core::domain::strength::strength(&passphrase, &[]);
        Ok(PassphraseStrength {
            score: s.score,
            acceptable: s.acceptable,
        })
    })
    .await
}

/// Sets up local data on a machine that has none, and unlocks it.
#[tauri::command]
#[specta::specta]
pub async fn first_run(session: State<'_, Arc<Session>>, setup: FirstRun) -> IpcResult<Worker> {
    if setup.passphrase.len() > MAX_PASSPHRASE_BYTES {
        return Err(IpcError::too_long("passphrase"));
    }
    blocking(&session, move |s| {
        let mut guard = s.store();
        if s.location.exists() {
            return Err(feltkontor_core::Error::StoreExists(s.location.dir().to_owned()).into());
        }
        let (store, staff) = setup::create_store(&s.location, setup, Arc::new(SystemClock))?;
        *guard = Some(store);
        Ok(Worker {
            id: staff.id,
            name: staff.name,
            initials: staff.initials,
            profession: Some(staff.profession),
        })
    })
    .await
}

fn parse_date(field: &'static str, s: &str) -> IpcResult<Date> {
    Date::parse(s.trim(), format_description!("[year]-[month]-[day]"))
        .map_err(|_| ValidationError::InvalidDate { field }.into())
}

fn parse_opt_date(field: &'static str, s: &Option<String>) -> IpcResult<Option<Date>> {
    s.as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_date(field, s))
        .transpose()
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// A new case as the form sends it. The worker becomes its coordinator, in their team.
#[derive(Deserialize, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    child_name: String,
    /// YYYY-MM-DD
    child_birth_date: String,
    child_cpr: Option<String>,
    child_institution: Option<String>,
    first_concern_on: Option<String>,
    first_meeting_on: Option<String>,
}

#[tauri::command]
#[specta::specta]
pub async fn open_case(session: State<'_, Arc<Session>>, new_case: NewCase) -> IpcResult<CaseId> {
    let birth = parse_date("child_birth_date", &new_case.child_birth_date)?;
    let cpr = non_empty(new_case.child_cpr)
        .map(|c| Cpr::parse(&c))
        .transpose()?;
    let first_concern_on = parse_opt_date("first_concern_on", &new_case.first_concern_on)?;
    let first_meeting_on = parse_opt_date("first_meeting_on", &new_case.first_meeting_on)?;
    blocking(&session, move |s| {
        with_store_mut(s, |store| {
            let team =
                store.worker_teams()?.into_iter().next().ok_or_else(|| {
                    IpcError::new("case.no_team", "the worker belongs to no team")
                })?;
            let new = Case {
                id: CaseId::new(),
                team_id: team.id,
                child_name: new_case.child_name.trim().to_owned(),
                child_birth_date: birth,
                child_cpr: cpr,
                child_institution: non_empty(new_case.child_institution),
                status: CaseStatus::Open,
                closed_reason: None,
                coordinator_id: store.worker_id(),
                opened_on: store.clock().today(),
                first_concern_on,
                first_meeting_on,
            };
            store.write(|w| w.open_case(&new))?;
            Ok(new.id)
        })
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn persons_of_case(
    session: State<'_, Arc<Session>>,
    case_id: CaseId,
) -> IpcResult<Vec<PersonView>> {
    blocking(&session, move |s| {
        with_store(s, |store| Ok(store.persons_of_case(case_id)?))
    })
    .await
}

/// A family member or network person as the form sends it, with their phone numbers and
/// (optionally) the quality of their relation to the child as of a date.
#[derive(Deserialize, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct PersonInput {
    id: Option<PersonId>,
    case_id: CaseId,
    name: String,
    relation: RelationToChild,
    custody: bool,
    email: Option<String>,
    address: Option<String>,
    protected_address: bool,
    language: Option<String>,
    interpreter_needed: bool,
    do_not_contact: bool,
    do_not_contact_reason: Option<String>,
    phones: Vec<String>,
    quality: Option<RelationQuality>,
    /// YYYY-MM-DD; today when absent.
    quality_as_of: Option<String>,
}

const MAX_PHONES: usize = 10;

#[tauri::command]
#[specta::specta]
pub async fn save_person(
    session: State<'_, Arc<Session>>,
    person: PersonInput,
) -> IpcResult<PersonView> {
    if person.phones.len() > MAX_PHONES {
        return Err(IpcError::too_long("phones"));
    }
    let as_of = parse_opt_date("quality_as_of", &person.quality_as_of)?;
    blocking(&session, move |s| {
        with_store_mut(s, |store| {
            let as_of = as_of.unwrap_or_else(|| store.clock().today());
            let existing_phones: Vec<Phone> = match person.id {
                Some(id) => store
                    .persons_of_case(person.case_id)?
                    .into_iter()
                    .find(|p| p.person.id == id)
                    .map(|p| p.phones)
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            let current_quality = match person.id {
                Some(id) => store
                    .network(person.case_id, as_of)?
                    .into_iter()
                    .find(|r| r.to_person_id == id && r.from_person_id.is_none())
                    .map(|r| r.quality),
                None => None,
            };
            let entity = Person {
                id: person.id.unwrap_or_default(),
                case_id: person.case_id,
                name: person.name.trim().to_owned(),
                relation: person.relation,
                custody: person.custody,
                email: non_empty(person.email),
                address: non_empty(person.address).map(SensitiveText),
                protected_address: person.protected_address,
                language: non_empty(person.language),
                interpreter_needed: person.interpreter_needed,
                do_not_contact: person.do_not_contact,
                do_not_contact_reason: non_empty(person.do_not_contact_reason),
            };
            let wanted: Vec<String> = person
                .phones
                .iter()
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect();
            store.write(|w| {
                w.put_person(&entity)?;
                for old in existing_phones
                    .iter()
                    .filter(|p| !wanted.contains(&p.number))
                {
                    w.remove_phone(old.id)?;
                }
                for number in wanted
                    .iter()
                    .filter(|n| !existing_phones.iter().any(|p| &p.number == *n))
                {
                    w.add_phone(&Phone {
                        id: RowId::new(),
                        case_id: entity.case_id,
                        person_id: entity.id,
                        number: number.clone(),
                        label: None,
                    })?;
                }
                if let Some(quality) = person.quality.filter(|q| Some(*q) != current_quality) {
                    w.add_relation(&Relation {
                        id: RowId::new(),
                        case_id: entity.case_id,
                        from_person_id: None,
                        to_person_id: entity.id,
                        quality,
                        as_of,
                    })?;
                }
                Ok(())
            })?;
            Ok(store.person(entity.id)?)
        })
    })
    .await
}

/// The family network as it stood on a date, and the dates on which it changed.
#[derive(Serialize, specta::Type)]
pub struct Network {
    relations: Vec<Relation>,
    /// YYYY-MM-DD, oldest first.
    dates: Vec<String>,
}

/// The family network as it stood on a date (today when absent).
#[tauri::command]
#[specta::specta]
pub async fn network(
    session: State<'_, Arc<Session>>,
    case_id: CaseId,
    as_of: Option<String>,
) -> IpcResult<Network> {
    let as_of = parse_opt_date("as_of", &as_of)?;
    blocking(&session, move |s| {
        with_store(s, |store| {
            Ok(Network {
                relations: store
                    .network(case_id, as_of.unwrap_or_else(|| store.clock().today()))?,
                dates: store
                    .network_dates(case_id)?
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            })
        })
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn change_passphrase(
    session: State<'_, Arc<Session>>,
    current: String,
    replacement: String,
) -> IpcResult<()> {
    if current.len() > MAX_PASSPHRASE_BYTES || replacement.len() > MAX_PASSPHRASE_BYTES {
        return Err(IpcError::too_long("passphrase"));
    }
    blocking(&session, move |s| {
        with_store(s, |store| {
            Ok(store.change_passphrase(&current, &replacement)?)
        })
    })
    .await
}

/// What the settings screen shows about this installation.
#[derive(Serialize, specta::Type)]
pub struct DeviceInfo {
    app_version: String,
    device_id: String,
    worker_name: String,
    data_folder: String,
    schema_version: u32,
    encryption: String,
    /// The central service this computer syncs with; `None` for a local-only profile.
    server_url: Option<String>,
}

#[tauri::command]
#[specta::specta]
pub async fn device_info(session: State<'_, Arc<Session>>) -> IpcResult<DeviceInfo> {
    blocking(&session, |s| {
        with_store(s, |store| {
            let staff: Option<Staff> = store.get(store.worker_id().0)?;
            Ok(DeviceInfo {
                app_version: env!("CARGO_PKG_VERSION").to_owned(),
                device_id: store.device_id().to_string(),
                worker_name: staff.map(|s| s.name).unwrap_or_default(),
                data_folder: s.location.dir().display().to_string(),
                schema_version: store.schema_version()?,
                encryption: format!("SQLCipher {}", store.cipher_version()?),
                server_url: store.sync_account()?.map(|a| a.server_url),
            })
        })
    })
    .await
}

/// A member of staff the worker can choose, with the sector whose consent covers sharing
/// with them (`None`: social services' own staff, no consent needed).
#[derive(Serialize, specta::Type)]
pub struct StaffOption {
    #[serde(flatten)]
    staff: Staff,
    consent_sector: Option<ConsentSector>,
}

/// Staff the worker can add to a case or make responsible for an agreement.
#[tauri::command]
#[specta::specta]
pub async fn team_staff(session: State<'_, Arc<Session>>) -> IpcResult<Vec<StaffOption>> {
    blocking(&session, |s| {
        with_store(s, |store| {
            Ok(store
                .team_staff()?
                .into_iter()
                .map(|staff| StaffOption {
                    consent_sector: feltkontor_core::domain::rules::consent_sector(
                        staff.profession,
                    ),
                    staff,
                })
                .collect())
        })
    })
    .await
}

#[derive(Deserialize, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct ParticipantInput {
    case_id: CaseId,
    staff_id: StaffId,
    role: String,
    legal_basis: Option<String>,
}

#[tauri::command]
#[specta::specta]
pub async fn add_participant(
    session: State<'_, Arc<Session>>,
    participant: ParticipantInput,
) -> IpcResult<()> {
    blocking(&session, move |s| {
        with_store_mut(s, |store| {
            let p = Participant {
                id: RowId::new(),
                case_id: participant.case_id,
                staff_id: participant.staff_id,
                role: participant.role.trim().to_owned(),
                legal_basis: non_empty(participant.legal_basis),
            };
            Ok(store.write(|w| w.add_participant(&p))?)
        })
    })
    .await
}

#[derive(Deserialize, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    case_id: CaseId,
    given_by: PersonId,
    sectors: Vec<ConsentSector>,
    /// YYYY-MM-DD
    valid_from: String,
    valid_to: Option<String>,
}

#[tauri::command]
#[specta::specta]
pub async fn record_consent(
    session: State<'_, Arc<Session>>,
    consent: ConsentInput,
) -> IpcResult<Consent> {
    let valid_from = parse_date("valid_from", &consent.valid_from)?;
    let valid_to = parse_opt_date("valid_to", &consent.valid_to)?;
    blocking(&session, move |s| {
        with_store_mut(s, |store| {
            let c = Consent {
                id: ConsentId::new(),
                case_id: consent.case_id,
                given_by: consent.given_by,
                sectors: consent.sectors.into_iter().collect(),
                valid_from,
                valid_to,
                withdrawn_at: None,
            };
            store.write(|w| w.record_consent(&c))?;
            Ok(c)
        })
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn withdraw_consent(
    session: State<'_, Arc<Session>>,
    consent_id: ConsentId,
) -> IpcResult<Consent> {
    blocking(&session, move |s| {
        with_store_mut(s, |store| {
            Ok(store.write(|w| w.withdraw_consent(consent_id))?)
        })
    })
    .await
}

#[derive(Deserialize, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct AgreementInput {
    case_id: CaseId,
    what: String,
    responsible_staff_id: Option<StaffId>,
    responsible_person_id: Option<PersonId>,
    /// YYYY-MM-DD
    due_on: Option<String>,
    /// A due date already passed is a late registration: made only when the worker confirmed
    /// it (a typing slip in the year is caught this way).
    confirm_late: bool,
}

#[tauri::command]
#[specta::specta]
pub async fn add_agreement(
    session: State<'_, Arc<Session>>,
    agreement: AgreementInput,
) -> IpcResult<Agreement> {
    let due_on = parse_opt_date("due_on", &agreement.due_on)?;
    blocking(&session, move |s| {
        with_store_mut(s, |store| {
            let today = store.clock().today();
            if due_on.is_some_and(|d| d < today) && !agreement.confirm_late {
                return Err(IpcError::new(
                    "agreement.due_in_past",
                    "the due date has passed: confirm a late registration",
                )
                .with_field("due_on"));
            }
            let a = Agreement {
                id: AgreementId::new(),
                case_id: agreement.case_id,
                what: agreement.what.trim().to_owned(),
                responsible_staff_id: agreement.responsible_staff_id,
                responsible_person_id: agreement.responsible_person_id,
                due_on,
                done_at: None,
            };
            store.write(|w| w.put_agreement(&a))?;
            Ok(a)
        })
    })
    .await
}

#[tauri::command]
#[specta::specta]
pub async fn mark_agreement_done(
    session: State<'_, Arc<Session>>,
    agreement_id: AgreementId,
) -> IpcResult<Agreement> {
    blocking(&session, move |s| {
        with_store_mut(s, |store| {
            Ok(store.write(|w| w.mark_agreement_done(agreement_id))?)
        })
    })
    .await
}

/// Hands the case to a new coordinator; the handover note is required.
#[tauri::command]
#[specta::specta]
pub async fn handover(
    session: State<'_, Arc<Session>>,
    case_id: CaseId,
    to: StaffId,
    note: String,
) -> IpcResult<()> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(IpcError::too_long("note"));
    }
    blocking(&session, move |s| {
        with_store_mut(s, |store| {
            store.write(|w| w.handover(case_id, to, &note))?;
            Ok(())
        })
    })
    .await
}

/// A planned visit or meeting as the form sends it. Without `id` it is a new one.
#[derive(Deserialize, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct AppointmentInput {
    id: Option<AppointmentId>,
    case_id: CaseId,
    kind: AppointmentKind,
    /// RFC 3339.
    starts_at: String,
    place: String,
    invited_persons: Vec<PersonId>,
    invited_staff: Vec<StaffId>,
    cancelled: bool,
}

/// Plans (or changes, or cancels) a home visit, meeting or network meeting.
#[tauri::command]
#[specta::specta]
pub async fn save_appointment(
    session: State<'_, Arc<Session>>,
    appointment: AppointmentInput,
) -> IpcResult<Appointment> {
    let starts_at = OffsetDateTime::parse(&appointment.starts_at, &Rfc3339)
        .map_err(|_| IpcError::from(ValidationError::InvalidDate { field: "starts_at" }))?;
    if appointment.invited_persons.len() + appointment.invited_staff.len()
        > feltkontor_core::domain::MAX_INVITED
    {
        return Err(IpcError::too_long("invited"));
    }
    blocking(&session, move |s| {
        with_store_mut(s, |store| {
            let note_id = match appointment.id {
                Some(id) => store.get::<Appointment>(id.0)?.and_then(|a| a.note_id),
                None => None,
            };
            let a = Appointment {
                id: appointment.id.unwrap_or_default(),
                case_id: appointment.case_id,
                kind: appointment.kind,
                starts_at,
                place: appointment.place,
                invited_persons: appointment.invited_persons.into_iter().collect(),
                invited_staff: appointment.invited_staff.into_iter().collect(),
                note_id,
                cancelled: appointment.cancelled,
            };
            Ok(store.write(|w| w.put_appointment(&a))?)
        })
    })
    .await
}

/// The note written of a held meeting: the appointment names it from now on.
#[tauri::command]
#[specta::specta]
pub async fn link_appointment_note(
    session: State<'_, Arc<Session>>,
    appointment_id: AppointmentId,
    note_id: NoteId,
) -> IpcResult<Appointment> {
    blocking(&session, move |s| {
        with_store_mut(s, |store| {
            let mut a: Appointment = store.get(appointment_id.0)?.ok_or_else(|| {
                IpcError::from(feltkontor_core::Error::NotFound {
                    entity: "appointment",
                    id: appointment_id.to_string(),
                })
            })?;
            a.note_id = Some(note_id);
            Ok(store.write(|w| w.put_appointment(&a))?)
        })
    })
    .await
}

/// "Min uge": what needs the worker this week across all their cases.
#[tauri::command]
#[specta::specta]
pub async fn my_week(session: State<'_, Arc<Session>>) -> IpcResult<MyWeek> {
    blocking(&session, |s| with_store(s, |store| Ok(store.my_week()?))).await
}

/// The new coordinator acknowledged a handover: it leaves "Min uge".
#[tauri::command]
#[specta::specta]
pub async fn acknowledge_handover(
    session: State<'_, Arc<Session>>,
    handover_id: RowId,
) -> IpcResult<()> {
    blocking(&session, move |s| {
        with_store(s, |store| Ok(store.acknowledge_handover(handover_id)?))
    })
    .await
}

/// Closes a case with the reason (the coordinator's or a leader's decision).
#[tauri::command]
#[specta::specta]
pub async fn close_case(
    session: State<'_, Arc<Session>>,
    case_id: CaseId,
    reason: String,
) -> IpcResult<()> {
    if reason.len() > MAX_FILTER_BYTES * 4 {
        return Err(IpcError::too_long("closed_reason").with_field("closed_reason"));
    }
    blocking(&session, move |s| {
        with_store_mut(s, |store| {
            store.write(|w| w.close_case(case_id, &reason))?;
            Ok(())
        })
    })
    .await
}

/// Opens a closed case again.
#[tauri::command]
#[specta::specta]
pub async fn reopen_case(session: State<'_, Arc<Session>>, case_id: CaseId) -> IpcResult<()> {
    blocking(&session, move |s| {
        with_store_mut(s, |store| {
            store.write(|w| w.reopen_case(case_id))?;
            Ok(())
        })
    })
    .await
}

/// Connecting a new device at first run: the central service's address, the worker's user
/// name and password, and the one-time code from the administrator; the passphrase protects
/// the local data as in an offline first run.
#[derive(Deserialize, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct ConnectInput {
    server_url: String,
    username: String,
    code: String,
    password: String,
    passphrase: String,
}

/// The service's address: `https://…`, or plain `http://` only on this machine (a local
/// service in development and in the demo).
fn server_url(raw: &str) -> IpcResult<String> {
    use feltkontor_sync::device::AddressError;
    feltkontor_sync::device::service_url(raw).map_err(|e| {
        match e {
            AddressError::Invalid => IpcError::new(
                "connect.bad_url",
                "the address of the central service is not valid",
            ),
            AddressError::Insecure => IpcError::new(
                "connect.insecure_url",
                "the central service must be reached over https",
            ),
        }
        .with_field("server_url")
    })
}

fn connect_error(e: feltkontor_sync::SyncError) -> IpcError {
    use feltkontor_sync::{ErrorCode, SyncError};
    match e {
        SyncError::Store(e) => return e.into(),
        SyncError::NotConnected => {
            return IpcError::new(
                "lease.not_connected",
                "this computer is not connected to a central service",
            )
        }
        _ => {}
    }
    match &e {
        SyncError::Network(_) => IpcError::new(
            "connect.unreachable",
            "the central service could not be reached",
        ),
        SyncError::Refused {
            code: ErrorCode::EnrollmentFailed,
            ..
        } => IpcError::new(
            "connect.enrollment_failed",
            "user name, password or code is wrong, or the code is used or expired",
        ),
        SyncError::Refused {
            code: ErrorCode::InvalidInput,
            ..
        } => IpcError::new(
            "connect.invalid_input",
            "the one-time code is written XXXX-XXXX; check it and the user name",
        ),
        SyncError::Refused {
            code: ErrorCode::LoginThrottled | ErrorCode::RateLimited,
            ..
        } => IpcError::new("connect.throttled", "too many attempts; wait a little"),
        _ => {
            tracing::warn!("enrollment refused: {e}");
            IpcError::new(
                "connect.refused",
                "the central service refused the connection",
            )
        }
    }
}

#[tauri::command]
#[specta::specta]
pub async fn connect(session: State<'_, Arc<Session>>, input: ConnectInput) -> IpcResult<Worker> {
    for (what, value) in [
        ("username", &input.username),
        ("code", &input.code),
        ("password", &input.password),
        ("passphrase", &input.passphrase),
    ] {
        if value.len() > MAX_PASSPHRASE_BYTES {
            return Err(IpcError::too_long(what));
        }
    }
    let url = server_url(&input.server_url)?;
    let device_name = device_name(
        &gethostname::gethostname().to_string_lossy(),
        input.username.trim(),
    );
    let username = input.username.trim().to_owned();
    let enrolled = feltkontor_sync::device::enroll(
        &session.location,
        feltkontor_sync::device::Enrollment {
            server_url: url,
            code: input.code,
            username: username.clone(),
            password: input.password,
            passphrase: input.passphrase,
            device_name,
        },
        feltkontor_core::store::KdfParams::default(),
        Arc::new(SystemClock),
    )
    .await
    .map_err(connect_error)?;
    let worker = blocking(&session, move |s| {
        let mut guard = s.store();
        let id = enrolled.store.worker_id();
        *guard = Some(enrolled.store);
        s.sync.set_access_token(enrolled.access_token);
        Ok(Worker {
            id,
            name: username,
            initials: String::new(),
            profession: None,
        })
    })
    .await?;
    session.sync.poke();
    Ok(worker)
}

#[derive(Deserialize, specta::Type)]
#[serde(deny_unknown_fields)]
pub struct RenewLeaseInput {
    username: String,
    password: String,
    /// The store's passphrase (as typed at the unlock that found the lease lapsed): it checks
    /// the service address recorded in the key file, the only one the password is sent to.
    passphrase: String,
}

/// The lease ran out while the device was away (`unlock.lease_expired`): the worker signs in
/// with their user name and password, the service hands the lease out again, and unlocking with
/// the passphrase works again. A revoked device is wiped here instead.
#[tauri::command]
#[specta::specta]
pub async fn renew_lease(
    session: State<'_, Arc<Session>>,
    input: RenewLeaseInput,
) -> IpcResult<()> {
    for (what, value) in [
        ("username", &input.username),
        ("password", &input.password),
        ("passphrase", &input.passphrase),
    ] {
        if value.len() > MAX_PASSPHRASE_BYTES {
            return Err(IpcError::too_long(what));
        }
    }
    let fallback = std::env::var("FELTKONTOR_SERVER_URL").ok();
    match feltkontor_sync::device::renew_lease(
        &session.location,
        &input.username,
        &input.password,
        &input.passphrase,
        fallback,
        Arc::new(SystemClock),
    )
    .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.must_wipe() => {
            tracing::warn!("lease renewal: this device was revoked; wiping local data");
            crate::sync::wipe(&session);
            Err(IpcError::new(
                "lease.device_revoked",
                "this computer was revoked; its local data has been deleted",
            ))
        }
        Err(e) => Err(match connect_error(e) {
            err if err.code == "connect.enrollment_failed" => {
                IpcError::new("lease.wrong_credentials", "user name or password is wrong")
            }
            err => err,
        }),
    }
}

#[tauri::command]
#[specta::specta]
pub async fn sync_status(session: State<'_, Arc<Session>>) -> IpcResult<crate::sync::SyncStatus> {
    blocking(&session, |s| {
        crate::sync::refresh_local(s);
        Ok(s.sync.status())
    })
    .await
}

/// Sync now (the worker pressed the button): the task starts after its short debounce.
#[tauri::command]
#[specta::specta]
pub async fn sync_now(session: State<'_, Arc<Session>>) -> IpcResult<()> {
    session.sync.poke();
    Ok(())
}

/// A conflict as the conflicts view shows it: both values, who wrote each and when.
#[derive(Serialize, specta::Type)]
pub struct ConflictView {
    id: RowId,
    case_id: CaseId,
    child_name: String,
    entity: String,
    /// What the record is, for people: a person's name, "sagen", an agreement's text.
    record_label: String,
    field: String,
    /// JSON text, as the record holds the field.
    kept_value: String,
    kept_by: Option<String>,
    /// RFC 3339.
    kept_at: Option<String>,
    /// JSON text.
    other_value: String,
    other_by: Option<String>,
    other_at: Option<String>,
    detected_at: String,
}

fn hlc_time(h: &feltkontor_wire::Hlc) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(h.wall_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
}

/// A change saved here that the central service has not received.
#[derive(Serialize, specta::Type)]
pub struct UnsyncedChange {
    entity: String,
    record_label: String,
    child_name: String,
    /// RFC 3339.
    at: Option<String>,
}

/// What retiring found.
#[derive(Serialize, specta::Type)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RetireOutcome {
    /// Everything was sent; the service retired the device and its local data is deleted.
    Wiped,
    /// Changes have not reached the service (offline, or a local-only profile): deleting now
    /// would lose them. The newest 50, and how many in all; and how many access-log entries
    /// (what was opened and searched here) the service has not recorded yet.
    Unsynced {
        total: u32,
        changes: Vec<UnsyncedChange>,
        access_entries: u32,
    },
}

fn unsynced(store: &Store, connected: bool) -> IpcResult<RetireOutcome> {
    let total = store.pending_count()?;
    // A local-only profile has no service to record its access log.
    let access_entries = if connected {
        store.pending_access_count()?
    } else {
        0
    };
    let mut entries = store.pending_push(u32::MAX)?;
    entries.reverse();
    entries.truncate(50);
    let mut changes = Vec::new();
    for e in entries {
        let (record_label, case) = store.record_label(e.entity, e.entity_id)?;
        let child_name = match case {
            Some(c) => store
                .get::<Case>(c.0)?
                .map(|c| c.child_name)
                .unwrap_or_default(),
            None => String::new(),
        };
        changes.push(UnsyncedChange {
            entity: e.entity.as_str().to_owned(),
            record_label,
            child_name,
            at: e
                .fields
                .values()
                .map(|f| f.hlc)
                .max()
                .as_ref()
                .and_then(hlc_time),
        });
    }
    Ok(RetireOutcome::Unsynced {
        total: u32::try_from(total).unwrap_or(u32::MAX),
        changes,
        access_entries: u32::try_from(access_entries).unwrap_or(u32::MAX),
    })
}

/// Hands this computer back or signs the worker out of it: sends every change first, then
/// the service retires the device and the local data is deleted. If changes could not be sent
/// (offline, local only), nothing is deleted and the answer lists what would be lost; with
/// `force` the worker has seen that list and deletes anyway.
#[tauri::command]
#[specta::specta]
pub async fn retire_device(
    session: State<'_, Arc<Session>>,
    force: bool,
) -> IpcResult<RetireOutcome> {
    let account = blocking(&session, |s| {
        with_store(s, |store| Ok(store.sync_account()?))
    })
    .await?;
    let unsent = |connected: bool| {
        let session = Arc::clone(&session);
        async move {
            blocking(&session, move |s| {
                with_store(s, |store| unsynced(store, connected))
            })
            .await
        }
    };
    match &account {
        Some(account) => {
            // Everything waiting is sent first; with a spent access token it is renewed once
            // (shared with any other caller).
            let slot = &session.store;
            let told = crate::sync::call(&session, account, |remote| async move {
                feltkontor_sync::device::retire(&remote, slot, force).await
            })
            .await;
            match told {
                Ok(feltkontor_sync::device::Retire::Retired) => {}
                Ok(feltkontor_sync::device::Retire::Unsent { .. }) => return unsent(true).await,
                Err(e) if e.must_wipe() => {}
                // Everything was sent: the service must hear it, or the device would keep a
                // valid lease there.
                Err(e) => {
                    tracing::info!("retire: the service could not be told: {e}");
                    return Err(IpcError::new(
                        "retire.unreachable",
                        "the central service could not be reached; try again on the network",
                    ));
                }
            }
        }
        None if !force => {
            if let RetireOutcome::Unsynced { total, .. } = unsent(false).await? {
                if total > 0 {
                    return unsent(false).await;
                }
            }
        }
        None => {}
    }
    crate::sync::wipe(&session);
    session.sync.reset_after_wipe();
    Ok(RetireOutcome::Wiped)
}

#[tauri::command]
#[specta::specta]
pub async fn conflicts(session: State<'_, Arc<Session>>) -> IpcResult<Vec<ConflictView>> {
    blocking(&session, |s| {
        with_store(s, |store| {
            let name_of = |id: Option<StaffId>| -> IpcResult<Option<String>> {
                Ok(match id {
                    Some(id) => store.get::<Staff>(id.0)?.map(|s| s.name),
                    None => None,
                })
            };
            let mut out = Vec::new();
            for c in store.open_conflicts(None)? {
                let child_name = store
                    .get::<Case>(c.case_id.0)?
                    .map(|c| c.child_name)
                    .unwrap_or_default();
                let (record_label, _) = store.record_label(c.entity, c.entity_id)?;
                out.push(ConflictView {
                    id: c.id,
                    case_id: c.case_id,
                    child_name,
                    entity: c.entity.as_str().to_owned(),
                    record_label,
                    field: c.field.clone(),
                    kept_value: c.kept_value.clone(),
                    kept_by: name_of(c.kept_by)?,
                    kept_at: hlc_time(&c.kept_hlc),
                    other_value: c.other_value.clone(),
                    other_by: name_of(c.other_by)?,
                    other_at: hlc_time(&c.other_hlc),
                    detected_at: c.detected_at.format(&Rfc3339).unwrap_or_default(),
                });
            }
            Ok(out)
        })
    })
    .await
}

/// Resolves a conflict with the value the worker chose (JSON text): one side's, or one they
/// wrote. The record's own validation decides whether the value fits the field.
#[tauri::command]
#[specta::specta]
pub async fn resolve_conflict(
    session: State<'_, Arc<Session>>,
    conflict_id: RowId,
    value: String,
) -> IpcResult<()> {
    if value.len() > MAX_NOTE_BYTES {
        return Err(IpcError::too_long("value"));
    }
    let value: serde_json::Value = serde_json::from_str(&value)
        .map_err(|_| IpcError::new("input.invalid", "the value is not valid"))?;
    blocking(&session, move |s| {
        with_store_mut(s, |store| {
            store.resolve_conflict(conflict_id, &value)?;
            Ok(())
        })
    })
    .await
}

#[derive(Serialize, specta::Type)]
pub struct RejectedView {
    seq: u32,
    entity: String,
    entity_id: String,
    code: String,
    reason: String,
}

/// Changes the central service refused for good, newest first.
#[tauri::command]
#[specta::specta]
pub async fn rejected_changes(session: State<'_, Arc<Session>>) -> IpcResult<Vec<RejectedView>> {
    blocking(&session, |s| {
        with_store(s, |store| {
            Ok(store
                .rejected_changes()?
                .into_iter()
                .map(|r| RejectedView {
                    seq: u32::try_from(r.seq).unwrap_or(u32::MAX),
                    entity: r.entity.as_str().to_owned(),
                    entity_id: r.entity_id.to_string(),
                    code: r.code,
                    reason: r.reason,
                })
                .collect())
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::{device_name, server_url};

    #[test]
    fn a_device_is_named_by_its_computer_and_its_worker() {
        assert_eq!(device_name("BK-LAP-0412", "mette"), "BK-LAP-0412 (mette)");
        assert_eq!(device_name("", "mette"), "Feltkontor (mette)");
        assert_eq!(device_name("localhost", "mette"), "Feltkontor (mette)");
        assert_eq!(device_name("evil\nhost", "m\u{7}ette"), "evilhost (mette)");
        assert_eq!(device_name(&"x".repeat(300), "mette").chars().count(), 100);
    }

    #[test]
    fn the_service_is_reached_over_https_or_on_this_machine_only() {
        assert_eq!(
            server_url(" https://feltkontor.aarhus.dk/ ").unwrap(),
            "https://feltkontor.aarhus.dk"
        );
        assert_eq!(
            server_url("http://127.0.0.1:8443").unwrap(),
            "http://127.0.0.1:8443"
        );
        assert_eq!(
            server_url("http://localhost:8443").unwrap(),
            "http://localhost:8443"
        );
        // IPv6 loopback is this machine too; a host merely starting with it is not.
        assert_eq!(
            server_url("http://[::1]:8443").unwrap(),
            "http://[::1]:8443"
        );
        assert_eq!(server_url("http://[::1]").unwrap(), "http://[::1]");
        for not_here in [
            "http://127.0.0.1.example.dk",
            "http://localhost.example.dk",
            "http://[::2]:8443",
        ] {
            assert_eq!(
                server_url(not_here).unwrap_err().code,
                "connect.insecure_url",
                "{not_here}"
            );
        }
        let insecure = server_url("http://feltkontor.aarhus.dk").unwrap_err();
        assert_eq!(insecure.code, "connect.insecure_url");
        for bad in [
            "",
            "feltkontor.aarhus.dk",
            "ftp://feltkontor.aarhus.dk",
            "https://",
            "https://felt kontor.dk",
            "https://worker:secret@feltkontor.aarhus.dk",
        ] {
            assert_eq!(
                server_url(bad).unwrap_err().code,
                "connect.bad_url",
                "{bad}"
            );
        }
    }
}

/// The home-visit sheet of a planned visit or meeting, from the local store (works offline).
#[tauri::command]
#[specta::specta]
pub async fn visit_sheet(
    session: State<'_, Arc<Session>>,
    appointment_id: AppointmentId,
) -> IpcResult<VisitSheet> {
    blocking(&session, move |s| {
        with_store(s, |store| Ok(store.visit_sheet(appointment_id)?))
    })
    .await
}

/// Where a printed sheet was saved.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct SavedDocument {
    pub path: String,
}

/// Prints the home-visit sheet to a tagged PDF in the worker's documents folder
/// (`Feltkontor/Besøgsark …pdf`, readable by the worker's account only) and logs the export.
/// `utc_offset_minutes` is the worker's offset from UTC at the visit, for the times printed.
#[tauri::command]
#[specta::specta]
pub async fn visit_sheet_pdf(
    app: tauri::AppHandle,
    session: State<'_, Arc<Session>>,
    appointment_id: AppointmentId,
    utc_offset_minutes: i32,
) -> IpcResult<SavedDocument> {
    use tauri::Manager;
    let offset = time::UtcOffset::from_whole_seconds(utc_offset_minutes.saturating_mul(60))
        .ok()
        .filter(|_| utc_offset_minutes.abs() <= 14 * 60)
        .ok_or_else(|| {
            IpcError::from(ValidationError::InvalidDate {
                field: "utc_offset",
            })
        })?;
    let dir = app
        .path()
        .document_dir()
        .or_else(|_| app.path().home_dir())
        .map_err(|_| IpcError::new("document.no_folder", "no documents folder"))?
        .join("Feltkontor");
    blocking(&session, move |s| {
        let sheet = with_store(s, |store| Ok(store.visit_sheet(appointment_id)?))?;
        let local = sheet.appointment.starts_at.to_offset(offset);
        let doc = feltkontor_documents::visit_sheet(&sheet, offset);
        let pdf =
            feltkontor_documents::render_pdf(&doc, sheet.prepared_at.to_offset(offset).date())
                .map_err(|e| {
                    tracing::error!(error = %e, "the home-visit sheet could not be typeset");
                    IpcError::new("document.failed", "the document could not be made")
                })?;
        let stem = format!(
            "Besøgsark {}-{:02}-{:02} {:02}.{:02}",
            local.year(),
            local.month() as u8,
            local.day(),
            local.hour(),
            local.minute()
        );
        // Logged first: a file never leaves without its entry in the access log.
        with_store(s, |store| Ok(store.log_sheet_export(sheet.case_id)?))?;
        let path = write_new_file(&dir, &stem, "pdf", &pdf).map_err(|e| {
            tracing::warn!(error = %e, "the home-visit sheet could not be saved");
            IpcError::new("document.write_failed", "the file could not be saved")
        })?;
        Ok(SavedDocument {
            path: path.display().to_string(),
        })
    })
    .await
}

/// Writes `bytes` to a file in `dir` that did not exist (`stem.ext`, else `stem (2).ext`, …),
/// never through an existing file or link, readable by the owner only.
fn write_new_file(
    dir: &std::path::Path,
    stem: &str,
    ext: &str,
    bytes: &[u8],
) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    // The folder is made readable by the worker's account only, and must be a real folder,
    // not a link planted elsewhere.
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    if !std::fs::symlink_metadata(dir)?.file_type().is_dir() {
        return Err(std::io::Error::other(
            "the documents folder is not a folder",
        ));
    }
    for n in 1..1000 {
        let name = if n == 1 {
            format!("{stem}.{ext}")
        } else {
            format!("{stem} ({n}).{ext}")
        };
        let path = dir.join(name);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        match opts.open(&path) {
            Ok(mut f) => {
                // A half-written file holds case data: removed if the write fails.
                if let Err(e) = f.write_all(bytes).and_then(|()| f.sync_all()) {
                    drop(f);
                    let _ = std::fs::remove_file(&path);
                    return Err(e);
                }
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("too many files of that name"))
}
