//! The MPC session (coordinator) vocabulary: commands, events and errors.

use std::collections::BTreeMap;
use std::fmt;

use crate::ids::{
    IdError, IdentityKey, IdentitySignature, KeyId, MessageHash, PartyId, PublicKey, RefreshDigest,
    SessionId, Signature, Threshold, Timestamp, TokenDigest, WorkflowId,
};

/// What a session produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKind {
    Keygen,
    Signing,
    /// Share refresh among all holders of a key, optionally rebuilding a lost share.
    Refresh,
}

impl fmt::Display for SessionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Keygen => "keygen",
            Self::Signing => "signing",
            Self::Refresh => "refresh",
        })
    }
}

/// Which signing sessions of a key its holders join, fixed at keygen. Every holder
/// binds it into the keygen's execution id and pins it with its share, so a run in
/// which holders were told different policies produces no key, and a coordinator
/// cannot lift the gate afterwards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum KeyPolicy {
    /// Any signing session (the callers authorize each request).
    #[default]
    AnyRequest,
    /// Only sessions carrying t valid approvals of an approval workflow.
    ApprovedOnly,
}

impl KeyPolicy {
    /// `any-request` or `approved-only`, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AnyRequest => "any-request",
            Self::ApprovedOnly => "approved-only",
        }
    }
}

impl fmt::Display for KeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KeyPolicy {
    type Err = String;

    /// `any-request` or `approved-only`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "any-request" => Ok(Self::AnyRequest),
            "approved-only" => Ok(Self::ApprovedOnly),
            other => Err(format!(
                "unknown signing policy {other:?} (any-request or approved-only)"
            )),
        }
    }
}

/// Lifecycle: created → in_progress → completed | failed | expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionStatus {
    Created,
    InProgress,
    Completed,
    Failed,
    Expired,
}

impl SessionStatus {
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Expired)
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Expired => "expired",
        })
    }
}

/// A party invited to a session, with the identity it registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub party_id: PartyId,
    pub identity: IdentityKey,
}

/// A completed key as a session needs it: the keygen session's result, moved on
/// by every refresh of the key that completed since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    pub key_id: KeyId,
    pub public_key: PublicKey,
    pub threshold: Threshold,
    /// The key's parties in keygen order; a party's protocol index is its position + 1.
    /// A lost-share repair replaces the holder's identity (its new device) in place.
    pub parties: Vec<Participant>,
    /// Which generation of shares the holders use: 1 after keygen, one more after
    /// each completed refresh. Parties keep each generation as that vault version.
    pub epoch: u32,
}

impl KeyRef {
    /// The key once a refresh with `repair` completed: the next generation of
    /// shares, held by the same parties, a repaired one under its new identity.
    pub fn refreshed(&self, repair: Option<&RepairSpec>) -> KeyRef {
        let mut next = self.clone();
        next.epoch = self.epoch.saturating_add(1);
        if let Some(repair) = repair {
            for holder in &mut next.parties {
                if holder.party_id == repair.target {
                    holder.identity = repair.identity;
                }
            }
        }
        next
    }
}

/// One approver's signed approval, as a signing party checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedApproval {
    pub approver: PartyId,
    pub signature: IdentitySignature,
}

/// What a signing session started by a workflow carries: the approvals that allow
/// it. Every signer verifies them against the key's registered identity keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalEvidence {
    pub workflow_id: WorkflowId,
    pub payload_hash: MessageHash,
    /// Exactly t approvals by distinct approvers: the session's signers.
    pub approvals: Vec<SignedApproval>,
}

/// The lost-share part of a refresh: `helpers` rebuild `target`'s share for the
/// new device whose identity key is `identity`, before all holders re-randomize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairSpec {
    /// The holder whose share is lost; its place (protocol index) in the key stays.
    pub target: PartyId,
    /// The new device's identity key, bound into the session: the helpers send
    /// their terms only to this key.
    pub identity: IdentityKey,
    /// The holders that rebuild the share: at least t, never the target.
    pub helpers: Vec<PartyId>,
    /// The repair's authorizations: signatures by at least t holders other than
    /// the target, each with its identity key, over the recovery transcript (key,
    /// generation, target, new identity). Every holder verifies them against the
    /// identity keys it pinned before it sends anything, so neither the coordinator
    /// nor an operator's token alone can move a share to a device of their choosing.
    pub authorizations: Vec<SignedApproval>,
    /// The key's signing policy as its holders pinned it at keygen: every holder
    /// refuses a repair that names another policy than its own pin, and the new
    /// device pins this one with the rebuilt share, so a repair never lifts an
    /// approval gate.
    pub policy: KeyPolicy,
}

