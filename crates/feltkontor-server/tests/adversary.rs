//! An insider with an enrolled device and a modified client, against the real server binary on
//! SQLite and on PostgreSQL: forged clocks, changed authors, privileged fields, invented case
//! ids, oversize and malformed records. The service must hold every rule itself, and leak
//! nothing through conflicts, the quarantine or the audit log.

mod common;

use common::devices::{self, rt};
use common::insider::{audit_count, now_ms, rejected_codes, stored, Insider};
use common::world::{self, World, CHILD_WORDS, DRAFT_NOTE, OWN_NOTE, PROTECTED_ADDRESS, TEAM_NOTE};
use common::{Db, Kind, Server};
use feltkontor_core::domain::*;
use feltkontor_wire::MAX_HLC_COUNTER;
use feltkontor_wire::*;
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// A record's fields as a change sends them (without its id).
fn fields_of<T: serde::Serialize>(record: &T) -> Value {
    let mut v = serde_json::to_value(record).unwrap();
    v.as_object_mut().unwrap().remove("id");
    v
}

fn base_of_old_write(device: Uuid) -> Option<Hlc> {
    // A clock from long ago: the service holds a newer one, so the write counts as concurrent.
    Some(Hlc {
        wall_ms: 1,
        counter: 0,
        device: DeviceId(device),
    })
}

/// A device of `username`, who pulls their team's cases and is then removed from the team (as
/// if while offline): they once had the cases in sight and no longer have them.
fn removed_after_pulling(server: &Server, db: &Db, username: &str) -> Insider {
    let device = Insider::enroll(server, db, username);
    device.pull_everything();
    db.admin(
        &[
            "remove-member",
            "--username",
            username,
            "--team",
            "Team Gellerup",
        ],
        None,
    )
    .success();
    device
}

fn setup(kind: Kind) -> (Db, World, Server) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    (db, w, server)
}

/// A conflict reaches exactly those who may see the field it is about: a protected address's
/// conflict only the case's participants, a draft's conflict only its author; and a teammate
/// cannot make the service show a withheld value by pushing a write with an invented base.
fn conflicts_leak_nothing_withheld(kind: Kind) {
    let (db, w, server) = setup(kind);
    let mut coord = Insider::enroll(&server, &db, "coord");
    let mut teamcw = Insider::enroll(&server, &db, "teamcw");
    let psy = Insider::enroll(&server, &db, "psy");

    // The coordinator's write of the protected address and of their own draft, each concurrent
    // with what the service holds: two conflicts, holding the old values.
    let base = base_of_old_write(coord.device);
    let e1 = coord.change(
        EntityKind::Person,
        w.mother,
        json!({"address": "Nyvej 1, 8000 Aarhus C"}),
        base,
    );
    let e2 = coord.change(
        EntityKind::Note,
        w.note_draft,
        json!({"body": "Ny kladdetekst ECHO-sentinel"}),
        base,
    );
    let r = coord.push(&[e1, e2]);
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(rejected_codes(&r.body).is_empty(), "{:?}", r.body);
    let conflicts = coord.pulled("conflict");
    assert_eq!(conflicts.len(), 2, "the coordinator sees both conflicts");

    // A team member who is no participant sees neither, nor any withheld value.
    let (_, text) = teamcw.pull_everything();
    for secret in [PROTECTED_ADDRESS, DRAFT_NOTE, "ECHO-sentinel", "Nyvej 1"] {
        assert!(!text.contains(secret), "a teammate received {secret:?}");
    }
    assert!(teamcw.pulled("conflict").is_empty());
    // A participant (the PPR psychologist, under the PPR consent) sees the address conflict,
    // not the draft's.
    let psy_conflicts = psy.pulled("conflict");
    assert_eq!(psy_conflicts.len(), 1, "{psy_conflicts:?}");
    let (_, psy_text) = psy.pull_everything();
    assert!(psy_text.contains(PROTECTED_ADDRESS));
    assert!(!psy_text.contains("ECHO-sentinel"));

    // On demand: the teammate writes the address they cannot see with an invented base. It is
    // refused, and nothing they receive holds the address.
    let attack = teamcw.change(
        EntityKind::Person,
        w.mother,
        json!({"address": "x"}),
        base_of_old_write(teamcw.device),
    );
    let r = teamcw.push(&[attack]);
    assert_eq!(rejected_codes(&r.body), ["forbidden"], "{:?}", r.body);
    let (_, text) = teamcw.pull_everything();
    assert!(!text.contains("Nyvej 1") && !text.contains(PROTECTED_ADDRESS));
    // A teammate's invented conflict on the coordinator's draft is refused too.
    let attack = teamcw.change(
        EntityKind::Note,
        w.note_draft,
        json!({"body": "y"}),
        base_of_old_write(teamcw.device),
    );
    let r = teamcw.push(&[attack]);
    assert_eq!(rejected_codes(&r.body), ["forbidden"], "{:?}", r.body);
    assert_eq!(coord.pulled("conflict").len(), 2, "no conflict was added");
}
backends!(conflicts_leak_nothing_withheld);

/// A note's author is the worker who created it, for good: a later push cannot change it, and
/// nobody but the author changes or signs a draft.
fn notes_cannot_be_forged_in_a_colleagues_name(kind: Kind) {
    let (db, w, server) = setup(kind);
    let mut teamcw = Insider::enroll(&server, &db, "teamcw");
    let coord_id = StaffId(w.staff["coord"]);
    let mine = devices::draft_note(w.case1, StaffId(teamcw.staff), "Min egen kladde");
    let answer = teamcw.push_one(EntityKind::Note, mine.id.0, fields_of(&mine));
    assert!(rejected_codes(&answer).is_empty(), "{answer:?}");

    // The author changed to the coordinator and the note signed, in one change, with the hash
    // of the forged content.
    let mut forged = mine.clone();
    forged.author_id = coord_id;
    forged.status = NoteStatus::Signed;
    forged.signed_at = Some(time::OffsetDateTime::now_utc());
    forged.signed_at = forged.signed_at.map(normalize_timestamp);
    forged.content_hash = Some(rules::content_hash(&forged));
    let f = fields_of(&forged);
    let answer = teamcw.push_one(
        EntityKind::Note,
        mine.id.0,
        json!({"author_id": f["author_id"], "status": f["status"], "signed_at": f["signed_at"], "content_hash": f["content_hash"]}),
    );
    assert_eq!(rejected_codes(&answer), ["forbidden"], "{answer:?}");
    // The author alone, in a change of its own.
    let answer = teamcw.push_one(
        EntityKind::Note,
        mine.id.0,
        json!({"author_id": coord_id.to_string()}),
    );
    assert_eq!(rejected_codes(&answer), ["forbidden"], "{answer:?}");
    let (data, _) = stored(&db, "note", mine.id.0).unwrap();
    assert_eq!(data["author_id"], teamcw.staff.to_string());
    assert_eq!(data["status"], "draft");

    // A new note in a colleague's name; a colleague's draft changed; a colleague's draft signed.
    let theirs = devices::draft_note(w.case1, coord_id, "I koordinatorens navn");
    let answer = teamcw.push_one(EntityKind::Note, theirs.id.0, fields_of(&theirs));
    assert_eq!(rejected_codes(&answer), ["forbidden"]);
    let answer = teamcw.push_one(
        EntityKind::Note,
        w.note_draft,
        json!({"body": "ændret af en kollega"}),
    );
    assert_eq!(rejected_codes(&answer), ["forbidden"]);
    let answer = teamcw.push_one(EntityKind::Note, w.note_draft, json!({"status": "signed"}));
    assert_eq!(rejected_codes(&answer), ["forbidden"]);
    let (data, _) = stored(&db, "note", w.note_draft).unwrap();
    assert_eq!(data["body"], DRAFT_NOTE);
    assert_eq!(data["status"], "draft");

    // The author signs with a hash that does not match the content: refused as a signed note
    // changed (a security event).
    let mut bad = mine.clone();
    bad.status = NoteStatus::Signed;
    bad.signed_at = Some(normalize_timestamp(time::OffsetDateTime::now_utc()));
    bad.content_hash = Some("0".repeat(64));
    let b = fields_of(&bad);
    let answer = teamcw.push_one(
        EntityKind::Note,
        mine.id.0,
        json!({"status": b["status"], "signed_at": b["signed_at"], "content_hash": b["content_hash"]}),
    );
    assert_eq!(
        rejected_codes(&answer),
        ["signed_note_changed"],
        "{answer:?}"
    );
    // And signs properly: accepted.
    let mut good = mine.clone();
    good.status = NoteStatus::Signed;
    good.signed_at = Some(normalize_timestamp(time::OffsetDateTime::now_utc()));
    good.content_hash = Some(rules::content_hash(&good));
    let g = fields_of(&good);
    let answer = teamcw.push_one(
        EntityKind::Note,
        mine.id.0,
        json!({"status": g["status"], "signed_at": g["signed_at"], "content_hash": g["content_hash"]}),
    );
    assert!(rejected_codes(&answer).is_empty(), "{answer:?}");
}
backends!(notes_cannot_be_forged_in_a_colleagues_name);

