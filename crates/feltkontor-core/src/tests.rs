//! Behaviour of the store on real SQLCipher files on disk.

use crate::domain::*;
use crate::error::{Error, ValidationError};
use crate::store::queries::CaseFilter;
use crate::store::{Store, StoreLocation};
use crate::testing::{Sample, PASSPHRASE};
use feltkontor_wire::*;
use proptest::prelude::*;
use time::macros::{date, datetime};

fn count(store: &Store, sql: &str) -> i64 {
    store.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn log_len(store: &Store) -> i64 {
    count(store, "SELECT count(*) FROM change_log")
}

fn invalid(e: Error) -> ValidationError {
    match e {
        Error::Invalid(v) => v,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn reopens_with_the_passphrase_and_keeps_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, clock) = s.sample_store(tmp.path());
    store.write(|w| w.save_note(&s.note)).unwrap();
    store.lock();
    let store = Store::open(&StoreLocation::new(tmp.path()), PASSPHRASE, clock).unwrap();
    assert_eq!(store.note(s.note.id).unwrap().body, s.note.body);
    assert_eq!(store.worker_id(), s.staff.id);
    assert!(store.integrity_ok().unwrap());
}

#[test]
fn a_wrong_passphrase_is_refused_touches_nothing_and_repeated_failures_are_slowed() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (store, clock) = s.sample_store(tmp.path());
    store.lock();
    let loc = StoreLocation::new(tmp.path());
    let db_before = std::fs::read(loc.database()).unwrap();
    let key_before = std::fs::read(loc.key_file()).unwrap();
    for _ in 0..3 {
        assert!(matches!(
            Store::open(&loc, "forkert kodeord", clock.clone()),
            Err(Error::WrongPassphrase)
        ));
    }
    assert_eq!(
        std::fs::read(loc.database()).unwrap(),
        db_before,
        "the database is untouched"
    );
    assert_eq!(
        std::fs::read(loc.key_file()).unwrap(),
        key_before,
        "the key file is untouched"
    );
    // After the free attempts, even the right passphrase must wait.
    match Store::open(&loc, PASSPHRASE, clock.clone()) {
        Err(Error::Throttled { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
        other => panic!("expected throttling, got {other:?}"),
    }
    clock.advance(time::Duration::seconds(1));
    assert!(matches!(
        Store::open(&loc, "forkert igen!", clock.clone()),
        Err(Error::WrongPassphrase)
    ));
    assert!(matches!(
        Store::open(&loc, PASSPHRASE, clock.clone()),
        Err(Error::Throttled {
            retry_after_secs: 2
        })
    ));
    clock.advance(time::Duration::seconds(2));
    Store::open(&loc, PASSPHRASE, clock.clone()).unwrap().lock();
    // Success resets the counter.
    assert!(matches!(
        Store::open(&loc, "forkert kodeord", clock.clone()),
        Err(Error::WrongPassphrase)
    ));
    Store::open(&loc, PASSPHRASE, clock).unwrap();
}

#[test]
fn the_database_file_holds_none_of_the_plaintext() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    let marker = "Barnet fortalte om Zebrafinken Ulrikke";
    let mut note = s.note.clone();
    note.body = marker.into();
    note.child_words = "Hemmelig-barnestemme-42".into();
    store.write(|w| w.save_note(&note)).unwrap();
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(tmp.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    for needle in [
        marker,
        "Zebrafinken",
        "Hemmelig-barnestemme",
        "Søren Åberg",
        "Hanne",
        "010315",
        "Skjoldhøjvej",
        "SQLite format 3",
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle:?} found in plaintext on disk"
        );
    }
    let cipher: String = store
        .conn()
        .query_row("PRAGMA cipher_version", [], |r| r.get(0))
        .unwrap();
    assert!(!cipher.is_empty());
}

#[test]
fn passphrase_change_rewraps_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (store, clock) = s.sample_store(tmp.path());
    assert!(matches!(
        store.change_passphrase(PASSPHRASE, "kort"),
        Err(Error::WeakPassphrase { .. })
    ));
    store
        .change_passphrase(PASSPHRASE, "en helt ny lang sætning")
        .unwrap();
    store.lock();
    let loc = StoreLocation::new(tmp.path());
    assert!(matches!(
        Store::open(&loc, PASSPHRASE, clock.clone()),
        Err(Error::WrongPassphrase)
    ));
    Store::open(&loc, "en helt ny lang sætning", clock).unwrap();
}

#[test]
fn a_weak_passphrase_is_refused_at_set_up() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Store::create(
        &StoreLocation::new(tmp.path()),
        "kort",
        StaffId::new(),
        Sample::clock(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "unlock.weak_passphrase");
    assert!(!StoreLocation::new(tmp.path()).exists());
}

#[test]
fn every_mutation_logs_exactly_its_changed_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    let before = log_len(&store);
    store.write(|w| w.save_note(&s.note)).unwrap();
    assert_eq!(log_len(&store), before + 1);
    let mut edited = s.note.clone();
    edited.body = "Rettet tekst".into();
    store.write(|w| w.save_note(&edited)).unwrap();
    let last = store.change_log(0, 1000).unwrap().pop().unwrap();
    assert_eq!(last.entity, EntityKind::Note);
    assert_eq!(last.fields.keys().collect::<Vec<_>>(), vec!["body"]);
    assert_eq!(last.fields["body"].value, serde_json::json!("Rettet tekst"));
    let created = store
        .change_log(0, 1000)
        .unwrap()
        .into_iter()
        .find(|e| e.entity_id == s.note.id.0)
        .unwrap();
    assert!(
        created
            .fields
            .values()
            .all(|f| f.hlc == created.fields["body"].hlc),
        "one mutation, one timestamp"
    );
    assert!(last.fields["body"].hlc > created.fields["body"].hlc);
    // The row knows which write set each field: `*` for the insert, the field for the update.
    let clocks: String = store
        .conn()
        .query_row(
            "SELECT field_hlc FROM notes WHERE id = ?1",
            [s.note.id.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    let clocks: serde_json::Value = serde_json::from_str(&clocks).unwrap();
    assert_eq!(
        clocks["*"],
        serde_json::json!(created.fields["body"].hlc.to_string())
    );
    assert_eq!(
        clocks["body"],
        serde_json::json!(last.fields["body"].hlc.to_string())
    );
    // Saving the same content again is not a mutation.
    store.write(|w| w.save_note(&edited)).unwrap();
    assert_eq!(log_len(&store), before + 2);
    // Archiving is a tombstone.
    store.write(|w| w.discard_draft(s.note.id)).unwrap();
    let last = store.change_log(0, 1000).unwrap().pop().unwrap();
    assert_eq!(last.fields["archived"].value, serde_json::json!(true));
    assert!(matches!(store.note(s.note.id), Err(Error::NotFound { .. })));
}

#[test]
fn an_aborted_transaction_leaves_no_rows_and_no_log() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    let before = (log_len(&store), count(&store, "SELECT count(*) FROM notes"));
    let mut bad = s.note.clone();
    bad.id = NoteId::new();
    bad.body = "x".repeat(text::NOTE_TEXT_MAX + 1).into();
    let err = store
        .write(|w| {
            w.save_note(&s.note)?;
            w.save_note(&bad)
        })
        .unwrap_err();
    assert!(matches!(
        invalid(err),
        ValidationError::TooLong { field: "body", .. }
    ));
    assert_eq!(
        (log_len(&store), count(&store, "SELECT count(*) FROM notes")),
        before
    );
}

