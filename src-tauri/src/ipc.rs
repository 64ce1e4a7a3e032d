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
            Error::Invalid(v) => out.field = v.field(),
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
