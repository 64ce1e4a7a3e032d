//! `make bench-quarantine`: what waiting quarantined notes cost every pull. The release server
//! binary on loopback, SQLite and PostgreSQL; a device that holds everything asks for what is
//! new (nothing): [`PULLS`] incremental pulls with an empty quarantine (the baseline, measured
//! in the same run), then again with 4,000 quarantined notes waiting (four devices of a
//! colleague removed from the team, each at the per-device bound of 1,000), all in a case of
//! the coordinator: for the coordinator, who decides on them (they are counted), and for a
//! psychologist on the same team, who decides on none. Before issue 14 every pull read the
//! whole quarantine: 4,000 rows took an incremental pull from 5 ms to over 400 ms. Writes
//! target/bench/quarantine.md.

#[path = "../tests/common/mod.rs"]
mod common;

use common::devices;
use common::insider::Insider;
use common::world;
use common::{Db, Kind, Server, FAST_LIMITS};
use feltkontor_wire::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const PULLS: usize = 200;
const DEVICES: usize = 4;
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// The cursors of everything the device holds.
fn cursors_after_full_pull(device: &Insider) -> BTreeMap<String, u64> {
    let (pages, _) = device.pull_everything();
    let mut cursors = BTreeMap::new();
    for page in &pages {
        for b in page["buckets"].as_array().unwrap() {
            cursors.insert(
                b["bucket"].as_str().unwrap().to_owned(),
                b["cursor"].as_u64().unwrap(),
            );
        }
    }
    cursors
}

/// `PULLS` incremental pulls with nothing new, sorted by time; the count they announced.
fn incremental_pulls(device: &Insider, cursors: &BTreeMap<String, u64>) -> (Vec<Duration>, Value) {
    let body = json!({ "cursors": cursors, "limit": 2000 });
    let mut times = Vec::with_capacity(PULLS);
    let mut announced = Value::Null;
    for i in 0..PULLS + 10 {
        let started = Instant::now();
        let r = device.post("/v1/sync/pull", &body);
        let took = started.elapsed();
        assert_eq!(r.status, 200, "pull: {:?}", r.body);
        announced = r.body["quarantined"].clone();
        // The first ten warm the connection and the caches.
        if i >= 10 {
            times.push(took);
        }
    }
    times.sort();
    (times, announced)
}

struct Row {
    engine: &'static str,
    worker: &'static str,
    empty: Vec<Duration>,
    full: Vec<Duration>,
    waiting: Value,
}

fn measure(kind: Kind) -> [Row; 2] {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let server = Server::start(&db, &FAST_LIMITS);
    let coord = Insider::enroll(&server, &db, "coord");
    let cursors = cursors_after_full_pull(&coord);
    let (empty, announced) = incremental_pulls(&coord, &cursors);
    assert_eq!(announced, json!(0));
    let psy = Insider::enroll(&server, &db, "psy");
    let psy_cursors = cursors_after_full_pull(&psy);
    let (psy_empty, _) = incremental_pulls(&psy, &psy_cursors);

    // A colleague's four computers hold the team's cases; the colleague leaves the team while
    // they are offline, and each computer then sends 1,000 notes on a case of the coordinator.
    let mut colleague: Vec<Insider> = (0..DEVICES)
        .map(|_| {
            let d = Insider::enroll(&server, &db, "teamcw");
            d.pull_everything();
            d
        })
        .collect();
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
    let per_device = feltkontor_central::sync::MAX_QUARANTINED_PER_DEVICE as usize;
    for device in &mut colleague {
        for batch in 0..per_device / 200 {
            let entries: Vec<ChangeEntry> = (0..200)
                .map(|i| {
                    let note = devices::draft_note(
                        w.case1,
                        StaffId(device.staff),
                        &format!("Notat {}", batch * 200 + i),
                    );
                    let mut fields = serde_json::to_value(&note).unwrap();
                    fields.as_object_mut().unwrap().remove("id");
                    device.change(EntityKind::Note, note.id.0, fields, None)
                })
                .collect();
            let r = device.push(&entries);
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
    }
    let (full, waiting) = incremental_pulls(&coord, &cursors);
    assert_eq!(waiting, json!(DEVICES * per_device), "every note waits");
    let (psy_full, psy_waiting) = incremental_pulls(&psy, &psy_cursors);
    assert_eq!(psy_waiting, json!(0), "none waits for the psychologist");
    let engine = match kind {
        Kind::Sqlite => "SQLite",
        Kind::Postgres => "PostgreSQL",
    };
    [
        Row {
            engine,
            worker: "coordinator (decides on them)",
            empty,
            full,
            waiting,
        },
        Row {
            engine,
            worker: "psychologist (decides on none)",
            empty: psy_empty,
            full: psy_full,
            waiting: psy_waiting,
        },
    ]
}

fn main() {
    std::env::set_var("FELTKONTOR_TEST_SERVER_LOG", "warn");
    let rows: Vec<Row> = [Kind::Sqlite, Kind::Postgres]
        .into_iter()
        .flat_map(measure)
        .collect();
    let mut out = String::new();
    writeln!(
        out,
        "# Incremental pull with quarantined notes waiting\n\n`make bench-quarantine`: {PULLS} incremental pulls (nothing new) of a coordinator's device, release server on loopback; the baseline with an empty quarantine measured in the same run.\n"
    )
    .unwrap();
    writeln!(
        out,
        "| engine | whose pull | notes waiting for them | p50 empty (ms) | p50 with 4,000 waiting (ms) | ratio p50 | p95 empty (ms) | p95 with 4,000 waiting (ms) | ratio p95 |\n|---|---|---|---|---|---|---|---|---|"
    )
    .unwrap();
    for r in &rows {
        let (e50, f50) = (pct(&r.empty, 0.5), pct(&r.full, 0.5));
        let (e95, f95) = (pct(&r.empty, 0.95), pct(&r.full, 0.95));
        writeln!(
            out,
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.engine,
            r.worker,
            r.waiting,
            ms(e50),
            ms(f50),
            ms(f50) / ms(e50),
            ms(e95),
            ms(f95),
            ms(f95) / ms(e95),
        )
        .unwrap();
    }
    print!("{out}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("quarantine.md"), out).unwrap();
}
