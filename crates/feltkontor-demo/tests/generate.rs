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
}
