//! Sync against the real server process on SQLite and on PostgreSQL: devices with their own
//! encrypted stores push their change logs and pull what their worker may see; the oracle is
//! the service's own answer for the worker, asked from scratch.

mod common;

use common::devices::*;
use common::world::{self, World, PROTECTED_ADDRESS};
use common::{Db, Kind, Server};
use feltkontor_core::domain::*;
use feltkontor_core::{Store, SystemClock};
use feltkontor_sync::{sync_once, CarriesLease};
use feltkontor_wire::sync::PushResponse;
use feltkontor_wire::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

fn count(store: &Store, sql: &str) -> i64 {
    store.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Two workers of one team edit the same case offline; after syncing in turn both hold
/// exactly what the service says each may see, field by field, and a concurrent edit of one
/// field ends with the same value on both.
fn two_devices_converge(kind: Kind) {
    let db = Db::migrated(kind);
    let w: World = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let mut coord = device(&server, &db, "coord");
    let mut colleague = device(&server, &db, "teamcw");
    coord.sync(&rt);
    colleague.sync(&rt);
    assert_converged(&rt, &coord, "coordinator, first sync");
    assert_converged(&rt, &colleague, "colleague, first sync");
    // The colleague is on the team but not a participant: the protected address is withheld.
    let mother = colleague.store.get::<Person>(w.mother).unwrap().unwrap();
    assert_eq!(mother.address, None);
    let mother = coord.store.get::<Person>(w.mother).unwrap().unwrap();
    assert_eq!(
        mother.address.map(|a| a.0).as_deref(),
        Some(PROTECTED_ADDRESS)
    );
    // A colleague's draft never leaves the service.
    assert!(colleague
        .store
        .get::<CaseNote>(w.note_draft)
        .unwrap()
        .is_none());
    assert!(coord.store.get::<CaseNote>(w.note_draft).unwrap().is_some());

    // Offline on both devices.
    let grandma = new_person(w.case1, "Inger Bedste");
    let note = CaseNote {
        child_words: "Jeg vil gerne bo hos mor".into(),
        ..draft_note(w.case1, StaffId(coord.staff), "Hjemmebesøg uden net")
    };
    coord
        .store
        .write(|wr| {
            wr.put_person(&grandma)?;
            wr.save_note(&note)?;
            wr.sign_note(note.id)?;
            Ok(())
        })
        .unwrap();
    let mut father_a = coord.store.get::<Person>(w.father).unwrap().unwrap();
    father_a.language = Some("dansk".into());
    coord.store.write(|wr| wr.put_person(&father_a)).unwrap();
    let mut father_b = colleague.store.get::<Person>(w.father).unwrap().unwrap();
    father_b.language = Some("arabisk".into());
    father_b.interpreter_needed = true;
    colleague
        .store
        .write(|wr| wr.put_person(&father_b))
        .unwrap();
    let agreement = Agreement {
        id: AgreementId::new(),
        case_id: CaseId(w.case1),
        what: "Mor ringer til skolen".into(),
        responsible_staff_id: None,
        responsible_person_id: Some(PersonId(w.mother)),
        due_on: Some(time::macros::date!(2026 - 12 - 01)),
        done_at: None,
    };
    colleague
        .store
        .write(|wr| wr.put_agreement(&agreement))
        .unwrap();
    assert!(coord.store.pending_count().unwrap() >= 3);

    let r1 = coord.sync(&rt);
    assert_eq!(
        r1.rejected,
        0,
        "{:?}",
        coord.store.rejected_changes().unwrap()
    );
    let r2 = colleague.sync(&rt);
    assert_eq!(
        r2.rejected,
        0,
        "{:?}",
        colleague.store.rejected_changes().unwrap()
    );
    coord.sync(&rt);
    assert_eq!(coord.store.pending_count().unwrap(), 0);
    assert_eq!(colleague.store.pending_count().unwrap(), 0);
    assert_converged(&rt, &coord, "coordinator after edits");
    assert_converged(&rt, &colleague, "colleague after edits");

    // Both hold each other's work, and one value for the field both changed.
    let on_colleague = colleague.store.get::<CaseNote>(note.id.0).unwrap().unwrap();
    assert_eq!(on_colleague.status, NoteStatus::Signed);
    assert!(colleague
        .store
        .get::<Person>(grandma.id.0)
        .unwrap()
        .is_some());
    assert!(coord
        .store
        .get::<Agreement>(agreement.id.0)
        .unwrap()
        .is_some());
    let fa = coord.store.get::<Person>(w.father).unwrap().unwrap();
    let fb = colleague.store.get::<Person>(w.father).unwrap().unwrap();
    assert_eq!(fa.language, fb.language);
    // The later write (the colleague's) wins the field; the other field is merged, not lost.
    assert_eq!(fa.language.as_deref(), Some("arabisk"));
    assert!(fa.interpreter_needed);

    // The concurrent edit of one field is one conflict, the same on both devices, naming
    // both values and who wrote them.
    for (d, who) in [(&coord, "coordinator"), (&colleague, "colleague")] {
        let open = d.store.open_conflicts(Some(CaseId(w.case1))).unwrap();
        assert_eq!(open.len(), 1, "{who}: {open:?}");
        let c = &open[0];
        assert_eq!(
            (c.entity, c.entity_id, c.field.as_str()),
            (EntityKind::Person, w.father, "language")
        );
        assert_eq!(
            (c.kept_value.as_str(), c.other_value.as_str()),
            ("\"arabisk\"", "\"dansk\"")
        );
        assert_eq!(
            (c.kept_by, c.other_by),
            (Some(StaffId(colleague.staff)), Some(StaffId(coord.staff)))
        );
    }
    let conflict = coord.store.open_conflicts(None).unwrap()[0].id;

    // Every applied change is in the audit log.
    let mut owner = db.owner();
    let audited = owner
        .query_one(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'sync_write' AND result = 'ok'",
            feltkontor_central::params![],
        )
        .unwrap()
        .unwrap()
        .int(0)
        .unwrap();
    assert_eq!(audited as u64, r1.pushed + r2.pushed);

    // The coordinator picks the other value; the resolution is a change like any other.
    coord
        .store
        .resolve_conflict(conflict, &json!("dansk"))
        .unwrap();
    coord.sync(&rt);
    colleague.sync(&rt);
    for (d, who) in [(&coord, "coordinator"), (&colleague, "colleague")] {
        assert!(d.store.open_conflicts(None).unwrap().is_empty(), "{who}");
        let f = d.store.get::<Person>(w.father).unwrap().unwrap();
        assert_eq!(f.language.as_deref(), Some("dansk"), "{who}");
        assert_converged(&rt, d, who);
    }
    let resolved: Conflict = colleague.store.get(conflict.0).unwrap().unwrap();
    assert_eq!(resolved.resolved_by, Some(StaffId(coord.staff)));
}
backends!(two_devices_converge);

/// Removed from the team, a worker's next sync deletes the team's cases from the device.
fn scope_loss_deletes_the_case_from_the_device(kind: Kind) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let mut colleague = device(&server, &db, "teamcw");
    colleague.sync(&rt);
    assert!(colleague.store.get::<Case>(w.case1).unwrap().is_some());
    assert!(count(&colleague.store, "SELECT COUNT(*) FROM persons") >= 2);
    db.admin(
        &[
            "remove-member",
            "--username",
            "teamcw",
            "--team",
            "Team Gellerup",
        ],
        None,
    )
    .success();
    let report = colleague.sync(&rt);
    assert_eq!(report.dropped_buckets, vec![format!("case:{}", w.case1)]);
    assert!(colleague.store.get::<Case>(w.case1).unwrap().is_none());
    for table in [
        "cases",
        "persons",
        "notes",
        "consents",
        "participants",
        "notes_fts",
        "persons_fts",
    ] {
        assert_eq!(
            count(&colleague.store, &format!("SELECT COUNT(*) FROM {table}")),
            0,
            "{table} still holds rows of the case"
        );
    }
    assert_converged(&rt, &colleague, "after removal");
}
backends!(scope_loss_deletes_the_case_from_the_device);

fn push_raw(server: &Server, token: &str, body: &Value) -> common::Resp {
    let r = server
        .client()
        .http
        .post(format!("{}/v1/sync/push", server.base))
        .bearer_auth(token)
        .json(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().unwrap();
    common::Resp {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

fn records_dump(db: &Db) -> Vec<(String, String, String, String, i64)> {
    let mut owner = db.owner();
    owner
        .query(
            "SELECT entity, id, data, field_hlc, seq FROM records ORDER BY entity, id",
            feltkontor_central::params![],
        )
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.text(0).unwrap(),
                r.text(1).unwrap(),
                r.text(2).unwrap(),
                r.text(3).unwrap(),
                r.int(4).unwrap(),
            )
        })
        .collect()
}

/// Delivers one push `times` times: the first delivery has the effect `(applied, duplicates)`
/// given, every later one applies nothing and leaves the service's records as they were.
/// Returns the records after the deliveries.
fn deliver_repeatedly(
    server: &Server,
    db: &Db,
    token: &str,
    entries: &[ChangeEntry],
    times: usize,
    acked: u64,
    first: (u32, u32),
) -> Vec<(String, String, String, String, i64)> {
    let mut after_first = None;
    for n in 0..times {
        let r = push_raw(server, token, &json!({ "entries": entries }));
        assert_eq!(r.status, 200, "{:?}", r.body);
        let resp: PushResponse = serde_json::from_value(r.body).unwrap();
        assert_eq!(resp.acked_seq, acked);
        let total = first.0 + first.1;
        assert_eq!(
            (resp.applied, resp.duplicates),
            if n == 0 { first } else { (0, total) }
        );
        let dump = records_dump(db);
        match &after_first {
            None => after_first = Some(dump),
            Some(d) => assert_eq!(&dump, d, "a repeated delivery changed the service's data"),
        }
    }
    after_first.expect("at least one delivery")
}