#[test]
fn a_signed_note_never_changes_and_is_corrected_by_addendum() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    store.write(|w| w.save_note(&s.note)).unwrap();
    let signed = store.write(|w| w.sign_note(s.note.id)).unwrap();
    assert_eq!(signed.status, NoteStatus::Signed);
    assert_eq!(
        signed.content_hash.as_deref(),
        Some(rules::content_hash(&signed).as_str())
    );
    let log_before = log_len(&store);

    let mut edit = s.note.clone();
    edit.body = "Forsøg på at ændre".into();
    assert_eq!(
        invalid(store.write(|w| w.save_note(&edit)).unwrap_err()),
        ValidationError::NoteSigned
    );
    assert_eq!(
        invalid(store.write(|w| w.save_note(&signed)).unwrap_err()),
        ValidationError::NoteSigned
    );
    assert_eq!(
        invalid(store.write(|w| w.sign_note(s.note.id)).unwrap_err()),
        ValidationError::NoteSigned
    );
    assert_eq!(
        invalid(store.write(|w| w.discard_draft(s.note.id)).unwrap_err()),
        ValidationError::NoteSigned
    );
    assert_eq!(store.note(s.note.id).unwrap(), signed);
    assert_eq!(log_len(&store), log_before);

    let addendum = CaseNote {
        id: NoteId::new(),
        addendum_to: Some(s.note.id),
        body: "Tilføjelse: datoen var 19/11".into(),
        ..s.note.clone()
    };
    store.write(|w| w.save_note(&addendum)).unwrap();
    let draft = CaseNote {
        id: NoteId::new(),
        body: "kladde".into(),
        ..s.note.clone()
    };
    store.write(|w| w.save_note(&draft)).unwrap();
    let on_draft = CaseNote {
        id: NoteId::new(),
        addendum_to: Some(draft.id),
        ..s.note.clone()
    };
    assert_eq!(
        invalid(store.write(|w| w.save_note(&on_draft)).unwrap_err()),
        ValidationError::AddendumTargetInvalid
    );
}

#[test]
fn the_coordinator_changes_only_by_handover_with_a_note() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    let mut changed = s.case.clone();
    changed.coordinator_id = s.colleague.id;
    assert_eq!(
        invalid(store.write(|w| w.update_case(&changed)).unwrap_err()),
        ValidationError::HandoverNoteRequired
    );
    assert_eq!(
        invalid(
            store
                .write(|w| w.handover(s.case.id, s.colleague.id, "  "))
                .unwrap_err()
        ),
        ValidationError::HandoverNoteRequired
    );
    assert_eq!(
        invalid(
            store
                .write(|w| w.handover(s.case.id, s.staff.id, "til mig selv"))
                .unwrap_err()
        ),
        ValidationError::SameCoordinator
    );
    store
        .write(|w| {
            w.handover(
                s.case.id,
                s.colleague.id,
                "Jonas overtager, familien er informeret",
            )
        })
        .unwrap();
    let overview = store.case_overview(s.case.id).unwrap();
    assert_eq!(overview.case.coordinator_id, s.colleague.id);
    assert_eq!(overview.handovers.len(), 1);
    assert!(matches!(
        store.write(|w| w.close_case(s.case.id, "")).unwrap_err(),
        Error::Invalid(ValidationError::CloseReasonRequired)
    ));
    // Closing is the coordinator's decision: after the handover it is not this worker's.
    assert_eq!(
        invalid(
            store
                .write(|w| w.close_case(s.case.id, "Forløbet er afsluttet"))
                .unwrap_err()
        ),
        ValidationError::Privileged {
            what: "case status"
        }
    );
}

#[test]
fn the_coordinator_closes_and_reopens_a_case() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    store
        .write(|w| w.close_case(s.case.id, "Forløbet er afsluttet"))
        .unwrap();
    assert_eq!(
        invalid(store.write(|w| w.save_note(&s.note)).unwrap_err()),
        ValidationError::CaseClosed
    );
    let closed = store.case_overview(s.case.id).unwrap().case;
    assert_eq!(
        closed.closed_reason.as_deref(),
        Some("Forløbet er afsluttet")
    );
    let reopened = store.write(|w| w.reopen_case(s.case.id)).unwrap();
    assert_eq!(reopened.status, CaseStatus::Open);
    assert_eq!(reopened.closed_reason, None);
    store.write(|w| w.save_note(&s.note)).unwrap();
}

#[test]
fn bad_input_gives_typed_errors_and_no_partial_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    let tables = "SELECT (SELECT count(*) FROM cases) + (SELECT count(*) FROM persons) + (SELECT count(*) FROM notes)
        + (SELECT count(*) FROM consents) + (SELECT count(*) FROM agreements) + (SELECT count(*) FROM phones)";
    let before = (log_len(&store), count(&store, tables));

    let new_case = |f: &dyn Fn(&mut Case)| {
        let mut c = Case {
            id: CaseId::new(),
            ..s.case.clone()
        };
        f(&mut c);
        c
    };
    let cases: Vec<(Case, &str)> = vec![
        (
            new_case(&|c| c.child_name = "  ".into()),
            "validation.required",
        ),
        (
            new_case(&|c| c.child_name = "x".repeat(201)),
            "validation.too_long",
        ),
        (
            new_case(&|c| c.child_birth_date = date!(2030 - 01 - 01)),
            "validation.date_in_future",
        ),
        (
            new_case(&|c| c.child_birth_date = date!(1850 - 01 - 01)),
            "validation.invalid_date",
        ),
        (
            new_case(&|c| c.opened_on = date!(2010 - 01 - 01)),
            "validation.date_before",
        ),
        (
            new_case(&|c| c.child_cpr = Some(Cpr::parse("020315-9999").unwrap())),
            "validation.cpr_birth_date_mismatch",
        ),
        (
            new_case(&|c| c.child_name = "Søren\u{0}".into()),
            "validation.control_characters",
        ),
    ];
    for (case, code) in cases {
        assert_eq!(
            store.write(|w| w.open_case(&case)).unwrap_err().code(),
            code
        );
    }
    assert_eq!(
        Cpr::parse("311315-1234").unwrap_err().code(),
        "validation.invalid_cpr"
    );
    assert!(serde_json::from_str::<Cpr>("\"12-34\"").is_err());

    let person = |f: &dyn Fn(&mut Person)| {
        let mut p = Person {
            id: PersonId::new(),
            ..s.person.clone()
        };
        f(&mut p);
        p
    };
    for (p, code) in [
        (person(&|p| p.name = String::new()), "validation.required"),
        (
            person(&|p| p.email = Some("ikke-en-mail".into())),
            "validation.invalid_email",
        ),
        (
            person(&|p| p.do_not_contact = true),
            "validation.do_not_contact_reason_required",
        ),
    ] {
        assert_eq!(store.write(|w| w.put_person(&p)).unwrap_err().code(), code);
    }
    let phone = Phone {
        number: "12".into(),
        ..s.phone.clone()
    };
    assert_eq!(
        store.write(|w| w.add_phone(&phone)).unwrap_err().code(),
        "validation.invalid_phone"
    );
    let note = CaseNote {
        body: "".into(),
        child_words: "".into(),
        family_perspective: "".into(),
        ..s.note.clone()
    };
    assert_eq!(
        store.write(|w| w.save_note(&note)).unwrap_err().code(),
        "validation.required"
    );
    let note = CaseNote {
        occurred_at: datetime!(2027-01-01 10:00 UTC),
        ..s.note.clone()
    };
    assert_eq!(
        store.write(|w| w.save_note(&note)).unwrap_err().code(),
        "validation.date_in_future"
    );
    let note = CaseNote {
        author_id: s.colleague.id,
        ..s.note.clone()
    };
    assert_eq!(
        store.write(|w| w.save_note(&note)).unwrap_err().code(),
        "rule.not_author"
    );
    let consent = Consent {
        sectors: Default::default(),
        ..s.consent.clone()
    };
    assert_eq!(
        store
            .write(|w| w.record_consent(&consent))
            .unwrap_err()
            .code(),
        "validation.no_sectors"
    );
    let consent = Consent {
        valid_to: Some(date!(2020 - 01 - 01)),
        ..s.consent.clone()
    };
    assert_eq!(
        store
            .write(|w| w.record_consent(&consent))
            .unwrap_err()
            .code(),
        "validation.date_before"
    );
    let agreement = Agreement {
        responsible_staff_id: Some(s.staff.id),
        ..s.agreement.clone()
    };
    assert_eq!(
        store
            .write(|w| w.put_agreement(&agreement))
            .unwrap_err()
            .code(),
        "validation.responsible_required"
    );
    let other_case = CaseId::new();
    let wrong = Phone {
        case_id: other_case,
        ..s.phone.clone()
    };
    assert_eq!(
        store.write(|w| w.add_phone(&wrong)).unwrap_err().code(),
        "not_found"
    );

    assert_eq!(
        (log_len(&store), count(&store, tables)),
        before,
        "nothing was written"
    );
}

