//! `make bench-sync`: the sync client against the release server binary on loopback, each
//! device with its own encrypted store on disk. Writes target/bench/sync.md.
//!
//! 1. A coordinator's caseload (200 cases, 2,000 people, 10,000 signed notes) is written on one
//!    device and pushed (the drain rate of a large queue).
//! 2. First sync of a new device for that worker: wall time and records/s, against the raw
//!    bulk insert of the same rows into an encrypted SQLite file in one transaction, measured
//!    in the same run. The records and the medians are written for the PouchDB replication of
//!    the same records that `make bench-sync` measures next (`tests/bench/pouchdb`).
//! 3. Resume: a first sync broken off after half its pages, then resumed: bytes downloaded by
//!    the resumed sync against the bytes still missing (counted by a loopback proxy).
//! 4. Incremental sync of 100 pending changes (push and pull, one round): 15 rounds, p50/p95.
//! 5. Draining 1,000 queued changes after reconnect: 5 rounds.
//! 6. Load: 200 devices (40 per worker, five workers) each making a change and syncing in a
//!    loop for 15 s after a 3 s warm-up, on SQLite and on PostgreSQL; and on PostgreSQL with
//!    three instances behind HAProxy, one of them killed (SIGKILL) half-way and restarted two
//!    seconds later: afterwards every change was applied exactly once, the devices converged
//!    and `admin audit-verify` passes.

#[path = "../tests/common/mod.rs"]
mod common;

/// The app's allocator (`src-tauri/src/main.rs`): the client runs in this process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use common::balancer::Balancer;
use common::convergence::changes_made;
use common::devices::*;
use common::proxy::Proxy;
use common::world;
use common::{Db, Kind, Server, FAST_LIMITS};
use feltkontor_core::domain::*;
use feltkontor_core::store::sync::CheckedPage;
use feltkontor_core::store::{KdfParams, StoreLocation};
use feltkontor_core::{Store, SystemClock};
use feltkontor_sync::{pull_all, sync_once, Remote, SyncReport};
use feltkontor_wire::*;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::macros::date;

const CASES: usize = 200;
const PEOPLE_PER_CASE: usize = 10;
const NOTES_PER_CASE: usize = 50;
const LOAD_DEVICES: usize = 200;
/// Timed first syncs (and baselines); the table shows the medians.
const FIRST_SYNC_RUNS: usize = 5;
const WARMUP: Duration = Duration::from_secs(3);
const RUN: Duration = Duration::from_secs(15);
fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn body(i: usize) -> String {
    format!(
        "Hjemmebesøg nr. {i}. Mor fortæller, at morgenerne er blevet lettere, siden skolen og \
         sundhedsplejen begyndte at mødes med familien hver anden uge. Barnet siger selv, at det \
         bedste er frikvarteret og det værste er bussen. Vi aftalte at tale med klasselæreren \
         om en fast voksen i ydertimerne og at følge op ved næste netværksmøde."
    )
}

/// The coordinator's caseload, written on `d` (not yet pushed).
fn write_caseload(d: &mut Device, team: uuid::Uuid) {
    let me = StaffId(d.staff);
    for c in 0..CASES {
        let case = Case {
            id: CaseId::new(),
            team_id: TeamId(team),
            child_name: format!("Barn {c}"),
            child_birth_date: date!(2016 - 05 - 01),
            child_cpr: None,
            child_institution: Some("Tovshøjskolen".into()),
            status: CaseStatus::Open,
            closed_reason: None,
            coordinator_id: me,
            opened_on: date!(2025 - 01 - 10),
            first_concern_on: None,
            first_meeting_on: None,
        };
        d.store
            .write(|wr| {
                wr.open_case(&case)?;
                for p in 0..PEOPLE_PER_CASE {
                    wr.put_person(&new_person(case.id.0, &format!("Person {c}-{p}")))?;
                }
                for n in 0..NOTES_PER_CASE {
                    let note = draft_note(case.id.0, me, &body(c * NOTES_PER_CASE + n));
                    wr.save_note(&note)?;
                    wr.sign_note(note.id)?;
                }
                Ok(())
            })
            .unwrap();
    }
}

