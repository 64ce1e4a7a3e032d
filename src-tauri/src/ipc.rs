//! What crosses the IPC boundary: inputs (unknown fields refused) and errors as a stable code
//! plus a message. The UI switches on the code and shows its own Danish or English text.

use serde::Serialize;

#[derive(Debug, Serialize, specta::Type)]
pub struct IpcError {
    pub code: &'static str,
    pub message: String,
    /// For `unlock.throttled`: how long until the next attempt is allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u32>,
    /// For validation errors: the input field to mark.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// For `validation.too_long`: the field's limit and its length now, in characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub len: Option<u32>,
}

impl From<feltkontor_core::Error> for IpcError {
    fn from(e: feltkontor_core::Error) -> Self {
        use feltkontor_core::Error;
        if matches!(e, Error::Database(_) | Error::Io(_) | Error::Corrupt(_)) {
            tracing::error!(code = e.code(), "store error: {e}");
        }
        let mut out = IpcError::new(e.code(), e.to_string());
        match &e {
            Error::Throttled { retry_after_secs } => {
                out.retry_after_secs = Some(u32::try_from(*retry_after_secs).unwrap_or(u32::MAX));
            }
            Error::Invalid(v) => {
                out.field = v.field();
                if let feltkontor_core::ValidationError::TooLong { len, max, .. } = v {
                    out.len = Some(u32::try_from(*len).unwrap_or(u32::MAX));
                    out.max = Some(u32::try_from(*max).unwrap_or(u32::MAX));
                }
            }
            _ => {}
        }
        out
    }
}

impl From<feltkontor_core::ValidationError> for IpcError {
    fn from(v: feltkontor_core::ValidationError) -> Self {
        feltkontor_core::Error::from(v).into()
    }
}

impl IpcError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        IpcError {
            code,
            message: message.into(),
            retry_after_secs: None,
            field: None,
            max: None,
            len: None,
        }
    }

    pub fn with_field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    pub fn locked() -> Self {
        IpcError::new("session.locked", "the local data is locked")
    }

    pub fn too_long(what: &str) -> Self {
        IpcError::new("input.too_long", format!("{what} is too long"))
    }

    pub fn internal() -> Self {
        IpcError::new("internal", "an internal error occurred")
    }
}

pub type IpcResult<T> = Result<T, IpcError>;

/// The codes the shell itself answers with, besides the store's. A test checks this list
/// against every `IpcError::new("…")` in the shell's source.
#[cfg(test)]
pub const SHELL_CODES: &[&str] = &[
    "agreement.due_in_past",
    "case.no_team",
    "connect.bad_url",
    "connect.enrollment_failed",
    "connect.insecure_url",
    "connect.invalid_input",
    "connect.refused",
    "connect.throttled",
    "connect.unreachable",
    "document.failed",
    "document.no_folder",
    "document.write_failed",
    "history.local_only",
    "history.not_found",
    "history.not_participant",
    "history.offline",
    "history.refused",
    "input.invalid",
    "input.too_long",
    "internal",
    "lease.device_revoked",
    "lease.not_connected",
    "lease.wrong_credentials",
    "quarantine.gone",
    "quarantine.local_only",
    "quarantine.offline",
    "quarantine.refused",
    "retire.unreachable",
    "session.locked",
];

/// Every code a command can answer with, sorted: the store's (validation included) and the
/// shell's. The UI has a Danish and an English text for each (`ui/src/lib/error-codes.json`,
/// checked by the UI's tests).
#[cfg(test)]
pub fn all_codes() -> Vec<&'static str> {
    let mut codes: Vec<&'static str> = feltkontor_core::Error::all_codes()
        .into_iter()
        .chain(SHELL_CODES.iter().copied())
        .collect();
    codes.sort_unstable();
    codes.dedup();
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODES_PATH: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ui/src/lib/error-codes.json"
    );

    /// The string literals passed as the code to `IpcError::new` in the shell's source.
    fn codes_in_source() -> std::collections::BTreeSet<String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut found = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (at, _) in text.match_indices("IpcError::new(") {
                let rest = text[at + "IpcError::new(".len()..].trim_start();
                let Some(lit) = rest.strip_prefix('"') else {
                    continue;
                };
                let code = &lit[..lit.find('"').unwrap_or(0)];
                // A code is dotted lower-case words (this scanner's own text is not one).
                if !code.is_empty()
                    && code
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
                {
                    found.insert(code.to_owned());
                }
            }
        }
        found
    }

    #[test]
    fn every_code_the_shell_answers_with_is_listed() {
        let listed: std::collections::BTreeSet<String> =
            SHELL_CODES.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            codes_in_source(),
            listed,
            "SHELL_CODES must list exactly the codes of IpcError::new in src/"
        );
    }

    /// The codes the UI must have texts for: `error.<code>` for each command error and
    /// `sync.error.<code>` for each code of the central service's refusals.
    fn fresh() -> String {
        let service: Vec<String> = <feltkontor_wire::ErrorCode as strum::IntoEnumIterator>::iter()
            .map(|c| {
                serde_json::to_value(c)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let doc = serde_json::json!({
            "_comment": "Generated from the Rust side by `make bindings`; do not edit. Every code here has a Danish and an English text (ui/src/lib/i18n.svelte.test.ts).",
            "app": all_codes(),
            "service": service,
        });
        serde_json::to_string_pretty(&doc).unwrap() + "\n"
    }

    /// The UI writes a legal basis from the Rust side's standard labels.
    #[test]
    fn the_ui_knows_every_standard_legal_basis() {
        let ts = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../ui/src/lib/legalBasis.ts"
        ))
        .unwrap();
        for b in feltkontor_core::domain::legal_basis::LegalBasis::ALL {
            assert!(
                ts.contains(&format!("label: \"{}\"", b.label())),
                "ui/src/lib/legalBasis.ts lacks {:?}",
                b.label()
            );
        }
    }

    #[test]
    fn committed_error_codes_match_the_rust_side() {
        let fresh = fresh();
        if std::env::var_os("FELTKONTOR_WRITE_BINDINGS").is_some() {
            std::fs::write(CODES_PATH, &fresh).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(CODES_PATH).unwrap_or_default();
        assert!(
            committed == fresh,
            "ui/src/lib/error-codes.json is out of date with the Rust error codes; run `make bindings` and commit the result"
        );
    }
}