/// A word written after the first search (the search vocabulary is read then) is found by its
/// beginning: in a new note, in a draft edited, in a person; a word edited away or in a
/// discarded draft finds nothing; and so are rows indexed in one pass after a large pull.
#[test]
fn search_finds_words_written_after_the_first_search() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    store.write(|w| w.save_note(&s.note)).unwrap();
    assert_eq!(store.search("aarhus", 10).unwrap().notes.len(), 1);

    let mut draft = CaseNote {
        id: NoteId::new(),
        body: "Vi så zebrafinken i haven.".into(),
        child_words: "".into(),
        family_perspective: "".into(),
        ..s.note.clone()
    };
    store.write(|w| w.save_note(&draft)).unwrap();
    assert_eq!(store.search("zebraf", 10).unwrap().notes.len(), 1);
    draft.body = "Far er kvæghandler.".into();
    store.write(|w| w.save_note(&draft)).unwrap();
    assert_eq!(store.search("kvæghand", 10).unwrap().notes.len(), 1);
    assert_eq!(store.search("kvaeghandl", 10).unwrap().notes.len(), 1);
    assert!(
        store.search("zebraf", 10).unwrap().notes.is_empty(),
        "edited away"
    );
    store.write(|w| w.discard_draft(draft.id)).unwrap();
    assert!(
        store.search("kvaeghand", 10).unwrap().notes.is_empty(),
        "discarded"
    );
    assert!(store.search("xylofonen", 10).unwrap().notes.is_empty());

    let p = Person {
        id: PersonId::new(),
        name: "Zoë Pelikansen".into(),
        ..s.person.clone()
    };
    store.write(|w| w.put_person(&p)).unwrap();
    assert_eq!(store.search("pelikans", 10).unwrap().persons.len(), 1);
    assert_eq!(store.search("zoe pelik", 10).unwrap().persons.len(), 1);

    // Rows stored without indexing each (a large pull) are indexed at the next search, and
    // their words are found.
    crate::store::search::defer_indexing(store.conn()).unwrap();
    let later = CaseNote {
        id: NoteId::new(),
        body: "Besøg hos bedsteforældrene i Sæby.".into(),
        child_words: "".into(),
        family_perspective: "".into(),
        ..s.note.clone()
    };
    store.write(|w| w.save_note(&later)).unwrap();
    assert_eq!(store.search("bedsteforaeld", 10).unwrap().notes.len(), 1);
    assert_eq!(store.search("saeby", 10).unwrap().notes.len(), 1);
}

#[test]
fn search_is_danish_aware_ranked_and_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    store.write(|w| w.save_note(&s.note)).unwrap();
    let other = CaseNote {
        id: NoteId::new(),
        body: "Møde på skolen. Ingen bekymring om søvn.".into(),
        child_words: "".into(),
        family_perspective: "".into(),
        ..s.note.clone()
    };
    store.write(|w| w.save_note(&other)).unwrap();

    let r = store.search("aarhus", 10).unwrap();
    assert_eq!(r.notes.len(), 1);
    assert!(r.notes[0]
        .snippet
        .iter()
        .any(|p| p.hit && p.text == "Århus"));
    assert_eq!(store.search("ÅRHUS", 10).unwrap().notes.len(), 1);
    assert_eq!(
        store.search("hanne aaberg", 10).unwrap().persons.len(),
        1,
        "æøå folded in people too"
    );
    assert_eq!(
        store.search("mor", 10).unwrap().persons.len(),
        1,
        "found by the relation's Danish word"
    );
    assert_eq!(
        store.search("søvn", 10).unwrap().notes.len(),
        2,
        "prefix: søvn finds søvnproblemer"
    );
    assert_eq!(store.search("soevnproblem", 10).unwrap().notes.len(), 1);
    assert_eq!(
        store.search("bo hos mor", 10).unwrap().notes[0].note_id,
        s.note.id,
        "child's words searched"
    );
    assert!(store.search("\"*(", 10).is_err());
    assert!(
        store.search("body:søvn OR", 10).is_ok(),
        "FTS syntax in the query is inert"
    );

    let log = store.access_log(10).unwrap();
    assert!(log
        .iter()
        .any(|e| e.action == AccessAction::Search && e.criterion.as_deref() == Some("aarhus")));
}

#[test]
fn opening_cases_and_people_is_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (store, _) = s.sample_store(tmp.path());
    store.case_overview(s.case.id).unwrap();
    store.person(s.person.id).unwrap();
    let log = store.access_log(10).unwrap();
    assert_eq!(log[0].action, AccessAction::OpenPerson);
    assert_eq!(log[0].person_id, Some(s.person.id));
    assert_eq!(log[1].action, AccessAction::OpenCase);
    assert_eq!(log[1].case_id, Some(s.case.id));
    assert!(log
        .iter()
        .all(|e| e.worker_id == s.staff.id && e.device_id == store.device_id()));
}