struct Single {
    records: usize,
    seed_changes: u64,
    seed_push: Duration,
    first_sync: Duration,
    search_catch_up: Duration,
    pull_only: Duration,
    check_only: Duration,
    apply_only: Duration,
    bulk: Duration,
    resume_ratio: f64,
    resume_bytes: u64,
    missing_bytes: u64,
    full_bytes: u64,
    json_bytes: u64,
    incremental: Vec<f64>,
    drain: Vec<f64>,
}

/// Applies pulled pages to a new store (after `sql`, if given) as the app does: each page
/// checked ([`CheckedPage::check`], done by the app on the task that reads the stream), then
/// stored, and the write-ahead log copied once at the end. The time the checks took, and the
/// time storing took.
fn apply_pages(
    staff: uuid::Uuid,
    pages: &[feltkontor_wire::sync::PullResponse],
    sql: Option<&str>,
) -> (Duration, Duration, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create_with(
        &StoreLocation::new(dir.path().join("p")),
        "en lang nok adgangssaetning",
        StaffId(staff),
        DeviceId::new(),
        KdfParams::default(),
        Arc::new(SystemClock),
    )
    .unwrap();
    if let Some(sql) = sql {
        store.conn().execute_batch(sql).unwrap();
    }
    let t = Instant::now();
    let checked: Vec<CheckedPage> = pages
        .iter()
        .map(|p| CheckedPage::check(p.clone()).unwrap())
        .collect();
    let check = t.elapsed();
    let t = Instant::now();
    for page in &checked {
        store.apply_checked(page).unwrap();
    }
    store.checkpoint().unwrap();
    (check, t.elapsed(), dir)
}

