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

/// CPU seconds used so far by the processes whose command name is `comm` (all of them), or by
/// `pid` alone.
pub fn cpu_seconds(comm: Option<&str>, pid: Option<u32>) -> f64 {
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
pub struct Cpu {
    pub server: u32,
    pub kind: Kind,
}

impl Cpu {
    pub fn now(&self) -> (f64, f64) {
        let server = cpu_seconds(None, Some(self.server));
        let db = match self.kind {
            Kind::Postgres => cpu_seconds(Some("postgres"), None),
            Kind::Sqlite => 0.0,
        };
        (server, db)
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
