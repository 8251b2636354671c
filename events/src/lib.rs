//! Domain vocabulary of the MPC signing platform.
//!
//! Everything here is plain data: identifiers parsed at the edge into newtypes
//! ([`PartyId`], [`SessionId`], [`Threshold`], …), the commands that sessions
//! (keygen, signing, refresh with lost-share repair), key streams (the order of a
//! key's refreshes), accounts (with their recovery sessions), approval workflows and the
//! operator-credential registry accept, the events they record and the errors they return. No IO, no async, no
//! serialization format: wire and storage formats live in `mpc-schemas`, behaviour in
//! `mpc-actors`.

mod account;
mod approval;
mod ids;
mod key;
mod operator;
mod session;
pub mod stream;

pub use account::{
    AccountCommand, AccountError, AccountEvent, AccountParties, AccountStatus, ClaimCommand,
    ClaimError, ClaimEvent, RecoveryKind, RecoveryStatus, ShareRole,
};
pub use approval::{
    Decision, MAX_PAYLOAD_BYTES, WorkflowCommand, WorkflowCreated, WorkflowError, WorkflowEvent,
    WorkflowStatus,
};
pub use ids::{
    AccountId, CredentialId, Email, IdError, IdentityKey, IdentitySignature, KeyId, MAX_PARTIES,
    MessageHash, PartyId, Phone, PublicKey, RefreshDigest, SessionId, Signature, Threshold,
    Timestamp, TokenDigest, Username, WorkflowId,
};
pub use key::{KeyCommand, KeyError, KeyEvent};
pub use operator::{
    CredentialName, MAX_CREDENTIAL_NAME_CHARS, OperatorCommand, OperatorError, OperatorEvent,
    REGISTRY_ID, Role, UnknownRole,
};
pub use session::{
    ApprovalEvidence, FailureReason, KeyPolicy, KeyRef, Participant, PartyOutcome, RepairSpec,
    SessionCommand, SessionCreated, SessionError, SessionEvent, SessionKind, SessionSpec,
    SessionStatus, SessionView, SignedApproval,
};