fn single_device(rt: &tokio::runtime::Runtime) -> Single {
    let db = Db::migrated(Kind::Sqlite);
    let w = world::build(&db);
    let server = Server::start(&db, &FAST_LIMITS);
    let mut writer = device(&server, &db, "coord");
    writer.sync(rt);
    write_caseload(&mut writer, w.team_a);
    let seed_changes = writer.store.pending_count().unwrap();
    let t = Instant::now();
    writer.sync(rt);
    let seed_push = t.elapsed();
    eprintln!("caseload pushed: {seed_changes} changes in {seed_push:?}");

    // First sync of a new device, through a (clean) proxy that counts the bytes.
    let proxy = Proxy::start(server.addr(), 1);
    let mut fresh = device(&server, &db, "coord");
    fresh.remote = Remote::new(&proxy.base, &fresh.token).unwrap();
    let before = proxy.bytes_down.load(Ordering::Relaxed);
    let report = fresh.sync(rt);
    let full_bytes = proxy.bytes_down.load(Ordering::Relaxed) - before;
    let live = fresh.store.live_records().unwrap();
    let rows: Vec<(String, String, String)> = live
        .iter()
        .map(|((e, id), data)| {
            (
                e.as_str().to_owned(),
                id.to_string(),
                serde_json::to_string(data).unwrap(),
            )
        })
        .collect();
    // Timed: first syncs of more new devices, straight to the service, each followed by its
    // search index catching up and by the baseline; the medians go in the table (this shared
    // machine is noisy).
    let mut first_syncs = Vec::new();
    let mut searches = Vec::new();
    let mut bulks = Vec::new();
    for _ in 0..FIRST_SYNC_RUNS {
        let mut d = device(&server, &db, "coord");
        let t = Instant::now();
        let r = d.sync(rt);
        first_syncs.push(t.elapsed());
        assert_eq!(r.pulled_records, report.pulled_records);
        let t = Instant::now();
        let cell = std::cell::RefCell::new(&mut d.store);
        rt.block_on(feltkontor_sync::catch_up_search(&cell))
            .unwrap();
        searches.push(t.elapsed());
        bulks.push(common::baseline::bulk_insert(&rows));
    }
    eprintln!("first syncs {first_syncs:?}; search catch-up {searches:?}; bulk {bulks:?}");
    let first_sync = median(&mut first_syncs);
    let search_catch_up = median(&mut searches);
    let bulk = median(&mut bulks);
    write_first_sync_rows(&rows, first_sync, bulk);
    // The same pages pulled again by a device that does not apply them: the service and the
    // transfer alone.
    let t = Instant::now();
    let mut pulled_pages = Vec::new();
    let mut cursors = std::collections::BTreeMap::new();
    loop {
        let page = rt
            .block_on(fresh.remote.pull(&feltkontor_wire::sync::PullRequest {
                cursors: cursors.clone(),
                limit: feltkontor_sync::PULL_PAGE,
            }))
            .unwrap();
        for b in &page.buckets {
            cursors.insert(b.bucket.clone(), b.cursor);
        }
        let more = page.more;
        pulled_pages.push(page);
        if !more {
            break;
        }
    }
    let pull_only = t.elapsed();

    // The same pages applied to a new store with no network at all: the device's own part.
    // `FK_APPLY_EXPERIMENT=<SQL>` also applies them to a store that ran the SQL first (e.g. the
    // search tables replaced, to see what indexing costs); printed, not in the table.
    let (check_only, apply_only, _) = apply_pages(fresh.staff, &pulled_pages, None);
    eprintln!(
        "check only: {check_only:?}; apply only: {apply_only:?} for {} pages; pull only {pull_only:?}",
        pulled_pages.len()
    );
    if let Ok(sql) = std::env::var("FK_APPLY_EXPERIMENT") {
        let (_, t, _) = apply_pages(fresh.staff, &pulled_pages, Some(&sql));
        eprintln!("apply after `{sql}`: {t:?}");
    }
    eprintln!(
        "first sync: {} records pulled ({} live) in {first_sync:?}; bulk insert {bulk:?}",
        report.pulled_records,
        rows.len()
    );
    if std::env::var_os("FELTKONTOR_BENCH_FIRST_SYNC_ONLY").is_some() {
        // Stopped first: exiting skips the destructors that would.
        drop(proxy);
        drop(server);
        std::process::exit(0);
    }

    // Resume: the network goes in the middle of a first sync (at half the bytes of a whole
    // one, inside a page), then the device syncs again.
    let Device {
        store,
        token,
        staff,
        device: id,
        _dir,
        ..
    } = device(&server, &db, "coord");
    let remote = Remote::new(&proxy.base, &token).unwrap();
    let pages_total = report
        .pulled_records
        .div_ceil(feltkontor_sync::PULL_PAGE as usize);
    let pages = Arc::new(AtomicUsize::new(0));
    let start_bytes = proxy.bytes_down.load(Ordering::Relaxed);
    proxy.cut_down_at(start_bytes + full_bytes / 2);
    let local = Mutex::new(Some(store));
    {
        let p = pages.clone();
        rt.block_on(async {
            let mut partial = SyncReport::default();
            let mut on_page = move |_: &SyncReport| {
                p.fetch_add(1, Ordering::SeqCst);
            };
            let cut = pull_all(&remote, &local, &mut partial, &mut on_page).await;
            assert!(cut.is_err(), "the network went in the middle");
        });
    }
    proxy.cut_down_at(u64::MAX);
    let mut resumed = Device {
        store: local.into_inner().unwrap().unwrap(),
        remote,
        token,
        staff,
        device: id,
        _dir,
    };
    let before = proxy.bytes_down.load(Ordering::Relaxed);
    resumed.sync(rt);
    let resume_bytes = proxy.bytes_down.load(Ordering::Relaxed) - before;
    let pages_applied = pages.load(Ordering::SeqCst);
    // What was missing: the pages not applied when the network went (the same pages, as the
    // cursors are the same), as JSON. A page being fetched ahead at the cut is lost and not
    // counted here; nor are HTTP headers (a few hundred bytes a request).
    // The answers travel gzipped (the service's fastest level): so is what was missing.
    let missing_bytes: u64 = pulled_pages[pages_applied.min(pulled_pages.len())..]
        .iter()
        .map(|p| gzip_len(&serde_json::to_vec(p).unwrap()))
        .sum();

    assert_converged(rt, &resumed, "resumed");
    eprintln!(
        "resume after {pages_applied}/{pages_total} pages applied and part of the next: {resume_bytes} bytes, {missing_bytes} missing"
    );

    // Incremental: 100 changes, one round; and draining 1,000.
    let mut incremental = Vec::new();
    let mut drain = Vec::new();
    let mut father = writer.store.get::<Person>(w.father).unwrap().unwrap();
    for (n, out) in [(100usize, &mut incremental), (1_000, &mut drain)] {
        let rounds = if n == 100 { 15 } else { 5 };
        for r in 0..rounds {
            writer
                .store
                .write(|wr| {
                    for i in 0..n {
                        father.language = Some(format!("sprog {n}-{r}-{i}"));
                        wr.put_person(&father)?;
                    }
                    Ok(())
                })
                .unwrap();
            let t = Instant::now();
            let rep = writer.sync(rt);
            out.push(ms(t.elapsed()));
            assert_eq!(rep.pushed, n as u64);
        }
        out.sort_by(|a, b| a.total_cmp(b));
    }
    Single {
        records: report.pulled_records,
        seed_changes,
        seed_push,
        first_sync,
        search_catch_up,
        pull_only,
        check_only,
        apply_only,
        bulk,
        resume_ratio: resume_bytes as f64 / missing_bytes.max(1) as f64,
        resume_bytes,
        missing_bytes,
        full_bytes,
        json_bytes: pulled_pages
            .iter()
            .map(|p| serde_json::to_vec(p).unwrap().len() as u64)
            .sum(),
        incremental,
        drain,
    }
}

