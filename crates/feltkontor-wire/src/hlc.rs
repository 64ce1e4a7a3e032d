use crate::DeviceId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A hybrid logical clock timestamp: wall-clock milliseconds, a counter for events within the
/// same millisecond (or while the wall clock lags a timestamp already seen), and the device that
/// made it. Total order: wall, then counter, then device id, so two devices never tie.
///
/// Text form (`0000018c2f3a1b2c.00000001.<device uuid>`) sorts like the value itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Hlc {
    pub wall_ms: u64,
    pub counter: u32,
    pub device: DeviceId,
}

impl Hlc {
    /// The first timestamp a device has: before any event.
    pub fn zero(device: DeviceId) -> Self {
        Hlc {
            wall_ms: 0,
            counter: 0,
            device,
        }
    }

    /// The next local timestamp after `self`, given the wall clock now.
    pub fn tick(self, now_ms: u64) -> Hlc {
        if now_ms > self.wall_ms {
            Hlc {
                wall_ms: now_ms,
                counter: 0,
                device: self.device,
            }
        } else {
            Hlc {
                wall_ms: self.wall_ms,
                counter: self.counter + 1,
                device: self.device,
            }
        }
    }

    /// The next local timestamp after both `self` and a timestamp received from elsewhere.
    pub fn observe(self, remote: Hlc, now_ms: u64) -> Hlc {
        let wall = now_ms.max(self.wall_ms).max(remote.wall_ms);
        let counter = if wall == self.wall_ms && wall == remote.wall_ms {
            self.counter.max(remote.counter) + 1
        } else if wall == self.wall_ms {
            self.counter + 1
        } else if wall == remote.wall_ms {
            remote.counter + 1
        } else {
            0
        };
        Hlc {
            wall_ms: wall,
            counter,
            device: self.device,
        }
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:016x}.{:08x}.{}",
            self.wall_ms, self.counter, self.device
        )
    }
}

/// A malformed HLC text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlcParseError(pub String);

impl fmt::Display for HlcParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed hybrid logical clock timestamp {:?}", self.0)
    }
}

impl std::error::Error for HlcParseError {}

impl FromStr for Hlc {
    type Err = HlcParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || HlcParseError(s.chars().take(80).collect());
        let mut parts = s.splitn(3, '.');
        let wall = parts.next().ok_or_else(err)?;
        let counter = parts.next().ok_or_else(err)?;
        let device = parts.next().ok_or_else(err)?;
        if wall.len() != 16 || counter.len() != 8 {
            return Err(err());
        }
        Ok(Hlc {
            wall_ms: u64::from_str_radix(wall, 16).map_err(|_| err())?,
            counter: u32::from_str_radix(counter, 16).map_err(|_| err())?,
            device: device.parse().map_err(|_| err())?,
        })
    }
}

impl Serialize for Hlc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hlc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_sorts_like_the_value() {
        let d = DeviceId::new();
        let a = Hlc {
            wall_ms: 1_700_000_000_000,
            counter: 2,
            device: d,
        };
        let b = a.tick(1_700_000_000_000);
        let c = b.tick(1_700_000_000_001);
        assert!(a < b && b < c);
        assert!(a.to_string() < b.to_string() && b.to_string() < c.to_string());
        assert_eq!(c.to_string().parse::<Hlc>().unwrap(), c);
    }

    #[test]
    fn tick_never_goes_backwards_when_the_wall_clock_does() {
        let h = Hlc {
            wall_ms: 5_000,
            counter: 0,
            device: DeviceId::new(),
        };
        let next = h.tick(1_000);
        assert!(next > h);
        assert_eq!(next.wall_ms, 5_000);
    }

    #[test]
    fn observe_moves_past_a_remote_timestamp() {
        let local = Hlc {
            wall_ms: 10,
            counter: 3,
            device: DeviceId::new(),
        };
        let remote = Hlc {
            wall_ms: 20,
            counter: 7,
            device: DeviceId::new(),
        };
        let next = local.observe(remote, 15);
        assert_eq!((next.wall_ms, next.counter), (20, 8));
        assert_eq!(next.device, local.device);
    }

    #[test]
    fn malformed_text_is_an_error() {
        assert!("nonsense".parse::<Hlc>().is_err());
        assert!("zz.00000000.x".parse::<Hlc>().is_err());
    }
}
