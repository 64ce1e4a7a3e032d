//! How hard a passphrase or password is to guess, by zxcvbn (Dropbox's estimator): the one rule
//! the desktop store's passphrase, the service's passwords and the app's strength meter share.
//! zxcvbn's own dictionaries are English; common Danish words, names and the municipality's
//! own words are added, so "sommerferie2026" or "aarhuskommune" are seen through.

/// The lowest accepted zxcvbn score: 3, "safely unguessable" (about 10^10 guesses), for a
/// secret that guards data behind a slow hash.
pub const MIN_SCORE: u8 = 3;
/// The fewest characters accepted, whatever the score.
pub const MIN_CHARS: usize = 10;

/// Common Danish words, names and place names, and words of this workplace: a guess list
/// zxcvbn does not have.
pub const DANISH_WORDS: &[&str] = &[
    "kodeord",
    "adgangskode",
    "adgangssætning",
    "adgang",
    "hemmelig",
    "hemmeligt",
    "password",
    "feltkontor",
    "aarhus",
    "århus",
    "aarhuskommune",
    "kommune",
    "kommunen",
    "danmark",
    "dansk",
    "københavn",
    "odense",
    "aalborg",
    "jylland",
    "sjælland",
    "fyn",
    "gellerup",
    "brabrand",
    "viby",
    "tilst",
    "hasle",
    "risskov",
    "lystrup",
    "sommer",
    "vinter",
    "forår",
    "efterår",
    "sommerferie",
    "jul",
    "julen",
    "påske",
    "januar",
    "februar",
    "marts",
    "april",
    "maj",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "december",
    "mandag",
    "tirsdag",
    "onsdag",
    "torsdag",
    "fredag",
    "lørdag",
    "søndag",
    "hej",
    "hejsa",
    "tak",
    "velkommen",
    "kærlighed",
    "elsker",
    "skat",
    "skattebasse",
    "mor",
    "far",
    "mormor",
    "farfar",
    "barn",
    "børn",
    "familie",
    "hjem",
    "hus",
    "hund",
    "kat",
    "hest",
    "fisk",
    "fugl",
    "bil",
    "cykel",
    "fodbold",
    "håndbold",
    "agf",
    "fck",
    "brøndby",
    "rød",
    "grøn",
    "blå",
    "gul",
    "sort",
    "hvid",
    "sol",
    "måne",
    "stjerne",
    "blomst",
    "rose",
    "skov",
    "strand",
    "hav",
    "vand",
    "øl",
    "kaffe",
    "sag",
    "sager",
    "notat",
    "socialrådgiver",
    "sundhedsplejerske",
    "psykolog",
    "pædagog",
    "skole",
    "børnehave",
    "vuggestue",
    "relationel",
    "velfærd",
    "tovholder",
    "jensen",
    "nielsen",
    "hansen",
    "pedersen",
    "andersen",
    "christensen",
    "larsen",
    "sørensen",
    "rasmussen",
    "jørgensen",
    "petersen",
    "madsen",
    "kristensen",
    "olsen",
    "thomsen",
    "christiansen",
    "poulsen",
    "johansen",
    "møller",
    "mortensen",
    "anne",
    "kirsten",
    "mette",
    "hanne",
    "anna",
    "helle",
    "susanne",
    "lene",
    "maria",
    "marianne",
    "peter",
    "jens",
    "lars",
    "michael",
    "henrik",
    "thomas",
    "søren",
    "jan",
    "niels",
    "christian",
    "emma",
    "ida",
    "freja",
    "william",
    "noah",
    "oscar",
    "lucas",
    "carl",
    "alma",
    "karla",
    "ella",
    "sofia",
    "malthe",
    "en",
    "to",
    "tre",
    "fire",
    "fem",
    "seks",
    "syv",
    "otte",
    "ni",
    "ti",
    "ja",
    "nej",
    "og",
    "jeg",
    "du",
    "han",
    "hun",
    "vi",
    "de",
    "min",
    "mit",
    "mine",
    "din",
    "dit",
    "godt",
    "dag",
];

/// A secret's strength as the meter shows it and the rules enforce it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Strength {
    /// zxcvbn's score, 0 (guessed at once) to 4 (very hard to guess).
    pub score: u8,
    /// At least [`MIN_CHARS`] characters and a score of at least [`MIN_SCORE`].
    pub acceptable: bool,
}

/// The strength of `secret`, with `personal` words (the worker's user name, name, the
/// service's address) counted as easy guesses too.
pub fn strength(secret: &str, personal: &[&str]) -> Strength {
    if secret.is_empty() {
        return Strength {
            score: 0,
            acceptable: false,
        };
    }
    // zxcvbn's matching is quadratic in the length; the tail of a very long secret adds
    // nothing to its strength, so only its first 256 characters are scored.
    let head: String = secret.chars().take(256).collect();
    // The secret's owner's own words first: zxcvbn ranks earlier words as likelier guesses.
    let mut words: Vec<&str> = personal
        .iter()
        .copied()
        .filter(|w| !w.trim().is_empty())
        .collect();
    words.extend(DANISH_WORDS.iter().copied());
    let score = u8::from(zxcvbn::zxcvbn(&head, &words).score());
    Strength {
        score,
        acceptable: secret.chars().count() >= MIN_CHARS && score >= MIN_SCORE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guessable_secrets_are_refused_whatever_their_length() {
        for weak in [
            "aaaaaaaaaa",
            "aaaaaaaaaaaaaaaaaaaa",
            "1234567890",
            "password123",
            "kodeord1234",
            "sommerferie2026",
            "aarhuskommune1",
            "qwertyuiop",
            "abcdefghij",
        ] {
            assert!(!strength(weak, &[]).acceptable, "{weak} must be refused");
        }
        assert!(!strength("kort", &[]).acceptable);
        assert!(!strength("", &[]).acceptable);
    }

    #[test]
    fn the_workers_own_name_counts_as_a_guess() {
        let s = "birgittemadsen1";
        assert!(!strength(s, &["birgittemadsen", "bma"]).acceptable);
    }

    #[test]
    fn passphrases_of_unrelated_words_are_accepted() {
        for good in [
            "korrekt hest batteri hæfteklamme",
            "en lang nok adgangssaetning",
            "blæksprutte vindmølle kompas 47",
            "Tre grønne elefanter i Viborg!",
        ] {
            let s = strength(good, &[]);
            assert!(
                s.acceptable,
                "{good} should be accepted (score {})",
                s.score
            );
        }
    }

    #[test]
    fn a_very_long_secret_is_scored_quickly() {
        // 100,000 characters without a pattern (a simple generator).
        let mut x: u32 = 12345;
        let long: String = (0..100_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                char::from(b'!' + ((x >> 16) % 90) as u8)
            })
            .collect();
        let started = std::time::Instant::now();
        assert!(strength(&long, &[]).score >= 3);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
