//! Why the transport refused or failed to carry an envelope: the one error of the
//! port, its inboxes and every adapter.

use mpc_events::{PartyId, SessionId};

/// Why the transport refused or failed to carry an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("envelope is {size} bytes encoded; the limit is {max}")]
    TooLarge { size: usize, max: usize },
    #[error("session {0} is closed")]
    SessionClosed(SessionId),
    #[error("session {session} would carry more than its budget of {max} payload bytes")]
    SessionBytes { session: SessionId, max: u64 },
    #[error("{sender} already sent {max} envelopes in session {session}, the most one sender may")]
    SenderEnvelopes {
        session: SessionId,
        sender: PartyId,
        max: u32,
    },
    #[error("envelope cannot be encoded: {0}")]
    Encoding(String),
    #[error("transport backend: {0}")]
    Backend(String),
}
