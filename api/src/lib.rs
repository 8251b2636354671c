//! The gateway's HTTP/JSON format: request and response bodies shared by the
//! gateway and its clients (the party's HTTP client, the `mpc` operator commands).
//!
//! Conventions: field names are `snake_case`; tagged unions carry a `"kind"` field;
//! bytes are lowercase hex (upper case is accepted on input); timestamps are
//! milliseconds since the Unix epoch (UTC); ids are their canonical strings (UUIDs for
//! sessions and keys, party ids as given). Every request body converts to domain
//! values through a `TryFrom`/`into_domain` that names the field at fault, so a bad
//! body is refused before anything reaches the coordinator. Errors are
//! [`ApiError`] bodies with a stable [`ApiError::code`].
//!
//! One module per resource: [`sessions`], [`accounts`], [`keys`], [`workflows`],
//! [`data`], [`operators`]; [`common`] holds the shapes they share and [`error`] the refusals.
//! Every type is also re-exported at the crate root. `utoipa` schemas come with the
//! `openapi` feature, for the gateway's OpenAPI document.
//!
//! Depends on `mpc-events` only: the stored and wire formats of `mpc-schemas` change
//! under other rules, and the crates that handle stored events (projections, outbox)
//! do not compile these bodies.

pub mod accounts;
pub mod common;
pub mod data;
pub mod error;
pub mod keys;
pub mod operators;
pub mod sessions;
pub mod workflows;

pub use accounts::*;
pub use common::*;
pub use data::*;
pub use error::*;
pub use keys::*;
pub use operators::*;
pub use sessions::*;
pub use workflows::*;

#[cfg(test)]
mod test_support {
    use crate::IdentityDto;

    /// An identity whose keys are filled with `i` and `i + 50`.
    pub fn identity(i: u8) -> IdentityDto {
        IdentityDto {
            signing: hex::encode([i; 32]),
            encryption: hex::encode([i + 50; 32]),
        }
    }
}
