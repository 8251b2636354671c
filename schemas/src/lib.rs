//! Every persisted and wire format of the platform, in one place.
//!
//! - [`session`]: the JSON payloads of session events, one module per schema
//!   version, with upcasters from every older version to the current one; fixture
//!   files for every stored version live in `fixtures/` and are tested.
//! - [`account`]: account and uniqueness-claim event payloads.
//! - [`approval`]: approval-workflow event payloads and the transcript approvers
//!   sign.
//! - [`domain`]: the JSON domain events the outbox publishes for external consumers,
//!   with fixtures in `fixtures/domain/`.
//! - [`envelope`]: the binary transport envelope.
//! - [`http`]: the gateway's JSON request and response bodies (with `utoipa` schemas
//!   behind the `openapi` feature).
//!
//! Domain types come from `mpc-events`; this crate only maps them to and from bytes.

pub mod account;
pub mod approval;
pub mod domain;
pub mod envelope;
pub mod http;
pub mod session;

#[cfg(test)]
mod fixtures {
    use std::path::Path;

    /// Every fixture in `fixtures/<dir>`, named `<Type>.v<N>[.<variant>].json`, as
    /// (type, version, bytes).
    pub fn read_fixtures(dir: &str) -> Vec<(String, u16, Vec<u8>)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(dir);
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let mut parts = name.trim_end_matches(".json").split('.');
            let ty = parts.next().unwrap().to_owned();
            let version = parts
                .next()
                .unwrap()
                .trim_start_matches('v')
                .parse()
                .unwrap();
            out.push((ty, version, std::fs::read(&path).unwrap()));
        }
        out
    }
}

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
