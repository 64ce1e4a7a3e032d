//! The Danish national ID number (CPR). Validated for form and date; never printed.

use crate::error::ValidationError;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use time::{Date, Month};

/// A CPR number in normalised form `DDMMYY-SSSS`. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(transparent)]
pub struct Cpr(String);

impl Cpr {
    /// Parses `DDMMYY-SSSS` or `DDMMYYSSSS`. The date part must be a real date, with the century
    /// taken from the first serial digit as the CPR office assigns it.
    pub fn parse(input: &str) -> Result<Cpr, ValidationError> {
        let t = input.trim();
        let digits: String = match t.len() {
            11 if t.as_bytes()[6] == b'-' => format!("{}{}", &t[..6], &t[7..]),
            10 => t.to_owned(),
            _ => return Err(ValidationError::InvalidCpr),
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValidationError::InvalidCpr);
        }
        let cpr = Cpr(format!("{}-{}", &digits[..6], &digits[6..]));
        cpr.birth_date()?;
        Ok(cpr)
    }

    /// The date of birth the number encodes.
    pub fn birth_date(&self) -> Result<Date, ValidationError> {
        let d = self.0.as_bytes();
        let num = |i: usize, n: usize| -> u32 {
            d[i..i + n]
                .iter()
                .fold(0, |acc, b| acc * 10 + u32::from(b - b'0'))
        };
        let day = num(0, 2) as u8;
        let month = num(2, 2) as u8;
        let yy = num(4, 2) as i32;
        let first_serial = num(7, 1);
        let century = match first_serial {
            0..=3 => 1900,
            4 | 9 => {
                if yy <= 36 {
                    2000
                } else {
                    1900
                }
            }
            _ => {
                if yy <= 57 {
                    2000
                } else {
                    1800
                }
            }
        };
        let month = Month::try_from(month).map_err(|_| ValidationError::InvalidCpr)?;
        Date::from_calendar_date(century + yy, month, day).map_err(|_| ValidationError::InvalidCpr)
    }

    /// The normalised number, for storage only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Cpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cpr(******-****)")
    }
}

impl<'de> Deserialize<'de> for Cpr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cpr::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn accepts_both_forms_and_normalises() {
        assert_eq!(Cpr::parse("0103159999").unwrap().expose(), "010315-9999");
        assert_eq!(Cpr::parse(" 010315-9999 ").unwrap().expose(), "010315-9999");
    }

    #[test]
    fn century_comes_from_the_serial() {
        assert_eq!(
            Cpr::parse("010315-9999").unwrap().birth_date().unwrap(),
            date!(2015 - 03 - 01)
        );
        assert_eq!(
            Cpr::parse("010375-1234").unwrap().birth_date().unwrap(),
            date!(1975 - 03 - 01)
        );
        assert_eq!(
            Cpr::parse("010390-5234").unwrap().birth_date().unwrap(),
            date!(1890 - 03 - 01)
        );
    }

    #[test]
    fn rejects_malformed_numbers() {
        for bad in [
            "",
            "123",
            "320115-9999",
            "011315-9999",
            "290223-9999",
            "01011A-9999",
            "010115+9999",
            "010115-99999",
        ] {
            assert_eq!(Cpr::parse(bad), Err(ValidationError::InvalidCpr), "{bad}");
        }
    }

    #[test]
    fn is_never_printed() {
        let c = Cpr::parse("010315-9999").unwrap();
        assert!(!format!("{c:?}").contains("0103"));
    }
}
