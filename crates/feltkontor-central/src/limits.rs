//! Token-bucket rate limits per key (device, account, client address), in memory per instance.
//! Behind a load balancer each instance limits on its own, so the effective limit is at most
//! the number of instances times the configured rate, which is what it is for: keeping one
//! runaway client from starving the others.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `rate` tokens per second, at most `burst` saved up.
    pub fn new(rate: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            rate: rate.max(0.001),
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how many seconds until one is available.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 100_000 {
            // Forget full buckets: they behave exactly like a new one.
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusal_with_a_wait() {
        let l = RateLimiter::new(1.0, 3.0);
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        assert_eq!(l.check("a"), Err(1));
        assert!(l.check("b").is_ok(), "keys are independent");
    }
}

/// How many requests of one device run at once on this instance: more are told to wait. One
/// device cannot hold the database connections every other worker needs, however it times
/// its requests (a burst well within its rate, or requests it gave up on that still run).
pub struct DeviceSlots {
    max: usize,
    running: Mutex<HashMap<uuid::Uuid, usize>>,
}

/// A request's place among its device's; given back when dropped.
pub struct DeviceSlot<'a> {
    slots: &'a DeviceSlots,
    device: uuid::Uuid,
}

impl DeviceSlots {
    pub fn new(max: usize) -> DeviceSlots {
        DeviceSlots {
            max: max.max(1),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// A place for one more request of `device`, or `None` while it has `max` running.
    pub fn enter(&self, device: uuid::Uuid) -> Option<DeviceSlot<'_>> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let n = running.entry(device).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(DeviceSlot {
            slots: self,
            device,
        })
    }
}

impl Drop for DeviceSlot<'_> {
    fn drop(&mut self) {
        let mut running = self.slots.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = running.get_mut(&self.device) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.device);
            }
        }
    }
}

#[cfg(test)]
mod device_slot_tests {
    use super::*;

    #[test]
    fn a_device_has_at_most_its_places_and_gets_them_back() {
        let slots = DeviceSlots::new(2);
        let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let first = slots.enter(a).unwrap();
        let _second = slots.enter(a).unwrap();
        assert!(
            slots.enter(a).is_none(),
            "a third request of one device waits"
        );
        assert!(slots.enter(b).is_some(), "another device is not held up");
        drop(first);
        assert!(slots.enter(a).is_some());
    }
}
