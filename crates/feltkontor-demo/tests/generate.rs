use feltkontor_core::store::queries::CaseFilter;
use feltkontor_core::store::{Store, StoreLocation};
use feltkontor_core::ManualClock;
use feltkontor_demo::{generate, DemoSize, DemoStaff};
use std::sync::Arc;
use time::macros::datetime;

#[test]
fn generates_a_consistent_municipality_the_worker_can_work_in() {
    let tmp = tempfile::tempdir().unwrap();
    let now = datetime!(2026-11-23 09:00 UTC);
    let clock = Arc::new(ManualClock::new(now));
    let people = DemoStaff::new(1);
    let mut store = Store::create(
        &StoreLocation::new(tmp.path()),
        "demo passphrase 123",
        people.worker().id,
        clock,
    )
    .unwrap();
    let size = DemoSize {
        cases: 24,
        notes_per_case: 10,
        persons_per_case: 6,
        long_case_notes: 120,
    };
    let s = generate(&mut store, &people, &size, 1, now, |_, _| {}).unwrap();
    assert_eq!(s.cases, 24);
    assert_eq!(s.teams, 11);
    assert!(s.notes >= 24 * 7 && s.persons >= 24 * 4);
    let mine = store.my_cases(&CaseFilter::default()).unwrap();
    assert!(
        mine.iter().any(|c| c.i_am_coordinator),
        "the worker coordinates some cases"
    );
    assert!(
        mine.iter().any(|c| !c.i_am_coordinator),
        "and takes part in others"
    );
    let cprs: Vec<String> = store
        .conn()
        .prepare("SELECT child_cpr FROM cases WHERE child_cpr IS NOT NULL")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        !cprs.is_empty() && cprs.iter().all(|c| c.ends_with("-9999")),
        "demo CPR numbers carry the demo serial"
    );
    assert!(store.search("skole", 10).unwrap().notes.len() == 10);
    assert!(store.integrity_ok().unwrap());
    // The long case: the worker coordinates it and it holds exactly the notes asked for.
    let long = s.long_case.as_deref().expect("a long case was made");
    let (coordinated, notes): (i64, i64) = store
        .conn()
        .query_row(
            "SELECT c.coordinator_id = (SELECT worker_id FROM device_state), (SELECT COUNT(*) FROM notes n WHERE n.case_id = c.id)
             FROM cases c WHERE c.child_name = ?1 ORDER BY 2 DESC LIMIT 1",
            [long],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((coordinated, notes), (1, 120));
}