/// The protected flag, the participants and the coordinator are privileged: a teammate cannot
/// grant themselves the protected address by any of them. The coordinator's handover works
/// and is audited as a privileged change.
fn a_teammate_cannot_grant_themselves_a_protected_address(kind: Kind) {
    let (db, w, server) = setup(kind);
    let mut teamcw = Insider::enroll(&server, &db, "teamcw");
    let me = teamcw.staff.to_string();
    let coord = w.staff["coord"].to_string();

    let unprotect = teamcw.push_one(
        EntityKind::Person,
        w.mother,
        json!({"protected_address": false}),
    );
    let participant = Participant {
        id: RowId::new(),
        case_id: CaseId(w.case1),
        staff_id: StaffId(teamcw.staff),
        role: "deltager".into(),
        legal_basis: None,
    };
    let join = teamcw.push_one(
        EntityKind::Participant,
        participant.id.0,
        fields_of(&participant),
    );
    let takeover = teamcw.push_one(EntityKind::Case, w.case1, json!({"coordinator_id": me}));
    let handover = Handover {
        id: RowId::new(),
        case_id: CaseId(w.case1),
        from_staff_id: StaffId(w.staff["coord"]),
        to_staff_id: StaffId(teamcw.staff),
        note: "Jeg overtager".into(),
        at: normalize_timestamp(time::OffsetDateTime::now_utc()),
    };
    let forged_handover =
        teamcw.push_one(EntityKind::Handover, handover.id.0, fields_of(&handover));
    let takeover2 = teamcw.push_one(EntityKind::Case, w.case1, json!({"coordinator_id": me}));
    for (what, answer) in [
        ("unprotect", &unprotect),
        ("join", &join),
        ("takeover", &takeover),
        ("handover", &forged_handover),
        ("takeover after handover", &takeover2),
    ] {
        assert_eq!(rejected_codes(answer), ["forbidden"], "{what}: {answer:?}");
    }
    let (mother, _) = stored(&db, "person", w.mother).unwrap();
    assert_eq!(mother["protected_address"], true);
    let (case, _) = stored(&db, "case", w.case1).unwrap();
    assert_eq!(case["coordinator_id"], coord);
    let (_, text) = teamcw.pull_everything();
    assert!(!text.contains(PROTECTED_ADDRESS));

    // The coordinator hands over properly: a handover, then the case. Applied, and audited.
    let mut c = Insider::enroll(&server, &db, "coord");
    let real = Handover {
        id: RowId::new(),
        note: "Tove overtager; mor er orienteret".into(),
        ..handover
    };
    let h = c.change(EntityKind::Handover, real.id.0, fields_of(&real), None);
    let k = c.change(
        EntityKind::Case,
        w.case1,
        json!({"coordinator_id": me}),
        None,
    );
    let r = c.push(&[h, k]);
    assert!(rejected_codes(&r.body).is_empty(), "{:?}", r.body);
    assert_eq!(
        stored(&db, "case", w.case1).unwrap().0["coordinator_id"],
        me
    );
    assert!(
        audit_count(
            &db,
            "action = 'privileged_change' AND case_id = $1",
            &w.case1.to_string()
        ) >= 2
    );
    // As coordinator, the new one may now see the address.
    let (_, text) = teamcw.pull_everything();
    assert!(text.contains(PROTECTED_ADDRESS));
}
backends!(a_teammate_cannot_grant_themselves_a_protected_address);

/// Deleting a case is for its coordinator or a leader on its team; a case's id is never taken
/// over by another team, before or after the case is deleted (and never with a 500).
fn a_case_id_is_never_claimed_by_another_team(kind: Kind) {
    let (db, w, server) = setup(kind);
    let mut teamcw = Insider::enroll(&server, &db, "teamcw");
    let mut outsider = Insider::enroll(&server, &db, "outsider");
    let answer = teamcw.push_one(EntityKind::Case, w.case1, json!({"archived": true}));
    assert_eq!(rejected_codes(&answer), ["forbidden"], "{answer:?}");
    assert!(!stored(&db, "case", w.case1).unwrap().1);

    let claim_case = |outsider: &mut Insider| {
        let case = Case {
            id: CaseId(w.case1),
            team_id: TeamId(w.team_b),
            child_name: "Overtaget".into(),
            child_birth_date: time::macros::date!(2018 - 01 - 01),
            child_cpr: None,
            child_institution: None,
            status: CaseStatus::Open,
            closed_reason: None,
            coordinator_id: StaffId(outsider.staff),
            opened_on: time::macros::date!(2024 - 09 - 01),
            first_concern_on: None,
            first_meeting_on: None,
        };
        outsider.push_one(EntityKind::Case, w.case1, fields_of(&case))
    };
    // While the case lives: refused as out of scope (on PostgreSQL too, not a 500).
    let answer = claim_case(&mut outsider);
    assert_eq!(rejected_codes(&answer), ["forbidden"], "{answer:?}");

    // Its coordinator deletes it; the id still belongs to it.
    let mut coord = Insider::enroll(&server, &db, "coord");
    let answer = coord.push_one(EntityKind::Case, w.case1, json!({"archived": true}));
    assert!(rejected_codes(&answer).is_empty(), "{answer:?}");
    let answer = claim_case(&mut outsider);
    assert_eq!(rejected_codes(&answer), ["forbidden"], "{answer:?}");
    // An id of a record of the case, reused for a record of another case.
    let mut p = devices::new_person(w.case2, "Genbrugt id");
    p.id = PersonId(w.father);
    let answer = outsider.push_one(EntityKind::Person, w.father, fields_of(&p));
    assert_eq!(rejected_codes(&answer), ["forbidden"], "{answer:?}");
    let (_, text) = outsider.pull_everything();
    for secret in [TEAM_NOTE, PROTECTED_ADDRESS, CHILD_WORDS, "Alma Testbarn"] {
        assert!(!text.contains(secret), "the other team received {secret:?}");
    }
    assert!(!text.contains(&format!("case:{}", w.case1)));
}
backends!(a_case_id_is_never_claimed_by_another_team);

