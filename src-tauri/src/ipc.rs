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
}

impl From<feltkontor_core::Error> for IpcError {
    fn from(e: feltkontor_core::Error) -> Self {
        if matches!(
            e,
            feltkontor_core::Error::Database(_)
                | feltkontor_core::Error::Io(_)
                | feltkontor_core::Error::Corrupt(_)
        ) {
            tracing::error!(code = e.code(), "store error: {e}");
        }
        let retry_after_secs = match e {
            feltkontor_core::Error::Throttled { retry_after_secs } => {
                Some(u32::try_from(retry_after_secs).unwrap_or(u32::MAX))
            }
            _ => None,
        };
        IpcError {
            code: e.code(),
            message: e.to_string(),
            retry_after_secs,
        }
    }
}

impl IpcError {
    pub fn locked() -> Self {
        IpcError {
            code: "session.locked",
            message: "the local data is locked".into(),
            retry_after_secs: None,
        }
    }

    pub fn too_long(what: &str) -> Self {
        IpcError {
            code: "input.too_long",
            message: format!("{what} is too long"),
            retry_after_secs: None,
        }
    }

    pub fn internal() -> Self {
        IpcError {
            code: "internal",
            message: "an internal error occurred".into(),
            retry_after_secs: None,
        }
    }
}

pub type IpcResult<T> = Result<T, IpcError>;
