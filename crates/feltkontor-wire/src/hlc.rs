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

/// The highest counter a clock carries: past it, a clock moves to the next millisecond. The
/// service refuses a pushed clock above it, so no device is ever handed a counter that would
/// overflow.
pub const MAX_HLC_COUNTER: u32 = 0x00ff_ffff;

/// The length of an [`Hlc`]'s text form.
pub const HLC_TEXT_LEN: usize = 16 + 1 + 8 + 1 + 36;

impl Hlc {
    /// The text form, written into `buf` without the formatting machinery (every record of a
    /// sync carries clocks, so this is written and read hundreds of thousands of times).
    pub fn encode<'b>(&self, buf: &'b mut [u8; HLC_TEXT_LEN]) -> &'b str {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in buf[..16].iter_mut().enumerate() {
            *b = HEX[((self.wall_ms >> (60 - 4 * i)) & 0xf) as usize];
        }
        buf[16] = b'.';
        for (i, b) in buf[17..25].iter_mut().enumerate() {
            *b = HEX[((self.counter >> (28 - 4 * i)) & 0xf) as usize];
        }
        buf[25] = b'.';
        self.device.0.hyphenated().encode_lower(&mut buf[26..]);
        // Only ASCII was written above.
        std::str::from_utf8(buf).unwrap_or_default()
    }

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
            Hlc::after(self.wall_ms, self.counter, self.device)
        }
    }

    /// The next local timestamp after both `self` and a timestamp received from elsewhere.
    pub fn observe(self, remote: Hlc, now_ms: u64) -> Hlc {
        let wall = now_ms.max(self.wall_ms).max(remote.wall_ms);
        if wall == self.wall_ms && wall == remote.wall_ms {
            Hlc::after(wall, self.counter.max(remote.counter), self.device)
        } else if wall == self.wall_ms {
            Hlc::after(wall, self.counter, self.device)
        } else if wall == remote.wall_ms {
            Hlc::after(wall, remote.counter, self.device)
        } else {
            Hlc {
                wall_ms: wall,
                counter: 0,
                device: self.device,
            }
        }
    }

    /// The first timestamp after `self` that `device` can give (the service re-dating a
    /// field just after a device's write): never past [`MAX_HLC_COUNTER`].
    pub fn successor(self, device: DeviceId) -> Hlc {
        Hlc::after(self.wall_ms, self.counter, device)
    }

    /// The timestamp just after `(wall, counter)`: the counter's next value, or, at
    /// [`MAX_HLC_COUNTER`] (never past it), the next millisecond. Never overflows.
    fn after(wall: u64, counter: u32, device: DeviceId) -> Hlc {
        if counter >= MAX_HLC_COUNTER {
            Hlc {
                wall_ms: wall.saturating_add(1),
                counter: 0,
                device,
            }
        } else {
            Hlc {
                wall_ms: wall,
                counter: counter + 1,
                device,
            }
        }
    }
}

/// On the wire a clock is its text form.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Hlc {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9a-f]{16}\\.[0-9a-f]{8}\\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"))
            .description(Some("A hybrid logical clock: wall-clock milliseconds (16 hex digits), a counter (8 hex digits), the device's id."))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Hlc {}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encode(&mut [0; HLC_TEXT_LEN]))
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
        s.serialize_str(self.encode(&mut [0; HLC_TEXT_LEN]))
    }
}

impl<'de> Deserialize<'de> for Hlc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read from the text where it lies (no copy into a String of its own).
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Hlc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a hybrid logical clock timestamp")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Hlc, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Text)
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
    fn text_form_is_the_fixed_width_hex_form() {
        let device = DeviceId("018c2f3a-1b2c-7d4e-8f90-a1b2c3d4e5f6".parse().unwrap());
        for (wall_ms, counter) in [(0, 0), (1_700_000_000_000, 2), (u64::MAX, u32::MAX)] {
            let h = Hlc {
                wall_ms,
                counter,
                device,
            };
            let want = format!("{wall_ms:016x}.{counter:08x}.{}", device.0);
            assert_eq!(h.to_string(), want);
            // As JSON text, from JSON text and from a parsed JSON value.
            let json = serde_json::to_string(&h).unwrap();
            assert_eq!(json, format!("\"{want}\""));
            assert_eq!(serde_json::from_str::<Hlc>(&json).unwrap(), h);
            let value = serde_json::Value::String(want);
            assert_eq!(serde_json::from_value::<Hlc>(value).unwrap(), h);
        }
        assert!(serde_json::from_str::<Hlc>("17").is_err());
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

    /// A counter at its end (or past it, from a clock made before the bound) moves the clock
    /// to the next millisecond instead of overflowing; the result is still after both inputs.
    #[test]
    fn counters_never_overflow() {
        let d = DeviceId::new();
        for counter in [MAX_HLC_COUNTER, u32::MAX] {
            let h = Hlc {
                wall_ms: 1_000,
                counter,
                device: d,
            };
            let next = h.tick(500);
            assert!(next > h);
            assert_eq!((next.wall_ms, next.counter), (1_001, 0));
            let remote = Hlc {
                wall_ms: 1_000,
                counter,
                device: DeviceId::new(),
            };
            let seen = Hlc::zero(d).observe(remote, 900);
            assert!(seen > remote);
            assert!(h.observe(remote, 900) > remote.max(h));
        }
        let end = Hlc {
            wall_ms: u64::MAX,
            counter: u32::MAX,
            device: d,
        };
        assert_eq!(end.tick(0).wall_ms, u64::MAX);
    }
}
