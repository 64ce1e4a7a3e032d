//! Time is passed in: business logic asks a [`Clock`], never the system directly, so tests
//! control time and the same code runs in the app, in the demo generator and in benchmarks.

use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;

    fn now_ms(&self) -> u64 {
        let ns = self.now().unix_timestamp_nanos();
        u64::try_from(ns / 1_000_000).unwrap_or(0)
    }

    fn today(&self) -> time::Date {
        self.now().date()
    }
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that moves only when told to (tests, demo data).
#[derive(Debug)]
pub struct ManualClock {
    unix_ms: AtomicI64,
}

impl ManualClock {
    pub fn new(at: OffsetDateTime) -> Self {
        ManualClock {
            unix_ms: AtomicI64::new((at.unix_timestamp_nanos() / 1_000_000) as i64),
        }
    }

    pub fn set(&self, at: OffsetDateTime) {
        self.unix_ms.store(
            (at.unix_timestamp_nanos() / 1_000_000) as i64,
            Ordering::SeqCst,
        );
    }

    pub fn advance(&self, by: time::Duration) {
        self.unix_ms
            .fetch_add(by.whole_milliseconds() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        let ms = self.unix_ms.load(Ordering::SeqCst);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}
