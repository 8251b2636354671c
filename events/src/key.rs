//! The key vocabulary: the `key-<keygen session>` stream that orders a key's
//! refreshes.
//!
//! A key is born in its keygen session; each refresh (share rotation, or a lost
//! share rebuilt and every share re-randomized) runs in a session of its own. The
//! key stream records each refresh session before the session is created, one at a
//! time, so the key's current generation is the keygen result moved on by every
//! recorded refresh session that completed.

use crate::ids::{SessionId, Timestamp};

/// A request to a key stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCommand {
    /// Records refresh session `session_id` as the key's next refresh. `after` is
    /// the refresh the caller saw last (and found settled); the command is refused
    /// if another refresh was recorded since.
    ScheduleRefresh {
        session_id: SessionId,
        after: Option<SessionId>,
        now: Timestamp,
    },
}

/// Facts recorded in a key stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyEvent {
    RefreshScheduled {
        session_id: SessionId,
        at: Timestamp,
    },
}

impl KeyEvent {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::RefreshScheduled { .. } => "RefreshScheduled",
        }
    }
    pub fn at(&self) -> Timestamp {
        match self {
            Self::RefreshScheduled { at, .. } => *at,
        }
    }
}

/// Why a key stream refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("another refresh of this key was scheduled meanwhile (last is {0})")]
    RefreshRaced(SessionId),
    #[error("session {0} is already recorded for this key")]
    SessionAlreadyRecorded(SessionId),
}