/// A batch delivered 1–5 times, in any order, has the effect of one delivery; a batch after a
/// gap is refused and changes nothing.
fn redelivery_has_one_effect(kind: Kind) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let mut coord = device(&server, &db, "coord");
    coord.sync(&rt);
    for i in 0..6 {
        let p = new_person(w.case1, &format!("Person {i}"));
        coord.store.write(|wr| wr.put_person(&p)).unwrap();
    }
    let entries = coord.store.pending_push(100).unwrap();
    assert_eq!(entries.len(), 6);
    let before = records_dump(&db);

    // Entries 4–6 before 1–3: a gap, refused whole.
    let late = push_raw(&server, &coord.token, &json!({ "entries": &entries[3..] }));
    assert_eq!(late.status, 409, "{:?}", late.body);
    assert_eq!(late.code(), "sequence_gap");
    assert_eq!(records_dump(&db), before, "a refused push changed nothing");

    // 1–3 reversed, delivered again and again; then everything, shuffled, several times.
    let mut first: Vec<_> = entries[..3].to_vec();
    first.reverse();
    deliver_repeatedly(
        &server,
        &db,
        &coord.token,
        &first,
        3,
        entries[2].seq,
        (3, 0),
    );
    let mut all = entries.clone();
    all.swap(0, 5);
    all.swap(1, 3);
    let after_all = deliver_repeatedly(&server, &db, &coord.token, &all, 5, entries[5].seq, (3, 3));
    // The device never heard the acknowledgements (killed before its checkpoint): its own
    // round re-sends everything and nothing is duplicated.
    let report = coord.sync(&rt);
    assert_eq!(report.pushed, 6);
    assert_eq!(records_dump(&db), after_all);
    assert_converged(&rt, &coord, "after re-delivery");
}
backends!(redelivery_has_one_effect);

/// Malformed, foreign, future-dated, out-of-scope and tampering pushes get clear answers;
/// refused changes do not block the queue.
fn bad_pushes_are_refused_clearly(kind: Kind) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let mut outsider = device(&server, &db, "outsider");
    let mut coord = device(&server, &db, "coord");
    coord.sync(&rt);
    outsider.sync(&rt);
    let dev = DeviceId(outsider.device);
    let hlc = |ms: u64| Hlc {
        wall_ms: ms,
        counter: 0,
        device: dev,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as u64 * 1000;
    let entry = |seq: u64, entity: EntityKind, id: Uuid, fields: Value, at: u64| {
        let fields: BTreeMap<String, FieldChange> = fields
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    FieldChange {
                        value: v.clone(),
                        hlc: hlc(at),
                        base: None,
                    },
                )
            })
            .collect();
        ChangeEntry {
            op_id: OpId::new(),
            seq,
            device: dev,
            entity,
            entity_id: id,
            fields,
        }
    };
    let before = records_dump(&db);

    let malformed = push_raw(&server, &outsider.token, &json!({ "entries": "nej" }));
    assert_eq!((malformed.status, malformed.code()), (400, "invalid_input"));
    let unknown = push_raw(
        &server,
        &outsider.token,
        &json!({ "entries": [], "sql": "1=1" }),
    );
    assert_eq!(unknown.status, 400);
    // Three times the limit: the server reads the rest before answering, so the client sees
    // the 413 rather than a connection reset while it is still sending.
    let big = "x".repeat(3 * 4 * 1024 * 1024);
    let oversize = push_raw(
        &server,
        &outsider.token,
        &json!({ "entries": [], "pad": big }),
    );
    assert_eq!(
        (oversize.status, oversize.code()),
        (413, "payload_too_large")
    );
    let no_token = server
        .client()
        .post("/v1/sync/push", &json!({ "entries": [] }));
    assert_eq!(no_token.status, 401);

    // Another device's changes.
    let mut foreign = entry(
        1,
        EntityKind::Person,
        w.father,
        json!({"language": "fransk"}),
        now,
    );
    foreign.device = DeviceId(coord.device);
    let r = push_raw(&server, &outsider.token, &json!({ "entries": [foreign] }));
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    // A clock an hour ahead.
    let future = entry(
        1,
        EntityKind::Person,
        w.father,
        json!({"language": "fransk"}),
        now + 3_600_000,
    );
    let r = push_raw(&server, &outsider.token, &json!({ "entries": [future] }));
    assert_eq!((r.status, r.code()), (400, "clock_skew"), "{:?}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("clock"));
    assert_eq!(
        records_dump(&db),
        before,
        "refused requests changed nothing"
    );

    // Out of scope, reference data and a forged note: refused one by one; the queue goes on.
    let note_id = w.note_team;
    let batch = vec![
        entry(
            1,
            EntityKind::Person,
            w.father,
            json!({"language": "fransk"}),
            now,
        ),
        entry(
            2,
            EntityKind::Team,
            w.team_b,
            json!({"name": "Omdøbt"}),
            now,
        ),
        entry(
            3,
            EntityKind::Note,
            note_id,
            json!({"body": "omskrevet"}),
            now,
        ),
        entry(
            4,
            EntityKind::Case,
            Uuid::now_v7(),
            json!({"child_name": "Ukendt"}),
            now,
        ),
    ];
    let r = push_raw(&server, &outsider.token, &json!({ "entries": batch }));
    assert_eq!(r.status, 200, "{:?}", r.body);
    let resp: PushResponse = serde_json::from_value(r.body).unwrap();
    assert_eq!(resp.acked_seq, 4);
    assert_eq!(resp.applied, 0);
    let codes: Vec<&str> = resp.rejected.iter().map(|r| r.code.as_str()).collect();
    // A change to a case the service does not know (or the worker cannot see: the two are not
    // told apart) is out of scope, on both engines.
    assert_eq!(codes, ["forbidden", "forbidden", "forbidden", "forbidden"]);
    assert!(resp.rejected.iter().all(|r| !r.reason.is_empty()));
    assert_eq!(records_dump(&db), before, "refused changes changed nothing");

    // A signed note changed by its own author is refused and logged as a security event.
    let coord_dev = coord;
    let signed: CaseNote = coord_dev.store.get(w.note_team).unwrap().unwrap();
    assert_eq!(signed.status, NoteStatus::Signed);
    let cdev = DeviceId(coord_dev.device);
    let tamper = ChangeEntry {
        op_id: OpId::new(),
        seq: 1,
        device: cdev,
        entity: EntityKind::Note,
        entity_id: w.note_team,
        fields: BTreeMap::from([(
            "body".to_owned(),
            FieldChange {
                value: json!("omskrevet efter underskrift"),
                hlc: Hlc {
                    wall_ms: now,
                    counter: 0,
                    device: cdev,
                },
                base: None,
            },
        )]),
    };
    let r = push_raw(&server, &coord_dev.token, &json!({ "entries": [tamper] }));
    let resp: PushResponse = serde_json::from_value(r.body).unwrap();
    assert_eq!(resp.rejected.len(), 1);
    assert_eq!(resp.rejected[0].code, "signed_note_changed");
    assert_eq!(records_dump(&db), before);
    let mut owner = db.owner();
    let security = owner
        .query_one(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'security' AND result = 'denied'",
            feltkontor_central::params![],
        )
        .unwrap()
        .unwrap()
        .int(0)
        .unwrap();
    assert_eq!(security, 1);
}
backends!(bad_pushes_are_refused_clearly);

/// A revoked device learns it at its next contact and wipes its store: the key file and the
/// database are gone from the disk.
fn revoked_device_is_wiped(kind: Kind) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let mut coord = device(&server, &db, "coord");
    coord.sync(&rt);
    let p = new_person(w.case1, "Skrevet før tyveriet");
    coord.store.write(|wr| wr.put_person(&p)).unwrap();
    let location = coord.store.location().clone();
    assert!(location.database().exists() && location.key_file().exists());
    db.admin(
        &["revoke-device", "--device", &coord.device.to_string()],
        None,
    )
    .success();
    let err = rt
        .block_on(sync_once(&coord.remote, &mut coord.store))
        .unwrap_err();
    assert!(err.must_wipe(), "{err}");
    assert!(!err.transient());
    let Device { store, _dir, .. } = coord;
    store.wipe().unwrap();
    assert!(!location.key_file().exists(), "the key file is gone");
    assert!(!location.database().exists(), "the database is gone");
    assert!(
        Store::open(
            &location,
            "en lang nok adgangssaetning",
            Arc::new(SystemClock)
        )
        .is_err(),
        "nothing is left to unlock"
    );
}
backends!(revoked_device_is_wiped);

