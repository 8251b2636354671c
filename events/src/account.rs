//! The account vocabulary: a user's account and the 2-of-3 key that belongs to it.
//!
//! An account is opened with three parties that will each hold one share of its
//! key: the user's device, the server party and the recovery party (the seed's
//! account registration scenario). Which party holds which share is public record
//! (the share-location map); share content never appears here. The key itself is
//! produced by the keygen session named in the account; the account stream records
//! the administrative status (active, suspended, locked, recovering) and each use.
//!
//! Usernames and emails are unique across accounts. Each value is claimed in a
//! stream of its own (`username-<name>`, `email-<digest>`) before the account is
//! opened; see [`ClaimCommand`].

use std::fmt;

use crate::ids::{AccountId, Email, IdError, IdentityKey, Phone, SessionId, Timestamp, Username};
use crate::session::Participant;

/// The administrative status of an account (the seed's four).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    Active,
    Suspended,
    Locked,
    Recovering,
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Locked => "locked",
            Self::Recovering => "recovering",
        })
    }
}

/// Which of the account's three shares a party holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShareRole {
    Device,
    Server,
    Recovery,
}

impl ShareRole {
    pub const ALL: [ShareRole; 3] = [Self::Device, Self::Server, Self::Recovery];
}

impl fmt::Display for ShareRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Device => "device",
            Self::Server => "server",
            Self::Recovery => "recovery",
        })
    }
}

/// The three parties of an account's key, in keygen order (device, server,
/// recovery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountParties {
    pub device: Participant,
    pub server: Participant,
    pub recovery: Participant,
}

impl AccountParties {
    pub fn get(&self, role: ShareRole) -> &Participant {
        match role {
            ShareRole::Device => &self.device,
            ShareRole::Server => &self.server,
            ShareRole::Recovery => &self.recovery,
        }
    }
    /// The parties in keygen order.
    pub fn in_order(&self) -> Vec<Participant> {
        ShareRole::ALL
            .iter()
            .map(|r| self.get(*r).clone())
            .collect()
    }
}

/// What a recovery session of an account does (the seed's
/// `account_recovery_sessions.type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryKind {
    /// The device share is lost: server and recovery rebuild it for the new device
    /// whose identity key is `identity`, then all three shares are refreshed. Needs a
    /// `recovering` account; completing it makes the account active again.
    DeviceLost { identity: IdentityKey },
    /// All three shares are re-randomized; nothing is lost. Needs an active account.
    ShareRotation,
}

impl RecoveryKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::DeviceLost { .. } => "device_lost",
            Self::ShareRotation => "share_rotation",
        }
    }
}

/// Where a recovery session stands: requested → in_progress → completed | failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecoveryStatus {
    Requested,
    InProgress,
    Completed,
    Failed,
}

impl RecoveryStatus {
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Requested | Self::InProgress)
    }
}

impl fmt::Display for RecoveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Requested => "requested",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
        })
    }
}

/// A request to the account aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a value passed once through decide and evolve; boxing would only add noise"
)]
pub enum AccountCommand {
    /// Opens the account; `keygen_session` is the session that will produce its key.
    Open {
        account_id: AccountId,
        username: Username,
        email: Email,
        phone: Option<Phone>,
        parties: AccountParties,
        keygen_session: SessionId,
        now: Timestamp,
    },
    /// Names a new keygen session after the previous one failed or expired.
    RestartKeygen {
        keygen_session: SessionId,
        now: Timestamp,
    },
    Suspend {
        reason: String,
        now: Timestamp,
    },
    Lock {
        reason: String,
        now: Timestamp,
    },
    StartRecovery {
        reason: String,
        now: Timestamp,
    },
    /// Back to active from suspended, locked or recovering.
    Reactivate {
        now: Timestamp,
    },
    /// Records that a signing session was started with the account's key.
    RecordUse {
        signing_session: SessionId,
        now: Timestamp,
    },
    /// Records refresh session `session_id` as a new recovery session of the
    /// account, before the session is created.
    RequestRecovery {
        session_id: SessionId,
        kind: RecoveryKind,
        now: Timestamp,
    },
    /// The recovery's refresh session started (every party joined).
    MarkRecoveryInProgress {
        session_id: SessionId,
        now: Timestamp,
    },
    /// The recovery's refresh session completed.
    CompleteRecovery {
        session_id: SessionId,
        now: Timestamp,
    },
    /// The recovery's refresh session failed or expired (or was never created).
    FailRecovery {
        session_id: SessionId,
        reason: String,
        now: Timestamp,
    },
}

