//! Types shared by the desktop app and the central service.
//!
//! Only serde, uuid and time (utoipa and specta behind features): this crate is the contract between client and server, so it stays
//! small and free of storage or transport concerns. Every type here serialises to a stable JSON
//! form; changing that form is a protocol change.

pub mod api;
mod enums;
mod error;
mod hlc;
mod ids;
mod log;
pub mod sync;

pub use enums::*;
pub use error::ErrorCode;
pub use hlc::{Hlc, HlcParseError, MAX_HLC_COUNTER};
pub use ids::*;
pub use log::{ChangeEntry, EntityKind, FieldChange};

/// Version of the change-log format in [`ChangeEntry`]; bumped when its JSON form changes.
pub const CHANGE_LOG_FORMAT: u32 = 1;