/// The device lease: handed out at enrollment for the configured period, renewed at every
/// refresh (the same secret, a later expiry). On the database file: within the lease the store
/// opens; past it the store cannot be unlocked even with the right passphrase (and putting the
/// clock back does not help); the worker's password renews it; a revoked device gets no lease,
/// by refresh or by password.
fn the_lease_bounds_offline_use(kind: Kind) {
    use feltkontor_core::store::keys;
    use feltkontor_core::{Error, ManualClock, StoreLocation};
    let db = Db::migrated(kind);
    world::build(&db);
    let server = Server::start(&db, &["--lease-hours", "48"]);
    let rt = rt();
    let remote = feltkontor_sync::Remote::new(&server.base, "").unwrap();
    let code = db
        .admin(&["enrollment-code", "--username", "coord"], None)
        .success()
        .stdout;
    let now_ms = || (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    const HOURS: i64 = 3_600_000;
    let before = now_ms();
    let tokens = rt
        .block_on(remote.enroll(code.trim(), "coord", common::PASSWORD, "Testmaskine"))
        .unwrap();
    let lease = tokens.lease().unwrap();
    // RFC 3339 with milliseconds: the expiry is 48 hours after the answer, to the ms.
    assert!(
        (before + 48 * HOURS..=now_ms() + 48 * HOURS).contains(&lease.expires_at_ms),
        "the lease runs for the configured 48 hours: {lease:?}"
    );
    assert_eq!(tokens.lease_secret.len(), 64);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = rt.block_on(remote.refresh(&tokens.refresh_token)).unwrap();
    assert_eq!(
        again.lease_secret, tokens.lease_secret,
        "one secret per device"
    );
    let renewed = again.lease().unwrap();
    assert!(
        renewed.expires_at_ms > lease.expires_at_ms,
        "a refresh renews the lease"
    );

    // The store on disk, as the app creates it at connect.
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::new(dir.path().join("profile"));
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    const PASSPHRASE: &str = "en lang nok adgangssaetning";
    let store = Store::create_connected(
        &loc,
        PASSPHRASE,
        &renewed,
        &server.base,
        StaffId(tokens.staff_id),
        DeviceId(tokens.device_id),
        feltkontor_core::store::KdfParams::default(),
        clock.clone(),
    )
    .unwrap();
    store.lock();
    clock.advance(time::Duration::hours(47));
    Store::open(&loc, PASSPHRASE, clock.clone()).unwrap().lock();
    clock.advance(time::Duration::hours(2));
    assert!(matches!(
        Store::open(&loc, PASSPHRASE, clock.clone()),
        Err(Error::LeaseExpired)
    ));
    let file = std::fs::read_to_string(loc.lease_file()).unwrap();
    assert!(!file.contains(&tokens.lease_secret), "the secret is erased");
    clock.set(time::OffsetDateTime::now_utc());
    assert!(
        matches!(
            Store::open(&loc, PASSPHRASE, clock.clone()),
            Err(Error::LeaseExpired)
        ),
        "a clock put back does not bring the lease back"
    );

    // The password renews it (the refresh token is inside the store that cannot be opened).
    let refused = |e: feltkontor_sync::SyncError| match e {
        feltkontor_sync::SyncError::Refused { code, .. } => code,
        other => panic!("expected a refusal, got {other}"),
    };
    let wrong = rt.block_on(remote.recover_lease(tokens.device_id, "coord", "forkert kodeord"));
    assert_eq!(refused(wrong.unwrap_err()), ErrorCode::EnrollmentFailed);
    let not_theirs =
        rt.block_on(remote.recover_lease(tokens.device_id, "teamcw", common::PASSWORD));
    assert_eq!(
        refused(not_theirs.unwrap_err()),
        ErrorCode::EnrollmentFailed
    );
    let back = rt
        .block_on(remote.recover_lease(tokens.device_id, "coord", common::PASSWORD))
        .unwrap();
    keys::write_lease(&loc.lease_file(), &loc.key_file(), &back, None).unwrap();
    Store::open(&loc, PASSPHRASE, clock.clone()).unwrap().lock();

    // Revoked: no lease by refresh, none by password.
    db.admin(
        &["revoke-device", "--device", &tokens.device_id.to_string()],
        None,
    )
    .success();
    let by_refresh = rt
        .block_on(remote.refresh(&again.refresh_token))
        .unwrap_err();
    assert!(by_refresh.must_wipe(), "{by_refresh}");
    let by_password = rt
        .block_on(remote.recover_lease(tokens.device_id, "coord", common::PASSWORD))
        .unwrap_err();
    assert!(by_password.must_wipe(), "{by_password}");
    let audited = db
        .owner()
        .query(
            "SELECT result FROM audit_log WHERE action = 'lease_recover' ORDER BY seq",
            feltkontor_central::params![],
        )
        .unwrap()
        .iter()
        .map(|r| r.text(0).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(
        audited.len(),
        4,
        "every renewal attempt is audited: {audited:?}"
    );
}
backends!(the_lease_bounds_offline_use);

/// Retiring (handing the laptop back): the device pushes everything, the service retires it
/// (every later request and refresh is refused with `device_revoked`), and the local store is
/// wiped; the changes made on it are on the service.
fn retire_hands_the_device_back(kind: Kind) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let mut coord = device(&server, &db, "coord");
    coord.sync(&rt);
    let p = new_person(w.case1, "Skrevet før afleveringen");
    coord.store.write(|wr| wr.put_person(&p)).unwrap();
    coord.sync(&rt);
    assert_eq!(coord.store.pending_count().unwrap(), 0);
    rt.block_on(coord.remote.retire()).unwrap();
    let after = rt
        .block_on(sync_once(&coord.remote, &mut coord.store))
        .unwrap_err();
    assert!(after.must_wipe(), "a retired device is refused: {after}");
    let location = coord.store.location().clone();
    let Device { store, .. } = coord;
    store.wipe().unwrap();
    assert!(!location.key_file().exists() && !location.lease_file().exists());
    let mut other = device(&server, &db, "coord");
    other.sync(&rt);
    assert!(
        other.store.get::<Person>(p.id.0).unwrap().is_some(),
        "what the retired device wrote is on the service"
    );
    let retired = db
        .owner()
        .query(
            "SELECT count(*) FROM audit_log WHERE action = 'device_retire'",
            feltkontor_central::params![],
        )
        .unwrap()[0]
        .int(0)
        .unwrap();
    assert_eq!(retired, 1);
}
backends!(retire_hands_the_device_back);

/// The app's connect step: the sync client enrolls with a one-time code and refreshes its
/// tokens; a wrong code is `enrollment_failed`.
fn the_sync_client_enrolls_and_refreshes(kind: Kind) {
    let db = Db::migrated(kind);
    world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let remote = feltkontor_sync::Remote::new(&server.base, "").unwrap();
    let wrong = rt
        .block_on(remote.enroll("FORK-ERT1", "coord", common::PASSWORD, "Testmaskine"))
        .unwrap_err();
    assert!(
        matches!(
            &wrong,
            feltkontor_sync::SyncError::Refused {
                code: ErrorCode::EnrollmentFailed,
                ..
            }
        ),
        "{wrong}"
    );
    let code = db
        .admin(&["enrollment-code", "--username", "coord"], None)
        .success()
        .stdout;
    let tokens = rt
        .block_on(remote.enroll(code.trim(), "coord", common::PASSWORD, "Testmaskine"))
        .unwrap();
    let again = rt.block_on(remote.refresh(&tokens.refresh_token)).unwrap();
    assert_eq!(again.device_id, tokens.device_id);
    assert_ne!(again.refresh_token, tokens.refresh_token);
}
backends!(the_sync_client_enrolls_and_refreshes);

/// Live updates: a device waiting at the service hears within a second that a colleague's
/// push was applied; without a change the wait holds; a bad token is refused.
fn live_wait_wakes_on_a_change(kind: Kind) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let mut coord = device(&server, &db, "coord");
    let mut colleague = device(&server, &db, "teamcw");
    coord.sync(&rt);
    colleague.sync(&rt);
    let generation = rt.block_on(coord.remote.wait(0)).unwrap();
    assert_ne!(generation, 0);
    // Nothing changes: still waiting after a second.
    let quiet = rt.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_secs(1),
            coord.remote.wait(generation),
        )
        .await
    });
    assert!(quiet.is_err(), "the wait answered without a change");
    // A colleague's change wakes it.
    let p = new_person(w.case1, "Ny kontakt");
    colleague.store.write(|wr| wr.put_person(&p)).unwrap();
    let remote = coord.remote.clone();
    let started = std::time::Instant::now();
    let (woke, _) = rt.block_on(async {
        tokio::join!(remote.wait(generation), async {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            sync_once(&colleague.remote, &mut colleague.store)
                .await
                .unwrap()
        })
    });
    let woke = woke.unwrap();
    assert_ne!(woke, generation);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    coord.sync(&rt);
    assert!(coord.store.get::<Person>(p.id.0).unwrap().is_some());
    let bad = feltkontor_sync::Remote::new(&server.base, "not-a-token").unwrap();
    let err = rt.block_on(bad.wait(0)).unwrap_err();
    assert!(
        matches!(err, feltkontor_sync::SyncError::Refused { status: 401, .. }),
        "{err}"
    );
}
backends!(live_wait_wakes_on_a_change);

