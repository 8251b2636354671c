//! The approval-workflow vocabulary: multi-person review before a key signs.
//!
//! A workflow names a completed t-of-n key whose n holders are the approvers (the
//! seed's 3-of-5 review and 4-of-7 high-security approval), and carries the full
//! payload to sign with its SHA-256. Each approver decides once, approve or reject,
//! with a signature by its identity key over (workflow id, payload hash, decision).
//! With t approvals the workflow is approved and a signing session may start among
//! exactly those t approvers, carrying the approvals as [`ApprovalEvidence`](crate::ApprovalEvidence) so that
//! every signer checks them itself. Enough rejections to make t approvals
//! impossible reject the workflow; its deadline expires it.

use std::fmt;

use crate::ids::{
    IdError, IdentitySignature, MessageHash, PartyId, SessionId, Timestamp, WorkflowId,
};
use crate::session::KeyRef;

/// Largest payload a workflow carries (the signers see all of it).
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// An approver's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Approve,
    Reject,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
        })
    }
}

/// Lifecycle: pending → approved → signing, or pending → rejected | expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkflowStatus {
    Pending,
    Approved,
    Signing,
    Rejected,
    Expired,
}

impl fmt::Display for WorkflowStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Signing => "signing",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        })
    }
}

/// A request to the workflow aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowCommand {
    Create {
        workflow_id: WorkflowId,
        title: String,
        key: KeyRef,
        payload: Vec<u8>,
        payload_hash: MessageHash,
        expires_at: Timestamp,
        now: Timestamp,
    },
    Decide {
        approver: PartyId,
        decision: Decision,
        signature: IdentitySignature,
        now: Timestamp,
    },
    /// Names the signing session of an approved workflow (again, after an earlier
    /// one failed).
    RequestSigning {
        session_id: SessionId,
        now: Timestamp,
    },
    Expire {
        now: Timestamp,
    },
}

/// The first event of every workflow stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowCreated {
    pub workflow_id: WorkflowId,
    pub title: String,
    pub key: KeyRef,
    pub payload: Vec<u8>,
    pub payload_hash: MessageHash,
    pub expires_at: Timestamp,
    pub at: Timestamp,
}

/// Facts recorded in an `approval-<id>` stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowEvent {
    WorkflowCreated(WorkflowCreated),
    DecisionRecorded {
        approver: PartyId,
        decision: Decision,
        signature: IdentitySignature,
        at: Timestamp,
    },
    /// t approvals are in; `approvers` are the t that approved, in decision order.
    WorkflowApproved {
        approvers: Vec<PartyId>,
        at: Timestamp,
    },
    /// So many approvers rejected that t approvals can no longer be reached.
    WorkflowRejected {
        rejected_by: Vec<PartyId>,
        at: Timestamp,
    },
    WorkflowExpired {
        at: Timestamp,
    },
    SigningRequested {
        session_id: SessionId,
        at: Timestamp,
    },
}

impl WorkflowEvent {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::WorkflowCreated(_) => "WorkflowCreated",
            Self::DecisionRecorded { .. } => "DecisionRecorded",
            Self::WorkflowApproved { .. } => "WorkflowApproved",
            Self::WorkflowRejected { .. } => "WorkflowRejected",
            Self::WorkflowExpired { .. } => "WorkflowExpired",
            Self::SigningRequested { .. } => "SigningRequested",
        }
    }
    pub fn at(&self) -> Timestamp {
        match self {
            Self::WorkflowCreated(c) => c.at,
            Self::DecisionRecorded { at, .. }
            | Self::WorkflowApproved { at, .. }
            | Self::WorkflowRejected { at, .. }
            | Self::WorkflowExpired { at }
            | Self::SigningRequested { at, .. } => *at,
        }
    }
}

/// Why the workflow aggregate refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    #[error("invalid value: {0}")]
    Invalid(#[from] IdError),
    #[error("workflow already exists")]
    AlreadyExists,
    #[error("unknown workflow")]
    UnknownWorkflow,
    #[error("title must be 1 to 200 characters")]
    InvalidTitle,
    #[error("payload must be 1 to {MAX_PAYLOAD_BYTES} bytes, got {0}")]
    PayloadSize(usize),
    #[error("payload hash is not the SHA-256 of the payload")]
    PayloadHashMismatch,
    #[error("the deadline must lie in the future")]
    InvalidDeadline,
    #[error("party {0} is not an approver of this workflow")]
    NotAnApprover(PartyId),
    #[error("approver {0} has already decided")]
    AlreadyDecided(PartyId),
    #[error(
        "the signature of {0} does not verify over this workflow, key, share generation, \
         payload and decision"
    )]
    BadApprovalSignature(PartyId),
    #[error("workflow is {0}; decisions are only accepted while it is pending")]
    NotPending(WorkflowStatus),
    #[error("workflow is {0}; signing needs an approved workflow")]
    NotApproved(WorkflowStatus),
    #[error("session {0} is already recorded for this workflow")]
    SessionAlreadyRecorded(SessionId),
    #[error(
        "the workflow's approvals were used by signing session {0}; approvals are single-use, \
         so another signature needs a new workflow"
    )]
    ApprovalsUsed(SessionId),
    #[error(
        "the key was refreshed since the workflow was created (generation {approved} approved, \
         {current} current); approvals hold for one generation, so start a new workflow"
    )]
    KeyRefreshed { approved: u32, current: u32 },
    #[error("the workflow's deadline has passed")]
    DeadlinePassed,
    #[error("workflow does not expire until {0} ms")]
    NotYetExpired(i64),
}