/// What kind of session to run and its kind-specific inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionSpec {
    Keygen {
        threshold: Threshold,
        /// Which signing sessions of the new key its holders will join.
        policy: KeyPolicy,
    },
    Signing {
        key: KeyRef,
        message_hash: MessageHash,
        /// The data itself, when the caller provides it, so that signers see what
        /// they sign; `message_hash` must then be its SHA-256.
        message: Option<Vec<u8>>,
        /// The approvals that allow this signature, when an approval workflow started
        /// the session; the signers are then exactly the approvers.
        approval: Option<ApprovalEvidence>,
    },
    /// Re-randomizes every share of `key` (all n holders take part); the group key
    /// stays. With `repair`, a lost share is rebuilt first.
    Refresh {
        key: KeyRef,
        /// Boxed: most refreshes repair nothing, and the spec stays small.
        repair: Option<Box<RepairSpec>>,
    },
}

impl SessionSpec {
    pub fn kind(&self) -> SessionKind {
        match self {
            Self::Keygen { .. } => SessionKind::Keygen,
            Self::Signing { .. } => SessionKind::Signing,
            Self::Refresh { .. } => SessionKind::Refresh,
        }
    }
    pub fn threshold(&self) -> Threshold {
        match self {
            Self::Keygen { threshold, .. } => *threshold,
            Self::Signing { key, .. } | Self::Refresh { key, .. } => key.threshold,
        }
    }
    /// The key a signing or refresh session works on.
    pub fn key(&self) -> Option<&KeyRef> {
        match self {
            Self::Keygen { .. } => None,
            Self::Signing { key, .. } | Self::Refresh { key, .. } => Some(key),
        }
    }
}

/// What one party reports at the end of its protocol run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartyOutcome {
    PublicKey(PublicKey),
    Signature(Signature),
    /// A refresh finished: the (unchanged) group key and the digest of the refreshed
    /// public verification data.
    Refreshed {
        public_key: PublicKey,
        digest: RefreshDigest,
    },
}

/// Why a session failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureReason {
    /// Keygen or refresh parties reported different results; `disagreeing` are the
    /// parties outside the largest group of equal reports.
    PublicKeyMismatch { disagreeing: Vec<PartyId> },
    /// A signer reported a signature that does not verify against the key.
    InvalidSignature { reported_by: PartyId },
    /// A party's protocol engine aborted; `culprits` are the parties it blames.
    PartyAborted {
        reported_by: PartyId,
        culprits: Vec<PartyId>,
        detail: String,
    },
    /// An operator closed the session before it finished.
    Closed { reason: String },
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |ps: &[PartyId]| {
            ps.iter()
                .map(PartyId::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Self::PublicKeyMismatch { disagreeing } => {
                write!(
                    f,
                    "public key mismatch; disagreeing: {}",
                    names(disagreeing)
                )
            }
            Self::InvalidSignature { reported_by } => {
                write!(f, "invalid signature reported by {reported_by}")
            }
            Self::PartyAborted {
                reported_by,
                culprits,
                detail,
            } if culprits.is_empty() => write!(f, "{reported_by} aborted: {detail}"),
            Self::PartyAborted {
                reported_by,
                culprits,
                detail,
            } => write!(
                f,
                "{reported_by} aborted: {detail}; blames {}",
                names(culprits)
            ),
            Self::Closed { reason } => write!(f, "closed: {reason}"),
        }
    }
}

/// A request to the session aggregate. Time is an input, never read inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCommand {
    Create {
        session_id: SessionId,
        spec: SessionSpec,
        participants: Vec<Participant>,
        /// Digest of each participant's single-use join token.
        join_tokens: BTreeMap<PartyId, TokenDigest>,
        join_expires_at: Timestamp,
        expires_at: Timestamp,
        now: Timestamp,
    },
    Join {
        party_id: PartyId,
        token: TokenDigest,
        now: Timestamp,
    },
    ReportCompletion {
        party_id: PartyId,
        outcome: PartyOutcome,
        now: Timestamp,
    },
    ReportFailure {
        party_id: PartyId,
        culprits: Vec<PartyId>,
        detail: String,
        now: Timestamp,
    },
    Close {
        reason: String,
        now: Timestamp,
    },
    Expire {
        now: Timestamp,
    },
}

/// The first event of every session stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCreated {
    pub session_id: SessionId,
    pub spec: SessionSpec,
    pub participants: Vec<Participant>,
    pub join_tokens: BTreeMap<PartyId, TokenDigest>,
    pub join_expires_at: Timestamp,
    pub expires_at: Timestamp,
    pub at: Timestamp,
}

