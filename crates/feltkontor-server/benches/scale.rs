//! `make bench-scale`: the central service at municipal size. Writes target/bench/scale.md.
//!
//! For each size (`FELTKONTOR_SCALE`, default `1,5`: Aarhus's size, 2,000 staff in 30 district
//! teams and 6 clusters, 20,000 cases and about a million notes, and five times that) and each
//! engine (`FELTKONTOR_SCALE_ENGINES`, default `postgres,sqlite`; SQLite at the first size only):
//!
//! 1. The municipality is made by the demo generator and loaded in bulk
//!    ([`feltkontor_central::bulk`]): records and seconds.
//! 2. First sync of the worker with 1,000 cases in scope (a member of a team of ~667 cases who
//!    takes part in ~333 more) into a new encrypted store on disk, against the release server on
//!    loopback: records/s end to end, the service's CPU and the database's CPU (PostgreSQL's
//!    processes; on SQLite the database runs inside the service). Beside it, the raw bulk
//!    insert of the same rows into an encrypted SQLite file in one transaction (the ceiling).
//! 3. Empty pulls (nothing changed since the device's cursors): 100, wall p50/p95 and CPU per
//!    pull.
//! 4. Incremental pulls of 10 changes: a colleague on the team writes 10 notes in 10 of the
//!    worker's cases and pushes; the worker's device pulls them: 10 rounds, wall p50 and CPU.

#[path = "../tests/common/mod.rs"]
mod common;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use common::devices::*;
use common::{Db, Kind, Server, FAST_LIMITS, PASSWORD};
use feltkontor_central::admin;
use feltkontor_central::bulk::Loader;
use feltkontor_demo::{generate_records, DemoSize, DemoStaff, Municipality};
use feltkontor_wire::sync::PullRequest;
use feltkontor_wire::{CaseId, EntityKind, StaffId};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const SEED: u64 = 2026;
const WORKER_SCOPE: usize = 1_000;
const CASES: usize = 20_000;
const NOTES_PER_CASE: usize = 50;
const EMPTY_PULLS: usize = 100;
const INCREMENTAL_ROUNDS: usize = 10;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// CPU seconds used so far by the processes whose command name is `comm` (all of them), or by
/// `pid` alone.
fn cpu_seconds(comm: Option<&str>, pid: Option<u32>) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0u64;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(p) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid.is_some_and(|want| want != p) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if comm.is_some_and(|c| &stat[open + 1..close] != c) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
        let utime: u64 = fields.get(11).and_then(|s| s.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
        total += utime + stime;
    }
    total as f64 / ticks
}

/// CPU of the service process and of the database's processes.
struct Cpu {
    server: u32,
    kind: Kind,
}

impl Cpu {
    fn now(&self) -> (f64, f64) {
        let server = cpu_seconds(None, Some(self.server));
        let db = match self.kind {
            Kind::Postgres => cpu_seconds(Some("postgres"), None),
            Kind::Sqlite => 0.0,
        };
        (server, db)
    }
}

struct Seeded {
    records: u64,
    took: Duration,
    worker: String,
    colleague: String,
    team_cases: Vec<CaseId>,
}

/// The municipality at `factor` times Aarhus's size, loaded in bulk; the worker and a
/// colleague on their team get accounts.
fn seed(db: &Db, factor: usize) -> Seeded {
    let m = Municipality {
        staff: Municipality::AARHUS.staff * factor,
        teams: Municipality::AARHUS.teams * factor,
        districts: Municipality::AARHUS.districts * factor,
    };
    let size = DemoSize {
        cases: CASES * factor,
        notes_per_case: NOTES_PER_CASE,
        persons_per_case: 5,
        long_case_notes: 0,
    };
    let people = DemoStaff::sized(SEED, &m);
    let mut conn = db.owner();
    let t = Instant::now();
    let mut loader = Loader::new(conn.as_mut(), feltkontor_central::now_ms()).unwrap();
    let team0 = people.teams[0].id;
    let mut team_cases = Vec::new();
    let mut error = None;
    generate_records(
        &people,
        &size,
        SEED,
        time::OffsetDateTime::now_utc(),
        WORKER_SCOPE,
        |kind, id, data| {
            if error.is_some() {
                return;
            }
            if kind == EntityKind::Case
                && data.get("team_id").and_then(|v| v.as_str()) == Some(&team0.to_string())
            {
                team_cases.push(CaseId(id));
            }
            if let Err(e) = loader.add(conn.as_mut(), kind, id, data) {
                error = Some(e);
            }
        },
    )
    .unwrap();
    if let Some(e) = error {
        panic!("bulk load: {e}");
    }
    let records = loader.finish(conn.as_mut()).unwrap();
    let took = t.elapsed();
    let worker = people.worker().clone();
    let colleague = people.staff[1].0.clone();
    assert_eq!(
        people.staff[1].1, 0,
        "the colleague is on the worker's team"
    );
    for (s, name) in [(&worker, "worker"), (&colleague, "colleague")] {
        admin::create_account(conn.as_mut(), s, name, PASSWORD, "kontakt@demo.aarhus.dk").unwrap();
    }
    if db.kind == Kind::Postgres {
        conn.batch("ANALYZE").unwrap();
    }
    eprintln!("seeded {records} records in {took:?}");
    Seeded {
        records,
        took,
        worker: "worker".into(),
        colleague: "colleague".into(),
        team_cases,
    }
}

