//! Sync under faults, against the real server process:
//! - through a TCP proxy on loopback that refuses, delays, cuts off, resets and truncates
//!   connections at random, with the server killed (SIGKILL) in the middle of a push and
//!   restarted, on SQLite and on PostgreSQL;
//! - the app's sync process killed (SIGKILL) again and again in the middle of pushing and
//!   pulling, and started again on the same encrypted store.
//!
//! After the faults stop and every device has synced: each holds exactly what the service says
//! its worker may see, nothing is pending, nothing was refused, and the service applied every
//! change of every device exactly once (its audit log counts one `sync_write` per change).

mod common;

use common::convergence::*;
use common::devices::*;
use common::proxy::{Fate, Proxy};
use common::world;
use common::{Db, Kind, Server};
use feltkontor_core::store::StoreLocation;
use feltkontor_core::{Store, SystemClock};
use feltkontor_sync::{sync_once, Remote, SyncError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PASSPHRASE: &str = "en lang nok adgangssaetning";

/// Two devices edit and sync for 30 rounds through a faulty proxy; twice the server is
/// killed in the middle of a push and started again.
fn faults_converge(kind: Kind) {
    let db = Db::migrated(kind);
    let w = world::build(&db);
    let mut server = Server::start(&db, &[]);
    let port = server.addr().port();
    let proxy = Proxy::start(server.addr(), 0x5EED_F00D);
    let rt = rt();
    let mut coord = device(&server, &db, "coord");
    let mut colleague = device(&server, &db, "teamcw");
    for d in [&mut coord, &mut colleague] {
        d.remote = Remote::with_own_connections(&proxy.base, &d.token).unwrap();
        d.sync(&rt);
    }
    let audited_before = db.audited_writes();
    let mut rng = StdRng::seed_from_u64(7);
    proxy.set_faulty(true);
    let (mut failed, mut rounds, mut kills) = (0, 0, 0);
    for round in 0..30 {
        for d in [&mut coord, &mut colleague] {
            random_edits(d, &w, &mut rng, round);
        }
        if round == 10 || round == 20 {
            // Three hundred changes waiting; the server dies while they are pushed.
            let people: Vec<_> = (0..300)
                .map(|i| new_person(w.case1, &format!("Massepush {round}-{i}")))
                .collect();
            coord
                .store
                .write(|wr| people.iter().try_for_each(|p| wr.put_person(p)))
                .unwrap();
            let pid = server.child.id().to_string();
            let after = Duration::from_millis(rng.gen_range(5..120));
            let killer = std::thread::spawn(move || {
                std::thread::sleep(after);
                Command::new("kill").args(["-KILL", &pid]).status().unwrap();
            });
            let r = rt.block_on(sync_once(&coord.remote, &mut coord.store));
            killer.join().unwrap();
            let _ = server.child.wait();
            if r.is_err() {
                failed += 1;
            }
            kills += 1;
            server = Server::start_on(&db, port, &[]);
        }
        for d in [&mut coord, &mut colleague] {
            rounds += 1;
            // A new connection pool each round, as after the laptop changed network.
            d.remote = Remote::with_own_connections(&proxy.base, &d.token).unwrap();
            match rt.block_on(sync_once(&d.remote, &mut d.store)) {
                Ok(_) => {}
                Err(e @ (SyncError::Network(_) | SyncError::Refused { .. })) if e.transient() => {
                    failed += 1
                }
                Err(e) => panic!("round {round}: a fault must only delay the sync: {e}"),
            }
        }
    }
    let fates = proxy.fates.lock().unwrap().clone();
    eprintln!(
        "{kind:?}: {rounds} sync rounds through the proxy, {failed} broke off, server killed {kills}×; connections by fate: {fates:?}"
    );
    for fate in [
        Fate::Pass,
        Fate::Refuse,
        Fate::Delay,
        Fate::CutRequest,
        Fate::Reset,
        Fate::Truncate,
    ] {
        assert!(
            fates.get(&fate).copied().unwrap_or(0) > 0,
            "no {fate:?} happened"
        );
    }
    assert!(
        failed > 0,
        "the faults never broke a sync: the test tests nothing"
    );

    proxy.set_faulty(false);
    // Connections opened while the proxy was faulty keep their fate (one that passed a small
    // answer may cut the next): the devices reconnect, as after the network came back.
    for d in [&mut coord, &mut colleague] {
        d.remote = Remote::with_own_connections(&proxy.base, &d.token).unwrap();
    }
    settle(&rt, &mut [&mut coord, &mut colleague]);
    check_converged(&rt, &db, &[&coord, &colleague], audited_before);
    drop(server);
}
backends!(faults_converge);

/// The helper process for [`app_killed_mid_sync`]: the app's sync (the real client on the real
/// store), round after round, until it is killed. Run only by that test.
#[test]
#[ignore = "a helper process, started by app_killed_mid_sync"]
fn sync_process() {
    let Ok(dir) = std::env::var("FK_FAULT_STORE") else {
        return;
    };
    let base = std::env::var("FK_FAULT_BASE").unwrap();
    let token = std::env::var("FK_FAULT_TOKEN").unwrap();
    common::tls_provider();
    let mut store = Store::open(
        &StoreLocation::new(std::path::PathBuf::from(dir)),
        PASSPHRASE,
        Arc::new(SystemClock),
    )
    .unwrap();
    let remote = Remote::new(&base, &token).unwrap();
    let rt = rt();
    println!("ready");
    loop {
        rt.block_on(sync_once(&remote, &mut store)).unwrap();
        println!("round");
    }
}

/// The app is killed (SIGKILL) eight times while it pushes a thousand changes and pulls six
/// thousand records in pages; each time it starts again on the same store. Afterwards it holds
/// exactly what the service says, and every change was applied once.
#[test]
fn app_killed_mid_sync() {
    let db = Db::migrated(Kind::Sqlite);
    let w = world::build(&db);
    let server = Server::start(&db, &[]);
    let rt = rt();
    let audited_before = db.audited_writes();
    // The coordinator's computer has synced once and goes offline.
    let mut coord = device(&server, &db, "coord");
    coord.sync(&rt);
    let location = StoreLocation::new(coord._dir.path().join("profile"));
    // Meanwhile a colleague adds six thousand records: three pages or more to pull.
    let mut colleague = device(&server, &db, "teamcw");
    colleague.sync(&rt);
    let people: Vec<_> = (0..6_000)
        .map(|i| new_person(w.case1, &format!("Kollegaens person {i}")))
        .collect();
    colleague
        .store
        .write(|wr| people.iter().try_for_each(|p| wr.put_person(p)))
        .unwrap();
    colleague.sync(&rt);
    // Offline, the coordinator makes a thousand changes.
    let mine: Vec<_> = (0..1_000)
        .map(|i| new_person(w.case1, &format!("Min person {i}")))
        .collect();
    let Device {
        mut store,
        token,
        remote,
        staff,
        device: device_id,
        _dir,
    } = coord;
    store
        .write(|wr| mine.iter().try_for_each(|p| wr.put_person(p)))
        .unwrap();
    store.lock();

    let mut rng = StdRng::seed_from_u64(11);
    let mut killed_in_round = 0;
    for kill in 0..8 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "sync_process", "--ignored", "--nocapture"])
            .env("FK_FAULT_STORE", location.dir())
            .env("FK_FAULT_BASE", &server.base)
            .env("FK_FAULT_TOKEN", &token)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let line = lines.next().expect("the sync process ended").unwrap();
            if line == "ready" {
                break;
            }
            assert!(Instant::now() < deadline);
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..700)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        // A round that finished before the kill says so; count kills that hit a round.
        let finished = lines.map_while(Result::ok).any(|l| l == "round");
        if !finished {
            killed_in_round += 1;
        }
        eprintln!("kill {kill}: {status}, a round had finished: {finished}");
    }
    assert!(
        killed_in_round >= 1,
        "no kill landed inside the first sync round"
    );

    let store = Store::open(&location, PASSPHRASE, Arc::new(SystemClock)).unwrap();
    let mut coord = Device {
        store,
        remote,
        token,
        staff,
        device: device_id,
        _dir,
    };
    settle(&rt, &mut [&mut coord, &mut colleague]);
    check_converged(&rt, &db, &[&coord, &colleague], audited_before);
    let held: i64 = coord
        .store
        .conn()
        .query_row("SELECT COUNT(*) FROM persons", [], |r| r.get(0))
        .unwrap();
    assert!(
        held >= 7_000,
        "both workers' people are on the device: {held}"
    );
}
