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
    /// Which filling this is: a plan is stored back only into the entry it was made for.
    id: u64,
    date: Date,
    /// The worker's scope version the plan was made with.
    version: i64,
    /// `None` while being made.
    plan: Option<Vec<Planned>>,
    cases: BTreeSet<Uuid>,
    /// Cases changed since the plan was made (while being made: every case heard of).
    dirty: BTreeSet<Uuid>,
}

#[derive(Default)]
pub struct PlanCache {
    /// The last filling's id, the plans, and how many buckets they hold.
    entries: Mutex<(u64, HashMap<Uuid, Entry>, usize)>,
}

/// What [`PlanCache::take`] hands out.
pub enum Taken {
    /// The plan as kept, and the cases to look at again.
    Kept(u64, Vec<Planned>, BTreeSet<Uuid>),
    /// None kept (or kept for another scope version): make one and store it under this id.
    Stale(u64),
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
        let mut dropped = 0;
        for s in &t.staff {
            if let Some(e) = guard.1.remove(s) {
                dropped += e.plan.map_or(0, |p| p.len());
            }
        }
        guard.2 = guard.2.saturating_sub(dropped);
        let map = &mut guard.1;
        for e in map.values_mut() {
            for c in &t.cases {
                if e.plan.is_none() || e.cases.contains(c) {
                    e.dirty.insert(*c);
                }
            }
        }
    }

    /// The worker's plan for `date` and scope `version`, or the id to make one under.
    pub fn take(&self, staff: Uuid, date: Date, version: i64) -> Taken {
        let mut guard = self.lock();
        guard.0 += 1;
        let next = guard.0;
        if let Some(e) = guard.1.get_mut(&staff) {
            if e.date == date && e.version == version {
                if let Some(plan) = &e.plan {
                    let dirty = std::mem::take(&mut e.dirty);
                    return Taken::Kept(e.id, plan.clone(), dirty);
                }
            }
        }
        if guard.2 >= MOST_BUCKETS {
            guard.1.clear();
            guard.2 = 0;
        }
        guard.1.insert(
            staff,
            Entry {
                id: next,
                date,
                version,
                plan: None,
                cases: BTreeSet::new(),
                dirty: BTreeSet::new(),
            },
        );
        Taken::Stale(next)
    }

    /// Stores a plan made (or brought up to date) under `id`, unless the entry was dropped
    /// or replaced meanwhile. Cases heard of meanwhile stay marked.
    pub fn store(&self, staff: Uuid, id: u64, plan: &[Planned]) {
        let mut guard = self.lock();
        let mut before = None;
        if let Some(e) = guard.1.get_mut(&staff).filter(|e| e.id == id) {
            e.cases = plan.iter().filter_map(|p| p.case.map(|(c, _)| c)).collect();
            before = Some(e.plan.replace(plan.to_vec()).map_or(0, |p| p.len()));
        }
        if let Some(before) = before {
            guard.2 = guard.2.saturating_sub(before) + plan.len();
        }
    }

    /// Marks `cases` again (a look that failed).
    pub fn remark(&self, staff: Uuid, id: u64, cases: BTreeSet<Uuid>) {
        let mut guard = self.lock();
        if let Some(e) = guard.1.get_mut(&staff).filter(|e| e.id == id) {
            e.dirty.extend(cases);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(t: Taken) -> (u64, Vec<Planned>, BTreeSet<Uuid>) {
        match t {
            Taken::Kept(id, plan, dirty) => (id, plan, dirty),
            Taken::Stale(_) => panic!("no plan kept"),
        }
    }

    #[test]
    fn a_kept_plan_is_marked_dropped_and_replaced_as_changes_are_heard() {
        let cache = PlanCache::default();
        let (me, mine, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let day = time::macros::date!(2026 - 12 - 07);
        let Taken::Stale(id) = cache.take(me, day, 1) else {
            panic!("nothing kept yet")
        };
        // Heard while the plan was being made: marked although the plan's cases are unknown.
        cache.heard(&Touched {
            cases: [other].into(),
            ..Default::default()
        });
        cache.store(me, id, &[Planned::for_case(mine, 5)]);
        let (id, plan, dirty) = kept(cache.take(me, day, 1));
        assert_eq!(plan.len(), 1);
        assert_eq!(
            dirty,
            [other].into(),
            "what was heard while making it stays marked"
        );
        // A change in one of its cases marks it; another worker's case does not.
        cache.heard(&Touched {
            cases: [mine].into(),
            ..Default::default()
        });
        cache.heard(&Touched {
            cases: [other].into(),
            ..Default::default()
        });
        let (_, _, dirty) = kept(cache.take(me, day, 1));
        assert_eq!(dirty, [mine].into());
        // Taken marks are gone; a failed look puts them back.
        cache.remark(me, id, [mine].into());
        let (_, _, dirty) = kept(cache.take(me, day, 1));
        assert_eq!(dirty, [mine].into());
        // Another scope version or another day: made again.
        assert!(matches!(cache.take(me, day, 2), Taken::Stale(_)));
        let Taken::Stale(id) = cache.take(me, day.next_day().unwrap(), 2) else {
            panic!()
        };
        cache.store(me, id, &[Planned::for_case(mine, 6)]);
        let _ = kept(cache.take(me, day.next_day().unwrap(), 2));
        // The worker's own scope touched, or everyone: dropped; a plan made for a dropped
        // entry is not stored.
        cache.heard(&Touched {
            staff: [me].into(),
            ..Default::default()
        });
        let Taken::Stale(id) = cache.take(me, day, 2) else {
            panic!("dropped")
        };
        cache.heard(&Touched::everyone());
        cache.store(me, id, &[Planned::for_case(mine, 7)]);
        assert!(matches!(cache.take(me, day, 2), Taken::Stale(_)));
    }
}
