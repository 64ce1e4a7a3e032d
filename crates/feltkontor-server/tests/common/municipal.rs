//! The municipality at Aarhus's size and beyond, for the scale and fleet benchmarks: made by
//! the demo generator, loaded in bulk ([`feltkontor_central::bulk`]); and the CPU the service's
//! and the database's processes used.

use super::{Db, Kind, PASSWORD};
use feltkontor_central::admin;
use feltkontor_central::bulk::Loader;
use feltkontor_demo::{generate_records, DemoSize, DemoStaff, Municipality};
use feltkontor_wire::{CaseId, EntityKind};
use std::time::{Duration, Instant};

pub const SEED: u64 = 2026;
/// Cases in scope of the benchmarks' worker (a member of a team of ~667 cases who takes part in
/// ~333 more).
pub const WORKER_SCOPE: usize = 1_000;
pub const CASES: usize = 20_000;
pub const NOTES_PER_CASE: usize = 50;

/// The CPU ticks (utime + stime) of each living process whose command name is `comm` (all
/// of them when `None`), or of `pids` only.
fn ticks(comm: Option<&str>, pids: Option<&[u32]>) -> std::collections::HashMap<u32, u64> {
    let mut found = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(p) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pids.is_some_and(|want| !want.contains(&p)) {
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
        found.insert(p, utime + stime);
    }
    found
}

/// CPU seconds of a set of processes since the meter was made, never going back: each
/// process's ticks count from when it was first seen (all of them for one born since), so a
/// process that ends between two readings (a PostgreSQL backend, an autovacuum worker) keeps
/// what was counted for it instead of making the sum fall. What it used between its last
/// reading and its end is not counted.
pub struct CpuMeter {
    comm: Option<&'static str>,
    pids: Option<Vec<u32>>,
    seen: std::cell::RefCell<std::collections::HashMap<u32, u64>>,
    total: std::cell::Cell<u64>,
}

impl CpuMeter {
    /// Every process named `comm` (PostgreSQL's: `postgres`).
    pub fn named(comm: &'static str) -> CpuMeter {
        CpuMeter::new(Some(comm), None)
    }

    pub fn of(pids: &[u32]) -> CpuMeter {
        CpuMeter::new(None, Some(pids.to_vec()))
    }

    fn new(comm: Option<&'static str>, pids: Option<Vec<u32>>) -> CpuMeter {
        let seen = ticks(comm, pids.as_deref());
        CpuMeter {
            comm,
            pids,
            seen: std::cell::RefCell::new(seen),
            total: std::cell::Cell::new(0),
        }
    }

    /// CPU seconds counted so far.
    pub fn seconds(&self) -> f64 {
        let now = ticks(self.comm, self.pids.as_deref());
        let mut seen = self.seen.borrow_mut();
        let mut total = self.total.get();
        for (pid, t) in &now {
            total += t.saturating_sub(seen.get(pid).copied().unwrap_or(0));
        }
        *seen = now;
        self.total.set(total);
        total as f64 / 100.0 // USER_HZ on Linux
    }
}

/// CPU of the service process and of the database's processes.
pub struct Cpu {
    server: CpuMeter,
    db: Option<CpuMeter>,
}

impl Cpu {
    pub fn new(server: u32, kind: Kind) -> Cpu {
        Cpu {
            server: CpuMeter::of(&[server]),
            db: (kind == Kind::Postgres).then(|| CpuMeter::named("postgres")),
        }
    }

    pub fn now(&self) -> (f64, f64) {
        (
            self.server.seconds(),
            self.db.as_ref().map(CpuMeter::seconds).unwrap_or(0.0),
        )
    }
}

pub struct Seeded {
    pub records: u64,
    pub took: Duration,
    pub worker: String,
    pub colleague: String,
    pub team_cases: Vec<CaseId>,
    /// Everyone, with the index of their team in `people.teams`.
    pub people: DemoStaff,
}

/// The municipality at `factor` times Aarhus's size, loaded in bulk; the worker and a
/// colleague on their team get accounts.
pub fn seed(db: &Db, factor: usize) -> Seeded {
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
        people,
    }
}