/// A quarantined note is tied to the case it was refused for, and only a note whose author
/// once had that case in sight is kept there; a device keeps at most a bounded number waiting.
fn the_quarantine_trusts_no_claimed_case(kind: Kind) {
    let (db, w, server) = setup(kind);
    let coord = Insider::enroll(&server, &db, "coord");
    let mut outsider = Insider::enroll(&server, &db, "outsider");
    // Another team's worker places a note "in" case 1.
    let planted = devices::draft_note(w.case1, StaffId(outsider.staff), "Plantet notat");
    let answer = outsider.push_one(EntityKind::Note, planted.id.0, fields_of(&planted));
    assert_eq!(rejected_codes(&answer), ["forbidden"]);
    let list = coord.get("/v1/quarantine");
    assert_eq!(list.status, 200);
    assert_eq!(list.body["notes"], json!([]), "{:?}", list.body);

    // A team member who had the case, removed while offline: kept for the coordinator.
    let mut teamcw = removed_after_pulling(&server, &db, "teamcw");
    let offline = devices::draft_note(w.case1, StaffId(teamcw.staff), "Skrevet uden net");
    let answer = teamcw.push_one(EntityKind::Note, offline.id.0, fields_of(&offline));
    assert_eq!(rejected_codes(&answer), ["forbidden"]);
    // The same worker's note claiming the other team's case (never in their sight): not kept.
    let elsewhere = devices::draft_note(w.case2, StaffId(teamcw.staff), "Til et andet team");
    let answer = teamcw.push_one(EntityKind::Note, elsewhere.id.0, fields_of(&elsewhere));
    assert_eq!(rejected_codes(&answer), ["forbidden"]);
    let list = coord.get("/v1/quarantine");
    let notes = list.body["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{:?}", list.body);
    assert_eq!(notes[0]["note_id"], offline.id.0.to_string());
    assert_eq!(notes[0]["case_id"], w.case1.to_string());
    assert_eq!(outsider.get("/v1/quarantine").body["notes"], json!([]));

    // Accepting writes it into its own case.
    let r = coord.post(
        "/v1/quarantine/resolve",
        &json!({"note_id": offline.id.0, "accept": true}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (data, _) = stored(&db, "note", offline.id.0).unwrap();
    assert_eq!(data["case_id"], w.case1.to_string());
    assert!(stored(&db, "note", elsewhere.id.0).is_none());
}
backends!(the_quarantine_trusts_no_claimed_case);

/// One device's quarantine is bounded; the coordinator's count is the notes waiting for them.
fn the_quarantine_is_bounded_per_device(kind: Kind) {
    let (db, w, server) = setup(kind);
    let coord = Insider::enroll(&server, &db, "coord");
    let mut teamcw = removed_after_pulling(&server, &db, "teamcw");
    let max = feltkontor_central::sync::MAX_QUARANTINED_PER_DEVICE as usize;
    let total = max + 20;
    let mut sent = 0;
    while sent < total {
        let n = (total - sent).min(500);
        let batch: Vec<ChangeEntry> = (0..n)
            .map(|i| {
                let note = devices::draft_note(
                    w.case1,
                    StaffId(teamcw.staff),
                    &format!("Notat {}", sent + i),
                );
                teamcw.change(EntityKind::Note, note.id.0, fields_of(&note), None)
            })
            .collect();
        let r = teamcw.push(&batch);
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.body["rejected"].as_array().unwrap().len(), n);
        sent += n;
    }
    let mut owner = db.owner();
    let kept = owner
        .query_one(
            "SELECT COUNT(*) FROM quarantine WHERE device_id = $1",
            feltkontor_central::params![teamcw.device],
        )
        .unwrap()
        .unwrap()
        .int(0)
        .unwrap();
    assert_eq!(kept as usize, max);
    assert!(
        audit_count(
            &db,
            "action = 'security' AND device_id = $1",
            &teamcw.device.to_string()
        ) >= 20
    );
    let (pages, _) = coord.pull_everything();
    assert_eq!(pages.last().unwrap()["quarantined"], json!(max));
}
backends!(the_quarantine_is_bounded_per_device);

/// The citizen's copy of the audit log holds every use of their case: downloads to a device
/// and openings on a laptop included.
fn the_citizens_copy_holds_every_use(kind: Kind) {
    let (db, w, server) = setup(kind);
    let coord = Insider::enroll(&server, &db, "coord");
    coord.pull_everything();
    let r = coord.post(
        "/v1/sync/access",
        &json!({"entries": [{
            "id": Uuid::now_v7(), "at_ms": now_ms(), "worker": coord.staff, "device": coord.device,
            "action": "open_case", "case_id": w.case1
        }]}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let out = db
        .admin(&["audit-export", "--person", &w.mother.to_string()], None)
        .success()
        .stdout;
    let actions: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["what"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for want in ["sync_read", "device_open_case"] {
        assert!(
            actions.iter().any(|a| a == want),
            "{want} missing from {actions:?}"
        );
    }
    assert!(out.contains("Sagens oplysninger blev hentet til en medarbejders computer"));
}
backends!(the_citizens_copy_holds_every_use);

/// NUL characters and reused ids get the same clear 4xx on both engines; a refused upload
/// never blocks the device.
fn nul_characters_get_a_clear_answer(kind: Kind) {
    let (db, w, server) = setup(kind);
    let r = server.client().post(
        "/v1/enroll",
        &json!({"code": "AAAA-BBBB", "username": "coord\u{0}", "password": "x", "device_name": "d"}),
    );
    assert_eq!((r.status, r.code()), (400, "invalid_input"), "{:?}", r.body);
    let mut coord = Insider::enroll(&server, &db, "coord");
    // A search with a NUL in it, uploaded with the access log: recorded, and the next upload
    // goes through.
    for criterion in ["mor\u{0}far", "skole"] {
        let r = coord.post(
            "/v1/sync/access",
            &json!({"entries": [{
                "id": Uuid::now_v7(), "at_ms": now_ms(), "worker": coord.staff,
                "device": coord.device, "action": "search", "criterion": criterion
            }]}),
        );
        assert_eq!(r.status, 200, "{criterion:?}: {:?}", r.body);
        assert_eq!(r.body["recorded"], 1);
    }
    // A NUL in a pushed record: that change is refused, the queue goes on.
    let mut p = devices::new_person(w.case1, "Mor\u{0}");
    let bad = coord.change(EntityKind::Person, p.id.0, fields_of(&p), None);
    p = devices::new_person(w.case1, "Moster Ida");
    let good = coord.change(EntityKind::Person, p.id.0, fields_of(&p), None);
    let r = coord.push(&[bad, good]);
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(rejected_codes(&r.body), ["invalid_input"]);
    assert_eq!(r.body["applied"], 1);
}
backends!(nul_characters_get_a_clear_answer);

/// The app's field rules run on the service: oversize, empty and impossible values are refused
/// change by change; fields a record does not have are refused (never stored, never counted
/// in a checksum); clock counters are bounded.
fn the_service_validates_every_record(kind: Kind) {
    let (db, w, server) = setup(kind);
    let mut coord = Insider::enroll(&server, &db, "coord");
    let long = devices::new_person(w.case1, &"x".repeat(150_000));
    let empty = devices::new_person(w.case1, "   ");
    let mut unborn = Case {
        id: CaseId::new(),
        team_id: TeamId(w.team_a),
        child_name: "Endnu ikke født".into(),
        child_birth_date: time::OffsetDateTime::now_utc().date() + time::Duration::days(30),
        child_cpr: None,
        child_institution: None,
        status: CaseStatus::Open,
        closed_reason: None,
        coordinator_id: StaffId(coord.staff),
        opened_on: time::OffsetDateTime::now_utc().date(),
        first_concern_on: None,
        first_meeting_on: None,
    };
    let entries = vec![
        coord.change(EntityKind::Person, long.id.0, fields_of(&long), None),
        coord.change(EntityKind::Person, empty.id.0, fields_of(&empty), None),
        coord.change(EntityKind::Case, unborn.id.0, fields_of(&unborn), None),
        coord.change(
            EntityKind::Person,
            w.father,
            json!({"language": "fransk", "hemmelig": "x"}),
            None,
        ),
    ];
    let r = coord.push(&entries);
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        rejected_codes(&r.body),
        [
            "invalid_input",
            "invalid_input",
            "invalid_input",
            "invalid_input"
        ],
        "{:?}",
        r.body
    );
    assert!(r.body.to_string().contains("hemmelig"));
    assert!(stored(&db, "person", long.id.0).is_none());
    assert!(stored(&db, "person", empty.id.0).is_none());
    assert!(stored(&db, "case", unborn.id.0).is_none());
    let (father, _) = stored(&db, "person", w.father).unwrap();
    assert!(father.get("hemmelig").is_none());
    assert_eq!(father["language"], Value::Null);

    // A clock counter near its end (every device pulling it would overflow): refused.
    let mut e = coord.change(
        EntityKind::Person,
        w.father,
        json!({"language": "tysk"}),
        None,
    );
    for f in e.fields.values_mut() {
        f.hlc.counter = u32::MAX - 1;
    }
    let ok = {
        unborn.child_birth_date = time::macros::date!(2020 - 05 - 05);
        coord.change(EntityKind::Case, unborn.id.0, fields_of(&unborn), None)
    };
    let r = coord.push(&[e, ok]);
    assert_eq!(rejected_codes(&r.body), ["invalid_input"], "{:?}", r.body);
    assert_eq!(r.body["applied"], 1);
    assert_eq!(
        stored(&db, "person", w.father).unwrap().0["language"],
        Value::Null
    );
}
backends!(the_service_validates_every_record);

/// Two valid concurrent writes that together would break a rule over the whole record (an
/// agreement with exactly one responsible) are resolved by the stated policy: the record stays
/// as it was, the later write's values wait as conflicts, and every device converges on a
/// valid record.
fn concurrent_writes_never_leave_an_invalid_record(kind: Kind) {
    let (db, w, server) = setup(kind);
    let rt = rt();
    let mut a = devices::device(&server, &db, "coord");
    let mut b = devices::device(&server, &db, "teamcw");
    a.sync(&rt);
    let agreement = Agreement {
        id: AgreementId::new(),
        case_id: CaseId(w.case1),
        what: "Mor ringer til skolen".into(),
        responsible_staff_id: Some(StaffId(a.staff)),
        responsible_person_id: None,
        due_on: None,
        done_at: None,
    };
    a.store.write(|wr| wr.put_agreement(&agreement)).unwrap();
    a.sync(&rt);
    b.sync(&rt);
    // Offline, both change who is responsible: a hands it to the father, b to themselves.
    let to_father = Agreement {
        responsible_staff_id: None,
        responsible_person_id: Some(PersonId(w.father)),
        ..agreement.clone()
    };
    a.store.write(|wr| wr.put_agreement(&to_father)).unwrap();
    let to_b = Agreement {
        responsible_staff_id: Some(StaffId(b.staff)),
        ..agreement.clone()
    };
    std::thread::sleep(std::time::Duration::from_millis(5));
    b.store.write(|wr| wr.put_agreement(&to_b)).unwrap();
    a.sync(&rt);
    let report = b.sync(&rt);
    assert_eq!(report.rejected, 0, "the later write is not refused");
    a.sync(&rt);
    b.sync(&rt);
    let (data, _) = stored(&db, "agreement", agreement.id.0).unwrap();
    let mut map: Map<String, Value> = data.as_object().unwrap().clone();
    map.insert("id".into(), json!(agreement.id.0));
    let merged: Agreement = serde_json::from_value(Value::Object(map)).unwrap();
    merged
        .validate()
        .expect("the service's record keeps its rules");
    let on_a: Agreement = a.store.get(agreement.id.0).unwrap().unwrap();
    let on_b: Agreement = b.store.get(agreement.id.0).unwrap().unwrap();
    assert_eq!(on_a, merged);
    assert_eq!(on_b, merged);
    devices::assert_converged(&rt, &a, "a");
    devices::assert_converged(&rt, &b, "b");
    let conflicts: Vec<Conflict> = a.store.open_conflicts(None).unwrap();
    assert!(
        conflicts.iter().any(|c| c.entity_id == agreement.id.0),
        "the losing write waits as a conflict"
    );
}
backends!(concurrent_writes_never_leave_an_invalid_record);

/// A quarantined note for one discipline is not shown in full to a coordinator of another.
fn the_quarantine_obeys_the_note_rules(kind: Kind) {
    let (db, w, server) = setup(kind);
    let coord = Insider::enroll(&server, &db, "coord");
    let mut psy = removed_after_pulling(&server, &db, "psyteam");
    let mut note = devices::draft_note(w.case1, StaffId(psy.staff), "PPR-kladde FOXTROT-sentinel");
    note.audience = Audience::OwnDiscipline;
    let answer = psy.push_one(EntityKind::Note, note.id.0, fields_of(&note));
    assert_eq!(rejected_codes(&answer), ["forbidden"]);
    let list = coord.get("/v1/quarantine");
    assert_eq!(list.status, 200);
    let notes = list.body["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{:?}", list.body);
    assert!(!list.body.to_string().contains("FOXTROT-sentinel"));
    assert!(!list.body.to_string().contains(OWN_NOTE));
    assert_eq!(
        notes[0]["withheld"],
        json!(["body", "child_words", "family_perspective"])
    );
}
backends!(the_quarantine_obeys_the_note_rules);

/// A refused write names the case it was aimed at in the audit log; an access-log upload
/// records no use of a case the worker never had in sight.
fn refusals_are_audited_with_their_case(kind: Kind) {
    let (db, w, server) = setup(kind);
    let mut outsider = Insider::enroll(&server, &db, "outsider");
    let answer = outsider.push_one(EntityKind::Person, w.father, json!({"language": "fransk"}));
    assert_eq!(rejected_codes(&answer), ["forbidden"]);
    assert_eq!(
        audit_count(
            &db,
            "action = 'sync_write' AND result = 'denied' AND case_id = $1",
            &w.case1.to_string()
        ),
        1
    );
    let entry = Uuid::now_v7();
    let r = outsider.post(
        "/v1/sync/access",
        &json!({"entries": [
            {"id": entry, "at_ms": now_ms(), "worker": outsider.staff, "device": outsider.device,
             "action": "open_case", "case_id": w.case1},
            {"id": Uuid::now_v7(), "at_ms": now_ms(), "worker": outsider.staff, "device": outsider.device,
             "action": "open_person", "person_id": w.mother}
        ]}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["recorded"], 0);
    assert_eq!(r.body["refused"].as_array().unwrap().len(), 2);
    assert_eq!(
        audit_count(
            &db,
            "action IN ('device_open_case', 'device_open_person') AND staff_id = $1",
            &outsider.staff.to_string()
        ),
        0
    );
}
backends!(refusals_are_audited_with_their_case);

/// Opens a pull stream over a raw connection and never reads it.
fn unread_stream(server: &Server, token: &str) -> std::net::TcpStream {
    use std::io::Write;
    // One page holds everything: the page leaves the service at once, and the reader still
    // takes none of it.
    let body = json!({"cursors": {}, "limit": 5000}).to_string();
    let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
    write!(
        s,
        "POST /v1/sync/pull/stream HTTP/1.1\r\nHost: feltkontor\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s
}

/// Pull streams opened and never read exhaust nothing: they are bounded per device and in
/// total, a stream whose reader takes nothing ends, readiness reports the saturation, and every
/// other worker is served meanwhile.
fn unread_streams_exhaust_nothing(kind: Kind) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    {
        // Enough for a stream much larger than a socket's buffers: 150 long drafts.
        let mut owner = db.owner();
        let conn = owner.as_mut();
        conn.begin().unwrap();
        for i in 0..150 {
            let mut n = devices::draft_note(w.case1, StaffId(w.staff["coord"]), "");
            n.body = format!("{i} {}", "lang tekst ".repeat(8_000)).into();
            feltkontor_central::records::put(conn, EntityKind::Note, n.id.0, &n).unwrap();
        }
        conn.commit().unwrap();
    }
    let server = Server::start(
        &db,
        &[
            "--max-streams",
            "4",
            "--max-streams-per-device",
            "2",
            "--stream-send-timeout",
            "8",
        ],
    );
    let a = Insider::enroll(&server, &db, "coord");
    let b = Insider::enroll(&server, &db, "coord");
    let psy = Insider::enroll(&server, &db, "psy");
    let rt = rt();
    let mut device = devices::device(&server, &db, "psy");
    let _held: Vec<_> = (0..2).map(|_| unread_stream(&server, &a.token)).collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let stream = json!({"cursors": {}, "limit": 5});
    let third = a.post("/v1/sync/pull/stream", &stream);
    assert_eq!(
        (third.status, third.code()),
        (429, "rate_limited"),
        "{:?}",
        third.body
    );
    let _held_b: Vec<_> = (0..2).map(|_| unread_stream(&server, &b.token)).collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let full = psy.post("/v1/sync/pull/stream", &stream);
    assert_eq!(
        (full.status, full.code()),
        (503, "unavailable"),
        "{:?}",
        full.body
    );
    // A device's sync round goes on page by page instead of failing.
    let refused = |server: &Server| {
        server
            .log_text()
            .matches("path=/v1/sync/pull/stream}: feltkontor_server::http: request failed code=\"unavailable\"")
            .count()
    };
    let before = refused(&server);
    let report = device.sync(&rt);
    assert!(report.pulled_records > 0);
    assert!(refused(&server) > before, "the device was refused a stream");
    devices::assert_converged(&rt, &device, "psy page by page");
    // Readiness tells the load balancer, while every place is still taken (asked at once: the
    // unread streams end after the send timeout).
    let ready = server.client().get("/ready", None);
    assert_eq!(ready.status, 503, "{:?}", ready.body);
    assert!(ready.body["detail"].as_str().unwrap().contains("saturated"));
    // Everyone else is served at once.
    let started = std::time::Instant::now();
    assert_eq!(psy.get("/v1/whoami").status, 200);
    assert_eq!(
        psy.post("/v1/sync/pull", &json!({"cursors": {}, "limit": 100}))
            .status,
        200
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Streams whose readers take nothing end; their places are free again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while server.client().get("/ready", None).status != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the unread streams never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let served = psy.post("/v1/sync/pull/stream", &stream);
    assert_eq!(served.status, 200, "{:?}", served.body);
}
backends!(unread_streams_exhaust_nothing);

/// Whether the server closes `s` within `within` (reading until the end of the stream).
fn closed_within(s: &mut std::net::TcpStream, within: std::time::Duration) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(within)).unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return started.elapsed() < within,
        }
    }
}

/// Answers with personal data are never cached; a connection trickling its headers is closed;
/// connections are bounded.
fn http_connections_are_bounded_and_answers_not_cached(kind: Kind) {
    use std::io::Write;
    let (db, _w, server) = setup(kind);
    let coord = Insider::enroll(&server, &db, "coord");
    for path in ["/v1/cases", "/v1/whoami"] {
        let r = coord.get(path);
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["cache-control"], "no-store", "{path}");
    }
    let refused = server.client().get("/v1/cases", Some("nonsense"));
    assert_eq!(refused.headers["cache-control"], "no-store");
    drop(server);

    let server = Server::start(&db, &["--header-timeout", "2", "--max-connections", "4"]);
    // Headers sent one byte every 300 ms: closed after the header timeout, well before they
    // would end.
    let mut trickle = std::net::TcpStream::connect(server.addr()).unwrap();
    let started = std::time::Instant::now();
    trickle
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut closed = false;
    for _ in 0..40 {
        if trickle.write_all(b"X").is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        if started.elapsed() > std::time::Duration::from_secs(4) {
            closed = closed_within(&mut trickle, std::time::Duration::from_secs(2));
            break;
        }
    }
    assert!(closed, "a trickling connection stays open");
    drop(trickle);
    // Four idle connections take every place: a fifth is closed at once, and the places come
    // back when they close.
    let idle: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(server.addr()).unwrap())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut fifth = std::net::TcpStream::connect(server.addr()).unwrap();
    let _ = fifth.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(closed_within(&mut fifth, std::time::Duration::from_secs(1)));
    drop(idle);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(server.client().get("/health", None).status, 200);
}
backends!(http_connections_are_bounded_and_answers_not_cached);

