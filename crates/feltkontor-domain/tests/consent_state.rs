//! A consent's state is computed from its dates and withdrawal against the day asked about:
//! an expired or not-yet-valid consent is never shown as valid.

use feltkontor_domain::{Consent, ConsentState, CONSENT_EXPIRY_WARNING_DAYS};
use feltkontor_wire::{CaseId, ConsentId, ConsentSector, PersonId};
use proptest::prelude::*;
use time::macros::{date, datetime};
use time::{Date, Duration};

fn consent(from: Date, to: Option<Date>) -> Consent {
    Consent {
        id: ConsentId::new(),
        case_id: CaseId::new(),
        given_by: PersonId::new(),
        sectors: [ConsentSector::School].into(),
        valid_from: from,
        valid_to: to,
        withdrawn_at: None,
    }
}

#[test]
fn each_state_on_its_day() {
    let c = consent(date!(2026 - 01 - 01), Some(date!(2026 - 12 - 31)));
    assert_eq!(c.state(date!(2025 - 12 - 31)), ConsentState::NotYetValid);
    assert_eq!(c.state(date!(2026 - 01 - 01)), ConsentState::Valid);
    assert_eq!(c.state(date!(2026 - 11 - 30)), ConsentState::Valid);
    assert_eq!(c.state(date!(2026 - 12 - 01)), ConsentState::ExpiresSoon);
    assert_eq!(c.state(date!(2026 - 12 - 31)), ConsentState::ExpiresSoon);
    assert_eq!(c.state(date!(2027 - 01 - 01)), ConsentState::Expired);
    let open = consent(date!(2020 - 01 - 01), None);
    assert_eq!(open.state(date!(2040 - 01 - 01)), ConsentState::Valid);
    let mut withdrawn = c.clone();
    withdrawn.withdrawn_at = Some(datetime!(2026-06-15 10:00 UTC));
    assert_eq!(withdrawn.state(date!(2026 - 06 - 14)), ConsentState::Valid);
    assert_eq!(
        withdrawn.state(date!(2026 - 06 - 15)),
        ConsentState::Withdrawn
    );
    assert_eq!(
        withdrawn.state(date!(2027 - 06 - 15)),
        ConsentState::Withdrawn
    );
}

#[test]
fn the_best_state_of_a_case() {
    use ConsentState::*;
    assert_eq!(ConsentState::best([]), None);
    assert_eq!(ConsentState::best([Expired, Valid, Withdrawn]), Some(Valid));
    assert_eq!(
        ConsentState::best([Expired, ExpiresSoon]),
        Some(ExpiresSoon)
    );
    assert_eq!(
        ConsentState::best([Expired, NotYetValid]),
        Some(NotYetValid)
    );
    assert_eq!(ConsentState::best([Withdrawn, Expired]), Some(Expired));
}

proptest! {
    /// In force exactly when it covers its sector, on any day.
    #[test]
    fn the_state_agrees_with_what_it_covers(
        from in 0i64..2000, len in proptest::option::of(0i64..800),
        withdrawn in proptest::option::of(0i64..2000), day in 0i64..3000,
    ) {
        let base = date!(2022 - 01 - 01);
        let mut c = consent(base + Duration::days(from), len.map(|l| base + Duration::days(from + l)));
        c.withdrawn_at = withdrawn.map(|w| (base + Duration::days(w)).midnight().assume_utc());
        let today = base + Duration::days(day);
        let state = c.state(today);
        prop_assert_eq!(state.in_force(), c.covers(ConsentSector::School, today));
        if state == ConsentState::ExpiresSoon {
            let to = c.valid_to.unwrap();
            prop_assert!((to - today).whole_days() <= CONSENT_EXPIRY_WARNING_DAYS);
        }
    }
}