/// What a worker opened and searched on the device reaches the service's audit log with the
/// sync round, each entry once however often it is sent; entries of another worker, a criterion
/// too long, a time in the future or too many entries are refused and change nothing.
fn offline_reading_reaches_the_audit_log(kind: Kind) {
    use feltkontor_wire::sync::{AccessRecord, AccessUpload};
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let mut coord = device(&server, &db, "coord");
    coord.sync(&rt);
    coord.store.case_overview(CaseId(w.case1)).unwrap();
    coord.store.person(PersonId(w.mother)).unwrap();
    coord.store.search("bedste", 10).unwrap();
    assert_eq!(coord.store.pending_access_count().unwrap(), 3);
    type Audited = (Option<Uuid>, Option<Uuid>, Option<Uuid>, String);
    let audited = |action: &str| -> Vec<Audited> {
        db.owner()
            .query(
                "SELECT staff_id, device_id, case_id, detail FROM audit_log WHERE action = $1 ORDER BY seq",
                feltkontor_central::params![action],
            )
            .unwrap()
            .iter()
            .map(|r| {
                let id = |i| r.opt_text(i).unwrap().map(|t| t.parse::<Uuid>().unwrap());
                (id(0), id(1), id(2), r.text(3).unwrap())
            })
            .collect()
    };
    let report = rt
        .block_on(sync_once(&coord.remote, &mut coord.store))
        .unwrap();
    assert_eq!(report.access_uploaded, 3);
    assert_eq!(coord.store.pending_access_count().unwrap(), 0);
    let opened = audited("device_open_case");
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(
        (opened[0].0, opened[0].1, opened[0].2),
        (Some(coord.staff), Some(coord.device), Some(w.case1)),
        "worker, device and case"
    );
    assert_eq!(audited("device_open_person").len(), 1);
    let searched = audited("device_search");
    assert_eq!(searched.len(), 1);
    assert!(searched[0].3.ends_with(": bedste"), "{}", searched[0].3);

    // Sent again (an answer lost on the network): recorded once.
    let upload = AccessUpload {
        entries: coord
            .store
            .access_log(10)
            .unwrap()
            .iter()
            .map(|e| e.to_record())
            .collect(),
    };
    let again = rt.block_on(coord.remote.upload_access(&upload)).unwrap();
    assert_eq!((again.recorded, again.duplicates), (0, 3));
    let all = || {
        db.owner()
            .query(
                "SELECT count(*) FROM audit_log WHERE action LIKE 'device_%'",
                feltkontor_central::params![],
            )
            .unwrap()[0]
            .int(0)
            .unwrap()
    };
    assert_eq!(all(), 3);

    // Entries that can never be recorded are refused one by one (listed, never blocking the
    // device's next upload); an odd time or an oversize criterion is recorded as given, marked.
    let one = |f: &dyn Fn(&mut AccessRecord)| {
        let mut e = upload.entries[0].clone();
        e.id = Uuid::now_v7();
        f(&mut e);
        AccessUpload { entries: vec![e] }
    };
    let answer = |req: AccessUpload| rt.block_on(coord.remote.upload_access(&req)).unwrap();
    for bad in [
        one(&|e| e.worker = w.staff["teamcw"]),
        one(&|e| e.device = Uuid::now_v7()),
    ] {
        let id = bad.entries[0].id;
        let a = answer(bad);
        assert_eq!((a.recorded, a.refused), (0, vec![id]));
    }
    assert_eq!(all(), 3, "another worker's entries are not recorded");
    assert_eq!(
        answer(one(&|e| e.criterion = Some("ø".repeat(501)))).recorded,
        1
    );
    assert_eq!(answer(one(&|e| e.at_ms += 24 * 3600 * 1000)).recorded, 1);
    assert_eq!(all(), 5);
    let many = AccessUpload {
        entries: (0..1001)
            .map(|_| {
                let mut e = upload.entries[0].clone();
                e.id = Uuid::now_v7();
                e
            })
            .collect(),
    };
    match rt.block_on(coord.remote.upload_access(&many)) {
        Err(feltkontor_sync::SyncError::Refused { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (400, "invalid_input"))
        }
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(all(), 5, "a refused upload records nothing");
}
backends!(offline_reading_reaches_the_audit_log);

/// A note written offline by a worker who was then removed from the team waits in quarantine:
/// the case's coordinator and a leader on its team see it (nobody else does); accepting writes
/// it into the case as its author's, signed and sealed, and it reaches the devices; keeping it
/// out leaves the case as it was and the note still on the service.
fn quarantined_notes_wait_for_the_coordinator(kind: Kind) {
    use feltkontor_wire::sync::QuarantineDecision;
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    db.admin(
        &[
            "create-staff",
            "--name",
            "Lone Leder",
            "--initials",
            "LL",
            "--profession",
            "leader",
            "--sector",
            "social_services",
            "--username",
            "leader",
            "--contact",
            "leder@aarhus.dk",
        ],
        Some(common::PASSWORD),
    )
    .success();
    db.admin(
        &[
            "add-member",
            "--username",
            "leader",
            "--team",
            "Team Gellerup",
        ],
        None,
    )
    .success();
    let mut coord = device(&server, &db, "coord");
    let leader = device(&server, &db, "leader");
    let mut author = device(&server, &db, "teamcw");
    let mut psy = device(&server, &db, "psyteam");
    author.sync(&rt);
    // Offline: two notes, one of them signed.
    let kept = draft_note(w.case1, StaffId(author.staff), "Hjemmebesøg: mor fortæller");
    let out = draft_note(w.case1, StaffId(author.staff), "Skrevet i den forkerte sag");
    author
        .store
        .write(|wr| {
            wr.save_note(&kept)?;
            wr.sign_note(kept.id)
        })
        .unwrap();
    author.store.write(|wr| wr.save_note(&out)).unwrap();
    db.admin(
        &[
            "remove-member",
            "--username",
            "teamcw",
            "--team",
            "Team Gellerup",
        ],
        None,
    )
    .success();
    let report = author.sync(&rt);
    assert_eq!(report.rejected, 3, "{report:?}");

    let list = |d: &Device| rt.block_on(d.remote.quarantined()).unwrap().notes;
    assert!(list(&author).is_empty(), "the author no longer decides");
    assert!(list(&psy).is_empty(), "a team member who is not a leader");
    let waiting = list(&coord);
    assert_eq!(waiting.len(), 2);
    assert_eq!(list(&leader).len(), 2, "a leader on the case's team");
    // A round's last page says how many notes wait for the worker's decision (the app's status
    // bar announces them): the coordinator is told, the others not, and counting reads no note.
    let quarantine_reads = |db: &Db| {
        db.owner()
            .query_one(
                "SELECT COUNT(*) FROM audit_log WHERE action = 'quarantine_read'",
                feltkontor_central::params![],
            )
            .unwrap()
            .unwrap()
            .int(0)
            .unwrap()
    };
    let reads = quarantine_reads(&db);
    assert_eq!(coord.sync(&rt).quarantined, Some(2));
    assert_eq!(psy.sync(&rt).quarantined, Some(0));
    assert_eq!(author.sync(&rt).quarantined, Some(0));
    assert_eq!(quarantine_reads(&db), reads, "counting reads no note");
    let first = waiting.iter().find(|n| n.note_id == kept.id.0).unwrap();
    assert_eq!(first.changes, 2, "written, then signed");
    assert_eq!(first.author_name, "Tove Teamsen");
    assert_eq!(first.child_name, "Alma Testbarn");
    assert_eq!(first.fields["body"], "Hjemmebesøg: mor fortæller");
    assert_eq!(first.fields["status"], "signed");

    // Someone who does not decide cannot resolve: not found, nothing changes.
    let decide = |d: &Device, note: NoteId, accept: bool| {
        rt.block_on(d.remote.resolve_quarantined(&QuarantineDecision {
            note_id: note.0,
            accept,
        }))
    };
    match decide(&psy, kept.id, true) {
        Err(feltkontor_sync::SyncError::Refused { status, .. }) => assert_eq!(status, 404),
        other => panic!("{other:?}"),
    }
    let accepted = decide(&coord, kept.id, true).unwrap();
    assert!(accepted.accepted);
    assert_eq!(accepted.changes, 2);
    let kept_out = decide(&leader, out.id, false).unwrap();
    assert!(!kept_out.accepted);
    assert!(list(&coord).is_empty());
    match decide(&coord, kept.id, true) {
        Err(feltkontor_sync::SyncError::Refused { status, .. }) => assert_eq!(status, 404),
        other => panic!("decided twice: {other:?}"),
    }

    assert_eq!(coord.sync(&rt).quarantined, Some(0), "decided: none waits");
    psy.sync(&rt);
    for d in [&coord, &psy] {
        let note = d.store.get::<CaseNote>(kept.id.0).unwrap().unwrap();
        assert_eq!(note.status, NoteStatus::Signed);
        assert_eq!(note.author_id, StaffId(author.staff));
        assert!(d.store.get::<CaseNote>(out.id.0).unwrap().is_none());
    }
    assert_converged(&rt, &coord, "coordinator after the decision");
    let mut owner = db.owner();
    let one = |owner: &mut Box<dyn feltkontor_central::db::Conn>, sql: &str| {
        owner
            .query_one(sql, feltkontor_central::params![])
            .unwrap()
            .unwrap()
            .int(0)
            .unwrap()
    };
    assert_eq!(
        one(
            &mut owner,
            &format!(
                "SELECT COUNT(*) FROM signed_notes WHERE note_id = '{}'",
                kept.id
            )
        ),
        1,
        "the accepted note is sealed"
    );
    assert_eq!(
        one(
            &mut owner,
            "SELECT COUNT(*) FROM quarantine WHERE decision = 'kept_out'"
        ),
        1,
        "a note kept out is still kept"
    );
    assert_eq!(
        one(
            &mut owner,
            "SELECT COUNT(*) FROM audit_log WHERE action IN ('quarantine_accept', 'quarantine_keep_out')"
        ),
        2
    );
}
backends!(quarantined_notes_wait_for_the_coordinator);

/// A page that stops short says about how many records wait after it (for the first sync's
/// progress bar): exactly the records after the page in the worker's buckets, hidden ones
/// included, so the bar never ends early; the last page says nothing.
fn pull_says_how_much_remains(kind: Kind) {
    use feltkontor_wire::sync::PullRequest;
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let coord = device(&server, &db, "coord");
    let in_buckets = db
        .owner()
        .query_one(
            "SELECT COUNT(*) FROM records WHERE case_id IS NULL OR case_id = $1",
            feltkontor_central::params![w.case1],
        )
        .unwrap()
        .unwrap()
        .int(0)
        .unwrap() as u64;
    let mut cursors = BTreeMap::new();
    let mut seen = 0u64;
    let mut pages = 0;
    loop {
        let page = rt
            .block_on(coord.remote.pull(&PullRequest {
                cursors: cursors.clone(),
                limit: 3,
            }))
            .unwrap();
        pages += 1;
        for b in &page.buckets {
            // Records the worker may not see are skipped but still move the cursor.
            seen += db
                .owner()
                .query_one(
                    "SELECT COUNT(*) FROM records WHERE seq > $1 AND seq <= $2 AND (case_id IS NULL AND $3 = 'team' OR case_id = $4)",
                    feltkontor_central::params![
                        cursors.get(&b.bucket).copied().unwrap_or(0) as i64,
                        b.cursor as i64,
                        b.bucket.as_str(),
                        b.bucket.strip_prefix("case:").unwrap_or("-")
                    ],
                )
                .unwrap()
                .unwrap()
                .int(0)
                .unwrap() as u64;
            cursors.insert(b.bucket.clone(), b.cursor);
        }
        if !page.more {
            assert_eq!(page.remaining, None);
            break;
        }
        assert_eq!(
            page.remaining,
            Some(in_buckets - seen),
            "page {pages}: what is left after it"
        );
    }
    assert!(pages > 3, "the world needs several pages of 3: {pages}");
    assert_eq!(seen, in_buckets);
    // The sync client turns it into the round's expected total.
    let mut fresh = device(&server, &db, "coord");
    let report = fresh.sync(&rt);
    assert_eq!(report.expected_records, Some(report.pulled_records));
}
backends!(pull_says_how_much_remains);

/// Sync bodies travel gzipped: the answer to a pull is gzipped for a client that accepts it, a
/// gzipped push is applied like a plain one, the body limit holds for the unpacked size (a
/// small gzip that unpacks to megabytes is refused as too large) and a broken gzip is a clear
/// 400.
fn sync_bodies_travel_gzipped(kind: Kind) {
    use std::io::{Read, Write};
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let mut coord = device(&server, &db, "coord");
    coord.sync(&rt);
    // Raw bodies: this client does not unpack answers itself.
    let http = &reqwest::blocking::Client::builder()
        .no_gzip()
        .build()
        .unwrap();
    let gz = |bytes: &[u8]| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    };
    // A pull answer, gzipped.
    let r = http
        .post(format!("{}/v1/sync/pull", server.base))
        .bearer_auth(&coord.token)
        .header("accept-encoding", "gzip")
        .json(&json!({ "cursors": {}, "limit": 5000 }))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let packed = r.bytes().unwrap();
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&packed[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert!(
        packed.len() * 3 < plain.len(),
        "gzip saves most of it: {} of {} bytes",
        packed.len(),
        plain.len()
    );
    let page: feltkontor_wire::sync::PullResponse = serde_json::from_slice(&plain).unwrap();
    assert!(!page.buckets.is_empty());

    // A gzipped push, as the sync client sends it.
    let p = new_person(w.case1, "Sendt pakket");
    coord.store.write(|wr| wr.put_person(&p)).unwrap();
    let entries = coord.store.pending_push(10).unwrap();
    let push = |body: Vec<u8>| {
        http.post(format!("{}/v1/sync/push", server.base))
            .bearer_auth(&coord.token)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
            .unwrap()
    };
    let ok = push(gz(
        &serde_json::to_vec(&json!({ "entries": entries })).unwrap()
    ));
    assert_eq!(ok.status().as_u16(), 200);
    let resp: PushResponse = ok.json().unwrap();
    assert_eq!(resp.applied, 1);
    let before = records_dump(&db);

    // 8 MiB of spaces inside valid JSON, a few kilobytes gzipped: too large once unpacked.
    let mut bomb = b"{\"entries\": [".to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 8 * 1024 * 1024));
    bomb.extend(b"]}");
    let packed = gz(&bomb);
    assert!(packed.len() < 64 * 1024);
    let r = push(packed);
    assert_eq!(r.status().as_u16(), 413);
    let problem: Value = r.json().unwrap();
    assert_eq!(problem["code"], "payload_too_large");
    let r = push(b"not gzip at all".to_vec());
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(records_dump(&db), before, "refused bodies change nothing");

    // The sync client itself: compressed both ways, and the round still converges.
    let p2 = new_person(w.case1, "Også pakket");
    coord.store.write(|wr| wr.put_person(&p2)).unwrap();
    coord.sync(&rt);
    assert_converged(&rt, &coord, "after gzipped rounds");
}
backends!(sync_bodies_travel_gzipped);