/// Deleting a record and changing it then is no way around the rules: a teammate cannot
/// unprotect a deleted person's address, nor take over a colleague's discarded draft.
fn deleting_first_is_no_way_around_the_rules(kind: Kind) {
    let (db, w, server) = setup(kind);
    let mut teamcw = Insider::enroll(&server, &db, "teamcw");
    let mut coord = Insider::enroll(&server, &db, "coord");
    let answer = teamcw.push_one(EntityKind::Person, w.mother, json!({"archived": true}));
    assert!(
        rejected_codes(&answer).is_empty(),
        "a teammate may delete a person: {answer:?}"
    );
    let answer = teamcw.push_one(
        EntityKind::Person,
        w.mother,
        json!({"protected_address": false}),
    );
    assert_eq!(rejected_codes(&answer), ["forbidden"], "{answer:?}");
    teamcw.push_one(EntityKind::Person, w.mother, json!({"archived": false}));
    let (mother, _) = stored(&db, "person", w.mother).unwrap();
    assert_eq!(mother["protected_address"], true);
    let (_, text) = teamcw.pull_everything();
    assert!(!text.contains(PROTECTED_ADDRESS));

    let answer = coord.push_one(EntityKind::Note, w.note_draft, json!({"archived": true}));
    assert!(rejected_codes(&answer).is_empty(), "{answer:?}");
    let me = teamcw.staff.to_string();
    for fields in [
        json!({"author_id": me}),
        json!({"archived": false}),
        json!({"body": "x"}),
    ] {
        let answer = teamcw.push_one(EntityKind::Note, w.note_draft, fields.clone());
        assert_eq!(
            rejected_codes(&answer),
            ["forbidden"],
            "{fields}: {answer:?}"
        );
    }
    let (draft, archived) = stored(&db, "note", w.note_draft).unwrap();
    assert_eq!(draft["author_id"], w.staff["coord"].to_string());
    assert!(archived);
    let (_, text) = teamcw.pull_everything();
    assert!(!text.contains(DRAFT_NOTE));
}
backends!(deleting_first_is_no_way_around_the_rules);

