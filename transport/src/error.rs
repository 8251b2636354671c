//! Why the transport refused or failed to carry an envelope: the one error of the
//! port, its inboxes and every adapter.

use mpc_events::SessionId;

/// Why the transport refused or failed to carry an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("envelope is {size} bytes encoded; the limit is {max}")]
    TooLarge { size: usize, max: usize },
    #[error("session {0} is closed")]
    SessionClosed(SessionId),
    #[error("session {session} already holds {capacity} envelopes, the most one session may hold")]
    SessionFull { session: SessionId, capacity: usize },
    #[error("envelope cannot be encoded: {0}")]
    Encoding(String),
    #[error("transport backend: {0}")]
    Backend(String),
}
