//! The multi-device property test: five devices (a coordinator, a team colleague, a team
//! psychologist, a participating psychologist and a worker of another team), each with its own
//! encrypted store, make random offline edits and sync in random orders against the real server
//! process, on SQLite and on PostgreSQL, while team membership and consent change under them.
//! Pushes are sometimes delivered without the device hearing the acknowledgement (killed
//! between the service's answer and its own checkpoint), or pushed without pulling.
//!
//! The test keeps its own account of what the service applied: every field write with the
//! writes its device had seen when it was made. After each schedule every device syncs until
//! quiet, and then:
//! - every device holds exactly what the service says its worker may see (convergence, partial
//!   replication);
//! - every field holds the value of its newest applied write (hybrid logical clock, then
//!   device): no acknowledged write is lost;
//! - every write that arrived while the field held a value its device had not seen, and
//!   differed from it, is exactly one conflict, and there is no other conflict;
//! - a change was refused only while its worker could not see the case;
//! - every applied change is audited once; every signed note matches its signature.
//!
//! On PostgreSQL the devices talk to three instances of the service on one database (device `i`
//! to instance `i % 3`), as behind the municipality's load balancer: what one instance applied
//! reaches devices at the others through the database and each instance's kept plans
//! (`central/src/plans.rs`) must never send what a write at another instance took away.
//!
//! `FELTKONTOR_SYNC_SCHEDULES` sets the schedules per backend (100 by default: 200 in
//! `make test`); `FELTKONTOR_SYNC_SEED` the first seed. `make test-sync-long` runs 1,000.

mod common;

use common::devices::*;
use common::world::{self, World};
use common::{Db, Kind, Server};
use feltkontor_central::params;
use feltkontor_core::domain::*;
use feltkontor_sync::{next_batch, pull_all, push_all, verify_buckets, SyncReport};
use feltkontor_wire::sync::{PullRequest, PushResponse};
use feltkontor_wire::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use uuid::Uuid;

const USERS: [&str; 5] = ["coord", "teamcw", "psyteam", "psy", "outsider"];
const LANGUAGES: [Option<&str>; 4] = [Some("dansk"), Some("arabisk"), Some("somali"), None];
const INSTITUTIONS: [&str; 3] = ["Tovshøjskolen", "Ellekærskolen", "Nordgårdskolen"];

/// One field write, as the service applied it.
#[derive(Clone, Debug)]
struct Write {
    op: OpId,
    value: Value,
    hlc: Hlc,
}

/// The test's account of the service.
#[derive(Default)]
struct Model {
    /// Applied writes per (entity, id, field), in the order the service applied them.
    writes: BTreeMap<(EntityKind, Uuid, String), Vec<Write>>,
    /// The writes each device had seen, per (device, seq) of its change-log entries.
    seen_at_write: BTreeMap<(usize, u64), HashSet<OpId>>,
    /// Writes each device has seen: its own, and all applied ones at its last complete pull.
    known: Vec<HashSet<OpId>>,
    /// The highest sequence number the service holds per device.
    acked: Vec<u64>,
    /// The conflicts the service must hold, per (entity, id, field).
    expected_conflicts: BTreeMap<(EntityKind, Uuid, String), usize>,
    applied_entries: usize,
    rejected_entries: usize,
    /// Refused note changes: each must wait in the service's quarantine, never discarded.
    rejected_notes: usize,
}

