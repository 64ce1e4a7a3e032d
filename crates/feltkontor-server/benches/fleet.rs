//! `make bench-fleet`: every staff member's device online at once, at Aarhus's size, against
//! three instances of the release service on one PostgreSQL. Writes target/bench/fleet.md.
//!
//! 1. The municipality of `make bench-scale` (2,000 staff in 30 district teams, 20,000 cases,
//!    about a million notes) is loaded in bulk; every staff member gets an account and enrolls
//!    one device through the service (`/v1/enroll`, the password checked each time).
//! 2. Each of the 2,000 devices is a light client (`feltkontor_sync::Remote`, no store): it
//!    starts where a synced device stands (its cursors are its buckets' heads, read from the
//!    database: a real first sync of 2,000 devices is measured by `make bench-scale` one at a
//!    time and would take hours here), and, as the app does, pulls on its 60-second round
//!    (at a random phase) and holds a live wait (`/v1/sync/wait`) between rounds, pulling when
//!    woken. Device `i` talks to instance `i % 3`.
//! 3. Meanwhile six real devices (each its own encrypted store, after a real first sync), one
//!    in each of six teams and spread over the instances, write a signed note in turn, one a
//!    second, and sync it. For every note, each light device of the writer's team connected to
//!    *another* instance records when its pull brought the note: from the writer starting its
//!    sync to the reader holding it.
//! 4. Over the measured minutes (`FELTKONTOR_FLEET_MINUTES`, default 3): the CPU of the three
//!    service processes and of PostgreSQL's processes, per device-minute and as cores; the
//!    propagation p50/p95; requests and errors.

#[path = "../tests/common/mod.rs"]
mod common;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use common::devices::*;
use common::municipal::{seed, CpuMeter};
use common::{Db, Kind, Server, FAST_LIMITS, PASSWORD};
use feltkontor_central::params;
use feltkontor_sync::Remote;
use feltkontor_wire::sync::{case_bucket, PullRequest, TEAM_BUCKET};
use feltkontor_wire::{EntityKind, StaffId};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const INSTANCES: usize = 3;
const ROUND: Duration = Duration::from_secs(60);
const WRITERS: usize = 6;
const WRITE_EVERY: Duration = Duration::from_secs(1);

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Notes written, by id: when the writer began syncing it, at which instance, in which team.
type Written = Arc<Mutex<HashMap<uuid::Uuid, (Instant, usize)>>>;

#[derive(Default)]
struct Counters {
    pulls: AtomicUsize,
    waits: AtomicUsize,
    woken: AtomicUsize,
    errors: AtomicUsize,
    records: AtomicUsize,
    /// What failed, by kind (the error's text without addresses).
    failures: Mutex<BTreeMap<String, usize>>,
}

impl Counters {
    fn failed(&self, what: &str, e: &feltkontor_sync::SyncError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let text: String = format!("{what}: {e}")
            .split("http://")
            .next()
            .unwrap_or_default()
            .chars()
            .take(120)
            .collect();
        *self.failures.lock().unwrap().entry(text).or_default() += 1;
    }
}

struct Light {
    remote: Remote,
    instance: usize,
    cursors: BTreeMap<String, u64>,
}

/// Pulls until nothing more waits; keeps the cursors of the visible buckets; records, for each
/// written note the pull brought from another instance, how long it took.
async fn pull(
    d: &mut Light,
    written: &Written,
    seen: &Mutex<Vec<f64>>,
    counters: &Counters,
) -> Result<(), feltkontor_sync::SyncError> {
    loop {
        let page = d
            .remote
            .pull(&PullRequest {
                cursors: d.cursors.clone(),
                limit: feltkontor_sync::PULL_PAGE,
            })
            .await?;
        counters.pulls.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        for b in &page.buckets {
            counters
                .records
                .fetch_add(b.records.len(), Ordering::Relaxed);
            for r in &b.records {
                if r.entity != EntityKind::Note {
                    continue;
                }
                if let Some((at, instance)) = written.lock().unwrap().get(&r.id) {
                    if *instance != d.instance {
                        seen.lock()
                            .unwrap()
                            .push((now - *at).as_secs_f64() * 1000.0);
                    }
                }
            }
            d.cursors.insert(b.bucket.clone(), b.cursor);
        }
        let visible: std::collections::HashSet<&String> = page.visible.iter().collect();
        d.cursors.retain(|b, _| visible.contains(b));
        if !page.more {
            return Ok(());
        }
    }
}