/// A change saved on one online device, seen on another online device: the writer pushes
/// after the app's debounce; the reader waits at the service (live updates) and pulls when
/// woken. 20 changes, 0.3–0.7 s apart.
fn propagation(rt: &tokio::runtime::Runtime) -> Vec<f64> {
    let db = Db::migrated(Kind::Sqlite);
    let w = world::build(&db);
    let server = Server::start(&db, &FAST_LIMITS);
    let mut writer = device(&server, &db, "coord");
    let mut reader = device(&server, &db, "teamcw");
    // The reader runs on a runtime of its own (its thread): connections of its own too, as
    // a pooled connection is driven by the runtime that opened it.
    reader.remote = Remote::with_own_connections(&server.base, &reader.token).unwrap();
    writer.sync(rt);
    reader.sync(rt);
    const N: usize = 20;
    let people: Vec<Person> = (0..N)
        .map(|i| new_person(w.case1, &format!("Levende {i}")))
        .collect();
    let ids: Vec<uuid::Uuid> = people.iter().map(|p| p.id.0).collect();
    let (tx, rx) = std::sync::mpsc::channel::<(usize, Instant)>();
    let reader_thread = std::thread::spawn(move || {
        let rt = common::devices::rt();
        let mut heard = rt.block_on(reader.remote.wait(0)).unwrap();
        let mut seen = [false; N];
        while seen.iter().any(|s| !s) {
            let generation = rt.block_on(reader.remote.wait(heard)).unwrap();
            if generation == heard {
                continue;
            }
            heard = generation;
            reader.sync(&rt);
            let now = Instant::now();
            for (i, id) in ids.iter().enumerate() {
                if !seen[i] && reader.store.get::<Person>(*id).unwrap().is_some() {
                    seen[i] = true;
                    tx.send((i, now)).unwrap();
                }
            }
        }
    });
    let mut saved = Vec::new();
    let mut rng_state = 0x9E37_79B9_u64;
    for p in &people {
        let t0 = Instant::now();
        writer.store.write(|wr| wr.put_person(p)).unwrap();
        saved.push(t0);
        std::thread::sleep(feltkontor_sync::PUSH_DEBOUNCE);
        writer.sync(rt);
        rng_state = rng_state.wrapping_mul(6364136223846793005).wrapping_add(1);
        std::thread::sleep(Duration::from_millis(300 + (rng_state >> 33) % 400));
    }
    reader_thread.join().unwrap();
    let mut lat: Vec<f64> = rx.try_iter().map(|(i, at)| ms(at - saved[i])).collect();
    assert_eq!(lat.len(), N);
    lat.sort_by(|a, b| a.total_cmp(b));
    lat
}

struct Load {
    engine: &'static str,
    syncs: usize,
    errors: usize,
    p50: f64,
    p99: f64,
    pulled: usize,
    /// Three instances: the changes made, and what the checks afterwards found.
    checked: Option<String>,
}

/// Where the load's devices sync: one instance, or three behind HAProxy with one killed
/// (SIGKILL) half-way through the measured run and started again two seconds later.
#[derive(Clone, Copy, PartialEq)]
enum Setup {
    One,
    ThreeKilled,
}

