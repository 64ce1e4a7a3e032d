//! Text rules shared by every entity: required fields, length limits, control characters,
//! e-mail and phone formats, and a wrapper that keeps sensitive text out of `Debug` output.

use crate::error::ValidationError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Names, initials and other one-line fields.
pub const NAME_MAX: usize = 200;
/// Short free text: a role, a reason, an institution, an address.
pub const SHORT_TEXT_MAX: usize = 1_000;
/// One field of a case note (body, child's own words, family's perspective).
pub const NOTE_TEXT_MAX: usize = 100_000;
pub const EMAIL_MAX: usize = 254;

/// Text that may hold personal data (note text, addresses). Serialises as a plain string but
/// never prints its content in `Debug`, so it cannot reach a diagnostic log by accident.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(transparent)]
pub struct SensitiveText(pub String);

impl SensitiveText {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for SensitiveText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} characters>", self.0.chars().count())
    }
}

impl From<&str> for SensitiveText {
    fn from(s: &str) -> Self {
        SensitiveText(s.to_owned())
    }
}

impl From<String> for SensitiveText {
    fn from(s: String) -> Self {
        SensitiveText(s)
    }
}

/// Characters that take no room: a name of nothing but these (and spaces) is no name.
/// A character that shows nothing on its own: white space, zero-width and direction marks,
/// fillers and blanks (Hangul fillers, the Braille blank, the combining grapheme joiner, the
/// soft hyphen). Text of only these is empty to a reader.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{034f}'
                | '\u{061c}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{17b4}'
                | '\u{17b5}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{feff}'
                | '\u{ffa0}'
        )
}

/// Explicit embeddings and overrides of the text's direction: in a one-line field they make a
/// name read as something else (right-to-left names need none).
fn is_direction_override(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}')
}

fn has_control(s: &str, multiline: bool) -> bool {
    s.chars().any(|c| {
        (c.is_control() && !(multiline && (c == '\n' || c == '\t' || c == '\r')))
            || (!multiline && is_direction_override(c))
    })
}

/// A one-line field that must be present (and visible).
pub fn required_line(field: &'static str, s: &str, max: usize) -> Result<(), ValidationError> {
    if s.chars().all(is_invisible) {
        return Err(ValidationError::Required { field });
    }
    optional_line(field, s, max)
}

fn within_limits(
    field: &'static str,
    s: &str,
    max: usize,
    multiline: bool,
) -> Result<(), ValidationError> {
    let len = s.chars().count();
    if len > max {
        return Err(ValidationError::TooLong { field, len, max });
    }
    if has_control(s, multiline) {
        return Err(ValidationError::ControlCharacters { field });
    }
    Ok(())
}

/// A one-line field that may be empty.
pub fn optional_line(field: &'static str, s: &str, max: usize) -> Result<(), ValidationError> {
    within_limits(field, s, max, false)
}

/// Multi-line text (note fields); may be empty.
pub fn optional_text(field: &'static str, s: &str, max: usize) -> Result<(), ValidationError> {
    within_limits(field, s, max, true)
}

