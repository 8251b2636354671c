//! Every persisted and wire format of the platform, in one place.
//!
//! - [`session`]: the JSON payloads of session events, one module per schema
//!   version, with upcasters from every older version to the current one; fixture
//!   files for every stored version live in `fixtures/` and are tested.
//! - [`domain`]: the JSON domain events the outbox publishes for external consumers,
//!   with fixtures in `fixtures/domain/`.
//! - [`envelope`]: the binary transport envelope.
//! - [`http`]: the gateway's JSON request and response bodies (with `utoipa` schemas
//!   behind the `openapi` feature).
//!
//! Domain types come from `mpc-events`; this crate only maps them to and from bytes.

pub mod domain;
pub mod envelope;
pub mod http;
pub mod session;

pub use domain::DomainEvent;
pub use envelope::{Envelope, MAX_ENVELOPE_BYTES, Recipient};

/// An event encoded for the store: type name, schema version and payload bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub event_type: &'static str,
    pub schema_version: u16,
    pub payload: Vec<u8>,
}

/// Why bytes could not become a domain value (or the other way round).
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot encode: {0}")]
    Encode(String),
    #[error("cannot decode: {0}")]
    Decode(String),
    #[error("unknown {what} version {version}")]
    UnknownVersion { what: String, version: u16 },
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("{size} bytes exceeds the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error(transparent)]
    Invalid(#[from] mpc_events::IdError),
}