/// A device online until `end`: its 60-second round at `phase`, and a live wait held between.
async fn online(
    mut d: Light,
    phase: Duration,
    end: Instant,
    written: Written,
    seen: Arc<Mutex<Vec<f64>>>,
    counters: Arc<Counters>,
) {
    let mut generation = d.remote.wait(0).await.unwrap_or(0);
    let mut next_round = tokio::time::Instant::now() + phase;
    let waiting = |remote: Remote, since: u64| async move { remote.wait(since).await };
    let mut wait = Box::pin(waiting(d.remote.clone(), generation));
    loop {
        if Instant::now() >= end {
            return;
        }
        tokio::select! {
            answer = &mut wait => {
                counters.waits.fetch_add(1, Ordering::Relaxed);
                match answer {
                    Ok(g) if g != generation => {
                        generation = g;
                        counters.woken.fetch_add(1, Ordering::Relaxed);
                        if let Err(e) = pull(&mut d, &written, &seen, &counters).await {
                            counters.failed("pull when woken", &e);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        counters.failed("wait", &e);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                wait = Box::pin(waiting(d.remote.clone(), generation));
            }
            _ = tokio::time::sleep_until(next_round) => {
                next_round += ROUND;
                if let Err(e) = pull(&mut d, &written, &seen, &counters).await {
                    counters.failed("pull on the round", &e);
                }
            }
        }
    }
}

fn main() {
    std::env::set_var("FELTKONTOR_TEST_SERVER_LOG", "warn");
    let minutes: u64 = std::env::var("FELTKONTOR_FLEET_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(3);
    let db = Db::migrated(Kind::Postgres);
    let seeded = seed(&db, 1);
    let staff = &seeded.people.staff;
    let username = |i: usize| match i {
        0 => seeded.worker.clone(),
        1 => seeded.colleague.clone(),
        _ => format!("s{i}"),
    };

    // Accounts for everyone else: one Argon2 hash, written straight into the table (2,000
    // accounts made one by one would hash 2,000 times; enrollment below checks the password of
    // every one).
    let t = Instant::now();
    let mut conn = db.owner();
    let hash = feltkontor_central::identity::hash_password(PASSWORD).unwrap();
    conn.begin().unwrap();
    for (i, (s, _)) in staff.iter().enumerate().skip(2) {
        conn.execute(
            "INSERT INTO accounts (staff_id, username, password_hash, contact, created_at) VALUES ($1, $2, $3, $4, $5)",
            params![s.id.0, username(i), &hash, "kontakt@demo.aarhus.dk", feltkontor_central::now_ms()],
        )
        .unwrap();
    }
    conn.commit().unwrap();

    // Every light device connects from 127.0.0.1; in production they come through the trusted
    // proxy, whose connections are not counted per address.
    let args = [
        &FAST_LIMITS[..],
        &[
            "--pool-size",
            "8",
            "--max-connections-per-address",
            "100000",
        ],
    ]
    .concat();
    let servers: Vec<Server> = (0..INSTANCES).map(|_| Server::start(&db, &args)).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // One device each, enrolled at its instance, four at a time.
    let codes: Vec<String> = (0..staff.len())
        .map(|i| {
            feltkontor_central::admin::enrollment_code(
                conn.as_mut(),
                &username(i),
                120,
                feltkontor_central::now_ms(),
            )
            .unwrap()
        })
        .collect();
    common::tls_provider();
    let http = reqwest::Client::new();
    let enrolled: Vec<serde_json::Value> = rt.block_on(at_most(
        4,
        codes.iter().enumerate().map(|(i, code)| {
            let http = http.clone();
            let url = format!("{}/v1/enroll", servers[i % INSTANCES].base);
            let body = serde_json::json!({"code": code, "username": username(i), "password": PASSWORD, "device_name": "Flådemaskine"});
            async move {
                let r = http.post(url).json(&body).send().await.unwrap();
                assert_eq!(r.status(), 200, "enroll {i}");
                r.json::<serde_json::Value>().await.unwrap()
            }
        }),
    ));
    eprintln!("{} accounts and devices in {:?}", staff.len(), t.elapsed());

    // Where each device stands: its buckets' heads.
    let team_head = conn
        .query_one("SELECT seq FROM bucket_heads WHERE bucket = ''", params![])
        .unwrap()
        .map(|r| r.int(0).unwrap() as u64)
        .unwrap_or(0);
    let mut lights = Vec::new();
    for (i, (s, _)) in staff.iter().enumerate() {
        let mut cursors = BTreeMap::from([(TEAM_BUCKET.to_owned(), team_head)]);
        for row in conn
            .query(
                "SELECT s.case_id, h.seq FROM scope_index s JOIN bucket_heads h ON h.bucket = s.case_id WHERE s.staff_id = $1",
                params![s.id.0],
            )
            .unwrap()
        {
            cursors.insert(
                case_bucket(row.uuid(0).unwrap()),
                row.int(1).unwrap() as u64,
            );
        }
        lights.push(Light {
            remote: Remote::new(&servers[i % INSTANCES].base, &common::token(&enrolled[i]))
                .unwrap(),
            instance: i % INSTANCES,
            cursors,
        });
    }
    let written: Written = Arc::default();
    let seen: Arc<Mutex<Vec<f64>>> = Arc::default();
    let counters = Arc::new(Counters::default());
    // The first pull keeps only the buckets the worker sees (a case of theirs under a consent
    // they lack is not one).
    let t = Instant::now();
    let lights: Vec<Light> = rt.block_on(at_most(
        8,
        lights.into_iter().map(|mut d| {
            let (written, seen, counters) = (written.clone(), seen.clone(), counters.clone());
            async move {
                pull(&mut d, &written, &seen, &counters).await.unwrap();
                d
            }
        }),
    ));
    eprintln!("first pulls from the heads in {:?}", t.elapsed());

    // The writers: the second member of each of six teams, a real device after a real first
    // sync, at instance j % 3.
    let mut writers = Vec::new();
    for team in 0..WRITERS {
        let i = staff
            .iter()
            .enumerate()
            .filter(|(_, (_, t))| *t == team)
            .map(|(i, _)| i)
            .nth(1)
            .expect("a team of two or more");
        let mut d = device_at(&servers[team % INSTANCES].base, &db, &username(i));
        let t = Instant::now();
        let report = d.sync(&common::devices::rt());
        eprintln!(
            "writer {team}: first sync of {} records in {:?}",
            report.pulled_records,
            t.elapsed()
        );
        let cases: Vec<uuid::Uuid> = conn
            .query(
                "SELECT case_id FROM case_index WHERE team_id = $1 ORDER BY case_id LIMIT 50",
                params![seeded.people.teams[team].id.0],
            )
            .unwrap()
            .iter()
            .map(|r| r.uuid(0).unwrap())
            .collect();
        writers.push((d, team % INSTANCES, cases));
    }
    drop(conn);

    let warmup = Duration::from_secs(10);
    let run = Duration::from_secs(60 * minutes);
    let start = Instant::now();
    let (measure_from, end) = (start + warmup, start + warmup + run);
    let mut tasks = Vec::new();
    let mut phase_rng = 0x5EED_u64;
    for d in lights {
        phase_rng = phase_rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let phase = Duration::from_millis((phase_rng >> 33) % ROUND.as_millis() as u64);
        tasks.push(rt.spawn(online(
            d,
            phase,
            end,
            written.clone(),
            seen.clone(),
            counters.clone(),
        )));
    }
    let writer = {
        let written = written.clone();
        std::thread::spawn(move || {
            let rt = common::devices::rt();
            let mut n = 0usize;
            let mut next = Instant::now();
            while Instant::now() < end {
                let (d, instance, cases) = &mut writers[n % WRITERS];
                let case = cases[(n / WRITERS) % cases.len()];
                let note = draft_note(
                    case,
                    StaffId(d.staff),
                    &format!("Netværksmøde {n}: vi aftalte næste skridt med familien."),
                );
                d.store
                    .write(|w| {
                        w.save_note(&note)?;
                        w.sign_note(note.id)?;
                        Ok(())
                    })
                    .unwrap();
                written
                    .lock()
                    .unwrap()
                    .insert(note.id.0, (Instant::now(), *instance));
                d.sync(&rt);
                n += 1;
                next += WRITE_EVERY;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            n
        })
    };
    std::thread::sleep(measure_from - Instant::now());
    let pids: Vec<u32> = servers.iter().map(|s| s.child.id()).collect();
    let (service_meter, db_meter) = (CpuMeter::of(&pids), CpuMeter::named("postgres"));
    let cpu = || (service_meter.seconds(), db_meter.seconds());
    let (s0, d0) = cpu();
    let (p0, w0) = (
        counters.pulls.load(Ordering::Relaxed),
        counters.waits.load(Ordering::Relaxed),
    );
    seen.lock().unwrap().clear();
    std::thread::sleep(end - Instant::now());
    let (s1, d1) = cpu();
    let (pulls, waits) = (
        counters.pulls.load(Ordering::Relaxed) - p0,
        counters.waits.load(Ordering::Relaxed) - w0,
    );
    let notes = writer.join().unwrap();
    rt.block_on(async {
        for t in tasks {
            let _ = t.await;
        }
    });
    let mut lat = seen.lock().unwrap().clone();
    lat.sort_by(f64::total_cmp);
    let devices = staff.len();
    let device_minutes = devices as f64 * run.as_secs_f64() / 60.0;
    let (service, database) = (s1 - s0, d1 - d0);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Fleet (`make bench-fleet`)\n\n{devices} devices online (one per staff member, light clients: a 60 s round and a live wait held between rounds), three release instances on one PostgreSQL, device i at instance i % 3; {WRITERS} writers (real devices) write and sync a signed note each second in turn. Measured over {minutes} min after a {} s warm-up.\n",
        warmup.as_secs()
    );
    let _ = writeln!(md, "| Measure | Result | Target |\n|---|---|---|");
    let _ = writeln!(
        md,
        "| CPU, three service processes | {service:.1} s = {:.2} ms per device-minute | — |",
        service * 1000.0 / device_minutes
    );
    let _ = writeln!(
        md,
        "| CPU, PostgreSQL's processes | {database:.1} s = {:.2} ms per device-minute | — |",
        database * 1000.0 / device_minutes
    );
    let _ = writeln!(
        md,
        "| Together, as cores | **{:.2} cores** | < 1 core |",
        (service + database) / run.as_secs_f64()
    );
    let _ = writeln!(
        md,
        "| A note saved on a device at one instance, held by the writer's teammates' devices at the other instances ({} arrivals of {notes} notes) | p50 **{:.0} ms**, p95 {:.0} ms, worst {:.0} ms | p50 ≤ 1,000 ms |",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.95),
        pct(&lat, 1.0)
    );
    let _ = writeln!(
        md,
        "| Requests measured | {pulls} pulls ({:.1}/s), {waits} waits answered; {} woken in all, {} records pulled, {} errors | 0 errors |",
        pulls as f64 / run.as_secs_f64(),
        counters.woken.load(Ordering::Relaxed),
        counters.records.load(Ordering::Relaxed),
        counters.errors.load(Ordering::Relaxed)
    );
    for (what, n) in counters.failures.lock().unwrap().iter() {
        let _ = writeln!(md, "\nFailed {n}×: {what}");
    }
    print!("{md}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fleet.md"), md).unwrap();
    drop(servers);
}

/// Runs the futures, `n` at a time, on the runtime's threads; their outputs in order.
async fn at_most<T: Send + 'static>(
    n: usize,
    futures: impl Iterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let permits = Arc::new(tokio::sync::Semaphore::new(n));
    let mut tasks = Vec::new();
    for f in futures {
        let permits = permits.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            f.await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}
