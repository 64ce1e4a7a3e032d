//! The standard legal bases for sharing information with a participant from another sector
//! when no valid consent covers that sector. A participant's `legal_basis` is written
//! "<basis>: <reason>" (the reason is required: the written necessity reason, the
//! notification's date or reference, or why the significance rule applies), so a basis is one
//! of these and never free text alone. Consent is not among them: it is recorded as a consent.

/// A standard legal basis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegalBasis {
    /// Exchange of information under the rules on cross-sector cooperation (servicelovens
    /// § 49 b), with a written reason why it is necessary.
    CrossSectorExchange,
    /// A notification of concern (underretning) about the child.
    Notification,
    /// The significance rule (væsentlighedsreglen): the information is needed for the
    /// authority's decision, with the reason.
    SignificanceRule,
}

impl LegalBasis {
    pub const ALL: [LegalBasis; 3] = [
        LegalBasis::CrossSectorExchange,
        LegalBasis::Notification,
        LegalBasis::SignificanceRule,
    ];

    /// The basis as it is written before the reason (and shown to the worker).
    pub fn label(self) -> &'static str {
        match self {
            LegalBasis::CrossSectorExchange => "Udveksling efter servicelovens § 49 b",
            LegalBasis::Notification => "Underretning",
            LegalBasis::SignificanceRule => "Væsentlighedsreglen",
        }
    }

    /// `<label>: <reason>`.
    pub fn compose(self, reason: &str) -> String {
        format!("{}: {}", self.label(), reason.trim())
    }
}

/// The standard basis a recorded `legal_basis` names, and its reason; `None` when it names none
/// or gives no reason.
pub fn parse(text: &str) -> Option<(LegalBasis, &str)> {
    let text = text.trim();
    LegalBasis::ALL.into_iter().find_map(|b| {
        let reason = text.strip_prefix(b.label())?.strip_prefix(':')?.trim();
        (!reason.is_empty()).then_some((b, reason))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_basis_is_a_standard_one_with_a_reason() {
        for b in LegalBasis::ALL {
            let written = b.compose(" Bekymring for trivsel i skolen ");
            assert_eq!(parse(&written), Some((b, "Bekymring for trivsel i skolen")));
            assert_eq!(parse(&format!("{}:   ", b.label())), None, "no reason");
            assert_eq!(parse(b.label()), None);
        }
        assert_eq!(parse("Det syntes vi var fint"), None, "free text alone");
        assert_eq!(
            parse("Samtykke: mundtligt"),
            None,
            "consent is recorded as a consent"
        );
    }
}
