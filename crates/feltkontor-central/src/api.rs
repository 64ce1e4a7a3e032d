//! The API's bodies live in the wire contract, shared with the app's sync client.

pub use feltkontor_wire::api::*;