/// Facts recorded in an `account-<id>` stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a value passed once through decide and evolve; boxing would only add noise"
)]
pub enum AccountEvent {
    AccountOpened {
        account_id: AccountId,
        username: Username,
        email: Email,
        phone: Option<Phone>,
        parties: AccountParties,
        keygen_session: SessionId,
        at: Timestamp,
    },
    AccountKeygenRestarted {
        keygen_session: SessionId,
        at: Timestamp,
    },
    AccountSuspended {
        reason: String,
        at: Timestamp,
    },
    AccountLocked {
        reason: String,
        at: Timestamp,
    },
    AccountRecoveryStarted {
        reason: String,
        at: Timestamp,
    },
    AccountReactivated {
        at: Timestamp,
    },
    AccountUsed {
        signing_session: SessionId,
        at: Timestamp,
    },
    RecoveryRequested {
        session_id: SessionId,
        kind: RecoveryKind,
        at: Timestamp,
    },
    RecoveryInProgress {
        session_id: SessionId,
        at: Timestamp,
    },
    /// A completed `device_lost` recovery also makes the new device the account's
    /// device holder and the account active again.
    RecoveryCompleted {
        session_id: SessionId,
        at: Timestamp,
    },
    RecoveryFailed {
        session_id: SessionId,
        reason: String,
        at: Timestamp,
    },
}

impl AccountEvent {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::AccountOpened { .. } => "AccountOpened",
            Self::AccountKeygenRestarted { .. } => "AccountKeygenRestarted",
            Self::AccountSuspended { .. } => "AccountSuspended",
            Self::AccountLocked { .. } => "AccountLocked",
            Self::AccountRecoveryStarted { .. } => "AccountRecoveryStarted",
            Self::AccountReactivated { .. } => "AccountReactivated",
            Self::AccountUsed { .. } => "AccountUsed",
            Self::RecoveryRequested { .. } => "RecoveryRequested",
            Self::RecoveryInProgress { .. } => "RecoveryInProgress",
            Self::RecoveryCompleted { .. } => "RecoveryCompleted",
            Self::RecoveryFailed { .. } => "RecoveryFailed",
        }
    }
    pub fn at(&self) -> Timestamp {
        match self {
            Self::AccountOpened { at, .. }
            | Self::AccountKeygenRestarted { at, .. }
            | Self::AccountSuspended { at, .. }
            | Self::AccountLocked { at, .. }
            | Self::AccountRecoveryStarted { at, .. }
            | Self::AccountReactivated { at }
            | Self::AccountUsed { at, .. }
            | Self::RecoveryRequested { at, .. }
            | Self::RecoveryInProgress { at, .. }
            | Self::RecoveryCompleted { at, .. }
            | Self::RecoveryFailed { at, .. } => *at,
        }
    }
}

/// Why the account aggregate (or a claim) refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("invalid value: {0}")]
    Invalid(#[from] IdError),
    #[error("account already exists")]
    AlreadyExists,
    #[error("unknown account")]
    UnknownAccount,
    #[error("username {0} is taken")]
    UsernameTaken(Username),
    #[error("email {0} is taken")]
    EmailTaken(Email),
    #[error("device, server and recovery must be three different parties")]
    PartiesNotDistinct,
    #[error("account is {0}; this needs an active account")]
    NotActive(AccountStatus),
    #[error("account is already {0}")]
    AlreadyInStatus(AccountStatus),
    #[error("an account cannot go from {from} to {to}")]
    InvalidTransition {
        from: AccountStatus,
        to: AccountStatus,
    },
    #[error("a reason must be 1 to 500 characters")]
    InvalidReason,
    #[error("session {0} is already recorded for this account")]
    SessionAlreadyRecorded(SessionId),
    #[error("account is {0}; a lost-device recovery needs a recovering account")]
    NotRecovering(AccountStatus),
    #[error("recovery session {0} is still open")]
    RecoveryOpen(SessionId),
    #[error("session {0} is not an open recovery session of this account")]
    NoOpenRecovery(SessionId),
    #[error("the new device must present an identity key none of the account's parties uses")]
    DeviceIdentityNotNew,
}

/// A request to a uniqueness claim stream (`username-…`, `email-…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimCommand {
    Claim { owner: AccountId, now: Timestamp },
    Release { owner: AccountId, now: Timestamp },
}

/// Facts recorded in a claim stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimEvent {
    ValueClaimed { owner: AccountId, at: Timestamp },
    ValueReleased { owner: AccountId, at: Timestamp },
}

impl ClaimEvent {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::ValueClaimed { .. } => "ValueClaimed",
            Self::ValueReleased { .. } => "ValueReleased",
        }
    }
    pub fn at(&self) -> Timestamp {
        match self {
            Self::ValueClaimed { at, .. } | Self::ValueReleased { at, .. } => *at,
        }
    }
}

/// Why a claim was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("the value is held by another account")]
    Taken,
    #[error("the value is not held by this account")]
    NotOwner,
}