/// Deleted records are purged on the service after a while. A device that held a case from
/// before the purge may never hear of a deletion: its cursor is older than the case's horizon,
/// so that case alone is deleted on the device and pulled again from the start; its other
/// cases are left as they are. A device pulling from the start in small pages never mistakes
/// its own cursor for a stale one.
fn a_stale_cursor_resets_only_its_bucket(kind: Kind) {
    use feltkontor_wire::sync::PullRequest;
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let mut away = device(&server, &db, "coord");
    let mut other = device(&server, &db, "coord");
    away.sync(&rt);
    // A second case of the coordinator's, to show it is left alone.
    let case = away.store.get::<Case>(w.case1).unwrap().unwrap();
    let second = Case {
        id: CaseId::new(),
        child_name: "Carl Andensag".into(),
        child_cpr: None,
        ..case
    };
    away.store.write(|wr| wr.open_case(&second)).unwrap();
    let kept = new_person(second.id.0, "Bliver i den anden sag");
    away.store.write(|wr| wr.put_person(&kept)).unwrap();
    let pushed = away.sync(&rt);
    assert_eq!(
        pushed.rejected,
        0,
        "{:?}",
        away.store.rejected_changes().unwrap()
    );
    other.sync(&rt);
    let rid_of = |d: &Device, id: Uuid| -> i64 {
        d.store
            .conn()
            .query_row(
                "SELECT rid FROM persons WHERE id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .unwrap()
    };
    let kept_rid = rid_of(&away, kept.id.0);

    // On the other device: a person deleted; then the service purges deleted records.
    other
        .store
        .write(|wr| wr.archive_person(PersonId(w.father)))
        .unwrap();
    other.sync(&rt);
    let purged = db.admin(&["purge-tombstones", "--older-than-days", "0"], None);
    let purged = purged.success();
    assert!(
        purged.stdout.contains("1 deleted records purged"),
        "{}",
        purged.stdout
    );
    assert!(away.store.get::<Person>(w.father).unwrap().is_some());

    let report = away.sync(&rt);
    assert_eq!(report.reset_buckets, vec![format!("case:{}", w.case1)]);
    assert!(
        away.store.get::<Person>(w.father).unwrap().is_none(),
        "the deletion reached the device through the reset"
    );
    assert_eq!(
        rid_of(&away, kept.id.0),
        kept_rid,
        "the other case's rows were not touched"
    );
    assert_converged(&rt, &away, "after the reset");
    let again = away.sync(&rt);
    assert!(again.reset_buckets.is_empty(), "reset once: {again:?}");

    // From the start, one record per page: never told to reset, and it ends.
    let mut cursors = BTreeMap::new();
    for n in 0.. {
        assert!(n < 1_000, "the pull never ended");
        let page = rt
            .block_on(other.remote.pull(&PullRequest {
                cursors: cursors.clone(),
                limit: 1,
            }))
            .unwrap();
        assert!(page.reset.is_empty(), "page {n}: {:?}", page.reset);
        for b in &page.buckets {
            cursors.insert(b.bucket.clone(), b.cursor);
        }
        if !page.more {
            break;
        }
    }
}
backends!(a_stale_cursor_resets_only_its_bucket);

/// A worker opens a new case on the device (offline) with a family member; after syncing, the
/// service has it on both engines (on PostgreSQL row-level security looks the case up in the
/// projection the same write creates) and a colleague on the team receives it.
fn a_case_opened_on_a_device_reaches_the_team(kind: Kind) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let mut coord = device(&server, &db, "coord");
    let mut colleague = device(&server, &db, "teamcw");
    coord.sync(&rt);
    let template = coord.store.get::<Case>(w.case1).unwrap().unwrap();
    let case = Case {
        id: CaseId::new(),
        child_name: "Nora Nysag".into(),
        child_cpr: None,
        ..template
    };
    let mother = new_person(case.id.0, "Nadia Mor");
    coord
        .store
        .write(|wr| {
            wr.open_case(&case)?;
            wr.put_person(&mother)
        })
        .unwrap();
    let report = coord.sync(&rt);
    assert_eq!(
        report.rejected,
        0,
        "{:?}",
        coord.store.rejected_changes().unwrap()
    );
    colleague.sync(&rt);
    assert_eq!(
        colleague
            .store
            .get::<Case>(case.id.0)
            .unwrap()
            .unwrap()
            .child_name,
        "Nora Nysag"
    );
    assert!(colleague
        .store
        .get::<Person>(mother.id.0)
        .unwrap()
        .is_some());
    assert_converged(&rt, &coord, "coordinator");
    assert_converged(&rt, &colleague, "colleague");
}
backends!(a_case_opened_on_a_device_reaches_the_team);

/// Every page that completes a bucket the device held carries the bucket's checksum. A device
/// whose copy went wrong (here: a row changed behind the sync's back) notices at the next change
/// in that case, deletes the case and pulls it again, and then holds the service's version.
fn a_wrong_bucket_is_found_by_its_checksum_and_pulled_again(kind: Kind) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let mut coord = device(&server, &db, "coord");
    let mut colleague = device(&server, &db, "teamcw");
    coord.sync(&rt);
    colleague.sync(&rt);
    coord
        .store
        .conn()
        .execute(
            "UPDATE persons SET name = 'Forkert navn' WHERE id = ?1",
            [w.father.to_string()],
        )
        .unwrap();
    // Nothing changed in the case on the service: nothing to compare yet.
    let quiet = rt
        .block_on(sync_once(&coord.remote, &mut coord.store))
        .unwrap();
    assert!(quiet.checksum_resets.is_empty());
    // A colleague's change in the case: the page that brings it carries the checksum.
    let p = new_person(w.case1, "Ny i sagen");
    colleague.store.write(|wr| wr.put_person(&p)).unwrap();
    colleague.sync(&rt);
    let report = rt
        .block_on(sync_once(&coord.remote, &mut coord.store))
        .unwrap();
    assert_eq!(report.checksum_resets, vec![format!("case:{}", w.case1)]);
    assert_eq!(
        coord.store.get::<Person>(w.father).unwrap().unwrap().name,
        "Frank Far"
    );
    assert!(coord.store.get::<Person>(p.id.0).unwrap().is_some());
    assert_converged(&rt, &coord, "after pulling the case again");
}
backends!(a_wrong_bucket_is_found_by_its_checksum_and_pulled_again);

/// The daily comparison finds a bucket damaged on the device that no pull completes (nothing
/// new comes for it): only complete buckets held are compared, only with nothing unsent, and a
/// bucket that differs is pulled again.
fn a_quiet_damaged_bucket_is_found_by_the_daily_comparison(kind: Kind) {
    use feltkontor_wire::sync::VerifyRequest;
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let mut coord = device(&server, &db, "coord");
    let mut colleague = device(&server, &db, "teamcw");
    coord.sync(&rt);
    colleague.sync(&rt);
    let case1 = format!("case:{}", w.case1);
    let case2 = format!("case:{}", w.case2);
    let verify = |d: &mut Device| {
        let mut report = feltkontor_sync::SyncReport::default();
        let store = std::cell::RefCell::new(&mut d.store);
        let compared = rt
            .block_on(feltkontor_sync::verify_buckets(
                &d.remote,
                &store,
                &mut report,
                &mut |_| {},
            ))
            .unwrap();
        (compared, report)
    };
    // Intact: every bucket held is compared, none differs.
    let held = coord.store.sync_cursors().unwrap();
    assert!(held.len() >= 2 && held.contains_key(&case1), "{held:?}");
    let (compared, report) = verify(&mut coord);
    assert!(compared);
    assert_eq!(report.verified_buckets, held.len(), "{report:?}");
    assert!(report.checksum_resets.is_empty(), "{report:?}");

    // Damaged on the device: a name changed and a note gone (with its search entry), with no
    // change to show for it.
    coord
        .store
        .conn()
        .execute_batch(&format!(
            "UPDATE persons SET name = 'Forkert navn' WHERE id = '{father}';
             DELETE FROM notes_fts WHERE rowid = (SELECT rid FROM notes WHERE id = '{note}');
             DELETE FROM notes WHERE id = '{note}';",
            father = w.father,
            note = w.note_team
        ))
        .unwrap();
    let quiet = rt
        .block_on(sync_once(&coord.remote, &mut coord.store))
        .unwrap();
    assert!(
        quiet.checksum_resets.is_empty(),
        "a pull compares only what it completes"
    );
    let (compared, report) = verify(&mut coord);
    assert!(compared);
    assert_eq!(report.checksum_resets, vec![case1.clone()], "{report:?}");
    assert!(
        report.pulled_records > 0,
        "the bucket is pulled again at once"
    );
    assert_eq!(
        coord.store.get::<Person>(w.father).unwrap().unwrap().name,
        "Frank Far"
    );
    assert!(coord.store.get::<CaseNote>(w.note_team).unwrap().is_some());
    assert_converged(&rt, &coord, "after the comparison");
    let (_, again) = verify(&mut coord);
    assert!(again.checksum_resets.is_empty(), "{again:?}");

    // The service answers only for buckets the device holds complete and may see: not one with
    // a colleague's change not pulled yet, not another team's case, not one with no cursor.
    let p = new_person(w.case1, "Ny i sagen");
    colleague.store.write(|wr| wr.put_person(&p)).unwrap();
    colleague.sync(&rt);
    let mut cursors = coord.store.sync_cursors().unwrap();
    cursors.insert(case2.clone(), 1);
    let answer = |cursors| {
        rt.block_on(coord.remote.verify(&VerifyRequest { cursors }))
            .unwrap()
            .checksums
    };
    let listed = answer(cursors.clone());
    assert!(listed.contains_key("team"), "{listed:?}");
    assert!(!listed.contains_key(&case1), "{listed:?}");
    assert!(!listed.contains_key(&case2), "{listed:?}");
    cursors.insert("team".into(), 0);
    assert!(!answer(cursors).contains_key("team"));

    // While a change waits to be sent the two differ anyway: not compared.
    coord.sync(&rt);
    let mine = new_person(w.case1, "Endnu ikke sendt");
    coord.store.write(|wr| wr.put_person(&mine)).unwrap();
    let (compared, report) = verify(&mut coord);
    assert!(!compared && report.verified_buckets == 0, "{report:?}");
}
backends!(a_quiet_damaged_bucket_is_found_by_the_daily_comparison);