#[test]
fn a_protected_address_is_shown_only_to_the_case_participants() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    let p = store.person(s.person.id).unwrap();
    assert!(!p.address_hidden);
    assert!(p.person.address.is_some());
    // Hand over (the colleague, a participant until now, becomes the coordinator): now only a
    // team member, not a participant.
    store
        .write(|w| {
            w.remove_participant(s.participant.id)?;
            w.handover(s.case.id, s.colleague.id, "Jonas overtager")
        })
        .unwrap();
    assert!(!store.is_participant(s.case.id).unwrap());
    let p = store.person(s.person.id).unwrap();
    assert!(p.address_hidden);
    assert_eq!(p.person.address, None);
    assert!(store
        .persons_of_case(s.case.id)
        .unwrap()
        .iter()
        .all(|p| p.person.address.is_none()));
    assert!(
        !format!("{:?}", s.person).contains("Skjoldhøjvej"),
        "never in a log"
    );
}

#[test]
fn my_cases_lists_coordinated_cases_first_with_contact_and_agreements() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    let other = Case {
        id: CaseId::new(),
        child_name: "Anna Berg".into(),
        coordinator_id: s.colleague.id,
        ..s.case.clone()
    };
    let not_mine = Case {
        id: CaseId::new(),
        child_name: "Bo Dahl".into(),
        coordinator_id: s.colleague.id,
        ..s.case.clone()
    };
    // The colleague's cases, as their device wrote them (the colleague adds the worker to one).
    store
        .write(|w| {
            w.add_team_member(s.team.id, s.colleague.id)?;
            w.act_as(s.colleague.id);
            w.open_case(&other)?;
            w.open_case(&not_mine)?;
            w.add_participant(&Participant {
                id: RowId::new(),
                case_id: other.id,
                staff_id: s.staff.id,
                role: "Rådgiver".into(),
                legal_basis: None,
            })
        })
        .unwrap();
    store
        .write(|w| {
            w.save_note(&s.note)?;
            w.put_agreement(&s.agreement)
        })
        .unwrap();
    let cases = store.my_cases(&CaseFilter::default()).unwrap();
    let names: Vec<_> = cases.iter().map(|c| c.child_name.as_str()).collect();
    assert_eq!(names, vec!["Søren Åberg", "Anna Berg"]);
    assert!(cases[0].i_am_coordinator && !cases[1].i_am_coordinator);
    assert_eq!(cases[0].days_since_last_contact, Some(3));
    assert_eq!(cases[0].next_agreement_due, Some(date!(2026 - 12 - 01)));
    let f = CaseFilter {
        district: Some("Tilst".into()),
        status: None,
    };
    assert!(store.my_cases(&f).unwrap().is_empty());
}

#[test]
fn timeline_pages_through_every_note_once_and_respects_the_audience() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    store
        .write(|w| {
            for i in 0..25 {
                let n = CaseNote {
                    id: NoteId::new(),
                    occurred_at: datetime!(2026-10-01 10:00 UTC) + time::Duration::hours(i),
                    ..s.note.clone()
                };
                w.save_note(&n)?;
            }
            Ok(())
        })
        .unwrap();
    // A health visitor's own-discipline note, put as sync would deliver it.
    let hv = Staff {
        id: StaffId::new(),
        name: "Sara Holm".into(),
        initials: "SH".into(),
        profession: Profession::HealthVisitor,
        sector: StaffSector::SchoolsDaycare,
    };
    store
        .write(|w| {
            w.put_staff(&hv)?;
            w.put(&CaseNote {
                id: NoteId::new(),
                author_id: hv.id,
                audience: Audience::OwnDiscipline,
                ..s.note.clone()
            })
        })
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .notes_timeline(s.case.id, cursor.as_ref(), 10)
            .unwrap();
        seen.extend(page.notes.iter().map(|n| (n.occurred_at, n.id)));
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(
        seen.len(),
        25,
        "the health-journal note is not shown to a caseworker"
    );
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );
}

#[test]
fn the_network_can_be_stepped_back_in_time() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    let later = Relation {
        id: RowId::new(),
        quality: RelationQuality::Strained,
        as_of: date!(2026 - 06 - 01),
        ..s.relation.clone()
    };
    store
        .write(|w| {
            w.add_relation(&s.relation)?;
            w.add_relation(&later)
        })
        .unwrap();
    assert_eq!(
        store.network(s.case.id, date!(2026 - 11 - 01)).unwrap()[0].quality,
        RelationQuality::Strained
    );
    assert_eq!(
        store.network(s.case.id, date!(2026 - 03 - 01)).unwrap()[0].quality,
        RelationQuality::Supportive
    );
    assert!(store
        .network(s.case.id, date!(2025 - 01 - 01))
        .unwrap()
        .is_empty());
    let self_rel = Relation {
        id: RowId::new(),
        from_person_id: Some(s.person.id),
        ..s.relation.clone()
    };
    assert_eq!(
        store
            .write(|w| w.add_relation(&self_rel))
            .unwrap_err()
            .code(),
        "rule.relation_to_self"
    );
}

#[test]
fn consent_covers_sectors_within_its_period_until_withdrawn() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    store.write(|w| w.record_consent(&s.consent)).unwrap();
    let day = date!(2026 - 11 - 23);
    assert!(s.consent.covers(ConsentSector::Ppr, day));
    assert!(!s.consent.covers(ConsentSector::HealthVisitor, day));
    assert!(!s.consent.covers(ConsentSector::Ppr, date!(2027 - 02 - 01)));
    let withdrawn = store.write(|w| w.withdraw_consent(s.consent.id)).unwrap();
    assert!(!withdrawn.covers(ConsentSector::Ppr, date!(2026 - 11 - 24)));
    assert_eq!(
        store
            .write(|w| w.withdraw_consent(s.consent.id))
            .unwrap_err()
            .code(),
        "rule.consent_already_withdrawn"
    );
}

