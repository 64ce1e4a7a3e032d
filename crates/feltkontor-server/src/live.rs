//! Live updates on one instance: what each applied change touched, as this instance heard it
//! (on PostgreSQL from every instance by `LISTEN`, see `feltkontor_central::live`; on SQLite
//! from its own pushes), kept a few minutes, and the devices waiting for it.
//!
//! A waiting device is answered only when a change concerns its worker (a case in their
//! scope, their own scope, or the reference data). The generation it gets back is the time
//! this instance heard that change (milliseconds, never going back), so a device that asks
//! the next time at another instance, whose clock agrees, is not woken again for what it
//! already pulled; a `since` this instance cannot vouch for (forgotten, or from a clock far
//! ahead) is answered at once, and the device pulls once.

use feltkontor_central::live::Touched;
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use uuid::Uuid;

/// How long and how many heard changes are kept.
const KEEP: Duration = Duration::from_secs(300);
const KEEP_MOST: usize = 20_000;

pub struct LiveFeed {
    inner: Mutex<Inner>,
    /// The newest generation, for the waiting devices to wake on.
    latest: tokio::sync::watch::Sender<u64>,
}

struct Inner {
    heard: VecDeque<(u64, Touched)>,
    /// The newest generation no longer kept (0: none dropped yet).
    forgotten: u64,
    /// Generations start at the start time, so a restarted instance never repeats one.
    floor: u64,
    closed: bool,
}

/// What a wait is answered with.
#[derive(Debug, PartialEq, Eq)]
pub enum Heard {
    /// A change that concerns the worker, at this generation: pull.
    Concerns(u64),
    /// This instance cannot tell what the device missed: pull, from this generation.
    Unknown(u64),
}

fn now_ms() -> u64 {
    feltkontor_central::now_ms().max(0) as u64
}

impl LiveFeed {
    pub fn new() -> LiveFeed {
        let start = now_ms();
        LiveFeed {
            inner: Mutex::new(Inner {
                heard: VecDeque::new(),
                forgotten: 0,
                floor: start,
                closed: false,
            }),
            latest: tokio::sync::watch::channel(start).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A change was applied (here or, on PostgreSQL, at any instance).
    pub fn publish(&self, touched: Touched) {
        if touched.is_empty() {
            return;
        }
        let generation = {
            let mut inner = self.lock();
            let last = inner.heard.back().map_or(inner.floor, |(g, _)| *g);
            let generation = now_ms().max(last + 1);
            inner.heard.push_back((generation, touched));
            let cutoff = generation.saturating_sub(KEEP.as_millis() as u64);
            while inner
                .heard
                .front()
                .is_some_and(|(g, _)| *g < cutoff || inner.heard.len() > KEEP_MOST)
            {
                if let Some((g, _)) = inner.heard.pop_front() {
                    inner.forgotten = g;
                }
            }
            generation
        };
        self.latest.send_replace(generation);
    }

    /// The newest generation heard (the start time before any).
    #[cfg(test)]
    pub fn current(&self) -> u64 {
        let inner = self.lock();
        inner.heard.back().map_or(inner.floor, |(g, _)| *g)
    }

    /// Answers every waiting device now (shutting down): each gets its own `since` back.
    pub fn close(&self) {
        self.lock().closed = true;
        self.latest.send_modify(|g| *g += 0);
    }

    /// For a device that last heard `since`: whether anything after it concerns the worker,
    /// looking only at what came after `seen` (what an earlier look already covered).
    fn look(&self, since: u64, seen: u64, staff: Uuid, scope: &HashSet<Uuid>) -> Option<Heard> {
        let inner = self.lock();
        let current = inner.heard.back().map_or(inner.floor, |(g, _)| *g);
        // Nothing asked yet, older than what this instance keeps, or from before it started.
        if since == 0 || since < inner.forgotten || since < inner.floor {
            return Some(Heard::Unknown(current));
        }
        if since > current + 60_000 {
            // A clock far ahead of this one gave it: this instance cannot vouch for it.
            return Some(Heard::Unknown(current));
        }
        inner
            .heard
            .iter()
            .rev()
            .take_while(|(g, _)| *g > seen.max(since))
            .find(|(_, t)| t.concerns(staff, scope))
            .map(|(g, _)| Heard::Concerns(*g))
    }

    /// Waits at most `hold` for a change after `since` that concerns the worker `staff` with
    /// `scope`; `None` when none came (or the instance is shutting down).
    pub async fn wait(
        &self,
        since: u64,
        staff: Uuid,
        scope: &HashSet<Uuid>,
        hold: Duration,
    ) -> Option<Heard> {
        let mut rx = self.latest.subscribe();
        let deadline = tokio::time::Instant::now() + hold;
        let mut seen = 0;
        loop {
            let newest = *rx.borrow_and_update();
            if let Some(h) = self.look(since, seen, staff, scope) {
                return Some(h);
            }
            if self.lock().closed {
                return None;
            }
            seen = newest.max(seen);
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                _ => return None,
            }
        }
    }
}

impl Default for LiveFeed {
    fn default() -> Self {
        LiveFeed::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touched(cases: &[Uuid]) -> Touched {
        Touched {
            cases: cases.iter().copied().collect(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_wait_hears_only_what_concerns_its_worker() {
        let feed = std::sync::Arc::new(LiveFeed::new());
        let (mine, other, me) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let scope: HashSet<Uuid> = [mine].into();
        let since = feed.current();
        // Another worker's case: not heard.
        feed.publish(touched(&[other]));
        assert_eq!(
            feed.wait(since, me, &scope, Duration::from_millis(50))
                .await,
            None
        );
        // Heard while waiting.
        let f = feed.clone();
        let publisher = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            f.publish(touched(&[mine]));
        });
        let heard = feed.wait(since, me, &scope, Duration::from_secs(5)).await;
        publisher.await.unwrap();
        let Some(Heard::Concerns(g)) = heard else {
            panic!("{heard:?}")
        };
        assert!(g > since);
        // Heard before the wait began (during the pull): answered at once.
        feed.publish(touched(&[mine]));
        assert!(matches!(
            feed.wait(g, me, &scope, Duration::from_millis(50)).await,
            Some(Heard::Concerns(_))
        ));
        // A widened scope and the reference data concern the worker too.
        let now = feed.current();
        feed.publish(Touched {
            staff: [me].into(),
            ..Default::default()
        });
        assert!(feed
            .wait(now, me, &scope, Duration::from_millis(50))
            .await
            .is_some());
        let now = feed.current();
        feed.publish(Touched::everyone());
        assert!(feed
            .wait(now, me, &scope, Duration::from_millis(50))
            .await
            .is_some());
        // A generation from nowhere (0, or a clock far ahead) is answered at once.
        assert!(matches!(
            feed.wait(0, me, &scope, Duration::from_secs(5)).await,
            Some(Heard::Unknown(_))
        ));
        assert!(matches!(
            feed.wait(
                feed.current() + 3_600_000,
                me,
                &scope,
                Duration::from_secs(5)
            )
            .await,
            Some(Heard::Unknown(_))
        ));
        // Shutting down answers the wait with nothing new.
        let f = feed.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            f.close();
        });
        assert_eq!(
            feed.wait(feed.current(), me, &scope, Duration::from_secs(5))
                .await,
            None
        );
    }
}
