//! The domain model: entities, their validation, and the rules between them.

pub mod cpr;
pub mod model;
pub mod rules;
pub mod text;

pub use cpr::Cpr;
pub use model::*;
pub use text::SensitiveText;