fn load(kind: Kind, setup: Setup, rt: &tokio::runtime::Runtime) -> Load {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let args = [&FAST_LIMITS[..], &["--pool-size", "16"]].concat();
    let instances = if setup == Setup::One { 1 } else { 3 };
    let mut servers: Vec<Option<Server>> = (0..instances)
        .map(|_| Some(Server::start(&db, &args)))
        .collect();
    let balancer = (setup == Setup::ThreeKilled).then(|| {
        Balancer::start(
            &servers
                .iter()
                .map(|s| s.as_ref().unwrap().addr())
                .collect::<Vec<_>>(),
        )
    });
    let base = balancer
        .as_ref()
        .map(|b| b.base.clone())
        .unwrap_or_else(|| servers[0].as_ref().unwrap().base.clone());
    let client = common::Client {
        base: base.clone(),
        http: reqwest::blocking::Client::new(),
    };
    let users = ["coord", "teamcw", "psyteam", "psy", "outsider"];
    let mut devices = Vec::new();
    for i in 0..LOAD_DEVICES {
        let user = users[i % users.len()];
        let enrolled = client.enroll(&db, user);
        let staff: uuid::Uuid = enrolled["staff_id"].as_str().unwrap().parse().unwrap();
        let id: uuid::Uuid = enrolled["device_id"].as_str().unwrap().parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create_with(
            &StoreLocation::new(dir.path().join("profile")),
            "en lang nok adgangssaetning",
            StaffId(staff),
            DeviceId(id),
            KdfParams {
                memory_kib: KdfParams::MIN_MEMORY_KIB,
                iterations: 1,
                parallelism: 1,
            },
            Arc::new(SystemClock),
        )
        .unwrap();
        let remote = Remote::new(&base, &common::token(&enrolled)).unwrap();
        rt.block_on(sync_once(&remote, &mut store)).unwrap();
        let case = if user == "outsider" { w.case2 } else { w.case1 };
        devices.push((Mutex::new(Some(store)), remote, case, StaffId(staff), dir));
    }
    let audited_before = db.audited_writes();
    let devices = Arc::new(devices);
    let start = Instant::now();
    let (measure_from, end) = (start + WARMUP, start + WARMUP + RUN);
    // Half-way through the measured run one instance dies; two seconds later it is back.
    let killer = (setup == Setup::ThreeKilled).then(|| {
        let mut victim = servers[1].take().unwrap();
        let port = victim.addr().port();
        let db_url = (db.kind, db.owner_url.clone(), db.app_url.clone());
        let args = args.clone();
        std::thread::spawn(move || {
            std::thread::sleep(measure_from + RUN / 2 - Instant::now());
            victim.kill();
            std::thread::sleep(Duration::from_secs(2));
            let db = Db::at(db_url.0, db_url.1, db_url.2);
            let back = Server::start_on(&db, port, &args.iter().map(|s| &**s).collect::<Vec<_>>());
            back
        })
    });
    let results = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..LOAD_DEVICES {
            let devices = devices.clone();
            tasks.push(tokio::spawn(async move {
                let (local, remote, case, _, _) = &devices[i];
                let (mut lat, mut errors, mut pulled, mut n) = (Vec::new(), 0, 0, 0);
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    n += 1;
                    let p = new_person(*case, &format!("Belastning {i}-{n}"));
                    local
                        .lock()
                        .unwrap()
                        .as_mut()
                        .unwrap()
                        .write(|wr| wr.put_person(&p))
                        .unwrap();
                    let r = feltkontor_sync::sync_observed(remote, local, &mut |_, _| {}).await;
                    if t0 >= measure_from {
                        match r {
                            Ok(rep) => {
                                lat.push(ms(t0.elapsed()));
                                pulled += rep.pulled_records;
                            }
                            Err(_) => errors += 1,
                        }
                    }
                }
                (lat, errors, pulled)
            }));
        }
        let mut all = Vec::new();
        let (mut errors, mut pulled) = (0, 0);
        for t in tasks {
            let (l, e, p) = t.await.unwrap();
            all.extend(l);
            errors += e;
            pulled += p;
        }
        all.sort_by(|a, b| a.total_cmp(b));
        (all, errors, pulled)
    });
    if let Some(k) = killer {
        servers[1] = Some(k.join().unwrap());
    }
    let checked =
        (setup == Setup::ThreeKilled).then(|| check_after_kill(rt, &db, &devices, audited_before));
    let (all, errors, pulled) = results;
    Load {
        engine: match (kind, setup) {
            (Kind::Sqlite, _) => "SQLite",
            (Kind::Postgres, Setup::One) => "PostgreSQL",
            (Kind::Postgres, Setup::ThreeKilled) => {
                "PostgreSQL, three instances behind HAProxy, one killed half-way and restarted"
            }
        },
        syncs: all.len(),
        errors,
        p50: pct(&all, 0.5),
        p99: pct(&all, 0.99),
        pulled,
        checked,
    }
}

