//! Every persisted and wire format of the platform, by audience: each changes
//! under its own rules.
//!
//! - [`stored`]: the payloads of stored events (session, account, claim, key and
//!   approval-workflow streams), one module per schema version where shapes changed,
//!   with upcasters from every older version to the current one and a fixture file
//!   for every stored version in `fixtures/stored/`. Must decode forever.
//! - [`domain`]: the public `mpc.domain-event/v1` contract, the JSON records the
//!   outbox publishes for external consumers, with fixtures in `fixtures/domain/`.
//!   May gain fields, never lose or change them.
//! - [`envelope`]: the binary transport envelope between parties, versioned by its
//!   first byte, with a fixture in `fixtures/envelope/`.
//!
//! The gateway's HTTP bodies are not here: they live in `mpc-api`, so the crates
//! that only handle stored events do not compile them.
//!
//! Domain types come from `mpc-events`; this crate only maps them to and from bytes.

pub mod domain;
pub mod envelope;
mod json;
pub mod stored;

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
    Decode(#[from] DecodeError),
    #[error("unknown {what} version {version}")]
    UnknownVersion { what: String, version: u16 },
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("{size} bytes exceeds the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error(transparent)]
    Invalid(#[from] mpc_events::IdError),
}

/// Why bytes are not a well-formed payload, record or envelope.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Json(serde_json::Error),
    #[error(transparent)]
    Postcard(postcard::Error),
    #[error("{field}: {source}")]
    Hex {
        field: &'static str,
        source: hex::FromHexError,
    },
    #[error("schema {found:?}, expected {expected:?}")]
    Schema {
        found: String,
        expected: &'static str,
    },
    #[error("subject {recorded} does not match the data ({derived})")]
    Subject { recorded: String, derived: String },
    #[error("share role {0:?}")]
    ShareRole(String),
    #[error("empty envelope")]
    EmptyEnvelope,
    #[error("{0} trailing bytes after envelope")]
    TrailingBytes(usize),
    #[error("signature must be {expected} bytes, got {got}")]
    SignatureLength { expected: usize, got: usize },
}
