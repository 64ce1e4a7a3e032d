//! The domain of a district team's work: the entities, their validation, and the rules that
//! compare a change with the state it changes. No store, no HTTP, no clock: the desktop app's
//! store and the central service's merge both call these, so a rule holds wherever a record
//! is written.

pub mod cpr;
pub mod error;
pub mod legal_basis;
pub mod model;
pub mod rules;
pub mod strength;
pub mod text;
pub mod write;

pub use cpr::Cpr;
pub use error::ValidationError;
pub use model::*;
pub use text::SensitiveText;