/// A large first sync stores its records first and indexes them for search afterwards: a
/// search before the index caught up still finds everything (it completes the index first),
/// and a record changed while the index is behind is found by its new text only.
fn a_large_first_sync_is_searched_completely(kind: Kind) {
    let db = Db::migrated(kind);
    let w: World = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let mut writer = device(&server, &db, "coord");
    writer.sync(&rt);
    let notes: Vec<CaseNote> = (0..300)
        .map(|i| {
            draft_note(
                w.case1,
                StaffId(writer.staff),
                &format!("Besøg nummer{i} hos Østergård"),
            )
        })
        .collect();
    let cousin = new_person(w.case1, "Kusine Bodil");
    writer
        .store
        .write(|wr| {
            for n in &notes {
                wr.save_note(n)?;
            }
            wr.put_person(&cousin)
        })
        .unwrap();
    writer.sync(&rt);

    // A new device: its first sync leaves the index behind.
    let mut fresh = device(&server, &db, "coord");
    let report = fresh.sync(&rt);
    assert!(report.pulled_records >= 300, "{report:?}");
    assert!(
        fresh.store.search_backlog().unwrap() >= 300,
        "a large pull is indexed afterwards"
    );
    // The pages were applied without waiting for the disk and without copying the log after
    // each; the round ends with the log copied into the database file (which then holds every
    // page), and the next save is a durable one again.
    let conn = fresh.store.conn();
    // (SQLCipher answers `page_size` as text.)
    let pragma = |name: &str| -> i64 {
        match conn
            .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .unwrap()
        {
            rusqlite::types::Value::Integer(n) => n,
            rusqlite::types::Value::Text(t) => t.parse().unwrap(),
            other => panic!("PRAGMA {name}: {other:?}"),
        }
    };
    assert_eq!(pragma("synchronous"), 2, "FULL");
    assert_eq!(pragma("wal_autocheckpoint"), 1000);
    let file = std::fs::metadata(fresh.store.location().database())
        .unwrap()
        .len();
    let pages = pragma("page_count") as u64 * pragma("page_size") as u64;
    assert_eq!(file, pages, "the database file holds every page");
    // Changed while the index is behind: found by the new name only.
    let mut renamed = fresh.store.get::<Person>(cousin.id.0).unwrap().unwrap();
    renamed.name = "Kusine Gudrun".into();
    fresh.store.write(|wr| wr.put_person(&renamed)).unwrap();
    let hits = fresh.store.search("nummer123", 20).unwrap();
    assert_eq!(hits.notes.len(), 1, "{hits:?}");
    assert_eq!(hits.notes[0].note_id, notes[123].id);
    assert_eq!(fresh.store.search_backlog().unwrap(), 0);
    assert_eq!(
        fresh.store.search("oestergaard", 20).unwrap().notes.len(),
        20
    );
    assert_eq!(fresh.store.search("gudrun", 20).unwrap().persons.len(), 1);
    assert!(fresh.store.search("bodil", 20).unwrap().persons.is_empty());

    // The background catch-up in short steps ends with the same index.
    let mut other = device(&server, &db, "coord");
    other.sync(&rt);
    assert!(other.store.search_backlog().unwrap() >= 300);
    let mut steps = 0;
    while !other.store.index_search_backlog(100).unwrap() {
        steps += 1;
    }
    assert!(steps >= 3, "{steps} steps");
    assert_eq!(other.store.search_backlog().unwrap(), 0);
    let hits = other.store.search("nummer299", 20).unwrap();
    assert_eq!(hits.notes.len(), 1);
    assert_eq!(other.store.search("bodil", 20).unwrap().persons.len(), 1);
    // Small pulls afterwards are indexed at once again.
    let late = draft_note(w.case1, StaffId(writer.staff), "Sent besøg hos Kirstine");
    writer.store.write(|wr| wr.save_note(&late)).unwrap();
    writer.sync(&rt);
    other.sync(&rt);
    assert_eq!(other.store.search_backlog().unwrap(), 0);
    let indexed: i64 = other
        .store
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM notes_fts WHERE notes_fts MATCH 'kirstine'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexed, 1);
}
backends!(a_large_first_sync_is_searched_completely);

/// The pull stream answers, line by line, exactly the pages the paged pull answers for the
/// cursors each page leaves; it stops after 50 pages and the device asks again; refusals
/// before the first page are ordinary problem answers.
fn the_pull_stream_is_the_paged_pull(kind: Kind) {
    use feltkontor_wire::sync::{advance_cursors, PullRequest, PullResponse};
    let db = Db::migrated(kind);
    let w: World = world::build(&db);
    let server = Server::start(
        &db,
        &["--device-rate", "100000", "--account-rate", "100000"],
    );
    let rt = rt();
    let mut coord = device(&server, &db, "coord");
    coord.sync(&rt);
    // Enough records for more than 50 pages of one record.
    let people: Vec<Person> = (0..60)
        .map(|i| new_person(w.case1, &format!("Person {i}")))
        .collect();
    coord
        .store
        .write(|wr| people.iter().try_for_each(|p| wr.put_person(p)))
        .unwrap();
    coord.sync(&rt);

    let stream = |token: &str, body: &Value| {
        server
            .client()
            .http
            .post(format!("{}/v1/sync/pull/stream", server.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .unwrap()
    };
    let r = stream(&coord.token, &json!({ "cursors": {}, "limit": 1 }));
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().unwrap();
    assert!(text.ends_with('\n'));
    let streamed: Vec<PullResponse> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(streamed.len(), 50, "the stream stops after 50 pages");
    assert!(streamed.last().unwrap().more);
    let mut cursors = BTreeMap::new();
    for (i, page) in streamed.iter().enumerate() {
        let paged = rt
            .block_on(coord.remote.pull(&PullRequest {
                cursors: cursors.clone(),
                limit: 1,
            }))
            .unwrap();
        assert_eq!(page, &paged, "page {i}");
        advance_cursors(&mut cursors, page);
    }

    // A device pulling one record a page: the first stream ends after 50 pages with more to
    // come, and the device asks again from its cursors until it holds everything.
    let mut fresh = device(&server, &db, "coord");
    fresh.remote = feltkontor_sync::Remote::new(&server.base, &fresh.token)
        .unwrap()
        .with_page_size(1);
    let report = fresh.sync(&rt);
    assert!(report.pulled_records > 60, "{report:?}");
    for p in &people {
        let held = fresh.store.get::<Person>(p.id.0).unwrap();
        assert_eq!(held.map(|h| h.name), Some(p.name.clone()));
    }
    assert_eq!(
        fresh.store.sync_cursors().unwrap(),
        coord.store.sync_cursors().unwrap()
    );

    // Refused before the first page: problem details, as on every other endpoint.
    let r = stream("not-a-token", &json!({ "cursors": {}, "limit": 1 }));
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = stream(&coord.token, &json!({ "cursors": "nej" }));
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}
backends!(the_pull_stream_is_the_paged_pull);

/// Token refresh is single-flight: the background round, a quarantine decision and a retire
/// that find the same access token spent share one refresh. Without that, two refreshes spend
/// the same refresh token and the service revokes the device (shown first, with the plain
/// client), and the worker must enroll again.
fn concurrent_callers_share_one_refresh(kind: Kind) {
    let db = Db::migrated(kind);
    world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();

    // The hazard: two refreshes with one refresh token.
    let naive = device(&server, &db, "coord");
    let refresh = naive.store.sync_account().unwrap().unwrap().refresh_token;
    let (a, b) = rt.block_on(async {
        tokio::join!(
            naive.remote.refresh(&refresh),
            naive.remote.refresh(&refresh)
        )
    });
    // Either one is refused (that caller fails), or both are answered (the service's retry of
    // a lost answer) and only one successor is live: keeping the other costs the session.
    if let (Ok(a), Ok(b)) = (a, b) {
        let first = rt.block_on(naive.remote.refresh(&a.refresh_token));
        let second = rt.block_on(naive.remote.refresh(&b.refresh_token));
        assert!(
            first.is_err() || second.is_err(),
            "two answers to one refresh token cannot both stay usable"
        );
    }

    // The app's way: eight callers with the same spent token, one refresh.
    let Device {
        store, token, _dir, ..
    } = device(&server, &db, "coord");
    let store = Arc::new(std::sync::Mutex::new(Some(store)));
    let creds = Arc::new(feltkontor_sync::Credentials::default());
    let first = creds.set(token.clone());
    let tokens: Vec<feltkontor_sync::AccessToken> = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (store, creds, base, spent) = (
                store.clone(),
                creds.clone(),
                server.base.clone(),
                first.clone(),
            );
            set.spawn(async move { creds.renew(&base, &*store, Some(&spent)).await });
        }
        let mut out = Vec::new();
        while let Some(r) = set.join_next().await {
            out.push(r.unwrap().expect("every caller gets a token"));
        }
        out
    });
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "one refresh, shared"
    );
    assert_eq!(
        tokens[0].generation,
        first.generation + 1,
        "exactly one refresh"
    );
    // The device keeps its session: the stored refresh token is the live one.
    let again = rt
        .block_on(creds.renew(&server.base, &*store, Some(&tokens[0])))
        .expect("the next refresh works");
    assert_eq!(again.generation, tokens[0].generation + 1);
    let mut guard = store.lock().unwrap();
    let remote = feltkontor_sync::Remote::new(&server.base, &again.value).unwrap();
    rt.block_on(sync_once(&remote, guard.as_mut().unwrap()))
        .expect("and the device syncs");
}
backends!(concurrent_callers_share_one_refresh);