type LoadDevice = (
    Mutex<Option<Store>>,
    Remote,
    uuid::Uuid,
    StaffId,
    tempfile::TempDir,
);

/// After the run with a killed instance: every device syncs until a round succeeds and nothing
/// is pending; then every change every device made was applied exactly once (one audited
/// `sync_write` each), one device per worker holds exactly what the service says it may see,
/// and `admin audit-verify` passes. Panics otherwise; returns the summary for the table.
fn check_after_kill(
    rt: &tokio::runtime::Runtime,
    db: &Db,
    devices: &[LoadDevice],
    audited_before: i64,
) -> String {
    let mut made = 0;
    for (local, remote, _, _, _) in devices {
        let mut store = local.lock().unwrap().take().unwrap();
        let mut tries = 0;
        loop {
            match rt.block_on(sync_once(remote, &mut store)) {
                Ok(_) if store.pending_count().unwrap() == 0 => break,
                Ok(_) => {}
                Err(e) => assert!(e.transient() && tries < 20, "after the kill: {e}"),
            }
            tries += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(store.rejected_changes().unwrap().is_empty());
        made += changes_made(&store);
        *local.lock().unwrap() = Some(store);
    }
    // A second round: what the others pushed last reaches everyone.
    for (local, remote, _, _, _) in devices {
        let mut guard = local.lock().unwrap();
        rt.block_on(sync_once(remote, guard.as_mut().unwrap()))
            .unwrap();
    }
    let applied = db.audited_writes() - audited_before;
    assert_eq!(applied, made, "every change applied exactly once");
    for (local, remote, _, _, _) in devices.iter().take(5) {
        let guard = local.lock().unwrap();
        let store = guard.as_ref().unwrap();
        let want = oracle(rt, remote);
        let have = store.live_records().unwrap();
        assert_eq!(
            want.keys().collect::<Vec<_>>(),
            have.keys().collect::<Vec<_>>(),
            "a device holds exactly what the service says"
        );
    }
    let verified = db.admin(&["audit-verify"], None).success();
    assert!(verified.stdout.contains("audit log intact"));
    format!(
        "{made} changes made, {applied} applied once each; devices converged; audit-verify passed"
    )
}

fn main() {
    std::env::set_var("FELTKONTOR_TEST_SERVER_LOG", "warn");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = single_device(&rt);
    let live = propagation(&rt);
    let loads = [
        load(Kind::Sqlite, Setup::One, &rt),
        load(Kind::Postgres, Setup::One, &rt),
        load(Kind::Postgres, Setup::ThreeKilled, &rt),
    ];

    let rate = s.records as f64 / s.first_sync.as_secs_f64();
    let bulk_rate = s.records as f64 / s.bulk.as_secs_f64();
    let mut out = String::new();
    writeln!(out, "# Sync benchmarks\n").unwrap();
    writeln!(out, "Command: `make bench-sync` (cargo bench -p feltkontor-server --bench sync); release server binary on loopback, SQLite, each device with its own SQLCipher store.\n").unwrap();
    writeln!(out, "| Measure | Result | Target |\n|---|---|---|").unwrap();
    writeln!(
        out,
        "| Caseload written on one device and pushed ({CASES} cases, {} people, {} signed notes) | {} changes in {:.0} ms = {:.0} changes/s | — |",
        CASES * PEOPLE_PER_CASE,
        CASES * NOTES_PER_CASE,
        s.seed_changes,
        ms(s.seed_push),
        s.seed_changes as f64 / s.seed_push.as_secs_f64()
    )
    .unwrap();
    writeln!(
        out,
        "| First sync of a new device: {} records ({:.1} MB of JSON, {:.1} MB on the wire gzipped), one pull stream; median of {FIRST_SYNC_RUNS} new devices | {:.0} ms = **{:.0} records/s** | ≥ 25,000 records/s |",
        s.records,
        s.json_bytes as f64 / 1e6,
        s.full_bytes as f64 / 1e6,
        ms(s.first_sync),
        rate
    )
    .unwrap();
    writeln!(
        out,
        "| … then the search index catching up in the background (a search before then completes it first); median | {:.0} ms | — |",
        ms(s.search_catch_up)
    )
    .unwrap();
    writeln!(
        out,
        "| … the service and the transfer alone (the same pages pulled again one request each, not applied) | {:.0} ms | — |",
        ms(s.pull_only)
    )
    .unwrap();
    writeln!(
        out,
        "| … the device's part: the same pages checked (on the task that reads the stream, while the page before is stored) | {:.0} ms | — |",
        ms(s.check_only)
    )
    .unwrap();
    writeln!(
        out,
        "| … and stored in a new store with no network (the first sync stores while the stream is still arriving) | {:.0} ms | — |",
        ms(s.apply_only)
    )
    .unwrap();
    writeln!(
        out,
        "| Raw bulk insert of the same rows, one transaction, SQLCipher (baseline; median of {FIRST_SYNC_RUNS}, each right after a timed first sync) | {:.0} ms = {:.0} records/s; first sync = **{:.0}%** of it | ≥ 30% |",
        ms(s.bulk),
        bulk_rate,
        rate / bulk_rate * 100.0
    )
    .unwrap();
    writeln!(
        out,
        "| Resume after a first sync broken off half-way | {} bytes for {} missing = **{:.3}×** | ≤ 1.1× |",
        s.resume_bytes, s.missing_bytes, s.resume_ratio
    )
    .unwrap();
    writeln!(
        out,
        "| Incremental sync of 100 pending changes (15 rounds) | p50 **{:.0} ms**, p95 {:.0} ms | ≤ 150 ms |",
        pct(&s.incremental, 0.5),
        pct(&s.incremental, 0.95)
    )
    .unwrap();
    writeln!(
        out,
        "| Draining 1,000 queued changes (5 rounds) | p50 **{:.0} ms**, worst {:.0} ms | ≤ 2,000 ms |",
        pct(&s.drain, 0.5),
        pct(&s.drain, 1.0)
    )
    .unwrap();
    writeln!(
        out,
        "| A change saved on one online device, visible on another (20 changes; includes the app's {} ms push debounce) | p50 **{:.0} ms**, p95 {:.0} ms, worst {:.0} ms | p50 ≤ 1,000 ms |",
        feltkontor_sync::PUSH_DEBOUNCE.as_millis(),
        pct(&live, 0.5),
        pct(&live, 0.95),
        pct(&live, 1.0)
    )
    .unwrap();
    for l in &loads {
        writeln!(
            out,
            "| {LOAD_DEVICES} devices syncing one change each in a loop, {} ({}s) | {:.0} syncs/s, p50 {:.0} ms, p99 **{:.0} ms**, {} errors, {:.1} records pulled per sync | — |",
            l.engine,
            RUN.as_secs(),
            l.syncs as f64 / RUN.as_secs_f64(),
            l.p50,
            l.p99,
            l.errors,
            l.pulled as f64 / l.syncs.max(1) as f64
        )
        .unwrap();
        if let Some(c) = &l.checked {
            writeln!(out, "| … afterwards | {c} | nothing lost or duplicated |").unwrap();
        }
    }
    print!("{out}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("sync.md"), out).unwrap();
}

/// The records the first sync stored and its medians, for the PouchDB comparison that
/// `make bench-sync` runs next (`tests/bench/pouchdb/replicate.mjs`).
fn write_first_sync_rows(rows: &[(String, String, String)], first_sync: Duration, bulk: Duration) {
    use std::io::Write;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(dir.join("first-sync-rows.ndjson")).unwrap());
    for (entity, id, data) in rows {
        // `data` is JSON already: written as it is.
        writeln!(out, r#"{{"entity":"{entity}","id":"{id}","data":{data}}}"#).unwrap();
    }
    out.flush().unwrap();
    let summary = serde_json::json!({
        "records": rows.len(),
        "first_sync_ms": first_sync.as_secs_f64() * 1000.0,
        "bulk_ms": bulk.as_secs_f64() * 1000.0,
    });
    std::fs::write(dir.join("first-sync.json"), summary.to_string()).unwrap();
}

/// The size of `bytes` gzipped at the fastest level, as the service sends its answers.
fn gzip_len(bytes: &[u8]) -> u64 {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap().len() as u64
}
