//! The service's errors: a stable code the app switches on ([`ErrorCode`], from the wire
//! contract), an HTTP status, a plain message. Internal detail (SQL errors, I/O) is logged by
//! the HTTP layer and never sent to a client.

pub use feltkontor_wire::ErrorCode;
use std::fmt;

#[derive(Clone)]
pub struct ServiceError {
    pub code: ErrorCode,
    /// Safe to show to the caller.
    pub detail: String,
    /// The input field at fault, for `invalid_input`.
    pub field: Option<String>,
    /// Seconds to wait, for 429 and 503.
    pub retry_after: Option<u64>,
    /// For the server's log only (never sent).
    pub internal: Option<String>,
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl ServiceError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ServiceError {
            code,
            detail: detail.into(),
            field: None,
            retry_after: None,
            internal: None,
        }
    }

    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ServiceError {
            field: Some(field.into()),
            ..Self::new(ErrorCode::InvalidInput, detail)
        }
    }

    pub fn internal(log: impl Into<String>) -> Self {
        ServiceError {
            internal: Some(log.into()),
            ..Self::new(
                ErrorCode::Internal,
                "An internal error occurred. It has been logged.",
            )
        }
    }

    /// A constraint the code should have prevented: a 500 for the client, the cause in the log.
    pub fn conflict_internal(log: impl Into<String>) -> Self {
        Self::internal(log)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        ServiceError {
            retry_after: Some(2),
            ..Self::new(ErrorCode::Unavailable, detail)
        }
    }

    pub fn unavailable_because(log: impl Into<String>) -> Self {
        ServiceError {
            internal: Some(log.into()),
            retry_after: Some(5),
            ..Self::new(
                ErrorCode::Unavailable,
                "The database is not reachable. Try again shortly.",
            )
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            ErrorCode::Unauthenticated,
            "A valid access token is required.",
        )
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The answer a client gets: problem details, without the internal cause.
    pub fn problem(&self) -> feltkontor_wire::api::Problem {
        feltkontor_wire::api::Problem {
            type_: format!(
                "https://feltkontor.aarhus.dk/problems/{}",
                self.code.as_str()
            ),
            title: self.code.title().into(),
            status: self.status(),
            detail: self.detail.clone(),
            code: self.code,
            field: self.field.clone(),
            retry_after: self.retry_after,
            wipe: (self.code == ErrorCode::DeviceRevoked).then_some(true),
        }
    }
}

impl fmt::Debug for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)?;
        if let Some(i) = &self.internal {
            write!(f, " ({i})")?;
        }
        Ok(())
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for ServiceError {}