/// A change of a colleague's note by a worker who lost access is refused, not kept in
/// quarantine (where it would show the colleague's text to the decider).
fn the_quarantine_keeps_only_the_authors_own_writing(kind: Kind) {
    let (db, w, server) = setup(kind);
    let coord = Insider::enroll(&server, &db, "coord");
    let mut teamcw = removed_after_pulling(&server, &db, "teamcw");
    let answer = teamcw.push_one(
        EntityKind::Note,
        w.note_draft,
        json!({"audience": "case_team"}),
    );
    assert_eq!(rejected_codes(&answer), ["forbidden"]);
    let answer = teamcw.push_one(
        EntityKind::Note,
        w.note_own,
        json!({"audience": "case_team"}),
    );
    assert_eq!(rejected_codes(&answer), ["forbidden"]);
    let list = coord.get("/v1/quarantine");
    assert_eq!(list.body["notes"], json!([]), "{:?}", list.body);
    assert!(!list.body.to_string().contains(DRAFT_NOTE));
}
backends!(the_quarantine_keeps_only_the_authors_own_writing);

/// The service's own re-dating of a field never makes a clock past the counter's bound, and a
/// device's next write on that field (with the clock it holds as base) goes through.
fn the_services_clocks_stay_in_range(kind: Kind) {
    let (db, w, server) = setup(kind);
    let mut coord = Insider::enroll(&server, &db, "coord");
    let agreement = Agreement {
        id: AgreementId::new(),
        case_id: CaseId(w.case1),
        what: "Mor ringer".into(),
        responsible_staff_id: Some(StaffId(coord.staff)),
        responsible_person_id: None,
        due_on: None,
        done_at: None,
    };
    coord.push_one(EntityKind::Agreement, agreement.id.0, fields_of(&agreement));
    let later = coord.change(
        EntityKind::Agreement,
        agreement.id.0,
        json!({"responsible_staff_id": w.staff["teamcw"].to_string()}),
        None,
    );
    let wall = later.fields.values().next().unwrap().hlc.wall_ms;
    // Written "before" the change above, with the counter at its end: the merge takes half of
    // it and the record is kept as it was, re-dated just after this clock.
    let mut edge = coord.change(
        EntityKind::Agreement,
        agreement.id.0,
        json!({"responsible_person_id": w.father.to_string(), "responsible_staff_id": null}),
        None,
    );
    for f in edge.fields.values_mut() {
        f.hlc.wall_ms = wall - 1;
        f.hlc.counter = MAX_HLC_COUNTER;
    }
    let r = coord.push(&[later, edge]);
    assert!(rejected_codes(&r.body).is_empty(), "{:?}", r.body);
    let mut owner = db.owner();
    let clocks = owner
        .query_one(
            "SELECT field_hlc FROM records WHERE entity = 'agreement' AND id = $1",
            feltkontor_central::params![agreement.id.0],
        )
        .unwrap()
        .unwrap()
        .text(0)
        .unwrap();
    let clocks: std::collections::BTreeMap<String, Hlc> = serde_json::from_str(&clocks).unwrap();
    assert!(
        clocks.values().all(|h| h.counter <= MAX_HLC_COUNTER),
        "{clocks:?}"
    );
    let held = clocks["responsible_person_id"];
    let next = coord.change(
        EntityKind::Agreement,
        agreement.id.0,
        json!({"what": "Mor ringer i morgen"}),
        Some(held),
    );
    let r = coord.push(&[next]);
    assert!(rejected_codes(&r.body).is_empty(), "{:?}", r.body);
}
backends!(the_services_clocks_stay_in_range);

/// Smaller refusals: a signature dated in the future, an invisible or direction-overriding
/// name, a tombstone that is not a boolean; every answer uncached, a refused encoding's too.
fn the_small_holes_are_closed(kind: Kind) {
    let (db, w, server) = setup(kind);
    let mut coord = Insider::enroll(&server, &db, "coord");
    let mut n = devices::draft_note(w.case1, StaffId(coord.staff), "Fremtidig underskrift");
    n.status = NoteStatus::Signed;
    n.signed_at = Some(time::macros::datetime!(2099-01-01 00:00 UTC));
    n.content_hash = Some(rules::content_hash(&n));
    let answer = coord.push_one(EntityKind::Note, n.id.0, fields_of(&n));
    assert_eq!(rejected_codes(&answer), ["invalid_input"], "{answer:?}");
    for name in ["\u{200b}", "Anna\u{202e}gnaW"] {
        let p = devices::new_person(w.case1, name);
        let answer = coord.push_one(EntityKind::Person, p.id.0, fields_of(&p));
        assert_eq!(rejected_codes(&answer), ["invalid_input"], "{name:?}");
    }
    for archived in [json!("yes"), json!(1)] {
        let answer = coord.push_one(EntityKind::Person, w.father, json!({"archived": archived}));
        assert_eq!(rejected_codes(&answer), ["invalid_input"]);
    }
    let r = server
        .client()
        .http
        .post(format!("{}/v1/sync/push", server.base))
        .bearer_auth(&coord.token)
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(r.headers()["cache-control"], "no-store");
}
backends!(the_small_holes_are_closed);

/// The participant row that names `staff` on `case`.
fn participant_row(db: &Db, case: Uuid, staff: Uuid) -> Uuid {
    let mut owner = db.owner();
    owner
        .query(
            "SELECT id, data FROM records WHERE entity = 'participant' AND archived = 0",
            feltkontor_central::params![],
        )
        .unwrap()
        .iter()
        .find_map(|r| {
            let data: Value = serde_json::from_str(&r.text(1).unwrap()).unwrap();
            (data["case_id"] == json!(case) && data["staff_id"] == json!(staff))
                .then(|| r.uuid(0).unwrap())
        })
        .expect("the participant row")
}

/// The insider review's second round: an id written another way, a participant row moved to
/// oneself and deleted, a guessed protected address, a deleted record carrying invalid fields.
fn the_second_rounds_holes_are_closed(kind: Kind) {
    let (db, w, server) = setup(kind);
    let mut teamcw = Insider::enroll(&server, &db, "teamcw");
    let coord = w.staff["coord"];

    // The coordinator's own id in braces, the team's id in upper case: the same ids to the
    // rules, other text to every index that decides who sees the case.
    let braces = teamcw.push_one(
        EntityKind::Case,
        w.case1,
        json!({"coordinator_id": format!("{{{coord}}}")}),
    );
    let upper = teamcw.push_one(
        EntityKind::Case,
        w.case1,
        json!({"team_id": w.team_a.to_string().to_uppercase()}),
    );
    let simple = teamcw.push_one(
        EntityKind::Case,
        w.case1,
        json!({"coordinator_id": coord.simple().to_string()}),
    );
    for (what, answer) in [("braces", &braces), ("upper", &upper), ("simple", &simple)] {
        assert_eq!(
            rejected_codes(answer),
            ["invalid_input"],
            "{what}: {answer:?}"
        );
    }
    let (case, _) = stored(&db, "case", w.case1).unwrap();
    assert_eq!(case["coordinator_id"], json!(coord));
    assert_eq!(case["team_id"], json!(w.team_a));
    let coordinator = Insider::enroll(&server, &db, "coord");
    assert_eq!(
        coordinator.get(&format!("/v1/cases/{}", w.case1)).status,
        200
    );

    // The psychologist's participant row, renamed to the teammate and deleted as if leaving.
    let psy = w.staff["psy"];
    let row = participant_row(&db, w.case1, psy);
    let moved = teamcw.push_one(
        EntityKind::Participant,
        row,
        json!({"archived": true, "staff_id": teamcw.staff}),
    );
    assert_ne!(rejected_codes(&moved), Vec::<String>::new(), "{moved:?}");
    let (_, archived) = stored(&db, "participant", row).unwrap();
    assert!(!archived, "the psychologist is still on the case");

    // A guess of the protected address: the same refusal whether right or wrong.
    let wrong = teamcw.push_one(
        EntityKind::Person,
        w.mother,
        json!({"address": "Forkertvej 1, 8000 Aarhus C"}),
    );
    let right = teamcw.push_one(
        EntityKind::Person,
        w.mother,
        json!({"address": PROTECTED_ADDRESS}),
    );
    assert_eq!(rejected_codes(&wrong), ["forbidden"], "{wrong:?}");
    assert_eq!(rejected_codes(&right), ["forbidden"], "{right:?}");

    // A note born deleted with a body far over the limit, a bidi override and a forged
    // signature: refused, not stored.
    let mut note = devices::draft_note(w.case1, StaffId(teamcw.staff), "");
    note.body = format!("{}\u{202e}", "x".repeat(300_000)).into();
    let mut fields = fields_of(&note);
    fields["archived"] = json!(true);
    let tomb = teamcw.push_one(EntityKind::Note, note.id.0, fields);
    assert_eq!(rejected_codes(&tomb), ["invalid_input"], "{tomb:?}");
    assert!(stored(&db, "note", note.id.0).is_none());
    // A plain deletion of one's own draft still goes through.
    let mut own = devices::draft_note(w.case1, StaffId(teamcw.staff), "Mit udkast");
    own.occurred_at = normalize_timestamp(own.occurred_at);
    teamcw.push_one(EntityKind::Note, own.id.0, fields_of(&own));
    let gone = teamcw.push_one(EntityKind::Note, own.id.0, json!({"archived": true}));
    assert!(rejected_codes(&gone).is_empty(), "{gone:?}");
}
backends!(the_second_rounds_holes_are_closed);