impl Model {
    /// Takes account of one push by device `d` and the service's answer.
    fn pushed(
        &mut self,
        d: usize,
        entries: &[ChangeEntry],
        resp: &PushResponse,
        visible: &[String],
    ) {
        let rejected: BTreeSet<u64> = resp.rejected.iter().map(|r| r.seq).collect();
        let mut sorted: Vec<&ChangeEntry> = entries.iter().collect();
        sorted.sort_by_key(|e| e.seq);
        let before = self.acked[d];
        for r in resp.rejected.iter().filter(|r| r.seq > before) {
            // A change is refused only while its worker cannot see the case.
            assert_eq!(r.code, "forbidden", "device {d}: unexpected refusal {r:?}");
            let entry = sorted
                .iter()
                .find(|e| e.seq == r.seq)
                .expect("refused entry was sent");
            let case = entry
                .fields
                .get("case_id")
                .and_then(|f| f.value.as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| entry.entity_id.to_string());
            assert!(
                !visible.contains(&format!("case:{case}")),
                "device {d}: refused a change in a case its worker sees: {r:?}"
            );
        }
        for e in sorted {
            if e.seq <= self.acked[d] {
                continue; // a re-delivery: the service had it
            }
            self.acked[d] = e.seq;
            if rejected.contains(&e.seq) {
                self.rejected_entries += 1;
                if e.entity == EntityKind::Note {
                    self.rejected_notes += 1;
                }
                continue;
            }
            self.applied_entries += 1;
            let seen = self
                .seen_at_write
                .get(&(d, e.seq))
                .cloned()
                .unwrap_or_default();
            for (field, change) in &e.fields {
                let key = (e.entity, e.entity_id, field.clone());
                let list = self.writes.entry(key.clone()).or_default();
                if field != "archived" {
                    if let Some(held) = list.iter().max_by_key(|w| w.hlc) {
                        if !seen.contains(&held.op) && held.value != change.value {
                            *self.expected_conflicts.entry(key).or_default() += 1;
                        }
                    }
                }
                list.push(Write {
                    op: e.op_id,
                    value: change.value.clone(),
                    hlc: change.hlc,
                });
            }
        }
        assert_eq!(
            resp.acked_seq, self.acked[d],
            "device {d}: acknowledged up to"
        );
    }

    /// Device `d` pulled completely: it has seen every applied write.
    fn pulled(&mut self, d: usize) {
        let all: Vec<OpId> = self.writes.values().flatten().map(|w| w.op).collect();
        self.known[d].extend(all);
    }

    /// Device `d` wrote entry `seq` knowing what it knows now.
    fn wrote(&mut self, d: usize, entry: &ChangeEntry) {
        self.seen_at_write
            .insert((d, entry.seq), self.known[d].clone());
        self.known[d].insert(entry.op_id);
    }
}

struct Sim {
    rt: tokio::runtime::Runtime,
    db: Db,
    w: World,
    devices: Vec<Device>,
    model: Model,
    teamcw_member: bool,
    rng: StdRng,
    /// Buckets a device found different from the service's by their checksum (each a
    /// divergence that sync itself should never cause).
    checksum_resets: Vec<String>,
}

impl Sim {
    fn visible(&self, d: usize) -> Vec<String> {
        let page = self
            .rt
            .block_on(self.devices[d].remote.pull(&PullRequest {
                cursors: BTreeMap::new(),
                limit: 1,
            }))
            .unwrap();
        page.visible
    }

    /// Records the change-log entries written since `before` as device `d`'s writes.
    fn note_writes(&mut self, d: usize, before: u64) {
        let entries = self.devices[d].store.pending_push(10_000).unwrap();
        for e in entries.iter().filter(|e| e.seq > before) {
            self.model.wrote(d, e);
        }
    }

