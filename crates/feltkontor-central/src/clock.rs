//! The service's time, injected: every window the service keeps (access-token expiry, leases,
//! enrollment codes, the login throttle, the retry of a refresh whose answer was lost, the clock
//! skew of a push, which consents are valid today) reads the [`Clock`] in its configuration,
//! so tests can stand at each boundary.

use std::sync::atomic::{AtomicI64, Ordering};

pub trait Clock: Send + Sync {
    /// Unix milliseconds.
    fn now_ms(&self) -> i64;
}

/// The machine's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::now_ms()
    }
}

/// A clock a test sets and moves.
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(ms: i64) -> ManualClock {
        ManualClock(AtomicI64::new(ms))
    }

    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The machine's clock moved by the number of milliseconds written in a file (absent or empty:
/// not moved), read at every call: the server binary's tests move the time of a running server
/// (`--test-clock-file`), and the admin commands given the same file share it.
pub struct OffsetClock(pub std::path::PathBuf);

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        let offset = std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0);
        crate::now_ms().saturating_add(offset)
    }
}
