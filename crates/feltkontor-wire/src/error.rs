//! The stable error codes of the central service's answers: the service sends them in every
//! problem answer ([`crate::api::Problem`]), the app's sync client reads them as this type and
//! the UI sees them as a TypeScript union generated from it.

/// Stable error codes. Clients switch on these; never rename one.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, strum::EnumIter,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "specta", derive(specta::Type))]
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
    /// The endpoint exists but not with this method.
    MethodNotAllowed,
    /// The body's encoding (`Content-Encoding`) or type is not one the service reads.
    UnsupportedMediaType,
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
    /// A code this version of the app does not know (sent by a newer service). Never sent by
    /// this service.
    #[serde(other)]
    Unknown,
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
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::LoginThrottled | ErrorCode::RateLimited => 429,
            ErrorCode::Internal | ErrorCode::Unknown => 500,
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
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::SequenceGap => "sequence_gap",
            ErrorCode::ClockSkew => "clock_skew",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
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
            ErrorCode::MethodNotAllowed => "Method not allowed",
            ErrorCode::UnsupportedMediaType => "Unsupported media type",
            ErrorCode::SequenceGap => "Changes missing from the push",
            ErrorCode::ClockSkew => "Device clock too far ahead",
            ErrorCode::Timeout => "Request timed out",
            ErrorCode::Unavailable => "Service unavailable",
            ErrorCode::Internal => "Internal error",
            ErrorCode::Unknown => "Unknown error",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn codes_read_back_as_written_and_unknown_ones_are_kept_apart() {
        for code in [
            ErrorCode::InvalidInput,
            ErrorCode::DeviceRevoked,
            ErrorCode::SequenceGap,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
        assert_eq!(
            serde_json::from_str::<ErrorCode>("\"a_code_from_the_future\"").unwrap(),
            ErrorCode::Unknown
        );
    }
}