/// One step of a random worker session.
#[derive(Clone, Debug)]
enum Op {
    SaveDraft { note: usize, text: String },
    Sign { note: usize },
    EditSigned { note: usize },
    Handover { to_colleague: bool, with_note: bool },
    AddPhone { digits: u32 },
    BadNote,
    Abort,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, "[a-zæøå ]{1,40}").prop_map(|(note, text)| Op::SaveDraft { note, text }),
        2 => (0..4usize).prop_map(|note| Op::Sign { note }),
        2 => (0..4usize).prop_map(|note| Op::EditSigned { note }),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(to_colleague, with_note)| Op::Handover { to_colleague, with_note }),
        1 => (10_000_000u32..99_999_999).prop_map(|digits| Op::AddPhone { digits }),
        1 => Just(Op::BadNote),
        1 => Just(Op::Abort),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Over any sequence of operations, successful or refused: a signed note never changes,
    /// the open case always has exactly one existing coordinator, every committed mutation has
    /// exactly one change-log entry, a refused or aborted one has none, and sequence numbers
    /// run 1, 2, 3, … with no gaps.
    #[test]
    fn domain_invariants_hold_over_random_sessions(ops in proptest::collection::vec(op(), 1..25)) {
        let tmp = tempfile::tempdir().unwrap();
        let s = Sample::new();
        let (mut store, _) = s.sample_store(tmp.path());
        let ids: Vec<NoteId> = (0..4).map(|_| NoteId::new()).collect();
        let mut signed: std::collections::HashMap<NoteId, CaseNote> = Default::default();
        let mut coordinator = s.staff.id;
        for op in ops {
            let before = log_len(&store);
            let result: Result<usize, Error> = match &op {
                Op::SaveDraft { note, text } => store.write(|w| {
                    w.save_note(&CaseNote { id: ids[*note], body: text.as_str().into(), ..s.note.clone() }).map(|_| 1)
                }),
                Op::Sign { note } => store.write(|w| w.sign_note(ids[*note]).map(|_| 1)),
                Op::EditSigned { note } => store.write(|w| {
                    w.save_note(&CaseNote { id: ids[*note], body: "ændret".into(), ..s.note.clone() }).map(|_| 1)
                }),
                Op::Handover { to_colleague, with_note } => {
                    let to = if *to_colleague { s.colleague.id } else { s.staff.id };
                    let note = if *with_note { "overdragelse" } else { "" };
                    store.write(|w| w.handover(s.case.id, to, note).map(|_| 2))
                }
                Op::AddPhone { digits } => store.write(|w| {
                    w.add_phone(&Phone { id: RowId::new(), number: digits.to_string(), ..s.phone.clone() }).map(|_| 1)
                }),
                Op::BadNote => store.write(|w| {
                    w.save_note(&CaseNote { id: NoteId::new(), occurred_at: datetime!(1980-01-01 0:00 UTC), ..s.note.clone() }).map(|_| 1)
                }),
                Op::Abort => store.write(|w| {
                    w.add_phone(&Phone { id: RowId::new(), ..s.phone.clone() })?;
                    Err::<usize, _>(Error::Invalid(ValidationError::EmptySearch))
                }),
            };
            let after = log_len(&store);
            match result {
                Ok(n) => {
                    // Saving identical content is not a mutation: 0 or n entries.
                    prop_assert!(after == before + n as i64 || (after == before && matches!(op, Op::SaveDraft { .. } | Op::EditSigned { .. })), "{op:?}");
                    if let Op::Handover { to_colleague, .. } = op {
                        coordinator = if to_colleague { s.colleague.id } else { s.staff.id };
                    }
                }
                Err(_) => prop_assert_eq!(after, before, "{:?} failed but logged", op),
            }
            for id in &ids {
                if let Ok(n) = store.note(*id) {
                    if let Some(old) = signed.get(id) {
                        prop_assert_eq!(old, &n);
                    } else if n.status == NoteStatus::Signed {
                        signed.insert(*id, n);
                    }
                }
            }
            let case: Case = store.get(s.case.id.0).unwrap().unwrap();
            prop_assert_eq!(case.coordinator_id, coordinator);
            prop_assert!(store.get::<Staff>(case.coordinator_id.0).unwrap().is_some());
            let seqs: Vec<u64> = store.change_log(0, 100_000).unwrap().iter().map(|e| e.seq).collect();
            prop_assert_eq!(seqs, (1..=after as u64).collect::<Vec<_>>());
        }
    }
}

/// Collects everything written to the diagnostic log.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_cpr_note_text_or_address_reaches_the_diagnostic_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let mut messages = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        let tmp = tempfile::tempdir().unwrap();
        let s = Sample::new();
        let (mut store, clock) = s.sample_store(tmp.path());
        store.write(|w| w.save_note(&s.note)).unwrap();
        store.write(|w| w.sign_note(s.note.id)).unwrap();
        messages.push(
            store
                .write(|w| w.save_note(&s.note))
                .unwrap_err()
                .to_string(),
        );
        let bad_cpr = Case {
            id: CaseId::new(),
            child_cpr: Some(Cpr::parse("020315-9999").unwrap()),
            ..s.case.clone()
        };
        messages.push(
            store
                .write(|w| w.open_case(&bad_cpr))
                .unwrap_err()
                .to_string(),
        );
        messages.push(Cpr::parse("311399-1234").unwrap_err().to_string());
        store.search("Århus søvn", 10).unwrap();
        store.person(s.person.id).unwrap();
        store.case_overview(s.case.id).unwrap();
        messages.push(format!("{:?} {:?} {:?}", s.case, s.note, s.person));
        store.lock();
        let loc = StoreLocation::new(tmp.path());
        messages.push(
            Store::open(&loc, "forkert kodeord", clock)
                .unwrap_err()
                .to_string(),
        );
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("failed unlock attempt"),
        "the capture works: {log}"
    );
    let all = format!("{log}\n{}", messages.join("\n"));
    for secret in [
        "010315",
        "020315",
        "311399",
        "Hjemmebesøg",
        "søvnproblemer",
        "bo hos mor",
        "morgenrutiner",
        "Skjoldhøjvej",
    ] {
        assert!(
            !all.contains(secret),
            "{secret:?} appeared in diagnostics:\n{all}"
        );
    }
}

#[test]
fn a_participant_from_a_sector_without_consent_needs_a_legal_basis() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    let hv = Staff {
        id: StaffId::new(),
        name: "Sara Holm".into(),
        initials: "SH".into(),
        profession: Profession::HealthVisitor,
        sector: StaffSector::SchoolsDaycare,
    };
    store.write(|w| w.put_staff(&hv)).unwrap();
    let p = Participant {
        id: RowId::new(),
        case_id: s.case.id,
        staff_id: hv.id,
        role: "Sundhedsplejerske".into(),
        legal_basis: None,
    };
    let err = store.write(|w| w.add_participant(&p)).unwrap_err();
    assert_eq!(err.code(), "rule.legal_basis_required");
    // Free text alone, or a standard basis without its reason, is no legal basis.
    for text in [
        "Det aftalte vi på mødet",
        "Udveksling efter servicelovens § 49 b:  ",
        "Samtykke: mundtligt",
    ] {
        let free = Participant {
            legal_basis: Some(text.into()),
            ..p.clone()
        };
        let err = store.write(|w| w.add_participant(&free)).unwrap_err();
        assert_eq!(err.code(), "rule.legal_basis_required", "{text}");
    }
    // With a recorded legal basis it is allowed …
    let with_basis = Participant {
        legal_basis: Some(
            "Udveksling efter servicelovens § 49 b: nødvendigt for barnets trivsel".into(),
        ),
        ..p.clone()
    };
    store.write(|w| w.add_participant(&with_basis)).unwrap();
    // … and a consent covering the sector makes the basis unnecessary.
    let ppr = Staff {
        id: StaffId::new(),
        name: "Per Lind".into(),
        initials: "PL".into(),
        profession: Profession::Psychologist,
        sector: StaffSector::SchoolsDaycare,
    };
    store
        .write(|w| {
            w.put_staff(&ppr)?;
            w.record_consent(&s.consent)
        })
        .unwrap();
    let p2 = Participant {
        id: RowId::new(),
        case_id: s.case.id,
        staff_id: ppr.id,
        role: "PPR".into(),
        legal_basis: None,
    };
    store.write(|w| w.add_participant(&p2)).unwrap();
    // A caseworker (social services) needs neither.
    let cw = Staff {
        id: StaffId::new(),
        name: "Ole Bak".into(),
        initials: "OB".into(),
        profession: Profession::Caseworker,
        sector: StaffSector::SocialServices,
    };
    store
        .write(|w| {
            w.put_staff(&cw)?;
            w.add_participant(&Participant {
                id: RowId::new(),
                case_id: s.case.id,
                staff_id: cw.id,
                role: "Rådgiver".into(),
                legal_basis: None,
            })
        })
        .unwrap();
}