    fn last_seq(&self, d: usize) -> u64 {
        self.devices[d]
            .store
            .conn()
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM change_log", [], |r| {
                r.get(0)
            })
            .unwrap()
    }

    fn push(&mut self, d: usize) {
        let visible = self.visible(d);
        let Sim {
            rt, devices, model, ..
        } = self;
        let mut report = SyncReport::default();
        let dev = &mut devices[d];
        rt.block_on(push_all(
            &dev.remote,
            &std::cell::RefCell::new(&mut dev.store),
            &mut report,
            &mut |entries, resp| model.pushed(d, entries, resp, &visible),
        ))
        .unwrap();
    }

    fn pull(&mut self, d: usize) {
        let mut report = SyncReport::default();
        let dev = &mut self.devices[d];
        self.rt
            .block_on(pull_all(
                &dev.remote,
                &std::cell::RefCell::new(&mut dev.store),
                &mut report,
                &mut |_| {},
            ))
            .unwrap();
        self.checksum_resets.extend(report.checksum_resets);
        self.model.pulled(d);
    }

    fn sync(&mut self, d: usize) {
        self.push(d);
        self.pull(d);
    }

    /// One batch reaches the service, but the device is killed before its checkpoint.
    fn push_lost_ack(&mut self, d: usize) {
        let batch = next_batch(&self.devices[d].store).unwrap();
        if batch.is_empty() {
            return;
        }
        let visible = self.visible(d);
        let req = feltkontor_wire::sync::PushRequest { entries: batch };
        let resp = self.rt.block_on(self.devices[d].remote.push(&req)).unwrap();
        self.model.pushed(d, &req.entries, &resp, &visible);
    }

    fn edit(&mut self, d: usize) {
        let before = self.last_seq(d);
        let dev = &mut self.devices[d];
        let me = StaffId(dev.staff);
        let rng = &mut self.rng;
        let case = if USERS[d] == "outsider" {
            self.w.case2
        } else {
            self.w.case1
        };
        let Ok(Some(c)) = dev.store.get::<Case>(case) else {
            return; // the device does not hold the case now
        };
        let live = |store: &feltkontor_core::Store, table: &str| -> Vec<Uuid> {
            let mut stmt = store
                .conn()
                .prepare(&format!(
                    "SELECT id FROM {table} WHERE case_id = ?1 AND archived = 0 ORDER BY id"
                ))
                .unwrap();
            stmt.query_map([case.to_string()], |r| r.get::<_, String>(0))
                .unwrap()
                .map(|s| s.unwrap().parse().unwrap())
                .collect()
        };
        let persons = live(&dev.store, "persons");
        let store = &mut dev.store;
        let result = match rng.gen_range(0..17) {
            0 => store.write(|wr| wr.put_person(&new_person(case, "Ny Person"))),
            1..=3 | 14..=16 if !persons.is_empty() => {
                let id = *persons.choose(rng).unwrap();
                let mut p: Person = store.get(id).unwrap().unwrap();
                match rng.gen_range(0..3) {
                    0 => p.language = LANGUAGES.choose(rng).unwrap().map(Into::into),
                    1 => p.interpreter_needed = !p.interpreter_needed,
                    _ => p.email = Some(format!("p{}@example.dk", rng.gen_range(0..3))),
                }
                store.write(|wr| wr.put_person(&p))
            }
            4 if !persons.is_empty() => {
                let phone = Phone {
                    id: RowId::new(),
                    case_id: CaseId(case),
                    person_id: PersonId(*persons.choose(rng).unwrap()),
                    number: format!("2{:07}", rng.gen_range(0..10_000_000)),
                    label: Some("mobil".into()),
                };
                store.write(|wr| wr.add_phone(&phone))
            }
            5 => {
                let phones = live(store, "phones");
                match phones.choose(rng) {
                    Some(id) => store.write(|wr| wr.remove_phone(RowId(*id))),
                    None => Ok(()),
                }
            }
            6 if persons.len() >= 2 => {
                let two: Vec<_> = persons.choose_multiple(rng, 2).collect();
                let r = Relation {
                    id: RowId::new(),
                    case_id: CaseId(case),
                    from_person_id: Some(PersonId(*two[0])),
                    to_person_id: PersonId(*two[1]),
                    quality: *[RelationQuality::Supportive, RelationQuality::Strained]
                        .choose(rng)
                        .unwrap(),
                    as_of: time::macros::date!(2026 - 01 - 01),
                };
                store.write(|wr| wr.add_relation(&r))
            }
            7 => {
                // A new draft, a draft edited, signed, or an addendum to a signed note.
                let mine: Vec<CaseNote> = live(store, "notes")
                    .into_iter()
                    .filter_map(|id| store.get::<CaseNote>(id).unwrap())
                    .collect();
                let drafts: Vec<&CaseNote> = mine
                    .iter()
                    .filter(|n| n.author_id == me && n.status == NoteStatus::Draft)
                    .collect();
                let signed: Vec<&CaseNote> = mine
                    .iter()
                    .filter(|n| n.status == NoteStatus::Signed)
                    .collect();
                match rng.gen_range(0..4) {
                    0 if !drafts.is_empty() => {
                        let id = drafts.choose(rng).unwrap().id;
                        store.write(|wr| wr.sign_note(id).map(|_| ()))
                    }
                    1 if !drafts.is_empty() => {
                        let mut n = (*drafts.choose(rng).unwrap()).clone();
                        n.body = format!("{} Tilføjet {}.", n.body.0, rng.gen_range(0..100)).into();
                        store.write(|wr| wr.save_note(&n).map(|_| ()))
                    }
                    2 if !signed.is_empty() => {
                        let target = signed.choose(rng).unwrap();
                        let mut n = draft_note(case, me, "Tilføjelse til notatet");
                        n.addendum_to = Some(target.id);
                        store.write(|wr| wr.save_note(&n).map(|_| ()))
                    }
                    _ => {
                        let n = draft_note(case, me, "Hjemmebesøg uden net");
                        store.write(|wr| wr.save_note(&n).map(|_| ()))
                    }
                }
            }
            8 | 9 => {
                let agreements = live(store, "agreements");
                match (rng.gen_range(0..3), agreements.choose(rng)) {
                    (0, Some(id)) => {
                        let mut a: Agreement = store.get(*id).unwrap().unwrap();
                        a.what = format!("Aftale {}", rng.gen_range(0..3));
                        store.write(|wr| wr.put_agreement(&a))
                    }
                    (1, Some(id))
                        if store
                            .get::<Agreement>(*id)
                            .unwrap()
                            .unwrap()
                            .done_at
                            .is_none() =>
                    {
                        store.write(|wr| wr.mark_agreement_done(AgreementId(*id)).map(|_| ()))
                    }
                    _ => {
                        let a = Agreement {
                            id: AgreementId::new(),
                            case_id: CaseId(case),
                            what: "Mor ringer til skolen".into(),
                            responsible_staff_id: Some(me),
                            responsible_person_id: None,
                            due_on: None,
                            done_at: None,
                        };
                        store.write(|wr| wr.put_agreement(&a))
                    }
                }
            }
            10 => {
                let mut c = c.clone();
                c.child_institution = Some((*INSTITUTIONS.choose(rng).unwrap()).into());
                store.write(|wr| wr.update_case(&c))
            }
            11 if c.coordinator_id == me && case == self.w.case1 => {
                let to = if USERS[d] == "coord" {
                    "teamcw"
                } else {
                    "coord"
                };
                let to = StaffId(self.w.staff[to]);
                store.write(|wr| {
                    wr.handover(CaseId(case), to, "Overdraget på teammødet")
                        .map(|_| ())
                })
            }
            12 if USERS[d] == "coord" => {
                // The PPR consent: withdrawn, or given again (the psychologists' access).
                let consents = live(store, "consents");
                let ppr: Vec<Consent> = consents
                    .iter()
                    .filter_map(|id| store.get::<Consent>(*id).unwrap())
                    .filter(|c| c.sectors.contains(&ConsentSector::Ppr) && c.withdrawn_at.is_none())
                    .collect();
                match ppr.first() {
                    Some(c) => store.write(|wr| wr.withdraw_consent(c.id).map(|_| ())),
                    None => {
                        let c = ppr_consent(case, self.w.mother);
                        store.write(|wr| wr.record_consent(&c))
                    }
                }
            }
            13 => {
                let open = store.open_conflicts(None).unwrap();
                match open.choose(rng) {
                    Some(c) => {
                        let pick = if rng.gen_bool(0.5) {
                            &c.kept_value
                        } else {
                            &c.other_value
                        };
                        let value: Value = serde_json::from_str(pick).unwrap();
                        store.resolve_conflict(c.id, &value).map(|_| ())
                    }
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        };
        // A refusal by the device's own rules (e.g. the case was handed over meanwhile) writes
        // nothing; anything else is a bug.
        if let Err(e) = result {
            assert!(
                matches!(
                    e,
                    feltkontor_core::Error::Invalid(_) | feltkontor_core::Error::NotFound { .. }
                ),
                "device {d}: {e}"
            );
        }
        self.note_writes(d, before);
    }

    fn toggle_membership(&mut self) {
        let cmd = if self.teamcw_member {
            "remove-member"
        } else {
            "add-member"
        };
        self.db
            .admin(
                &[cmd, "--username", "teamcw", "--team", "Team Gellerup"],
                None,
            )
            .success();
        self.teamcw_member = !self.teamcw_member;
    }

    /// Gives everyone their scope back, then syncs every device until nothing moves.
    fn settle(&mut self) {
        if !self.teamcw_member {
            self.toggle_membership();
        }
        // The coordinator makes sure a PPR consent is in force.
        self.sync(0);
        let case = self.w.case1;
        let store = &mut self.devices[0].store;
        let covered = store
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM consents WHERE case_id = ?1 AND archived = 0 AND withdrawn_at IS NULL AND sectors LIKE '%ppr%'",
                [case.to_string()],
                |r| r.get::<_, i64>(0),
            )
            .unwrap();
        if covered == 0 {
            let before = self.last_seq(0);
            let c = ppr_consent(case, self.w.mother);
            self.devices[0]
                .store
                .write(|wr| wr.record_consent(&c))
                .unwrap();
            self.note_writes(0, before);
        }
        for _ in 0..2 {
            for d in 0..self.devices.len() {
                self.sync(d);
            }
        }
        for (d, dev) in self.devices.iter().enumerate() {
            assert_eq!(
                dev.store.pending_count().unwrap(),
                0,
                "device {d} still has changes"
            );
        }
    }

    fn check(&mut self, schedule: u64) {
        let ctx = |what: &str| format!("schedule {schedule}: {what}");
        for (d, dev) in self.devices.iter_mut().enumerate() {
            assert_converged(&self.rt, dev, &ctx(USERS[d]));
            // The daily comparison agrees: every bucket held is complete and the same.
            let held = dev
                .store
                .sync_cursors()
                .unwrap()
                .values()
                .filter(|c| **c > 0)
                .count();
            let mut report = SyncReport::default();
            let compared = self
                .rt
                .block_on(verify_buckets(
                    &dev.remote,
                    &std::cell::RefCell::new(&mut dev.store),
                    &mut report,
                    &mut |_| {},
                ))
                .unwrap();
            assert!(compared, "{}", ctx(USERS[d]));
            assert_eq!(report.verified_buckets, held, "{}", ctx(USERS[d]));
            assert!(
                report.checksum_resets.is_empty(),
                "{}: {:?}",
                ctx(USERS[d]),
                report.checksum_resets
            );
        }
        let mut owner = self.db.owner();
        // Every field holds its newest applied write.
        let mut records: BTreeMap<(String, Uuid), serde_json::Map<String, Value>> = BTreeMap::new();
        for row in owner
            .query("SELECT entity, id, data FROM records", params![])
            .unwrap()
        {
            let data: serde_json::Map<String, Value> =
                serde_json::from_str(&row.text(2).unwrap()).unwrap();
            records.insert(
                (row.text(0).unwrap(), row.text(1).unwrap().parse().unwrap()),
                data,
            );
        }
        for ((entity, id, field), writes) in &self.model.writes {
            if field == "archived" {
                continue;
            }
            let newest = writes.iter().max_by_key(|w| w.hlc).unwrap();
            let held = records
                .get(&(entity.as_str().to_owned(), *id))
                .unwrap_or_else(|| panic!("{}", ctx(&format!("{entity:?} {id} is lost"))));
            assert_eq!(
                held.get(field).unwrap_or(&Value::Null),
                &newest.value,
                "{}",
                ctx(&format!("{entity:?} {id} field {field}"))
            );
        }
        // Exactly the expected conflicts.
        let mut conflicts: BTreeMap<(EntityKind, Uuid, String), usize> = BTreeMap::new();
        for ((entity, _), data) in &records {
            if entity == "conflict" {
                let c: Conflict = serde_json::from_value(Value::Object(data.clone())).unwrap();
                *conflicts
                    .entry((c.entity, c.entity_id, c.field))
                    .or_default() += 1;
            }
        }
        assert_eq!(
            conflicts,
            self.model.expected_conflicts,
            "{}",
            ctx("conflicts")
        );
        // Every applied change audited once.
        let audited = self.db.audited_writes();
        assert_eq!(
            audited as usize,
            self.model.applied_entries,
            "{}",
            ctx("audit")
        );
        // Notes refused because their author had lost access wait in quarantine.
        let quarantined = owner
            .query_one("SELECT COUNT(*) FROM quarantine", params![])
            .unwrap()
            .unwrap()
            .int(0)
            .unwrap();
        assert_eq!(
            quarantined as usize,
            self.model.rejected_notes,
            "{}",
            ctx("quarantine")
        );
        // Signed notes match their signature, and the service's seal.
        for ((entity, id), data) in &records {
            if entity != "note" {
                continue;
            }
            let n: CaseNote = serde_json::from_value(Value::Object(data.clone())).unwrap();
            if n.status == NoteStatus::Signed {
                let hash = rules::content_hash(&n);
                assert_eq!(
                    n.content_hash.as_deref(),
                    Some(hash.as_str()),
                    "{}",
                    ctx("signature")
                );
                let sealed = owner
                    .query_one(
                        "SELECT content_hash FROM signed_notes WHERE note_id = $1",
                        params![*id],
                    )
                    .unwrap()
                    .map(|r| r.text(0).unwrap());
                if let Some(sealed) = sealed {
                    assert_eq!(sealed, hash, "{}", ctx("seal"));
                }
            }
        }
    }
}

