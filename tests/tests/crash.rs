//! Crash test: a child process saves notes in a loop and is killed with SIGKILL at random
//! moments. After every kill the database must open, pass `PRAGMA integrity_check`, and hold
//! every note whose save had returned (with its change-log entry), and no half-written note.

use feltkontor_core::domain::*;
use feltkontor_core::store::{KdfParams, Store, StoreLocation};
use feltkontor_core::SystemClock;
use feltkontor_tests::{crash_body, CRASH_PASSPHRASE};
use feltkontor_wire::*;
use rand::Rng;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use time::macros::date;

fn cycles() -> usize {
    std::env::var("FELTKONTOR_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// Kills per store: a fresh store every so many cycles keeps the full re-check of every saved
/// note after each kill cheap, while each store still lives through many crashes.
const CYCLES_PER_STORE: usize = 25;

#[test]
fn saved_notes_survive_sigkill_at_random_moments() {
    let total = cycles();
    let mut acknowledged_total = 0;
    let mut kills_during_writes = 0;
    let mut done = 0;
    while done < total {
        let n = CYCLES_PER_STORE.min(total - done);
        let (acked, during_writes) = crash_cycles(n, done);
        acknowledged_total += acked;
        kills_during_writes += during_writes;
        done += n;
    }
    assert!(
        acknowledged_total > total,
        "the writer should have saved many notes; got {acknowledged_total}"
    );
    assert!(
        kills_during_writes > total / 2,
        "most kills should land in the write loop; got {kills_during_writes}"
    );
    println!("{total} kill cycles, {acknowledged_total} acknowledged notes, {kills_during_writes} kills during writes");
}

/// Runs `cycles` kill cycles against one new store; returns (acknowledged saves, kills that
/// landed after the writer was ready).
fn crash_cycles(cycles: usize, first_cycle: usize) -> (usize, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let loc = StoreLocation::new(tmp.path());
    let clock = Arc::new(SystemClock);
    let team = Team {
        id: TeamId::new(),
        name: "Team Tilst".into(),
        district: "Tilst".into(),
    };
    let worker = Staff {
        id: StaffId::new(),
        name: "Karin Holm".into(),
        initials: "KH".into(),
        profession: Profession::Psychologist,
        sector: StaffSector::SchoolsDaycare,
    };
    let case = Case {
        id: CaseId::new(),
        team_id: team.id,
        child_name: "Asta Lund".into(),
        child_birth_date: date!(2016 - 05 - 04),
        child_cpr: None,
        child_institution: None,
        status: CaseStatus::Open,
        closed_reason: None,
        coordinator_id: worker.id,
        opened_on: date!(2025 - 09 - 01),
        first_concern_on: None,
        first_meeting_on: None,
    };
    let mut store = Store::create_with(
        &loc,
        CRASH_PASSPHRASE,
        worker.id,
        DeviceId::new(),
        KdfParams::default(),
        clock.clone(),
    )
    .unwrap();
    store
        .write(|w| {
            w.put_team(&team)?;
            w.put_staff(&worker)?;
            w.add_team_member(team.id, worker.id)?;
            w.open_case(&case)
        })
        .unwrap();
    store.lock();

    let exe = env!("CARGO_BIN_EXE_crash-writer");
    let mut acknowledged: HashMap<NoteId, u64> = HashMap::new();
    let mut next_index = 0u64;
    let mut rng = rand::thread_rng();
    let mut kills_during_writes = 0;
    for cycle in first_cycle..first_cycle + cycles {
        let mut child = Command::new(exe)
            .args([
                tmp.path().to_str().unwrap(),
                &case.id.to_string(),
                &next_index.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => {
                        if l == "ready" {
                            let _ = ready_tx.send(());
                        }
                        lines.push(l)
                    }
                    Err(_) => break,
                }
            }
            lines
        });
        if cycle % 5 == 0 {
            // One kill in five anywhere from start-up and unlock into the first writes.
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..350)));
        } else {
            // The rest in the write loop, however long unlocking takes on a busy machine.
            let _ = ready_rx.recv_timeout(Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..200)));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let lines = reader.join().unwrap();
        let saved: Vec<(u64, NoteId)> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("saved "))
            .map(|l| {
                let (i, id) = l.split_once(' ').unwrap();
                (i.parse().unwrap(), id.parse().unwrap())
            })
            .collect();
        if lines.first().is_some_and(|l| l == "ready") {
            kills_during_writes += 1;
        }
        for (i, id) in &saved {
            acknowledged.insert(*id, *i);
            next_index = next_index.max(i + 1);
        }
        // An unacknowledged save may have committed; skip its index either way.
        next_index += 1;

        let store = Store::open(&loc, CRASH_PASSPHRASE, clock.clone())
            .unwrap_or_else(|e| panic!("cycle {cycle}: the store did not open after SIGKILL: {e}"));
        assert!(
            store.integrity_ok().unwrap(),
            "cycle {cycle}: integrity_check failed"
        );
        let conn = store.conn();
        let mut stmt = conn
            .prepare("SELECT n.id, n.body, n.child_words, (SELECT count(*) FROM change_log l WHERE l.entity = 'note' AND l.entity_id = n.id) FROM notes n")
            .unwrap();
        let notes: HashMap<NoteId, (String, String, i64)> = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?.parse().unwrap(),
                    (r.get(1)?, r.get(2)?, r.get(3)?),
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (id, i) in &acknowledged {
            let (body, words, log) = notes
                .get(id)
                .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged note {i} is lost"));
            assert_eq!(body, &crash_body(*i), "cycle {cycle}: note {i} changed");
            assert_eq!(words, &format!("ord {i}"));
            assert_eq!(
                *log, 1,
                "cycle {cycle}: note {i} has {log} change-log entries"
            );
        }
        for (id, (body, words, log)) in &notes {
            let i: u64 = words.strip_prefix("ord ").unwrap().parse().unwrap();
            assert_eq!(
                body,
                &crash_body(i),
                "cycle {cycle}: note {id} is half-written"
            );
            assert_eq!(
                *log, 1,
                "cycle {cycle}: note {id} has {log} change-log entries"
            );
        }
        let seqs: Vec<u64> = store
            .change_log(0, u32::MAX)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as u64).collect::<Vec<_>>(),
            "cycle {cycle}: sequence gap"
        );
        drop(stmt);
        store.lock();
    }
    (acknowledged.len(), kills_during_writes)
}