/// A lease as the central service hands it out: 72 hours from the sample clock's now.
fn sample_lease(clock: &crate::clock::ManualClock, hours: i64) -> crate::store::keys::Lease {
    use crate::clock::Clock;
    let secret = "5a".repeat(32);
    crate::store::keys::Lease::from_hex(&secret, clock.now_ms() as i64 + hours * 3_600_000).unwrap()
}

fn connected_store(
    dir: &std::path::Path,
    s: &Sample,
) -> (Store, std::sync::Arc<crate::clock::ManualClock>) {
    let clock = Sample::clock();
    let lease = sample_lease(&clock, 72);
    let store = Store::create_connected(
        &StoreLocation::new(dir),
        PASSPHRASE,
        &lease,
        "https://central.example",
        s.staff.id,
        DeviceId::new(),
        crate::store::KdfParams::default(),
        clock.clone(),
    )
    .unwrap();
    (store, clock)
}

#[test]
fn a_connected_store_needs_the_lease_and_an_expired_lease_cannot_unlock() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, clock) = connected_store(tmp.path(), &s);
    store.write(|w| w.put_team(&s.team)).unwrap();
    store.lock();
    let loc = StoreLocation::new(tmp.path());
    let lease_file = std::fs::read(loc.lease_file()).unwrap();

    // Within the lease: the passphrase opens it.
    clock.advance(time::Duration::hours(71));
    Store::open(&loc, PASSPHRASE, clock.clone()).unwrap().lock();

    // Without the lease file, the right passphrase is not enough.
    std::fs::remove_file(loc.lease_file()).unwrap();
    assert!(matches!(
        Store::open(&loc, PASSPHRASE, clock.clone()),
        Err(Error::LeaseExpired)
    ));
    // A forged lease (another secret, a later expiry) does not open it either.
    std::fs::write(
        loc.lease_file(),
        serde_json::json!({"secret": "00".repeat(32), "expires_at_ms": i64::MAX, "server_url": null}).to_string(),
    )
    .unwrap();
    assert!(matches!(
        Store::open(&loc, PASSPHRASE, clock.clone()),
        Err(Error::WrongPassphrase)
    ));
    std::fs::write(loc.lease_file(), &lease_file).unwrap();
    std::fs::remove_file(loc.attempts_file()).unwrap();

    // Past the expiry: refused, and the secret is erased from the file before the passphrase
    // is even tried, so putting the clock back does not help.
    clock.advance(time::Duration::hours(2));
    assert!(matches!(
        Store::open(&loc, "not even the passphrase", clock.clone()),
        Err(Error::LeaseExpired)
    ));
    let after = String::from_utf8(std::fs::read(loc.lease_file()).unwrap()).unwrap();
    assert!(
        !after.contains(&"5a".repeat(32)),
        "the secret is erased: {after}"
    );
    assert!(after.contains("central.example"), "where to renew it stays");
    clock.advance(time::Duration::hours(-10));
    assert!(matches!(
        Store::open(&loc, PASSPHRASE, clock.clone()),
        Err(Error::LeaseExpired)
    ));

    // The service hands the lease out again (the password path): it opens.
    let renewed = sample_lease(&clock, 72);
    crate::store::keys::write_lease(&loc.lease_file(), &loc.key_file(), &renewed, None).unwrap();
    let store = Store::open(&loc, PASSPHRASE, clock.clone()).unwrap();
    assert_eq!(count(&store, "SELECT count(*) FROM teams"), 1);
    // A different secret from the service is refused rather than locking the worker out.
    let other = crate::store::keys::Lease::from_hex(&"11".repeat(32), i64::MAX).unwrap();
    assert!(store.renew_lease(&other).is_err());
    store.renew_lease(&sample_lease(&clock, 100)).unwrap();
    assert_eq!(
        loc.lease().unwrap().unwrap().expires_at_ms,
        sample_lease(&clock, 100).expires_at_ms
    );
    // The passphrase can change; the lease is still needed afterwards.
    store
        .change_passphrase(PASSPHRASE, "en helt ny lang sætning")
        .unwrap();
    store.lock();
    std::fs::remove_file(loc.lease_file()).unwrap();
    assert!(matches!(
        Store::open(&loc, "en helt ny lang sætning", clock),
        Err(Error::LeaseExpired)
    ));
}

#[test]
fn a_store_connected_before_leases_needs_the_lease_after_its_first_renewal() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (store, clock) = s.sample_store(tmp.path());
    let loc = StoreLocation::new(tmp.path());
    store.renew_lease(&sample_lease(&clock, 72)).unwrap();
    store.lock();
    assert!(!crate::store::keys::requires_lease(&loc.key_file()).unwrap());
    // The next unlock re-wraps the key to need the lease too.
    Store::open(&loc, PASSPHRASE, clock.clone()).unwrap().lock();
    assert!(crate::store::keys::requires_lease(&loc.key_file()).unwrap());
    std::fs::remove_file(loc.lease_file()).unwrap();
    assert!(matches!(
        Store::open(&loc, PASSPHRASE, clock),
        Err(Error::LeaseExpired)
    ));
}

#[test]
fn wiping_removes_the_lease_too() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (store, _clock) = connected_store(tmp.path(), &s);
    let loc = StoreLocation::new(tmp.path());
    assert!(loc.lease_file().exists());
    store.wipe().unwrap();
    for f in [loc.key_file(), loc.lease_file(), loc.database()] {
        assert!(!f.exists(), "{} is gone", f.display());
    }
}

#[test]
fn the_access_log_waits_for_upload_until_marked() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    store.case_overview(s.case.id).unwrap();
    store.person(s.person.id).unwrap();
    assert_eq!(store.pending_access_count().unwrap(), 2);
    let pending = store.pending_access(10).unwrap();
    assert_eq!(pending[0].action, AccessAction::OpenCase, "oldest first");
    assert_eq!(pending[1].action, AccessAction::OpenPerson);
    store.mark_access_uploaded(&[pending[0].id]).unwrap();
    let left = store.pending_access(10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, pending[1].id);
    assert_eq!(
        store.access_log(10).unwrap().len(),
        2,
        "uploaded entries stay"
    );
}

/// The store runs the same rules as the central service before it writes: a team member who is
/// not the coordinator hears at once that participants, the coordinator and a protected
/// address's flag are the coordinator's (or a leader's) to change, and nothing is written.
#[test]
fn the_store_runs_the_services_rules_for_privileged_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());
    let theirs = Case {
        id: CaseId::new(),
        child_name: "Bo Dahl".into(),
        coordinator_id: s.colleague.id,
        ..s.case.clone()
    };
    let protected = Person {
        id: PersonId::new(),
        case_id: theirs.id,
        protected_address: true,
        ..s.person.clone()
    };
    store
        .write(|w| {
            w.add_team_member(s.team.id, s.colleague.id)?;
            w.act_as(s.colleague.id);
            w.open_case(&theirs)?;
            w.put_person(&protected)
        })
        .unwrap();
    let before = store.change_log(0, 10_000).unwrap().len();
    let privileged = |r: crate::Result<()>| match r {
        Err(crate::Error::Invalid(e)) => assert_eq!(e.code(), "rule.privileged"),
        other => panic!("not refused: {other:?}"),
    };
    privileged(store.write(|w| {
        w.add_participant(&Participant {
            id: RowId::new(),
            case_id: theirs.id,
            staff_id: s.staff.id,
            role: "Rådgiver".into(),
            legal_basis: None,
        })
    }));
    privileged(store.write(|w| w.handover(theirs.id, s.staff.id, "Jeg tager den").map(drop)));
    privileged(store.write(|w| {
        w.put_person(&Person {
            protected_address: false,
            ..protected.clone()
        })
    }));
    assert_eq!(
        store.change_log(0, 10_000).unwrap().len(),
        before,
        "nothing written"
    );
}

