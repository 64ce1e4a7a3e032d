//! Three instances of the service on one PostgreSQL database behind HAProxy, as the municipality
//! runs it. Three devices make offline edits and sync through the balancer, round after round;
//! four times, while all three push hundreds of changes at once, one instance is killed
//! (SIGKILL: no shutdown of any kind) and started again a round later. The balancer's health
//! checks take it out and put it back; a request cut off by the kill fails at the device, which
//! pushes it again later.
//!
//! Afterwards every device holds exactly what the service says its worker may see, nothing is
//! pending or refused, every change of every device was applied exactly once (the audit log
//! counts one `sync_write` per change made), and `admin audit-verify` passes.
//!
//! The property test (`sync_property.rs`) runs its devices against three instances as well; the
//! long run is `make test-sync-long`.

mod common;

use common::balancer::Balancer;
use common::convergence::*;
use common::devices::*;
use common::world;
use common::{Db, Kind, Server};
use feltkontor_sync::{sync_once, SyncError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::process::Command;
use std::time::Duration;

const INSTANCES: usize = 3;

/// Returns `after` once the instance whose log is `log` has begun a push (or after 5 s: the
/// balancer may have sent every push elsewhere).
fn kill_mid_push(log: &std::path::Path, after: Duration) {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(log).unwrap();
    file.seek(SeekFrom::End(0)).unwrap();
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        file.read_to_string(&mut seen).unwrap();
        if seen.contains("path=/v1/sync/push}: tower_http::trace::on_request") {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(after);
}

#[test]
fn three_instances_behind_a_balancer_lose_nothing_when_one_is_killed() {
    let db = Db::migrated(Kind::Postgres);
    let w = world::build(&db);
    let mut servers: Vec<Option<Server>> = (0..INSTANCES)
        .map(|_| Some(Server::start(&db, &[])))
        .collect();
    let ports: Vec<u16> = servers
        .iter()
        .map(|s| s.as_ref().unwrap().addr().port())
        .collect();
    let lb = Balancer::start(
        &servers
            .iter()
            .map(|s| s.as_ref().unwrap().addr())
            .collect::<Vec<_>>(),
    );
    let rt = rt();
    let mut devices: Vec<Device> = ["coord", "teamcw", "psyteam"]
        .iter()
        .map(|u| device_at(&lb.base, &db, u))
        .collect();
    for d in &mut devices {
        d.sync(&rt);
    }
    let audited_before = db.audited_writes();
    let mut rng = StdRng::seed_from_u64(0x1616);
    let (mut kills, mut broke_off, mut rounds) = (0, 0, 0);
    let mut down: Option<usize> = None;
    for round in 0..24 {
        // The instance killed last round comes back on its port; the balancer's health check
        // puts it back in rotation.
        if let Some(i) = down.take() {
            servers[i] = Some(Server::start_on(&db, ports[i], &[]));
        }
        for d in devices.iter_mut() {
            random_edits(d, &w, &mut rng, round);
        }
        if round % 6 == 2 {
            // Every device has a few hundred changes waiting; one instance dies while they are
            // pushed, all three at once (the balancer spreads them over the instances).
            for (n, d) in devices.iter_mut().enumerate() {
                let people: Vec<_> = (0..200)
                    .map(|i| new_person(w.case1, &format!("Massepush {round}-{n}-{i}")))
                    .collect();
                d.store
                    .write(|wr| people.iter().try_for_each(|p| wr.put_person(p)))
                    .unwrap();
            }
            let victim = kills % INSTANCES;
            let pid = servers[victim].as_ref().unwrap().child.id().to_string();
            let log = servers[victim].as_ref().unwrap().log.clone();
            let after = Duration::from_millis(rng.gen_range(0..30));
            let killer = std::thread::spawn(move || {
                kill_mid_push(&log, after);
                Command::new("kill").args(["-KILL", &pid]).status().unwrap();
            });
            let results = rt.block_on(async {
                let [a, b, c] = &mut devices[..] else {
                    unreachable!()
                };
                tokio::join!(
                    sync_once(&a.remote, &mut a.store),
                    sync_once(&b.remote, &mut b.store),
                    sync_once(&c.remote, &mut c.store),
                )
            });
            killer.join().unwrap();
            for r in [results.0, results.1, results.2] {
                rounds += 1;
                match r {
                    Ok(_) => {}
                    Err(e) if e.transient() => broke_off += 1,
                    Err(e) => panic!("round {round}: a killed instance must only delay: {e}"),
                }
            }
            let mut killed = servers[victim].take().unwrap();
            let _ = killed.child.wait();
            kills += 1;
            down = Some(victim);
            continue;
        }
        for d in devices.iter_mut() {
            rounds += 1;
            match rt.block_on(sync_once(&d.remote, &mut d.store)) {
                Ok(_) => {}
                Err(e @ (SyncError::Network(_) | SyncError::Refused { .. })) if e.transient() => {
                    broke_off += 1
                }
                Err(e) => panic!("round {round}: a killed instance must only delay: {e}"),
            }
        }
    }
    if let Some(i) = down.take() {
        servers[i] = Some(Server::start_on(&db, ports[i], &[]));
    }
    eprintln!(
        "{rounds} sync rounds through the balancer, {broke_off} broke off, an instance killed {kills}×"
    );
    assert!(kills >= 4);
    assert!(
        broke_off > 0,
        "no kill ever cut off a sync: the test tests nothing"
    );
    // The balancer notices the restarted instance within its health-check interval; until then
    // the others answer.
    std::thread::sleep(Duration::from_millis(600));
    let mut all: Vec<&mut Device> = devices.iter_mut().collect();
    settle(&rt, &mut all);
    let all: Vec<&Device> = devices.iter().collect();
    check_converged(&rt, &db, &all, audited_before);
    let verified = db.admin(&["audit-verify"], None).success();
    assert!(
        verified.stdout.contains("audit log intact"),
        "{}",
        verified.stdout
    );
    for s in servers.iter().flatten() {
        assert!(
            !s.log_text().contains("panicked"),
            "an instance panicked: {}",
            s.log_text()
        );
    }
}