struct Figures {
    label: String,
    seeded: u64,
    seed_took: Duration,
    first_records: usize,
    first_sync: Duration,
    first_server_cpu: f64,
    first_db_cpu: f64,
    bulk: Duration,
    empty_p50: f64,
    empty_p95: f64,
    empty_server_cpu_ms: f64,
    empty_db_cpu_ms: f64,
    incr_p50: f64,
    incr_records: usize,
    incr_server_cpu_ms: f64,
    incr_db_cpu_ms: f64,
}

fn run(kind: Kind, factor: usize) -> Figures {
    let rt = rt();
    let db = Db::migrated(kind);
    if std::env::var("FELTKONTOR_SCALE_KEEP").is_ok() {
        // For a look at the plans afterwards: the database stays (dropped by hand).
        eprintln!("keeping {}", db.owner_url);
    }
    let seeded = seed(&db, factor);
    let server = Server::start(&db, &FAST_LIMITS);
    let cpu = Cpu {
        server: server.child.id(),
        kind,
    };

    // First sync of the worker's new device.
    let mut worker = device(&server, &db, &seeded.worker);
    let (s0, d0) = cpu.now();
    let t = Instant::now();
    let report = worker.sync(&rt);
    let first_sync = t.elapsed();
    let (s1, d1) = cpu.now();
    let (first_server_cpu, first_db_cpu) = (s1 - s0, d1 - d0);
    eprintln!(
        "first sync: {} records in {first_sync:?} (service {first_server_cpu:.1} s CPU, database {first_db_cpu:.1} s)",
        report.pulled_records,
    );
    let rows: Vec<(String, String, String)> = worker
        .store
        .live_records()
        .unwrap()
        .iter()
        .map(|((e, id), data)| {
            (
                e.as_str().to_owned(),
                id.to_string(),
                serde_json::to_string(data).unwrap(),
            )
        })
        .collect();
    let bulk = common::baseline::bulk_insert(&rows);

    // Empty pulls.
    let cursors = worker.store.sync_cursors().unwrap();
    let mut walls = Vec::new();
    let (s0, d0) = cpu.now();
    for _ in 0..EMPTY_PULLS {
        let t = Instant::now();
        let page = rt
            .block_on(worker.remote.pull(&PullRequest {
                cursors: cursors.clone(),
                limit: feltkontor_sync::PULL_PAGE,
            }))
            .unwrap();
        walls.push(ms(t.elapsed()));
        assert!(
            page.buckets.iter().all(|b| b.records.is_empty()) && !page.more,
            "nothing changed"
        );
    }
    let (s1, d1) = cpu.now();
    walls.sort_by(f64::total_cmp);
    let empty_p50 = pct(&walls, 0.5);
    let empty_p95 = pct(&walls, 0.95);
    let empty_server_cpu_ms = (s1 - s0) * 1000.0 / EMPTY_PULLS as f64;
    let empty_db_cpu_ms = (d1 - d0) * 1000.0 / EMPTY_PULLS as f64;

    // Incremental pulls of 10 changes written by a colleague.
    let mut colleague = device(&server, &db, &seeded.colleague);
    colleague.sync(&rt);
    let mut walls = Vec::new();
    let mut incr_records = 0;
    let (mut sc, mut dc) = (0.0, 0.0);
    for round in 0..INCREMENTAL_ROUNDS {
        let me = StaffId(colleague.staff);
        colleague
            .store
            .write(|w| {
                for i in 0..10 {
                    let case = seeded.team_cases[(round * 10 + i) % seeded.team_cases.len()];
                    // Signed: a colleague's draft is not sent to anyone else.
                    let note = draft_note(
                        case.0,
                        me,
                        &format!("Opfølgning {round}-{i}: mor ringede om skolestart."),
                    );
                    w.save_note(&note)?;
                    w.sign_note(note.id)?;
                }
                Ok(())
            })
            .unwrap();
        colleague.sync(&rt);
        let cursors = worker.store.sync_cursors().unwrap();
        let (s0, d0) = cpu.now();
        let t = Instant::now();
        let page = rt
            .block_on(worker.remote.pull(&PullRequest {
                cursors,
                limit: feltkontor_sync::PULL_PAGE,
            }))
            .unwrap();
        walls.push(ms(t.elapsed()));
        let (s1, d1) = cpu.now();
        sc += s1 - s0;
        dc += d1 - d0;
        incr_records = page.buckets.iter().map(|b| b.records.len()).sum();
        assert_eq!(
            incr_records, 10,
            "the worker receives the colleague's ten notes"
        );
        // The device takes them as the app does, so the next round starts from there.
        worker.sync(&rt);
    }
    walls.sort_by(f64::total_cmp);
    if std::env::var("FELTKONTOR_SCALE_KEEP").is_ok() {
        std::mem::forget(db);
    }
    Figures {
        label: format!(
            "{} ×{factor} ({} staff, {} cases)",
            match kind {
                Kind::Postgres => "PostgreSQL",
                Kind::Sqlite => "SQLite",
            },
            Municipality::AARHUS.staff * factor,
            CASES * factor
        ),
        seeded: seeded.records,
        seed_took: seeded.took,
        first_records: report.pulled_records,
        first_sync,
        first_server_cpu,
        first_db_cpu,
        bulk,
        empty_p50,
        empty_p95,
        empty_server_cpu_ms,
        empty_db_cpu_ms,
        incr_p50: pct(&walls, 0.5),
        incr_records,
        incr_server_cpu_ms: sc * 1000.0 / INCREMENTAL_ROUNDS as f64,
        incr_db_cpu_ms: dc * 1000.0 / INCREMENTAL_ROUNDS as f64,
    }
}

