//! Random offline edits and the check that devices converged with nothing lost or applied
//! twice: shared by the fault tests (`sync_faults.rs`) and the multi-instance test
//! (`instances.rs`).

use super::devices::*;
use super::world::World;
use super::Db;
use feltkontor_core::domain::*;
use feltkontor_core::Store;
use feltkontor_wire::*;
use rand::rngs::StdRng;
use rand::Rng;

/// Changes the device has ever made (its change log is numbered 1, 2, 3, … without gaps).
pub fn changes_made(store: &Store) -> i64 {
    store
        .conn()
        .query_row("SELECT next_seq - 1 FROM device_state", [], |r| r.get(0))
        .unwrap()
}

/// A few random offline edits on case 1: new people, a changed language, a signed note, an
/// agreement.
pub fn random_edits(d: &mut Device, w: &World, rng: &mut StdRng, round: usize) {
    for i in 0..rng.gen_range(1..5) {
        match rng.gen_range(0..4) {
            0 => {
                let p = new_person(w.case1, &format!("Person {round}-{i}"));
                d.store.write(|wr| wr.put_person(&p)).unwrap();
            }
            1 => {
                let mut father = d.store.get::<Person>(w.father).unwrap().unwrap();
                father.language = Some(format!("sprog {round}-{i}"));
                d.store.write(|wr| wr.put_person(&father)).unwrap();
            }
            2 => {
                let note = draft_note(w.case1, StaffId(d.staff), &format!("Notat {round}-{i}"));
                d.store
                    .write(|wr| {
                        wr.save_note(&note)?;
                        wr.sign_note(note.id)?;
                        Ok(())
                    })
                    .unwrap();
            }
            _ => {
                let a = Agreement {
                    id: AgreementId::new(),
                    case_id: CaseId(w.case1),
                    what: format!("Aftale {round}-{i}"),
                    responsible_staff_id: Some(StaffId(d.staff)),
                    responsible_person_id: None,
                    due_on: None,
                    done_at: None,
                };
                d.store.write(|wr| wr.put_agreement(&a)).unwrap();
            }
        }
    }
}

/// Syncs until a round pushes and changes nothing (several rounds may be needed: a colleague's
/// changes arrive only after they pushed).
pub fn settle(rt: &tokio::runtime::Runtime, devices: &mut [&mut Device]) {
    for _ in 0..3 {
        for d in devices.iter_mut() {
            d.sync(rt);
        }
    }
}

pub fn check_converged(
    rt: &tokio::runtime::Runtime,
    db: &Db,
    devices: &[&Device],
    audited_before: i64,
) {
    let mut made = 0;
    for (i, d) in devices.iter().enumerate() {
        let who = format!("device {i}");
        assert_eq!(
            d.store.pending_count().unwrap(),
            0,
            "{who}: changes pending"
        );
        let rejected = d.store.rejected_changes().unwrap();
        assert!(rejected.is_empty(), "{who}: refused {rejected:?}");
        assert_converged(rt, d, &who);
        made += changes_made(&d.store);
    }
    assert_eq!(
        db.audited_writes() - audited_before,
        made,
        "every change applied exactly once (no duplicate, no loss)"
    );
}