fn ppr_consent(case: Uuid, mother: Uuid) -> Consent {
    Consent {
        id: ConsentId::new(),
        case_id: CaseId(case),
        given_by: PersonId(mother),
        sectors: BTreeSet::from([ConsentSector::Ppr]),
        valid_from: time::macros::date!(2024 - 01 - 01),
        valid_to: None,
        withdrawn_at: None,
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn random_schedules(kind: Kind) {
    let schedules = env_u64("FELTKONTOR_SYNC_SCHEDULES", 100);
    let first_seed = env_u64("FELTKONTOR_SYNC_SEED", 20_261_123);
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let instances = if kind == Kind::Postgres { 3 } else { 1 };
    let servers: Vec<Server> = (0..instances).map(|_| Server::start(&db, &[])).collect();
    let rt = rt();
    let devices: Vec<Device> = USERS
        .iter()
        .enumerate()
        .map(|(i, u)| device(&servers[i % instances], &db, u))
        .collect();
    let n = devices.len();
    let mut sim = Sim {
        rt,
        db,
        w,
        devices,
        model: Model {
            known: vec![HashSet::new(); n],
            acked: vec![0; n],
            ..Model::default()
        },
        teamcw_member: true,
        checksum_resets: Vec::new(),
        rng: StdRng::seed_from_u64(first_seed),
    };
    for d in 0..n {
        sim.sync(d);
    }
    // Access tokens live ten minutes; a long run refreshes them as the app would.
    let mut tokens_at = std::time::Instant::now();
    for schedule in first_seed..first_seed + schedules {
        if tokens_at.elapsed() > std::time::Duration::from_secs(5 * 60) {
            for (i, dev) in sim.devices.iter_mut().enumerate() {
                dev.refresh(&sim.rt, &servers[i % instances].base);
            }
            tokens_at = std::time::Instant::now();
        }
        sim.rng = StdRng::seed_from_u64(schedule);
        let steps = sim.rng.gen_range(8..24);
        for _ in 0..steps {
            let d = sim.rng.gen_range(0..n);
            match sim.rng.gen_range(0..100) {
                0..=64 => sim.edit(d),
                65..=84 => sim.sync(d),
                85..=89 => sim.push(d),
                90..=94 => sim.push_lost_ack(d),
                _ => sim.toggle_membership(),
            }
        }
        sim.settle();
        sim.check(schedule);
    }
    eprintln!(
        "{kind:?}: {schedules} schedules, {} changes applied, {} refused ({} notes quarantined), {} conflicts",
        sim.model.applied_entries,
        sim.model.rejected_entries,
        sim.model.rejected_notes,
        sim.model.expected_conflicts.values().sum::<usize>()
    );
    assert!(
        sim.model.expected_conflicts.values().sum::<usize>() > 0,
        "no schedule made a conflict"
    );
    assert!(
        sim.checksum_resets.is_empty(),
        "devices diverged from the service (found by checksum): {:?}",
        sim.checksum_resets
    );
    assert!(
        sim.model.rejected_entries > 0 || schedules < 20,
        "no schedule lost scope while offline"
    );
}
backends!(random_schedules);