/// Facts recorded in a `session-<id>` stream. Past tense; never edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    SessionCreated(SessionCreated),
    ParticipantJoined {
        party_id: PartyId,
        at: Timestamp,
    },
    SessionStarted {
        at: Timestamp,
    },
    PartyCompleted {
        party_id: PartyId,
        outcome: PartyOutcome,
        at: Timestamp,
    },
    SessionCompleted {
        outcome: PartyOutcome,
        at: Timestamp,
    },
    SessionFailed {
        reason: FailureReason,
        at: Timestamp,
    },
    SessionExpired {
        at: Timestamp,
    },
}

impl SessionEvent {
    /// The stable type name stored with the event.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::SessionCreated(_) => "SessionCreated",
            Self::ParticipantJoined { .. } => "ParticipantJoined",
            Self::SessionStarted { .. } => "SessionStarted",
            Self::PartyCompleted { .. } => "PartyCompleted",
            Self::SessionCompleted { .. } => "SessionCompleted",
            Self::SessionFailed { .. } => "SessionFailed",
            Self::SessionExpired { .. } => "SessionExpired",
        }
    }

    /// When the fact happened (the command's `now`).
    pub fn at(&self) -> Timestamp {
        match self {
            Self::SessionCreated(c) => c.at,
            Self::ParticipantJoined { at, .. }
            | Self::SessionStarted { at }
            | Self::PartyCompleted { at, .. }
            | Self::SessionCompleted { at, .. }
            | Self::SessionFailed { at, .. }
            | Self::SessionExpired { at } => *at,
        }
    }
}

/// Why the session aggregate refused a command. Refusal records nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("invalid value: {0}")]
    Invalid(#[from] IdError),
    #[error("session already exists")]
    AlreadyExists,
    #[error("unknown session")]
    UnknownSession,
    #[error("{kind} session needs {expected} participants, got {got}")]
    ParticipantCount {
        kind: SessionKind,
        expected: usize,
        got: usize,
    },
    #[error("party {0} is listed more than once")]
    DuplicateParty(PartyId),
    #[error("party {0} is not a participant of this session")]
    UnknownParty(PartyId),
    #[error("party {0} is not a holder of the signing key")]
    NotAKeyHolder(PartyId),
    #[error("party {0} presented an identity key other than the one registered with the key")]
    IdentityMismatch(PartyId),
    #[error("join tokens must be given for exactly the participants")]
    JoinTokensMismatch,
    #[error("deadlines must lie in the future with the join deadline no later than the session's")]
    InvalidDeadline,
    #[error("message hash is not the SHA-256 of the message")]
    MessageHashMismatch,
    #[error("join token is not valid for this session and party")]
    InvalidToken,
    #[error("join token has expired")]
    TokenExpired,
    #[error("party {0} has already joined; join tokens are single-use")]
    AlreadyJoined(PartyId),
    #[error("session is {0}; joining is only possible while it is created")]
    NotJoinable(SessionStatus),
    #[error("session is {0}; reports are only accepted while it is in progress")]
    NotInProgress(SessionStatus),
    #[error("party {0} has already reported")]
    AlreadyReported(PartyId),
    #[error("a {kind} session cannot accept this kind of result")]
    WrongOutcome { kind: SessionKind },
    #[error("reported public key is not a point on secp256k1")]
    InvalidPublicKey,
    #[error("session is already {0}")]
    Terminal(SessionStatus),
    #[error("session does not expire until {0} ms")]
    NotYetExpired(i64),
    #[error("the session's deadline has passed")]
    DeadlinePassed,
    #[error("approval evidence rejected: {0}")]
    InvalidApprovalEvidence(String),
    #[error("a repair needs at least {needed} helpers other than the target, got {got}")]
    TooFewHelpers { needed: u8, got: usize },
    #[error("party {0} cannot help rebuild its own share")]
    TargetIsHelper(PartyId),
    #[error("the new device must present an identity key that no holder of the key uses")]
    RepairIdentityNotNew,
    #[error("the repair is not authorized: {0}")]
    RepairNotAuthorized(String),
}

/// What a party learns about a session it joins: everything it needs to run its
/// part of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub session_id: SessionId,
    pub spec: SessionSpec,
    /// Participants with their 1-based protocol index (for signing: their index in
    /// the key), in index order.
    pub participants: Vec<(u8, Participant)>,
    pub status: SessionStatus,
    pub expires_at: Timestamp,
}

impl SessionView {
    pub fn index_of(&self, party: &PartyId) -> Option<u8> {
        self.participants
            .iter()
            .find(|(_, p)| &p.party_id == party)
            .map(|(i, _)| *i)
    }
    pub fn party_at(&self, index: u8) -> Option<&Participant> {
        self.participants
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, p)| p)
    }
}