/// A worker who sees only that a case exists (no consent covers their sector) cannot record a
/// use of it or of its people: the citizen's copy would show a use that never happened, and
/// the quarantine would take their notes as from someone who once had the case in sight.
fn a_worker_with_limited_access_records_no_use_of_the_case(kind: Kind) {
    let (db, w, server) = setup(kind);
    let hv = Insider::enroll(&server, &db, "hv");
    hv.pull_everything();
    let overview = hv.get(&format!("/v1/cases/{}", w.case1));
    assert_eq!(overview.status, 200, "{:?}", overview.body);
    assert_eq!(overview.body["access"], "limited", "the premise");
    let entry = |action: &str, person: Option<Uuid>| {
        json!({
            "id": Uuid::now_v7(), "at_ms": now_ms(), "worker": hv.staff, "device": hv.device,
            "action": action, "case_id": w.case1, "person_id": person
        })
    };
    let r = hv.post(
        "/v1/sync/access",
        &json!({"entries": [entry("open_case", None), entry("open_person", Some(w.mother))]}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["recorded"], 0, "{:?}", r.body);
    let staff = hv.staff.to_string();
    assert_eq!(
        audit_count(&db, "action LIKE 'device_open%' AND staff_id = $1", &staff),
        0
    );
    assert!(
        !feltkontor_central::sync::once_had_access(db.owner().as_mut(), hv.staff, w.case1).unwrap()
    );
}
backends!(a_worker_with_limited_access_records_no_use_of_the_case);

/// Every refusal is problem details with a code, the framework's own too.
fn every_refusal_is_a_problem(kind: Kind) {
    let (db, _w, server) = setup(kind);
    let coord = Insider::enroll(&server, &db, "coord");
    let http = reqwest::blocking::Client::new();
    let problem = |r: reqwest::blocking::Response| {
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body: Value = serde_json::from_str(&r.text().unwrap()).unwrap_or(Value::Null);
        assert_eq!(ctype, "application/problem+json", "{status} {body:?}");
        (status, body["code"].as_str().unwrap_or("").to_owned())
    };
    let put = http
        .put(format!("{}/v1/sync/push", server.base))
        .bearer_auth(&coord.token)
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(problem(put), (405, "method_not_allowed".into()));
    let brotli = http
        .post(format!("{}/v1/sync/push", server.base))
        .bearer_auth(&coord.token)
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body(vec![1, 2, 3])
        .send()
        .unwrap();
    assert_eq!(problem(brotli), (415, "unsupported_media_type".into()));
    let bad_path = http
        .get(format!("{}/v1/cases/%ff", server.base))
        .send()
        .unwrap();
    assert_eq!(problem(bad_path).0 / 100, 4);
}
backends!(every_refusal_is_a_problem);

/// One device's requests running at once are bounded: a burst well within its rate leaves
/// the database connections to everyone else.
fn one_device_cannot_hold_every_connection(kind: Kind) {
    let db = Db::migrated(kind);
    let _w = world::build(&db);
    let server = Server::start(&db, &["--pool-size", "4", "--device-requests", "2"]);
    let a = Insider::enroll(&server, &db, "coord");
    let colleague = Insider::enroll(&server, &db, "psy");
    let barrier = std::sync::Barrier::new(24);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..24)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    a.post("/v1/sync/pull", &json!({"cursors": {}, "limit": 5000}))
                        .status
                })
            })
            .collect();
        let started = std::time::Instant::now();
        let theirs = colleague.get("/v1/cases");
        assert_eq!(theirs.status, 200, "{:?}", theirs.body);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&429),
        "more than two at once are told to wait: {statuses:?}"
    );
}
backends!(one_device_cannot_hold_every_connection);

/// Connections from one address are bounded (a client that opens many and sends nothing), and
/// another address is still served.
#[test]
fn connections_per_address_are_bounded() {
    common::tls_provider();
    let db = Db::migrated(Kind::Sqlite);
    let server = Server::start(&db, &["--max-connections-per-address", "3"]);
    let port = server.addr().port();
    use std::io::{Read, Write};
    // Whether the service closed the connection (at once: it reads nothing first).
    let closed = |c: &mut std::net::TcpStream| -> bool {
        c.set_read_timeout(Some(std::time::Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 64];
        match c.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => {
                e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::TimedOut
            }
        }
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut held: Vec<std::net::TcpStream> = (0..6)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let open = held
        .iter_mut()
        .map(|c| !closed(c))
        .filter(|kept| *kept)
        .count();
    assert!(
        open <= 3,
        "{open} of 6 connections that send nothing kept open"
    );
    // One more, with a request: closed before it is read.
    let mut more = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = more.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(closed(&mut more), "a connection past the bound is served");
    // Another address is served.
    let other = reqwest::blocking::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let r = other
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(held);
}

/// The insider review's third round: a consent "withdrawn" in the year 2999 (in force for
/// ever, and then locked against every correction), a consent deleted by a teammate (its
/// participants lose the case), a withdrawal written in another offset (in force a day longer).
fn consents_are_neither_locked_nor_deleted_by_a_teammate(kind: Kind) {
    let (db, w, server) = setup(kind);
    let mut teamcw = Insider::enroll(&server, &db, "teamcw");
    let far = teamcw.push_one(
        EntityKind::Consent,
        w.consent_ppr,
        json!({"withdrawn_at": "2999-12-31T23:59:59Z"}),
    );
    assert_eq!(rejected_codes(&far), ["invalid_input"], "{far:?}");
    let fresh = Consent {
        id: ConsentId::new(),
        case_id: CaseId(w.case1),
        given_by: PersonId(w.mother),
        sectors: [ConsentSector::HealthVisitor].into(),
        valid_from: time::OffsetDateTime::now_utc().date(),
        valid_to: None,
        withdrawn_at: Some(time::macros::datetime!(2999-12-31 23:59:59 UTC)),
    };
    let born = teamcw.push_one(EntityKind::Consent, fresh.id.0, fields_of(&fresh));
    assert_eq!(rejected_codes(&born), ["invalid_input"], "{born:?}");
    let offset = teamcw.push_one(
        EntityKind::Consent,
        w.consent_ppr,
        json!({"withdrawn_at": "2026-12-07T23:00:00+14:00"}),
    );
    assert_eq!(rejected_codes(&offset), ["invalid_input"], "{offset:?}");
    let deleted = teamcw.push_one(
        EntityKind::Consent,
        w.consent_ppr,
        json!({"archived": true}),
    );
    assert_eq!(rejected_codes(&deleted), ["forbidden"], "{deleted:?}");
    let psy = Insider::enroll(&server, &db, "psy");
    assert_eq!(
        psy.get(&format!("/v1/cases/{}", w.case1)).body["access"],
        "full",
        "the psychologist keeps the case"
    );

    // The coordinator records the parents' withdrawal, and may delete the entry if it was made
    // in error; a teammate may record a withdrawal too (the parents may tell anyone).
    let mut coord = Insider::enroll(&server, &db, "coord");
    let now = normalize_timestamp(time::OffsetDateTime::now_utc());
    let now_text = serde_json::to_value(Some(now).map(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    }))
    .unwrap();
    let withdrawn = coord.push_one(
        EntityKind::Consent,
        w.consent_ppr,
        json!({"withdrawn_at": now_text}),
    );
    assert!(rejected_codes(&withdrawn).is_empty(), "{withdrawn:?}");
    let removed = coord.push_one(
        EntityKind::Consent,
        w.consent_ppr,
        json!({"archived": true}),
    );
    assert!(rejected_codes(&removed).is_empty(), "{removed:?}");
}
backends!(consents_are_neither_locked_nor_deleted_by_a_teammate);