/// Text kept after a refused save: in the encrypted store across a lock, found by its key or
/// by its draft, never in the change log (it does not sync), and forgotten in the very
/// transaction that saves the note.
#[test]
fn text_kept_after_a_refused_save_survives_a_lock_and_goes_when_saved() {
    use crate::store::unsaved::NoteDraft;
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (store, clock) = s.sample_store(tmp.path());
    let key = uuid::Uuid::now_v7();
    let draft = NoteDraft {
        id: None,
        key,
        case_id: s.case.id,
        kind: NoteKind::HomeVisit,
        occurred_at: "2099-01-01T10:00:00Z".into(),
        body: "Skrevet, men afvist".into(),
        child_words: String::new(),
        family_perspective: String::new(),
        statutory: true,
        audience: Audience::CaseTeam,
        addendum_to: None,
    };
    let log_before = log_len(&store);
    store
        .keep_unsaved(&draft, "validation.date_in_future")
        .unwrap();
    assert_eq!(log_len(&store), log_before, "kept text is never synced");
    store.lock();
    let mut store = Store::open(&StoreLocation::new(tmp.path()), PASSPHRASE, clock).unwrap();
    let kept = store
        .unsaved_note(key, None)
        .unwrap()
        .expect("kept across a lock");
    assert_eq!(kept.draft, draft);
    assert_eq!(kept.reason, "validation.date_in_future");
    assert_eq!(store.unsaved_in_case(s.case.id).unwrap().len(), 1);
    assert!(store
        .unsaved_note(uuid::Uuid::now_v7(), None)
        .unwrap()
        .is_none());

    // Saved later (the time fixed): the kept copy goes in the same transaction.
    let mut note = s.note.clone();
    note.body = "Skrevet, nu gemt".into();
    store
        .write(|w| {
            let saved = w.save_note(&note)?;
            w.forget_unsaved(key, Some(saved.id))
        })
        .unwrap();
    assert!(store.unsaved_note(key, None).unwrap().is_none());
    assert!(store.unsaved_in_case(s.case.id).unwrap().is_empty());

    // A refused save that rolls back does not forget it.
    store.keep_unsaved(&draft, "validation.too_long").unwrap();
    let mut bad = s.note.clone();
    bad.body = "x".repeat(crate::domain::text::NOTE_TEXT_MAX + 1).into();
    assert!(store
        .write(|w| {
            w.forget_unsaved(key, None)?;
            w.save_note(&bad)
        })
        .is_err());
    assert!(
        store.unsaved_note(key, None).unwrap().is_some(),
        "still kept"
    );
    store.discard_unsaved(key).unwrap();
    assert!(store.unsaved_notes().unwrap().is_empty());
}

/// Cases are found by the child's name and by the CPR number (exactly; the access log records
/// that a CPR search happened, never the number); people by their address, except a protected
/// one, which is never indexed.
#[test]
fn search_finds_cases_by_name_and_cpr_and_people_by_address() {
    use crate::store::search::CPR_SEARCH_CRITERION;
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, _) = s.sample_store(tmp.path());

    let by_name = store.search("søren", 10).unwrap();
    assert_eq!(by_name.cases.len(), 1);
    assert_eq!(by_name.cases[0].case_id, s.case.id);
    assert!(!by_name.cases[0].by_cpr);
    assert_eq!(store.search("aaberg", 10).unwrap().cases.len(), 1);
    assert!(store.search("åbergsen", 10).unwrap().cases.is_empty());

    for typed in [
        "010315-9999",
        "0103159999",
        "010315 9999",
        " 010315-9999 ",
        "010315\u{2013}9999",
        "01.03.15-9999",
        "010315\u{a0}9999",
        "\u{ff10}\u{ff11}\u{ff10}\u{ff13}\u{ff11}\u{ff15}-\u{ff19}\u{ff19}\u{ff19}\u{ff19}",
    ] {
        let r = store.search(typed, 10).unwrap();
        assert_eq!(r.cases.len(), 1, "{typed}");
        assert!(r.cases[0].by_cpr);
        assert!(r.notes.is_empty() && r.persons.is_empty());
    }
    assert!(
        store.search("010315-9998", 10).unwrap().cases.is_empty(),
        "exact"
    );
    assert_eq!(
        store.search("999999-9999", 10).unwrap_err().code(),
        "validation.invalid_cpr"
    );
    // A number inside a text search is masked in the log too.
    store.search("Alma 010315-9999", 10).unwrap();
    store.search("cpr 0103159999", 10).unwrap();
    let log = store.access_log(100).unwrap();
    assert!(log
        .iter()
        .any(|e| e.criterion.as_deref() == Some(CPR_SEARCH_CRITERION)));
    assert!(log
        .iter()
        .any(|e| e.criterion.as_deref() == Some("Alma ######-####")));
    assert!(
        log.iter().all(|e| e
            .criterion
            .as_deref()
            .is_none_or(|c| !c.contains("0103") && !c.contains("9999"))),
        "no CPR number in the access log"
    );

    // The sample person's address is protected: never found by it.
    assert!(store.search("skjoldhøjvej", 10).unwrap().persons.is_empty());
    let neighbour = Person {
        id: PersonId::new(),
        name: "Anna Holm".into(),
        address: Some("Gudrunsvej 7, 8220 Brabrand".into()),
        protected_address: false,
        ..s.person.clone()
    };
    store.write(|w| w.put_person(&neighbour)).unwrap();
    let r = store.search("gudrunsvej", 10).unwrap();
    assert_eq!(r.persons.len(), 1);
    let marked = r.persons[0]
        .address_snippet
        .as_ref()
        .expect("the address is shown");
    assert!(marked.iter().any(|p| p.hit && p.text == "Gudrunsvej"));
}

