//! Domain vocabulary of the MPC signing platform.
//!
//! Everything here is plain data: identifiers parsed at the edge into newtypes
//! ([`PartyId`], [`SessionId`], [`Threshold`], …), the commands a session accepts, the
//! events it records and the errors it returns. No IO, no async, no serialization
//! format: wire and storage formats live in `mpc-schemas`, behaviour in `mpc-actors`.

mod ids;
mod session;

pub use ids::{
    IdError, IdentityKey, KeyId, MAX_PARTIES, MessageHash, PartyId, PublicKey, SessionId,
    Signature, Threshold, Timestamp, TokenDigest,
};
pub use session::{
    FailureReason, KeyRef, Participant, PartyOutcome, SessionCommand, SessionCreated, SessionError,
    SessionEvent, SessionKind, SessionSpec, SessionStatus, SessionView,
};