fn main() {
    let factors: Vec<usize> = std::env::var("FELTKONTOR_SCALE")
        .unwrap_or_else(|_| "1,5".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let engines =
        std::env::var("FELTKONTOR_SCALE_ENGINES").unwrap_or_else(|_| "postgres,sqlite".into());
    let mut figures = Vec::new();
    for (i, factor) in factors.iter().enumerate() {
        if engines.contains("postgres") {
            figures.push(run(Kind::Postgres, *factor));
        }
        // SQLite is the small installation's engine: compared at the first size only.
        if engines.contains("sqlite") && i == 0 {
            figures.push(run(Kind::Sqlite, *factor));
        }
    }
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Scale (`make bench-scale`)\n\nThe worker has {WORKER_SCOPE} cases in scope at every size. CPU: the service process, and PostgreSQL's processes (on SQLite the database runs inside the service).\n"
    );
    let _ = writeln!(
        md,
        "| Municipality | Bulk seed | First sync | records/s | vs raw bulk insert | CPU service / database | Empty pull p50 (p95) | Empty pull CPU service / database | 10 changes p50 | CPU service / database |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    for f in &figures {
        let _ = writeln!(
            md,
            "| {} | {} records in {:.0} s ({:.0}/s) | {} records in {:.2} s | **{:.0}** | {:.0} % | {:.1} s / {:.1} s | {:.1} ms ({:.1} ms) | {:.2} ms / **{:.2} ms** | {:.1} ms ({} records) | {:.2} ms / **{:.2} ms** |",
            f.label,
            f.seeded,
            f.seed_took.as_secs_f64(),
            f.seeded as f64 / f.seed_took.as_secs_f64(),
            f.first_records,
            f.first_sync.as_secs_f64(),
            f.first_records as f64 / f.first_sync.as_secs_f64(),
            100.0 * f.bulk.as_secs_f64() / f.first_sync.as_secs_f64(),
            f.first_server_cpu,
            f.first_db_cpu,
            f.empty_p50,
            f.empty_p95,
            f.empty_server_cpu_ms,
            f.empty_db_cpu_ms,
            f.incr_p50,
            f.incr_records,
            f.incr_server_cpu_ms,
            f.incr_db_cpu_ms,
        );
    }
    print!("{md}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("scale.md"), md).unwrap();
}
