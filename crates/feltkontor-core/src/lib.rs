//! Feltkontor's core: the domain model and its rules, and the encrypted local store with its
//! change log, access log and search. Plain library code: no Tauri, no HTTP server.

pub mod clock;
pub mod error;
pub mod store;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result, ValidationError};
/// The domain model and its rules live in their own crate, shared with the central service.
pub use feltkontor_domain as domain;
pub use store::{Store, StoreLocation};
