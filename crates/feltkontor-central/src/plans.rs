//! Each worker's pull plan (the buckets they may see, with heads and horizons), kept between
//! pulls on PostgreSQL so that a pull where nothing changed reads no bucket and no scope row.
//!
//! Kept up to date by what every instance hears of every change ([`crate::live`]): a change
//! in a case marks that case for a fresh look in the plans that hold it; a change to a
//! worker's scope (a participant, a coordinator), to the reference data, a purge or a lost
//! listening connection drops the plans concerned (all of them for the last three). The
//! plan is trusted for one thing only: that nothing moved in a bucket. Every bucket it would
//! send records of is decided again from the database before anything is sent (`sync::pull_with`),
//! so a plan that is behind (a change at another instance not heard yet, for the few
//! milliseconds a notification takes) delays a change, never shows what the worker may no
//! longer see. Not used on SQLite: there the admin commands write from another process that
//! tells nobody, and a pull there reads the scope in-process anyway.

use crate::live::Touched;
use crate::sync::Planned;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use time::Date;
use uuid::Uuid;

/// Most buckets kept in all plans together (about 100 bytes each: ~100 MB); beyond it the
/// cache starts again empty.
const MOST_BUCKETS: usize = 1_000_000;

struct Entry {
    /// The plan and the scope version it was made with (`None` until one is stored).
    plan: Option<(Vec<Planned>, i64, Date)>,
    cases: BTreeSet<Uuid>,
    /// Cases changed since the plan was made, each with the number of the mark (while no plan
    /// is stored: every case heard of).
    dirty: std::collections::BTreeMap<Uuid, u64>,
    /// The newest mark a stored plan covers: an older look never overwrites a newer one.
    stored: u64,
}

#[derive(Default)]
pub struct PlanCache {
    /// The last mark's number, the plans, and how many buckets they hold.
    entries: Mutex<(u64, HashMap<Uuid, Entry>, usize)>,
}

/// What [`PlanCache::begin`] hands out, before the pull's snapshot is taken: whatever is heard
/// from then on stays marked for the next pull.
pub struct Ticket {
    /// Marks up to this number are covered by the look that took the ticket.
    pub mark: u64,
    /// The plan kept, with its scope version and day, and the cases to look at again.
    pub kept: Option<(Vec<Planned>, i64, Date)>,
    pub dirty: BTreeSet<Uuid>,
}

impl PlanCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, HashMap<Uuid, Entry>, usize)> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A change was heard.
    pub fn heard(&self, t: &Touched) {
        let mut guard = self.lock();
        if t.everyone {
            guard.1.clear();
            guard.2 = 0;
            return;
        }
        guard.0 += 1;
        let mark = guard.0;
        let mut dropped = 0;
        for s in &t.staff {
            if let Some(e) = guard.1.remove(s) {
                dropped += e.plan.map_or(0, |p| p.0.len());
            }
        }
        guard.2 = guard.2.saturating_sub(dropped);
        for e in guard.1.values_mut() {
            for c in &t.cases {
                if e.plan.is_none() || e.cases.contains(c) {
                    e.dirty.insert(*c, mark);
                }
            }
        }
    }

    /// Called before the pull's read snapshot is taken: the worker's kept plan and marks (left
    /// in place until a plan covering them is stored), or an entry that collects marks while
    /// a plan is made.
    pub fn begin(&self, staff: Uuid) -> Ticket {
        let mut guard = self.lock();
        guard.0 += 1;
        let mark = guard.0;
        if guard.2 >= MOST_BUCKETS {
            guard.1.clear();
            guard.2 = 0;
        }
        // A new entry takes no plan from a look that began before it (made, perhaps, before
        // the change that dropped the old one).
        let e = guard.1.entry(staff).or_insert_with(|| Entry {
            plan: None,
            cases: BTreeSet::new(),
            dirty: Default::default(),
            stored: mark,
        });
        Ticket {
            mark,
            kept: e.plan.clone(),
            dirty: e.dirty.keys().copied().collect(),
        }
    }

    /// Stores a plan made (or brought up to date) in a snapshot taken after `ticket` was
    /// handed out, with the scope version read there. The marks it covers go; marks heard
    /// since stay. Nothing is stored when the entry was dropped meanwhile or a later look
    /// stored already.
    pub fn store(&self, staff: Uuid, ticket: &Ticket, plan: &[Planned], version: i64, date: Date) {
        let mut guard = self.lock();
        let mut delta = None;
        if let Some(e) = guard.1.get_mut(&staff) {
            if e.stored <= ticket.mark {
                e.stored = ticket.mark;
                e.cases = plan.iter().filter_map(|p| p.case.map(|(c, _)| c)).collect();
                e.dirty.retain(|_, m| *m > ticket.mark);
                let before = e
                    .plan
                    .replace((plan.to_vec(), version, date))
                    .map_or(0, |p| p.0.len());
                delta = Some(before);
            }
        }
        if let Some(before) = delta {
            guard.2 = guard.2.saturating_sub(before) + plan.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day() -> Date {
        time::macros::date!(2026 - 12 - 07)
    }

    #[test]
    fn a_kept_plan_is_marked_dropped_and_replaced_as_changes_are_heard() {
        let cache = PlanCache::default();
        let (me, mine, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let t = cache.begin(me);
        assert!(t.kept.is_none());
        // Heard while the plan is being made: marked although the plan's cases are unknown.
        cache.heard(&Touched {
            cases: [other].into(),
            ..Default::default()
        });
        cache.store(me, &t, &[Planned::for_case(mine, 5)], 1, day());
        let t = cache.begin(me);
        let (plan, version, _) = t.kept.clone().expect("kept");
        assert_eq!((plan.len(), version), (1, 1));
        assert_eq!(
            t.dirty,
            [other].into(),
            "what was heard while making it stays marked"
        );
        cache.store(me, &t, &plan, 1, day());
        // A change in one of its cases marks it; another worker's case does not.
        cache.heard(&Touched {
            cases: [mine].into(),
            ..Default::default()
        });
        cache.heard(&Touched {
            cases: [other].into(),
            ..Default::default()
        });
        let first = cache.begin(me);
        assert_eq!(first.dirty, [mine].into());
        // Two pulls at once: the marks stay until a plan covering them is stored; a mark heard
        // after a look began survives that look's store; an older look never overwrites.
        let second = cache.begin(me);
        assert_eq!(
            second.dirty,
            [mine].into(),
            "not taken away by the first look"
        );
        cache.heard(&Touched {
            cases: [mine].into(),
            ..Default::default()
        });
        cache.store(me, &second, &[Planned::for_case(mine, 9)], 1, day());
        cache.store(me, &first, &[Planned::for_case(mine, 6)], 1, day());
        let t = cache.begin(me);
        assert_eq!(t.dirty, [mine].into(), "heard after both looks began");
        assert_eq!(
            format!("{:?}", t.kept.unwrap().0),
            format!("{:?}", vec![Planned::for_case(mine, 9)])
        );
        // The worker's own scope touched, or everyone: dropped; a plan made for a dropped
        // entry is not stored.
        cache.heard(&Touched {
            staff: [me].into(),
            ..Default::default()
        });
        let t = cache.begin(me);
        assert!(t.kept.is_none(), "dropped");
        cache.heard(&Touched::everyone());
        cache.store(me, &t, &[Planned::for_case(mine, 7)], 2, day());
        assert!(cache.begin(me).kept.is_none());
    }
}