/// "Nyt siden sidst": a case a colleague changed since the worker last opened it is marked in
/// the case list until the worker opens it; a first sync marks nothing (the device held none
/// of it before), nor does the worker's own change.
fn a_colleagues_change_is_new_since_last_open(kind: Kind) {
    let db = Db::migrated(kind);
    let w: World = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let mut coord = device(&server, &db, "coord");
    let mut colleague = device(&server, &db, "teamcw");
    coord.sync(&rt);
    colleague.sync(&rt);
    let new_in = |d: &Device| -> bool {
        d.store
            .my_cases(&Default::default())
            .unwrap()
            .iter()
            .find(|c| c.case_id.0 == w.case1)
            .expect("case1 is listed")
            .new_since_last_open
    };
    assert!(!new_in(&coord), "a first sync marks nothing");

    let mut father = coord.store.get::<Person>(w.father).unwrap().unwrap();
    father.language = Some("dansk".into());
    coord.store.write(|wr| wr.put_person(&father)).unwrap();
    coord.sync(&rt);
    assert!(!new_in(&coord), "the worker's own change is not news");

    let mut father = colleague.store.get::<Person>(w.father).unwrap().unwrap();
    father.interpreter_needed = true;
    father.language = Some("arabisk".into());
    colleague.store.write(|wr| wr.put_person(&father)).unwrap();
    colleague.sync(&rt);
    coord.sync(&rt);
    assert!(
        new_in(&coord),
        "the colleague's change is new to the coordinator"
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    coord.store.case_overview(CaseId(w.case1)).unwrap();
    assert!(!new_in(&coord), "opening the case clears it");
}
backends!(a_colleagues_change_is_new_since_last_open);

/// The device flows the desktop shell runs, headless against the real service: connect
/// (a weak passphrase is refused before the one-time code is spent; a second store is
/// refused), renew a lapsed lease (the password goes only to the address sealed in the key
/// file, never to one planted in the unencrypted lease file; a wrong passphrase sends nothing),
/// and retire (unsent changes stop it unless forced; a retired device is refused).
fn the_device_flows_run_headless(kind: Kind) {
    use feltkontor_core::{Error, ManualClock, StoreLocation};
    use feltkontor_sync::device::{self, Enrollment, Retire};
    use feltkontor_sync::Remote;
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &["--lease-hours", "48"]);
    // A multi-threaded runtime, as the app's (store work is handed to blocking threads).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let loc = StoreLocation::new(dir.path().join("profile"));
    let clock = Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()));
    let code = db
        .admin(&["enrollment-code", "--username", "coord"], None)
        .success()
        .stdout
        .trim()
        .to_owned();
    let enrollment = |passphrase: &str| Enrollment {
        server_url: device::service_url(&format!("{}/", server.base)).unwrap(),
        code: code.clone(),
        username: " coord ".into(),
        password: common::PASSWORD.into(),
        passphrase: passphrase.into(),
        device_name: "laptop-17 (coord)".into(),
    };
    let kdf = feltkontor_core::store::KdfParams::default();
    let weak = rt
        .block_on(device::enroll(
            &loc,
            enrollment("aaaaaaaaaaaa"),
            kdf,
            clock.clone(),
        ))
        .err()
        .expect("a weak passphrase is refused");
    assert!(
        matches!(
            weak,
            feltkontor_sync::SyncError::Store(Error::WeakPassphrase { .. })
        ),
        "{weak}"
    );
    assert!(!loc.exists(), "nothing is created");
    const PASSPHRASE: &str = "en lang nok adgangssaetning";
    // The same code still works: the weak passphrase did not spend it.
    let enrolled = rt
        .block_on(device::enroll(
            &loc,
            enrollment(PASSPHRASE),
            kdf,
            clock.clone(),
        ))
        .unwrap();
    let mut store = enrolled.store;
    let mut remote = Remote::new(&server.base, &enrolled.access_token).unwrap();
    rt.block_on(sync_once(&remote, &mut store)).unwrap();
    assert!(
        store.get::<Case>(w.case1).unwrap().is_some(),
        "the new store syncs"
    );
    let device_id = store.device_id();
    let named = db
        .owner()
        .query(
            "SELECT name FROM devices WHERE id = $1",
            feltkontor_central::params![device_id.0],
        )
        .unwrap()[0]
        .text(0)
        .unwrap();
    assert_eq!(named, "laptop-17 (coord)");
    let again = rt
        .block_on(device::enroll(
            &loc,
            enrollment(PASSPHRASE),
            kdf,
            clock.clone(),
        ))
        .err()
        .expect("a second store in the same place is refused");
    assert!(
        matches!(
            again,
            feltkontor_sync::SyncError::Store(Error::StoreExists(_))
        ),
        "{again}"
    );

    // The lease lapses while the laptop is away.
    store.lock();
    clock.advance(time::Duration::hours(49));
    assert!(matches!(
        Store::open(&loc, PASSPHRASE, clock.clone()),
        Err(Error::LeaseExpired)
    ));
    // Back at the real time (the service's lease runs from its own clock).
    clock.set(time::OffsetDateTime::now_utc());
    // Someone holding the laptop plants their own address in the lease file.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let planted = format!("http://{}", trap.local_addr().unwrap());
    let mut file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(loc.lease_file()).unwrap()).unwrap();
    file["server_url"] = serde_json::Value::String(planted.clone());
    std::fs::write(loc.lease_file(), file.to_string()).unwrap();
    let attempts = || {
        db.owner()
            .query(
                "SELECT count(*) FROM audit_log WHERE action = 'lease_recover'",
                feltkontor_central::params![],
            )
            .unwrap()[0]
            .int(0)
            .unwrap()
    };
    let before = attempts();
    // A wrong passphrase opens nothing and sends nothing.
    let wrong = rt.block_on(device::renew_lease(
        &loc,
        "coord",
        common::PASSWORD,
        "forkert adgangssaetning her",
        Some(planted.clone()),
        clock.clone(),
    ));
    assert!(wrong.is_err());
    assert_eq!(attempts(), before, "no password was sent");
    rt.block_on(device::renew_lease(
        &loc,
        "coord",
        common::PASSWORD,
        PASSPHRASE,
        Some(planted.clone()),
        clock.clone(),
    ))
    .unwrap();
    assert!(
        trap.accept().is_err(),
        "the planted address was never contacted"
    );
    assert_eq!(attempts(), before + 1, "the sealed address got the renewal");
    let mut store = Store::open(&loc, PASSPHRASE, clock.clone()).unwrap();

    // Retire with a change the service has not got, while the service is out of reach.
    let p = new_person(w.case1, "Skrevet lige før afleveringen");
    store.write(|wr| wr.put_person(&p)).unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("http://{a}")
    };
    let slot = std::sync::Mutex::new(Some(store));
    let offline = Remote::new(&closed, "x").unwrap();
    let unsent = rt.block_on(device::retire(&offline, &slot, false)).unwrap();
    assert!(
        matches!(unsent, Retire::Unsent { changes: 1, .. }),
        "nothing retired with a change unsent: {unsent:?}"
    );
    // Back on the network (a fresh token, as the app's call would get).
    let account = slot
        .lock()
        .unwrap()
        .as_ref()
        .unwrap()
        .sync_account()
        .unwrap()
        .unwrap();
    let tokens = rt
        .block_on(
            Remote::new(&server.base, "")
                .unwrap()
                .refresh(&account.refresh_token),
        )
        .unwrap();
    slot.lock()
        .unwrap()
        .as_ref()
        .unwrap()
        .set_refresh_token(&tokens.refresh_token)
        .unwrap();
    remote.set_token(&tokens.access_token);
    assert_eq!(
        rt.block_on(device::retire(&remote, &slot, false)).unwrap(),
        Retire::Retired
    );
    let refused = rt
        .block_on(
            Remote::new(&server.base, "")
                .unwrap()
                .refresh(&tokens.refresh_token),
        )
        .unwrap_err();
    assert!(
        refused.must_wipe(),
        "a retired device gets no tokens: {refused}"
    );
    let mut other = device(&server, &db, "coord");
    other.sync(&rt);
    assert!(
        other.store.get::<Person>(p.id.0).unwrap().is_some(),
        "the last change arrived"
    );
}
backends!(the_device_flows_run_headless);

