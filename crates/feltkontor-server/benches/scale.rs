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
//!    On PostgreSQL also what row-level security adds per record read: the worker's records
//!    read as the service reads them (the application role, the policies applied) against the
//!    same query as the owner (no policies).
//! 3. Empty pulls (nothing changed since the device's cursors): 100, wall p50/p95 and CPU per
//!    pull.
//! 4. Incremental pulls of 10 changes: a colleague on the team writes 10 notes in 10 of the
//!    worker's cases and pushes; the worker's device pulls them: 10 rounds, wall p50 and CPU.

#[path = "../tests/common/mod.rs"]
mod common;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use common::devices::*;
use common::municipal::{seed, Cpu, CASES, WORKER_SCOPE};
use common::{Db, Kind, Server, FAST_LIMITS};
use feltkontor_demo::Municipality;
use feltkontor_wire::sync::PullRequest;
use feltkontor_wire::StaffId;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const EMPTY_PULLS: usize = 100;
const INCREMENTAL_ROUNDS: usize = 10;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
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
    /// PostgreSQL: what row-level security adds per record read (µs), and the records.
    rls: Option<(f64, i64)>,
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
    let cpu = Cpu::new(server.child.id(), kind);

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
    let rls = (kind == Kind::Postgres).then(|| rls_per_record(&db, worker.staff));

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
        rls,
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

/// What row-level security costs per record: the worker's records (every record of every case
/// in their scope) read as the service reads them (the application role, the worker set, the
/// policies applied) against the same query as the owner (a superuser: no policies); median of
/// five each. Returns µs per record and the records read.
fn rls_per_record(db: &Db, staff: uuid::Uuid) -> (f64, i64) {
    use feltkontor_central::db::DatabaseUrl;
    use feltkontor_central::params;
    const SQL: &str = "SELECT count(*), sum(length(r.data)) FROM records r
         WHERE r.case_id IN (SELECT s.case_id FROM scope_index s WHERE s.staff_id = $1)";
    let mut app = db
        .app_url
        .parse::<DatabaseUrl>()
        .unwrap()
        .connect()
        .unwrap();
    let mut owner = db.owner();
    let time = |conn: &mut dyn feltkontor_central::db::Conn, worker: bool| {
        let mut walls = Vec::new();
        let mut n = 0;
        for _ in 0..5 {
            conn.begin_read().unwrap();
            if worker {
                conn.set_worker(Some(staff)).unwrap();
            }
            let t = Instant::now();
            let row = conn.query_one(SQL, params![staff]).unwrap().unwrap();
            walls.push(t.elapsed().as_secs_f64());
            n = row.int(0).unwrap();
            conn.commit().unwrap();
        }
        walls.sort_by(f64::total_cmp);
        (walls[2], n)
    };
    let (with, n_app) = time(app.as_mut(), true);
    let (without, n_owner) = time(owner.as_mut(), false);
    assert_eq!(
        n_app, n_owner,
        "the worker reads every record of their scope"
    );
    ((with - without).max(0.0) * 1e6 / n_app.max(1) as f64, n_app)
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
        "| Municipality | Bulk seed | First sync | records/s | vs raw bulk insert | CPU service / database | Empty pull p50 (p95) | Empty pull CPU service / database | 10 changes p50 | CPU service / database | RLS per record read |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|");
    for f in &figures {
        let _ = writeln!(
            md,
            "| {} | {} records in {:.0} s ({:.0}/s) | {} records in {:.2} s | **{:.0}** | {:.0} % | {:.1} s / {:.1} s | {:.1} ms ({:.1} ms) | {:.2} ms / **{:.2} ms** | {:.1} ms ({} records) | {:.2} ms / **{:.2} ms** | {} |",
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
            f.rls
                .map(|(us, n)| format!("{us:.2} µs ({n} records)"))
                .unwrap_or_else(|| "—".into()),
        );
    }
    print!("{md}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("scale.md"), md).unwrap();
}
