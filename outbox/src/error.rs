use mpc_schemas::SchemaError;
use mpc_store::StoreError;
use uuid::Uuid;

/// Why the outbox could not map or publish events.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A selected event could not be decoded or mapped; the relay stops rather than
    /// skip it.
    #[error("event {event_id} at position {position}: {detail}")]
    Map {
        event_id: Uuid,
        position: u64,
        detail: String,
    },
    #[error("cannot encode a domain event: {0}")]
    Encode(#[from] SchemaError),
    #[error("domain-event sink: {0}")]
    Sink(String),
}
