//! The central service's library: storage on SQLite or PostgreSQL behind one interface,
//! identity and devices, per-case authorization, the hash-chained audit log, and the API's
//! operations. No HTTP framework types: the server binary (`feltkontor-server`) is a thin axum
//! layer over [`service::Central`].

pub mod admin;
pub mod api;
pub mod audit;
pub mod authz;
pub mod bulk;
pub mod clock;
pub mod db;
pub mod error;
pub mod history;
pub mod identity;
pub mod jwt_crypto;
pub mod limits;
pub mod live;
pub mod migrate;
pub(crate) mod plans;
pub mod records;
pub mod rules;
pub mod service;
pub mod sync;
pub mod visibility;

pub use error::{ErrorCode, Result, ServiceError};
pub use service::{Central, Config};

/// Unix milliseconds as RFC 3339 (empty when out of range).
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Wall-clock Unix milliseconds.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