/// Closing a case and reopening it are the coordinator's (or a leader's) decision, and a closed
/// case names why: a teammate's modified client that closes or reopens it, or closes it with
/// no reason, is refused.
fn only_the_coordinator_closes_and_reopens_a_case(kind: Kind) {
    let (db, w, server) = setup(kind);
    let mut teamcw = Insider::enroll(&server, &db, "teamcw");
    let by_teammate = teamcw.push_one(
        EntityKind::Case,
        w.case1,
        json!({"status": "closed", "closed_reason": "Lukket af en kollega"}),
    );
    assert_eq!(
        rejected_codes(&by_teammate),
        ["forbidden"],
        "{by_teammate:?}"
    );

    let mut coord = Insider::enroll(&server, &db, "coord");
    let no_reason = coord.push_one(EntityKind::Case, w.case1, json!({"status": "closed"}));
    assert_eq!(
        rejected_codes(&no_reason),
        ["invalid_input"],
        "{no_reason:?}"
    );
    let blank = coord.push_one(
        EntityKind::Case,
        w.case1,
        json!({"status": "closed", "closed_reason": "   "}),
    );
    assert_eq!(rejected_codes(&blank), ["invalid_input"], "{blank:?}");
    for invisible in [
        "\u{200b}",
        "\u{3164}",
        "\u{2800}\u{034f}",
        "\u{2060}\u{feff}",
    ] {
        let r = coord.push_one(
            EntityKind::Case,
            w.case1,
            json!({"status": "closed", "closed_reason": invisible}),
        );
        assert_eq!(
            rejected_codes(&r),
            ["invalid_input"],
            "{invisible:?}: {r:?}"
        );
    }
    let closed = coord.push_one(
        EntityKind::Case,
        w.case1,
        json!({"status": "closed", "closed_reason": "Familien klarer sig selv nu"}),
    );
    assert!(rejected_codes(&closed).is_empty(), "{closed:?}");

    let reopened_by_teammate = teamcw.push_one(
        EntityKind::Case,
        w.case1,
        json!({"status": "open", "closed_reason": null}),
    );
    assert_eq!(
        rejected_codes(&reopened_by_teammate),
        ["forbidden"],
        "{reopened_by_teammate:?}"
    );
    let reopened = coord.push_one(
        EntityKind::Case,
        w.case1,
        json!({"status": "open", "closed_reason": null}),
    );
    assert!(rejected_codes(&reopened).is_empty(), "{reopened:?}");
}
backends!(only_the_coordinator_closes_and_reopens_a_case);

/// A participant from a sector no valid consent covers takes part on a standard legal basis
/// with its reason, never free text alone: a modified client that records a free-text basis
/// is refused by the service.
fn a_legal_basis_is_a_standard_one_with_its_reason(kind: Kind) {
    let (db, w, server) = setup(kind);
    let row = participant_row(&db, w.case1, w.staff["hvlegal"]);
    let mut coord = Insider::enroll(&server, &db, "coord");
    for free in [
        "Det aftalte vi på mødet",
        "Udveksling efter servicelovens § 49 b:   ",
        "Samtykke: mundtligt",
    ] {
        let r = coord.push_one(EntityKind::Participant, row, json!({"legal_basis": free}));
        assert_eq!(rejected_codes(&r), ["invalid_input"], "{free}: {r:?}");
    }
    let standard = coord.push_one(
        EntityKind::Participant,
        row,
        json!({"legal_basis": "Underretning: modtaget fra skolen 1. december"}),
    );
    assert!(rejected_codes(&standard).is_empty(), "{standard:?}");
}
backends!(a_legal_basis_is_a_standard_one_with_its_reason);

/// A consent to share is given by a parent with custody: a modified client that records one as
/// given by the child's teacher is refused.
fn a_consent_is_given_by_a_custodian(kind: Kind) {
    let (db, w, server) = setup(kind);
    let mut coord = Insider::enroll(&server, &db, "coord");
    let teacher = Person {
        relation: RelationToChild::Teacher,
        ..devices::new_person(w.case1, "Klasselærer Lise")
    };
    let added = coord.push_one(EntityKind::Person, teacher.id.0, fields_of(&teacher));
    assert!(rejected_codes(&added).is_empty(), "{added:?}");
    let today = time::OffsetDateTime::now_utc().date();
    let by_teacher = Consent {
        id: ConsentId::new(),
        case_id: CaseId(w.case1),
        given_by: teacher.id,
        sectors: [ConsentSector::School].into(),
        valid_from: today,
        valid_to: None,
        withdrawn_at: None,
    };
    let r = coord.push_one(EntityKind::Consent, by_teacher.id.0, fields_of(&by_teacher));
    assert_eq!(rejected_codes(&r), ["invalid_input"], "{r:?}");
    let by_mother = Consent {
        id: ConsentId::new(),
        given_by: PersonId(w.mother),
        ..by_teacher
    };
    let r = coord.push_one(EntityKind::Consent, by_mother.id.0, fields_of(&by_mother));
    assert!(rejected_codes(&r).is_empty(), "{r:?}");
}
backends!(a_consent_is_given_by_a_custodian);