/// A planned visit invites people of the case's own network and existing staff, and its note
/// is a note of the same case; a visit in the future is allowed (planning is the point).
#[test]
fn an_appointment_invites_only_the_cases_own_people() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, clock) = s.sample_store(tmp.path());
    let a = Appointment {
        id: AppointmentId::new(),
        case_id: s.case.id,
        kind: AppointmentKind::HomeVisit,
        starts_at: crate::clock::Clock::now(clock.as_ref()) + time::Duration::days(3),
        place: "Hjemme hos familien".into(),
        invited_persons: [s.person.id].into(),
        invited_staff: [s.staff.id].into(),
        note_id: None,
        cancelled: false,
    };
    store.write(|w| w.put_appointment(&a)).unwrap();
    assert_eq!(
        store.case_overview(s.case.id).unwrap().appointments.len(),
        1
    );
    assert_eq!(store.my_week().unwrap().appointments.len(), 1, "on Min uge");
    let stranger = Appointment {
        id: AppointmentId::new(),
        invited_persons: [PersonId::new()].into(),
        ..a.clone()
    };
    assert_eq!(
        store
            .write(|w| w.put_appointment(&stranger))
            .unwrap_err()
            .code(),
        "rule.wrong_case"
    );
    let other_case_note = Appointment {
        id: AppointmentId::new(),
        note_id: Some(NoteId::new()),
        ..a.clone()
    };
    assert!(store
        .write(|w| w.put_appointment(&other_case_note))
        .is_err());
    // Held: its note is written and named.
    store.write(|w| w.save_note(&s.note)).unwrap();
    let with_note = Appointment {
        note_id: Some(s.note.id),
        ..a
    };
    store.write(|w| w.put_appointment(&with_note)).unwrap();
}

/// The home-visit sheet carries what the doorstep needs, and never a protected address, not
/// even for the case's own coordinator (the sheet is printed and carried).
#[test]
fn the_visit_sheet_has_the_doorstep_facts_and_never_a_protected_address() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (mut store, clock) = s.sample_store(tmp.path());
    assert!(s.person.protected_address);
    let father = Person {
        id: PersonId::new(),
        name: "Kasper Åberg".into(),
        relation: RelationToChild::Father,
        custody: true,
        address: Some("Tranehaven 4, 8200 Aarhus N".into()),
        protected_address: false,
        language: Some("arabisk".into()),
        interpreter_needed: true,
        do_not_contact: false,
        do_not_contact_reason: None,
        ..s.person.clone()
    };
    let uncle = Person {
        id: PersonId::new(),
        name: "Ali Åberg".into(),
        relation: RelationToChild::OtherFamily,
        custody: false,
        address: Some("tranehaven  4,  8200 aarhus n".into()),
        protected_address: false,
        language: None,
        interpreter_needed: false,
        do_not_contact: true,
        do_not_contact_reason: Some("Tilhold".into()),
        ..s.person.clone()
    };
    let visit = Appointment {
        id: AppointmentId::new(),
        case_id: s.case.id,
        kind: AppointmentKind::HomeVisit,
        starts_at: crate::clock::Clock::now(clock.as_ref()) + time::Duration::days(1),
        place: "Tranehaven 4".into(),
        invited_persons: [father.id].into(),
        invited_staff: [s.staff.id].into(),
        note_id: None,
        cancelled: false,
    };
    // Lives with the mother, whose address is protected; their own record is not marked.
    let lodger = Person {
        id: PersonId::new(),
        name: "Bo Logerende".into(),
        relation: RelationToChild::OtherFamily,
        custody: false,
        address: Some("skjoldhøjvej 12,8210 Aarhus V".replace(',', ", ").into()),
        protected_address: false,
        language: None,
        interpreter_needed: false,
        do_not_contact: false,
        do_not_contact_reason: None,
        ..s.person.clone()
    };
    store
        .write(|w| {
            w.put_person(&father)?;
            w.put_person(&uncle)?;
            w.put_person(&lodger)?;
            w.save_note(&s.note)?;
            w.put_agreement(&s.agreement)?;
            w.record_consent(&s.consent)?;
            w.put_appointment(&visit)?;
            Ok(())
        })
        .unwrap();
    let before = store.access_log(1000).unwrap().len();
    let sheet = store.visit_sheet(visit.id).unwrap();
    let log = store.access_log(1000).unwrap();
    assert_eq!(log.len(), before + 1, "opening is logged");
    assert_eq!(log[0].case_id, Some(s.case.id));
    let json = serde_json::to_string(&sheet).unwrap();
    assert!(
        !json.contains("Skjoldhøjvej"),
        "protected address on the sheet: {json}"
    );
    // One household for the two spellings of the same address, first (it is the visit's place).
    assert_eq!(
        sheet.households[0].address.as_deref(),
        Some("Tranehaven 4, 8200 Aarhus N")
    );
    assert_eq!(sheet.households[0].persons.len(), 2);
    assert!(sheet.households[0]
        .persons
        .iter()
        .any(|p| p.invited && p.custody));
    let protected: Vec<_> = sheet.households.iter().filter(|h| h.protected).collect();
    assert!(
        protected
            .iter()
            .all(|h| h.address.is_none() && h.persons.len() == 1),
        "one row each"
    );
    assert!(protected.iter().any(|h| h.persons[0].name == s.person.name));
    assert!(
        protected
            .iter()
            .any(|h| h.persons[0].name == "Bo Logerende"),
        "a co-resident's address is the protected one"
    );
    use crate::store::sheet::SheetWarning;
    assert!(sheet.warnings.iter().any(|w| matches!(w,
        SheetWarning::Interpreter { person, language: Some(l) } if person == "Kasper Åberg" && l == "arabisk")));
    assert!(sheet.warnings.iter().any(|w| matches!(w,
        SheetWarning::DoNotContact { person, reason: Some(r) } if person == "Ali Åberg" && r == "Tilhold")));
    assert!(sheet
        .warnings
        .iter()
        .any(|w| matches!(w, SheetWarning::ProtectedAddress { .. })));
    assert_eq!(sheet.agreements.len(), 1);
    assert!(sheet.consent.is_some());
    assert_eq!(sheet.latest_notes.len(), 1);
    assert_eq!(
        sheet.child_words.len(),
        usize::from(!s.note.child_words.is_empty())
    );
    assert_eq!(sheet.invited_staff[0].name, s.staff.name);
    // A protected address as the place is refused when saved (everyone on the case reads it).
    for place in [
        "Skjoldhøjvej 12",
        "Hjemme hos familien, Skjoldhøjvej 12 st. th.",
        "SKJOLDHØJVEJ 12 8210",
    ] {
        let at_mother = Appointment {
            id: AppointmentId::new(),
            place: place.into(),
            ..visit.clone()
        };
        assert_eq!(
            store
                .write(|w| w.put_appointment(&at_mother))
                .unwrap_err()
                .code(),
            "rule.place_is_protected_address",
            "{place}"
        );
    }
    // Another house on the same street is not refused (nor told apart from the protected one).
    let next_door = Appointment {
        id: AppointmentId::new(),
        place: "Skjoldhøjvej 1".into(),
        ..visit.clone()
    };
    store.write(|w| w.put_appointment(&next_door)).unwrap();
    // An appointment that does not exist is "not found", not a panic or an empty sheet.
    assert_eq!(
        store.visit_sheet(AppointmentId::new()).unwrap_err().code(),
        "not_found"
    );
}

/// Each disclosure is dated: a participant shows since when the family's information is
/// shared with them (when they were added, by the adding device's clock).
#[test]
fn a_participant_shows_since_when_information_is_shared() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Sample::new();
    let (store, clock) = s.sample_store(tmp.path());
    let o = store.case_overview(s.case.id).unwrap();
    let p = o
        .participants
        .iter()
        .find(|p| p.participant.id == s.participant.id)
        .unwrap();
    assert_eq!(p.since, Some(crate::clock::Clock::now(clock.as_ref())));
}