/// Each bucket's head is at or after its newest record and counts exactly its records, and
/// `scope_index` is exactly the scope the three projections give.
fn assert_summaries_agree(db: &Db, when: &str) {
    let mut c = db.owner();
    let rows = |c: &mut Box<dyn feltkontor_central::db::Conn>, sql: &str| -> Vec<Vec<String>> {
        c.query(sql, feltkontor_central::params![])
            .unwrap()
            .iter()
            .map(|r| {
                r.0.iter()
                    .map(|v| match v {
                        feltkontor_central::db::Value::Int(i) => i.to_string(),
                        feltkontor_central::db::Value::Text(t) => t.clone(),
                        _ => String::new(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let counted = rows(
        &mut c,
        "SELECT COALESCE(case_id, ''), MAX(seq), COUNT(*) FROM records GROUP BY COALESCE(case_id, '') ORDER BY 1",
    );
    let heads = rows(
        &mut c,
        "SELECT bucket, seq, records FROM bucket_heads WHERE records > 0 ORDER BY bucket",
    );
    assert_eq!(
        counted.len(),
        heads.len(),
        "{when}: a head per bucket with records"
    );
    for (have, want) in heads.iter().zip(&counted) {
        assert_eq!(have[0], want[0], "{when}");
        assert_eq!(have[2], want[2], "{when}: {} counts its records", have[0]);
        let seq = |s: &str| s.parse::<i64>().unwrap();
        assert!(
            seq(&have[1]) >= seq(&want[1]),
            "{when}: {} head {} behind {}",
            have[0],
            have[1],
            want[1]
        );
    }
    let scope = rows(
        &mut c,
        "SELECT staff_id, case_id FROM scope_index ORDER BY 1, 2",
    );
    let want = rows(
        &mut c,
        "SELECT staff_id, case_id FROM (
            SELECT m.staff_id, ci.case_id FROM case_index ci JOIN members_index m ON m.team_id = ci.team_id
            UNION SELECT p.staff_id, p.case_id FROM participant_index p JOIN case_index ci ON ci.case_id = p.case_id
            UNION SELECT ci.coordinator_id, ci.case_id FROM case_index ci) s ORDER BY 1, 2",
    );
    assert_eq!(scope, want, "{when}: scope rows");
    assert!(!scope.is_empty());
}

/// What the pull's plan reads instead of the records agrees with them, on both engines, after
/// pushes (new records, changes, a deletion), a membership removed and added back, a
/// participant added and removed, and a purge: each bucket's head is at or after its newest
/// record and counts exactly its records, and `scope_index` is exactly the scope the three
/// projections give (a member of the case's team, a participant, or the coordinator).
fn bucket_heads_and_scope_rows_agree_with_what_they_summarise(kind: Kind) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    assert_summaries_agree(&db, "after the world was built");

    let mut coord = device(&server, &db, "coord");
    coord.sync(&rt);
    let me = StaffId(coord.staff);
    let ppr = Participant {
        id: RowId::new(),
        case_id: CaseId(w.case1),
        staff_id: StaffId(w.staff["outsider"]),
        role: "Rådgiver fra Viby".into(),
        legal_basis: None,
    };
    let person = new_person(w.case1, "Moster Mette");
    coord
        .store
        .write(|wr| {
            for i in 0..5 {
                wr.save_note(&draft_note(w.case1, me, &format!("Note {i}")))?;
            }
            wr.put_person(&person)?;
            wr.add_participant(&ppr)?;
            Ok(())
        })
        .unwrap();
    coord.sync(&rt);
    assert_summaries_agree(&db, "after a push");
    coord
        .store
        .write(|wr| {
            wr.remove_participant(ppr.id)?;
            wr.archive_person(person.id)?;
            Ok(())
        })
        .unwrap();
    coord.sync(&rt);
    assert_summaries_agree(&db, "after a participant left and a person was deleted");
    for args in [
        [
            "remove-member",
            "--username",
            "teamcw",
            "--team",
            "Team Gellerup",
        ],
        [
            "add-member",
            "--username",
            "teamcw",
            "--team",
            "Team Gellerup",
        ],
        [
            "remove-member",
            "--username",
            "psyteam",
            "--team",
            "Team Gellerup",
        ],
    ] {
        db.admin(&args, None).success();
        assert_summaries_agree(&db, &format!("after {}", args.join(" ")));
    }
    db.admin(&["purge-tombstones", "--older-than-days", "0"], None)
        .success();
    assert_summaries_agree(&db, "after a purge");
    coord.sync(&rt);
    assert_converged(&rt, &coord, "after all of it");
}
backends!(bucket_heads_and_scope_rows_agree_with_what_they_summarise);

/// A municipality loaded in bulk (`feltkontor_central::bulk`, the scale benchmark's seed)
/// syncs like one pushed record by record: the worker's new device receives exactly what the
/// service says they may see, signed notes verify, and the summaries agree.
fn a_bulk_loaded_municipality_syncs_like_a_pushed_one(kind: Kind) {
    use feltkontor_demo::{generate_records, DemoSize, DemoStaff, Municipality};
    let db = Db::migrated(kind);
    let people = DemoStaff::sized(
        3,
        &Municipality {
            staff: 24,
            teams: 3,
            districts: 2,
        },
    );
    let size = DemoSize {
        cases: 30,
        notes_per_case: 6,
        persons_per_case: 4,
        long_case_notes: 0,
    };
    let mut conn = db.owner();
    let mut loader =
        feltkontor_central::bulk::Loader::new(conn.as_mut(), feltkontor_central::now_ms()).unwrap();
    let mut failed = None;
    let summary = generate_records(
        &people,
        &size,
        3,
        time::OffsetDateTime::now_utc(),
        14,
        |kind, id, data| {
            if let Err(e) = loader.add(conn.as_mut(), kind, id, data) {
                failed.get_or_insert(e);
            }
        },
    )
    .unwrap();
    assert!(failed.is_none(), "{failed:?}");
    let loaded = loader.finish(conn.as_mut()).unwrap();
    assert!(loaded > 30 * 6, "{loaded}");
    assert_eq!(summary.cases, 30);
    feltkontor_central::admin::create_account(
        conn.as_mut(),
        people.worker(),
        "worker",
        common::PASSWORD,
        "w@demo.aarhus.dk",
    )
    .unwrap();
    drop(conn);
    assert_summaries_agree(&db, "after the bulk load");
    let server = Server::start(&db, &[]);
    let rt = rt();
    let mut worker = device(&server, &db, "worker");
    let report = worker.sync(&rt);
    assert!(report.pulled_records > 100, "{report:?}");
    // Ten cases of the worker's team and four more they take part in.
    assert_eq!(count(&worker.store, "SELECT COUNT(*) FROM cases"), 14);
    assert_converged(&rt, &worker, "after a first sync of bulk-loaded data");
    let audit = db.admin(&["audit-verify"], None).success();
    assert!(!audit.stdout.is_empty());
}
backends!(a_bulk_loaded_municipality_syncs_like_a_pushed_one);

/// Live updates reach every instance and only those concerned, on both engines (on
/// PostgreSQL across two instances by `NOTIFY`; on SQLite the one instance): a teammate waiting
/// at instance B hears within a second the push a colleague made at instance A; a worker of
/// another team keeps waiting until the hold time ends and gets their own generation back;
/// added to the case as a participant, that worker is woken too (their scope widened).
fn live_updates_reach_every_instance_and_only_those_concerned(kind: Kind) {
    use std::time::{Duration, Instant};
    let db = Db::migrated(kind);
    let w = world::build(&db);
    // A request timeout of 8 s holds a wait for 3 s.
    let a = Server::start(&db, &["--request-timeout", "8"]);
    // One SQLite file has one instance: there both ends talk to A.
    let b = (kind == Kind::Postgres).then(|| Server::start(&db, &["--request-timeout", "8"]));
    let at_b = b.as_ref().unwrap_or(&a);
    let rt = rt();
    let mut coord = device(at_b, &db, "coord");
    let mut outsider = device(at_b, &db, "outsider");
    let mut colleague = device(&a, &db, "teamcw");
    coord.sync(&rt);
    outsider.sync(&rt);
    colleague.sync(&rt);
    let g_coord = rt.block_on(coord.remote.wait(0)).unwrap();
    let g_out = rt.block_on(outsider.remote.wait(0)).unwrap();

    let p = new_person(w.case1, "Ny kontakt");
    colleague.store.write(|wr| wr.put_person(&p)).unwrap();
    let started = Instant::now();
    let (heard, not_heard, _) = rt.block_on(async {
        tokio::join!(
            async {
                let g = coord.remote.wait(g_coord).await;
                (g, started.elapsed())
            },
            async {
                let g = outsider.remote.wait(g_out).await;
                (g, started.elapsed())
            },
            async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                sync_once(&colleague.remote, &mut colleague.store)
                    .await
                    .unwrap()
            }
        )
    });
    let (g, took) = heard;
    assert_ne!(g.unwrap(), g_coord, "the teammate is told to pull");
    assert!(took < Duration::from_millis(1_500), "heard after {took:?}");
    let (g, took) = not_heard;
    assert_eq!(g.unwrap(), g_out, "the other team's worker is not woken");
    assert!(took >= Duration::from_secs(2), "answered after {took:?}");
    coord.sync(&rt);
    assert!(coord.store.get::<Person>(p.id.0).unwrap().is_some());

    // The coordinator adds the outsider to the case: their scope widens, they are woken.
    let joined = Participant {
        id: RowId::new(),
        case_id: CaseId(w.case1),
        staff_id: StaffId(outsider.staff),
        role: "Rådgiver".into(),
        legal_basis: None,
    };
    coord.store.write(|wr| wr.add_participant(&joined)).unwrap();
    let (g, took) = waited_while_syncing(&rt, &outsider, g_out, &mut coord);
    assert_ne!(g, g_out, "the new participant is told to pull");
    assert!(took < Duration::from_millis(1_500), "heard after {took:?}");
    outsider.sync(&rt);
    assert!(outsider.store.get::<Case>(w.case1).unwrap().is_some());

    // Their wider scope holds for their next waits (each instance keeps a worker's live scope
    // while their scope version stands): a colleague's change in the case wakes them.
    let g_out = rt.block_on(outsider.remote.wait(0)).unwrap();
    let p = new_person(w.case1, "Endnu en kontakt");
    colleague.store.write(|wr| wr.put_person(&p)).unwrap();
    let (g, took) = waited_while_syncing(&rt, &outsider, g_out, &mut colleague);
    assert_ne!(g, g_out, "the new participant hears of the case");
    assert!(took < Duration::from_millis(1_500), "heard after {took:?}");
}
backends!(live_updates_reach_every_instance_and_only_those_concerned);

/// `waiter` waits from generation `since` while `syncing` syncs 300 ms later: the generation
/// answered, and after how long.
fn waited_while_syncing(
    rt: &tokio::runtime::Runtime,
    waiter: &Device,
    since: u64,
    syncing: &mut Device,
) -> (u64, std::time::Duration) {
    let started = std::time::Instant::now();
    let (heard, _) = rt.block_on(async {
        tokio::join!(
            async {
                let g = waiter.remote.wait(since).await;
                (g, started.elapsed())
            },
            async {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                sync_once(&syncing.remote, &mut syncing.store)
                    .await
                    .unwrap()
            }
        )
    });
    (heard.0.unwrap(), heard.1)
}

/// Migration 0013 on a database with history: every bucket's head continues from the old
/// service-wide counter, at or above every number ever given — a purged record's included, on
/// which a device's cursor may stand — and a bucket whose records were all purged gets a head
/// too; so the next write in a case always lands after every device's cursor. The scope
/// versions of 0014 start for everyone who has a scope.
fn bucket_heads_continue_past_every_number_ever_given(kind: Kind) {
    use feltkontor_central::migrate;
    let db = Db::new(kind);
    let mut c = db.owner();
    migrate::run_to(c.as_mut(), 12).unwrap();
    let (c1, c2) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    let staff = Uuid::now_v7().to_string();
    c.batch(&format!(
        "INSERT INTO records (entity, id, case_id, data, field_hlc, archived, seq)
           VALUES ('note', 'n1', '{c1}', '{{}}', '{{}}', 0, 500);
         INSERT INTO records (entity, id, case_id, data, field_hlc, archived, seq)
           VALUES ('staff', '{staff}', NULL, '{{}}', '{{}}', 0, 3);
         UPDATE counters SET value = 900 WHERE name = 'records';
         INSERT INTO case_horizon (case_id, seq) VALUES ('{c1}', 900), ('{c2}', 700);
         INSERT INTO case_index (case_id, team_id, coordinator_id, status) VALUES ('{c1}', 't', '{staff}', 'open');"
    ))
    .unwrap();
    migrate::run(c.as_mut()).unwrap();
    let heads: Vec<(String, i64, i64)> = c
        .query(
            "SELECT bucket, seq, records FROM bucket_heads ORDER BY bucket",
            feltkontor_central::params![],
        )
        .unwrap()
        .iter()
        .map(|r| (r.text(0).unwrap(), r.int(1).unwrap(), r.int(2).unwrap()))
        .collect();
    let mut want = vec![
        (String::new(), 900, 1),
        (c1.clone(), 900, 1),
        (c2.clone(), 900, 0),
    ];
    want.sort();
    assert_eq!(heads, want);
    let version = c
        .query_one(
            "SELECT n FROM scope_versions WHERE staff_id = $1",
            feltkontor_central::params![staff.as_str()],
        )
        .unwrap()
        .map(|r| r.int(0).unwrap());
    assert_eq!(version, Some(1), "the coordinator's scope has a version");
}
backends!(bucket_heads_continue_past_every_number_ever_given);
