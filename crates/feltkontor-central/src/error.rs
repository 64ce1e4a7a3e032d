//! The service's errors: a stable code the app switches on, an HTTP status, a plain message.
//! Internal detail (SQL errors, I/O) is logged by the HTTP layer and never sent to a client.

use std::fmt;

/// Stable error codes. Clients switch on these; never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or a field is invalid (`field` names it).
    InvalidInput,
    /// No valid access token.
    Unauthenticated,
    /// The access token has expired: refresh it.
    TokenExpired,
    /// The refresh token is unknown, expired or already used.
    InvalidRefreshToken,
    /// A used refresh token came back: every token of the device is revoked; enroll again.
    SessionRevoked,
    /// The device was revoked: the app must wipe its local data.
    DeviceRevoked,
    /// Enrollment code, user name or password is wrong (never says which).
    EnrollmentFailed,
    /// Too many failed logins: wait `retry_after` seconds.
    LoginThrottled,
    /// Too many requests: wait `retry_after` seconds.
    RateLimited,
    /// The caller may not do this.
    Forbidden,
    /// Not found, or not visible to the caller (the two are not told apart).
    NotFound,
    /// The request conflicts with the current state.
    Conflict,
    /// The request body is too large.
    PayloadTooLarge,
    /// A push skipped change-log entries: resend from the sequence number in `detail`.
    SequenceGap,
    /// The device's clock is too far ahead of the service's: set the computer's clock.
    ClockSkew,
    /// The request took too long and its answer was given up; retrying is safe.
    Timeout,
    /// The service is temporarily unavailable (database busy or down): retry later.
    Unavailable,
    /// An internal error; details are in the server's log, never in the response.
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidInput => 400,
            ErrorCode::Unauthenticated
            | ErrorCode::TokenExpired
            | ErrorCode::InvalidRefreshToken
            | ErrorCode::SessionRevoked
            | ErrorCode::DeviceRevoked
            | ErrorCode::EnrollmentFailed => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict | ErrorCode::SequenceGap => 409,
            ErrorCode::ClockSkew => 400,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::LoginThrottled | ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable => 503,
            ErrorCode::Timeout => 503,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::InvalidRefreshToken => "invalid_refresh_token",
            ErrorCode::SessionRevoked => "session_revoked",
            ErrorCode::DeviceRevoked => "device_revoked",
            ErrorCode::EnrollmentFailed => "enrollment_failed",
            ErrorCode::LoginThrottled => "login_throttled",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::SequenceGap => "sequence_gap",
            ErrorCode::ClockSkew => "clock_skew",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The problem type's short title.
    pub fn title(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "Invalid input",
            ErrorCode::Unauthenticated => "Not signed in",
            ErrorCode::TokenExpired => "Access token expired",
            ErrorCode::InvalidRefreshToken => "Refresh token not valid",
            ErrorCode::SessionRevoked => "Session revoked",
            ErrorCode::DeviceRevoked => "Device revoked",
            ErrorCode::EnrollmentFailed => "Enrollment failed",
            ErrorCode::LoginThrottled => "Too many failed sign-ins",
            ErrorCode::RateLimited => "Too many requests",
            ErrorCode::Forbidden => "Not allowed",
            ErrorCode::NotFound => "Not found",
            ErrorCode::Conflict => "Conflict",
            ErrorCode::PayloadTooLarge => "Request too large",
            ErrorCode::SequenceGap => "Changes missing from the push",
            ErrorCode::ClockSkew => "Device clock too far ahead",
            ErrorCode::Timeout => "Request timed out",
            ErrorCode::Unavailable => "Service unavailable",
            ErrorCode::Internal => "Internal error",
        }
    }
}

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