pub fn email(field: &'static str, s: &str) -> Result<(), ValidationError> {
    optional_line(field, s, EMAIL_MAX)?;
    let bad = || ValidationError::InvalidEmail { field };
    let (local, domain) = s.split_once('@').ok_or_else(bad)?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
        && !domain.contains('@');
    if ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// A phone number: digits with optional leading `+` and spaces or dashes; 8 to 15 digits.
pub fn phone(field: &'static str, s: &str) -> Result<(), ValidationError> {
    let bad = || ValidationError::InvalidPhone { field };
    let t = s.trim();
    let rest = t.strip_prefix('+').unwrap_or(t);
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
    {
        return Err(bad());
    }
    let digits = rest.chars().filter(char::is_ascii_digit).count();
    if (8..=15).contains(&digits) {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_text_never_prints_its_content() {
        let s = SensitiveText::from("Mor fortæller at far har slået");
        assert_eq!(format!("{s:?}"), "<30 characters>");
    }

    #[test]
    fn emails() {
        assert!(email("email", "anna@example.dk").is_ok());
        for bad in [
            "",
            "anna",
            "anna@",
            "@x.dk",
            "anna@dk",
            "an na@x.dk",
            "a@b@c.dk",
            "a@.dk",
        ] {
            assert!(email("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones() {
        for ok in ["12345678", "+45 12 34 56 78", "12-34-56-78"] {
            assert!(phone("phone", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1234",
            "abc12345678",
            "+45 12 34 56 78 99 99 99 99",
            "++4512345678",
        ] {
            assert!(phone("phone", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn control_characters_are_refused_in_lines_but_newlines_allowed_in_text() {
        assert!(required_line("name", "Anna\u{0}", 10).is_err());
        assert!(required_line("name", "Anna\nB", 10).is_err());
        assert!(optional_text("body", "linje 1\nlinje 2\ttab", 100).is_ok());
        assert!(optional_text("body", "bell\u{7}", 100).is_err());
    }

    #[test]
    fn invisible_names_and_direction_overrides_are_refused() {
        for blank in ["\u{200b}", " \u{feff} ", "\u{2060}\u{200d}"] {
            assert!(required_line("name", blank, 10).is_err(), "{blank:?}");
        }
        assert!(required_line("name", "Anna\u{202e}gnaW", 20).is_err());
        assert!(required_line("name", "محمد علي", 20).is_ok());
        assert!(optional_text("body", "مرحبا\nlinje", 100).is_ok());
    }
}

/// The decimal value of a digit in any of the scripts a keyboard or a paste brings (ASCII,
/// full-width, Arabic-Indic, extended Arabic-Indic, Devanagari).
pub fn digit_value(c: char) -> Option<u32> {
    let zero = match c {
        '0'..='9' => '0',
        '\u{ff10}'..='\u{ff19}' => '\u{ff10}',
        '\u{0660}'..='\u{0669}' => '\u{0660}',
        '\u{06f0}'..='\u{06f9}' => '\u{06f0}',
        '\u{0966}'..='\u{096f}' => '\u{0966}',
        _ => return None,
    };
    Some(c as u32 - zero as u32)
}

/// Text with six digits or more, in any script, separated or not, may hold a CPR number: every
/// digit is replaced by `#` before the text is kept anywhere (the access log's search
/// criterion). Other text is returned as it is.
pub fn mask_cpr_like(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().filter(|c| digit_value(*c).is_some()).count() < 6 {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| if digit_value(c).is_some() { '#' } else { c })
            .collect(),
    )
}

#[cfg(test)]
mod cpr_like_tests {
    use super::*;

    #[test]
    fn any_shape_of_a_cpr_number_is_masked() {
        for q in [
            "010203-1234",
            "010203 - 1234",
            "010203\u{2013}1234",
            "01.02.03-1234",
            "010203/1234",
            "cpr 010203-1234",
            "Alma 010203-1234,",
            "\u{ff10}\u{ff11}\u{ff10}\u{ff12}\u{ff10}\u{ff13}-\u{ff11}\u{ff12}\u{ff13}\u{ff14}",
            "010203\u{a0}1234",
            "01020312345",
            "010203",
        ] {
            let masked = mask_cpr_like(q);
            assert!(
                !masked.chars().any(|c| digit_value(c).is_some()),
                "{q:?} -> {masked:?}"
            );
        }
        assert_eq!(mask_cpr_like("søvn 2026"), "søvn 2026", "a year is kept");
        assert_eq!(mask_cpr_like("Alma"), "Alma");
    }
}

/// An address as compared: lower case, its words without punctuation (colleagues type the
/// same address with and without commas, full stops and extra spaces).
pub fn address_key(a: &str) -> String {
    address_words(a).join(" ")
}

fn address_words(a: &str) -> Vec<String> {
    a.split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | ';' | ':' | '(' | ')' | '/'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The words that name a house: the street and its number ("skjoldhøjvej 33"), or the whole
/// address when it has no number.
fn house_words(a: &str) -> Vec<String> {
    let words = address_words(a);
    match words
        .iter()
        .position(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
    {
        Some(n) if n > 0 => words[..=n].to_vec(),
        _ => words,
    }
}

/// Whether `place` names the house of `address`: the street and house number of the address
/// appear in the place as whole words, in order ("Hjemme hos familien, Skjoldhøjvej 33 st. th."
/// names Skjoldhøjvej 33, 8210 Aarhus V; "Skjoldhøjvej 3" does not). An address of a single
/// word never matches (too little to tell).
pub fn same_address(place: &str, address: &str) -> bool {
    let place = address_words(place);
    let house = house_words(address);
    if house.len() < 2 || place.len() < house.len() {
        return false;
    }
    place.windows(house.len()).any(|w| w == house.as_slice())
}

#[cfg(test)]
mod address_tests {
    use super::*;

    #[test]
    fn a_place_names_a_house_by_its_street_and_number_as_whole_words() {
        let protected = "Skjoldhøjvej 33, 8210 Aarhus V";
        for same in [
            "Skjoldhøjvej 33, 8210 Aarhus V",
            "SKJOLDHØJVEJ 33",
            "Skjoldhøjvej 33 8210 Aarhus V",
            "Hjemme hos familien, Skjoldhøjvej 33",
            "Skjoldhøjvej 33 st. th.",
            "skjoldhøjvej  33,",
        ] {
            assert!(same_address(same, protected), "{same}");
        }
        for other in [
            "Skjoldhøjvej 3",
            "Skjoldhøjvej 333",
            "Skjoldhøjvej",
            "Hjemme hos familien",
            "33",
            "",
            "Nyvej 33",
        ] {
            assert!(!same_address(other, protected), "{other}");
        }
        assert_eq!(
            address_key("Tranehaven 12 ,  8200 Aarhus N."),
            "tranehaven 12 8200 aarhus n"
        );
    }
}
