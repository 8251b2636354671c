//! The message-bus port: [`Transport`], what every adapter (in-process, Kafka, the
//! gateway's inbox API) implements, and [`encode_for_transport`], the size and
//! encoding check every adapter applies before accepting an envelope. Inboxes
//! (`inbox.rs`) and the port's error (`error.rs`) are modules of their own, so
//! nothing here is imported back by them.

use async_trait::async_trait;
use mpc_events::{PartyId, SessionId};
use mpc_schemas::{Envelope, MAX_ENVELOPE_BYTES, SchemaError};

use crate::error::TransportError;
use crate::inbox::Inbox;

/// The message-bus port. Every adapter passes the contract suite in
/// `tests/contract/mod.rs`.
///
/// Each session is an append-only log (like a Kafka topic keyed by session id): an
/// inbox sees the session's whole log, including what was published before it
/// subscribed, in publish order.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Appends `envelope` to its session's log. Fails with
    /// [`TransportError::TooLarge`] if it encodes to more than [`MAX_ENVELOPE_BYTES`],
    /// with [`TransportError::SessionBytes`] or [`TransportError::SenderEnvelopes`] if
    /// it would break the session's [`crate::SessionBudget`] (as far as this adapter
    /// sees the session), and with [`TransportError::SessionClosed`] once the session
    /// is closed. A refused envelope is not kept.
    async fn publish(&self, envelope: &Envelope) -> Result<(), TransportError>;

    /// Every envelope of `session` that [`Envelope::is_for`] `party`, from the start of
    /// the session's log, in publish order, each message id once. Fails with
    /// [`TransportError::SessionClosed`] once the session is closed.
    async fn subscribe(&self, session: SessionId, party: &PartyId)
    -> Result<Inbox, TransportError>;

    /// Frees the session's log. Its inboxes end; later publishes and subscribes fail.
    async fn close_session(&self, session: SessionId) -> Result<(), TransportError>;

    /// Whether the backend answers now (a readiness probe): `Ok` when a publish
    /// could reach it.
    async fn ready(&self) -> Result<(), TransportError>;
}

/// The envelope's wire bytes, or why it may not be published (too large or not
/// encodable). Every adapter checks envelopes with this before accepting them.
pub fn encode_for_transport(envelope: &Envelope) -> Result<Vec<u8>, TransportError> {
    let bytes = envelope.encode().map_err(|e| match e {
        SchemaError::TooLarge { size, max } => TransportError::TooLarge { size, max },
        other => TransportError::Encoding(other.to_string()),
    })?;
    // `encode` enforces the same limit; checked here too so the port's promise does not
    // depend on it.
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(TransportError::TooLarge {
            size: bytes.len(),
            max: MAX_ENVELOPE_BYTES,
        });
    }
    Ok(bytes)
}