/// Concurrent writes of one record never undo each other: while teammates' devices keep editing
/// the case's institution, every close the coordinator is told was applied stays applied (on
/// PostgreSQL a merge that read the case before the close committed once wrote it back open).
fn a_concurrent_edit_never_undoes_a_close(kind: Kind) {
    let (db, w, server) = setup(kind);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mates: Vec<_> = (0..4)
        .map(|k| {
            let mut mate = Insider::enroll(&server, &db, "teamcw");
            let (stop, case) = (stop.clone(), w.case1);
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    let e = mate.change(
                        EntityKind::Case,
                        case,
                        json!({"child_institution": format!("Skole {k}-{i}")}),
                        None,
                    );
                    // As fast as the service lets one device push: a 429 is waited out and
                    // the same change sent again (its sequence number is spent).
                    while mate.push(std::slice::from_ref(&e)).status == 429
                        && !stop.load(std::sync::atomic::Ordering::Relaxed)
                    {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
            })
        })
        .collect();
    let mut coord = Insider::enroll(&server, &db, "coord");
    let mut lost = Vec::new();
    for attempt in 0..12 {
        let r = coord.push_one(
            EntityKind::Case,
            w.case1,
            json!({"status": "closed", "closed_reason": "Familien er flyttet"}),
        );
        let applied = rejected_codes(&r).is_empty() && r["applied"] == 1;
        std::thread::sleep(std::time::Duration::from_millis(150));
        let (case, _) = stored(&db, "case", w.case1).unwrap();
        if applied && case["status"] != "closed" {
            lost.push(attempt);
        }
        if case["status"] == "closed" {
            coord.push_one(
                EntityKind::Case,
                w.case1,
                json!({"status": "open", "closed_reason": null}),
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for m in mates {
        m.join().unwrap();
    }
    assert!(
        lost.is_empty(),
        "closes undone by a concurrent edit: attempts {lost:?}"
    );
}
backends!(a_concurrent_edit_never_undoes_a_close);

/// A teammate cannot veto the coordinator's close by writing the case's status or reason
/// unchanged with a clock ahead: a write naming those fields is the coordinator's (or a
/// leader's) whatever its value.
fn a_same_value_write_cannot_veto_a_close(kind: Kind) {
    let (db, w, server) = setup(kind);
    let mut teamcw = Insider::enroll(&server, &db, "teamcw");
    for fields in [
        json!({"status": "open"}),
        json!({"closed_reason": null}),
        json!({"coordinator_id": w.staff["coord"]}),
    ] {
        let r = teamcw.push_one(EntityKind::Case, w.case1, fields.clone());
        assert_eq!(rejected_codes(&r), ["forbidden"], "{fields}: {r:?}");
    }
    let mut coord = Insider::enroll(&server, &db, "coord");
    let r = coord.push_one(
        EntityKind::Case,
        w.case1,
        json!({"status": "closed", "closed_reason": "Familien er flyttet"}),
    );
    assert!(rejected_codes(&r).is_empty(), "{r:?}");
    let (case, _) = stored(&db, "case", w.case1).unwrap();
    assert_eq!(case["status"], "closed");
}
backends!(a_same_value_write_cannot_veto_a_close);

/// A search criterion that may hold a CPR number, in any shape a modified (or older) app sends
/// it, reaches the audit log with its digits masked.
fn no_cpr_number_reaches_the_audit_log_through_a_search(kind: Kind) {
    let (db, _w, server) = setup(kind);
    let coord = Insider::enroll(&server, &db, "coord");
    let shapes = [
        "cpr 010203-1234",
        "010203 - 1234",
        "010203\u{2013}1234",
        "Alma 0102031234,",
        "\u{ff10}\u{ff11}\u{ff10}\u{ff12}\u{ff10}\u{ff13}\u{ff11}\u{ff12}\u{ff13}\u{ff14}",
    ];
    let entries: Vec<Value> = shapes
        .iter()
        .map(|c| {
            json!({"id": Uuid::now_v7(), "at_ms": now_ms(), "worker": coord.staff,
                   "device": coord.device, "action": "search", "criterion": c})
        })
        .collect();
    let r = coord.post("/v1/sync/access", &json!({"entries": entries}));
    assert_eq!(r.status, 200, "{:?}", r.body);
    let rows = db
        .owner()
        .query(
            "SELECT detail FROM audit_log WHERE action = 'device_search'",
            feltkontor_central::params![],
        )
        .unwrap();
    assert_eq!(rows.len(), shapes.len());
    for row in rows {
        let detail = row.text(0).unwrap();
        let tail = detail.rsplit(": ").next().unwrap_or_default();
        assert!(
            !tail
                .chars()
                .any(|c| feltkontor_core::domain::text::digit_value(c).is_some()),
            "a CPR-like number in the audit log: {detail}"
        );
    }
}
backends!(no_cpr_number_reaches_the_audit_log_through_a_search);

/// An appointment invites people of its own case's network and existing staff only, and names
/// a note of the same case: a modified client that invites another case's person, an unknown
/// member of staff, or links a note of another case, is refused.
fn an_appointment_invites_only_its_own_cases_people(kind: Kind) {
    let (db, w, server) = setup(kind);
    let mut coord = Insider::enroll(&server, &db, "coord");
    let base = Appointment {
        id: AppointmentId::new(),
        case_id: CaseId(w.case1),
        kind: AppointmentKind::HomeVisit,
        starts_at: normalize_timestamp(time::OffsetDateTime::now_utc() + time::Duration::days(2)),
        place: "Hjemme".into(),
        invited_persons: [PersonId(w.mother)].into(),
        invited_staff: [StaffId(w.staff["coord"])].into(),
        note_id: None,
        cancelled: false,
    };
    let ok = coord.push_one(EntityKind::Appointment, base.id.0, fields_of(&base));
    assert!(rejected_codes(&ok).is_empty(), "{ok:?}");
    for bad in [
        Appointment {
            id: AppointmentId::new(),
            invited_persons: [PersonId::new()].into(),
            ..base.clone()
        },
        Appointment {
            id: AppointmentId::new(),
            invited_staff: [StaffId::new()].into(),
            ..base.clone()
        },
        Appointment {
            id: AppointmentId::new(),
            note_id: Some(NoteId::new()),
            ..base.clone()
        },
        // The mother's protected address as the place: every teammate would read it.
        Appointment {
            id: AppointmentId::new(),
            place: format!("Hjemme hos mor, {}", PROTECTED_ADDRESS.to_uppercase()),
            ..base.clone()
        },
        Appointment {
            id: AppointmentId::new(),
            place: "hemmeligvej 13".into(),
            ..base.clone()
        },
        Appointment {
            id: AppointmentId::new(),
            place: "Hjemme hos familien, Hemmeligvej 13 st. th.".into(),
            ..base.clone()
        },
    ] {
        let r = coord.push_one(EntityKind::Appointment, bad.id.0, fields_of(&bad));
        assert_eq!(rejected_codes(&r), ["invalid_input"], "{r:?}");
    }
}
backends!(an_appointment_invites_only_its_own_cases_people);

/// A case's change history is read by its participants only, and through the visibility
/// decision: another discipline's note and a colleague's draft are not listed, no value is
/// sent, and a malformed page mark is a clear 400.
fn the_change_history_shows_only_what_the_reader_may_see(kind: Kind) {
    let (db, w, server) = setup(kind);
    let mut coord = Insider::enroll(&server, &db, "coord");
    let mut psy = Insider::enroll(&server, &db, "psy");
    // The coordinator moves the father and writes a draft; the psychologist writes a note for
    // their own discipline only.
    let moved = "Flyttevej 99 ECHO-sentinel, 8000 Aarhus C";
    let r = coord.push_one(EntityKind::Person, w.father, json!({ "address": moved }));
    assert!(rejected_codes(&r).is_empty(), "{r:?}");
    let draft = devices::draft_note(
        w.case1,
        StaffId(w.staff["coord"]),
        "Min kladde FOXTROT-sentinel",
    );
    let r = coord.push_one(EntityKind::Note, draft.id.0, fields_of(&draft));
    assert!(rejected_codes(&r).is_empty(), "{r:?}");
    let mut own = devices::draft_note(w.case1, StaffId(w.staff["psy"]), "PPR GOLF-sentinel");
    own.audience = Audience::OwnDiscipline;
    let r = psy.push_one(EntityKind::Note, own.id.0, fields_of(&own));
    assert!(rejected_codes(&r).is_empty(), "{r:?}");

    let path = format!("/v1/cases/{}/history", w.case1);
    let h = coord.get(&path);
    assert_eq!(h.status, 200, "{:?}", h.body);
    let text = h.body.to_string();
    for secret in [
        "ECHO-sentinel",
        "FOXTROT-sentinel",
        "GOLF-sentinel",
        PROTECTED_ADDRESS,
    ] {
        assert!(!text.contains(secret), "a value in the history: {secret}");
    }
    let ids = |v: &Value| -> Vec<String> {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["entity_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let seen = ids(&h.body);
    assert!(
        seen.contains(&w.father.to_string()),
        "the coordinator's own change is listed"
    );
    assert!(
        seen.contains(&draft.id.0.to_string()),
        "their own draft is listed"
    );
    assert!(
        !seen.contains(&own.id.0.to_string()),
        "another discipline's note is not listed"
    );
    let father = h.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entity_id"] == w.father.to_string())
        .unwrap();
    assert_eq!(father["fields"], json!(["address"]));
    assert_eq!(father["staff_name"], "Karen Koordinator");
    assert_eq!(father["device_name"], "Testmaskine");
    assert_eq!(father["device_id"], coord.device.to_string());

    let p = psy.get(&path);
    assert_eq!(p.status, 200, "{:?}", p.body);
    let seen = ids(&p.body);
    assert!(
        !seen.contains(&draft.id.0.to_string()),
        "a colleague's draft is not listed"
    );
    assert!(
        seen.contains(&own.id.0.to_string()),
        "their own discipline's note is listed"
    );

    // Once signed, a colleague sees the signing, not how the draft was written.
    let r = coord.push_one(
        EntityKind::Note,
        draft.id.0,
        json!({ "body": "Min kladde, rettet" }),
    );
    assert!(rejected_codes(&r).is_empty(), "{r:?}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut signed = draft.clone();
    signed.body = "Min kladde, rettet".into();
    signed.status = NoteStatus::Signed;
    signed.signed_at = Some(normalize_timestamp(time::OffsetDateTime::now_utc()));
    signed.content_hash = Some(rules::content_hash(&signed));
    let g = fields_of(&signed);
    let r = coord.push_one(
        EntityKind::Note,
        draft.id.0,
        json!({"status": g["status"], "signed_at": g["signed_at"], "content_hash": g["content_hash"]}),
    );
    assert!(rejected_codes(&r).is_empty(), "{r:?}");
    let of_note = |v: &Value| -> Vec<Value> {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["entity_id"] == draft.id.0.to_string())
            .cloned()
            .collect()
    };
    let seen_by_psy = of_note(&psy.get(&path).body);
    assert_eq!(seen_by_psy.len(), 1, "only the signing: {seen_by_psy:?}");
    assert!(seen_by_psy[0]["fields"]
        .as_array()
        .unwrap()
        .contains(&json!("status")));
    assert_eq!(
        of_note(&coord.get(&path).body).len(),
        3,
        "the author sees their own drafting"
    );

    // A team member who is not a participant, a participant without a consent covering their
    // sector, and a worker outside the case: no history.
    let teamcw = Insider::enroll(&server, &db, "teamcw");
    assert_eq!(teamcw.get(&path).status, 403);
    let edu = Insider::enroll(&server, &db, "edu");
    assert_eq!(edu.get(&path).status, 403);
    let outsider = Insider::enroll(&server, &db, "outsider");
    assert_eq!(outsider.get(&path).status, 404);
    assert_eq!(
        outsider
            .get(&format!("/v1/cases/{}/history", Uuid::now_v7()))
            .status,
        404
    );
    // Malformed page marks and ids: clear problems, never a 5xx.
    for bad in [
        "?before=abc",
        "?before=-1",
        "?before=0",
        "?before=99999999999999999999",
    ] {
        let r = coord.get(&format!("{path}{bad}"));
        assert_eq!(r.status, 400, "{bad}: {:?}", r.body);
        assert_eq!(r.body["code"], "invalid_input", "{bad}");
    }
    assert_eq!(coord.get("/v1/cases/not-a-uuid/history").status, 400);
    // No position is sent: a gap in numbering would count the changes the reader may not see.
    assert!(h.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e.get("seq").is_none()));
    assert!(h.body["next_before"].is_null(), "one page holds it all");
    let paged = coord.get(&format!("{path}?before=9223372036854775807"));
    assert_eq!(paged.status, 200);
    assert_eq!(paged.body["entries"], coord.get(&path).body["entries"]);
    // Reading the history is a use of the case, in the audit log.
    assert!(
        audit_count(
            &db,
            "action = 'read_case' AND detail = 'case history' AND case_id = $1",
            &w.case1.to_string()
        ) >= 2
    );
}
backends!(the_change_history_shows_only_what_the_reader_may_see);
