//! The account aggregate and the uniqueness claims of usernames and emails, as
//! pure functions.
//!
//! Status: active ⇄ suspended, active ⇄ locked, active | locked → recovering →
//! active. Only an active account signs. The key of an account is produced by the
//! keygen session it names; a failed keygen is replaced with `RestartKeygen`.
//!
//! Recovery sessions (the seed's `account_recovery_sessions`) are refresh sessions
//! of the account's key, recorded here before they are created: `device_lost`
//! (a recovering account; server and recovery rebuild the device share for a new
//! device identity, then every share is refreshed) and `share_rotation` (an active
//! account; every share refreshed). Each goes requested → in_progress → completed |
//! failed, one at a time. A completed `device_lost` binds the new device identity
//! to the account and makes it active again.

use std::collections::BTreeSet;

use mpc_events::{
    AccountCommand, AccountError, AccountEvent, AccountId, AccountParties, AccountStatus,
    ClaimCommand, ClaimError, ClaimEvent, Email, Phone, RecoveryKind, RecoveryStatus, SessionId,
    Timestamp, Username, stream,
};
use mpc_schemas::{Encoded, SchemaError};

use crate::aggregate::Aggregate;

/// Longest reason for a status change, in characters.
const MAX_REASON_CHARS: usize = 500;

/// An account as its stream records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub account_id: AccountId,
    pub username: Username,
    pub email: Email,
    pub phone: Option<Phone>,
    pub parties: AccountParties,
    /// The keygen session whose key is the account's key (the latest one named).
    pub keygen_session: SessionId,
    pub status: AccountStatus,
    pub opened_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    /// Every recovery session, oldest first.
    pub recoveries: Vec<Recovery>,
}

impl Account {
    /// The recovery session still requested or in progress, if any.
    pub fn open_recovery(&self) -> Option<&Recovery> {
        self.recoveries.iter().find(|r| r.status.is_open())
    }
}

/// One recovery session of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The refresh session that carries it out.
    pub session_id: SessionId,
    pub kind: RecoveryKind,
    pub status: RecoveryStatus,
    pub failure: Option<String>,
    pub requested_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The folded state of one account stream; `None` until it is opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountState(pub Option<Account>);

/// Marker type implementing [`Aggregate`] for accounts.
pub struct AccountAggregate;

impl Aggregate for AccountAggregate {
    type State = AccountState;
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    const CATEGORY: &'static str = stream::ACCOUNT;

    fn decide(
        state: &AccountState,
        command: AccountCommand,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        decide(state, command)
    }

    fn evolve(state: AccountState, event: &AccountEvent) -> AccountState {
        evolve(state, event)
    }

    fn encode(event: &AccountEvent) -> Result<Encoded, SchemaError> {
        mpc_schemas::stored::account::encode_account(event)
    }

    fn decode(event_type: &str, version: u16, payload: &[u8]) -> Result<AccountEvent, SchemaError> {
        mpc_schemas::stored::account::decode_account(event_type, version, payload)
    }

    fn occurred_at(event: &AccountEvent) -> Timestamp {
        event.at()
    }
}

fn reason_ok(reason: &str) -> Result<(), AccountError> {
    let chars = reason.trim().chars().count();
    if (1..=MAX_REASON_CHARS).contains(&chars) {
        Ok(())
    } else {
        Err(AccountError::InvalidReason)
    }
}

/// The status change `to` from `from`, if the lifecycle allows it.
fn transition(from: AccountStatus, to: AccountStatus) -> Result<(), AccountError> {
    use AccountStatus::{Active, Locked, Recovering, Suspended};
    if from == to {
        return Err(AccountError::AlreadyInStatus(to));
    }
    let allowed = matches!(
        (from, to),
        (Active | Locked, Suspended)
            | (Active | Suspended, Locked)
            | (Active | Locked, Recovering)
            | (Suspended | Locked | Recovering, Active)
    );
    if allowed {
        Ok(())
    } else {
        Err(AccountError::InvalidTransition { from, to })
    }
}

/// The events `command` causes, or why it is refused. Pure.
pub fn decide(
    state: &AccountState,
    command: AccountCommand,
) -> Result<Vec<AccountEvent>, AccountError> {
    let Some(a) = &state.0 else {
        return match command {
            AccountCommand::Open {
                account_id,
                username,
                email,
                phone,
                parties,
                keygen_session,
                now,
            } => {
                let all = parties.in_order();
                let ids: BTreeSet<_> = all.iter().map(|p| &p.party_id).collect();
                let keys: BTreeSet<_> = all.iter().map(|p| p.identity.signing()).collect();
                if ids.len() != 3 || keys.len() != 3 {
                    return Err(AccountError::PartiesNotDistinct);
                }
                Ok(vec![AccountEvent::AccountOpened {
                    account_id,
                    username,
                    email,
                    phone,
                    parties,
                    keygen_session,
                    at: now,
                }])
            }
            _ => Err(AccountError::UnknownAccount),
        };
    };
    let event = match command {
        AccountCommand::Open { .. } => return Err(AccountError::AlreadyExists),
        AccountCommand::RestartKeygen {
            keygen_session,
            now,
        } => {
            if a.status != AccountStatus::Active {
                return Err(AccountError::NotActive(a.status));
            }
            if keygen_session == a.keygen_session {
                return Err(AccountError::SessionAlreadyRecorded(keygen_session));
            }
            AccountEvent::AccountKeygenRestarted {
                keygen_session,
                at: now,
            }
        }
        AccountCommand::Suspend { reason, now } => {
            reason_ok(&reason)?;
            transition(a.status, AccountStatus::Suspended)?;
            AccountEvent::AccountSuspended { reason, at: now }
        }
        AccountCommand::Lock { reason, now } => {
            reason_ok(&reason)?;
            transition(a.status, AccountStatus::Locked)?;
            AccountEvent::AccountLocked { reason, at: now }
        }
        AccountCommand::StartRecovery { reason, now } => {
            reason_ok(&reason)?;
            transition(a.status, AccountStatus::Recovering)?;
            AccountEvent::AccountRecoveryStarted { reason, at: now }
        }
        AccountCommand::Reactivate { now } => {
            transition(a.status, AccountStatus::Active)?;
            AccountEvent::AccountReactivated { at: now }
        }
        AccountCommand::RecordUse {
            signing_session,
            now,
        } => {
            if a.status != AccountStatus::Active {
                return Err(AccountError::NotActive(a.status));
            }
            AccountEvent::AccountUsed {
                signing_session,
                at: now,
            }
        }
        AccountCommand::RequestRecovery {
            session_id,
            kind,
            now,
        } => {
            if let Some(open) = a.open_recovery() {
                return Err(AccountError::RecoveryOpen(open.session_id));
            }
            if session_id == a.keygen_session
                || a.recoveries.iter().any(|r| r.session_id == session_id)
            {
                return Err(AccountError::SessionAlreadyRecorded(session_id));
            }
            match &kind {
                RecoveryKind::DeviceLost { identity } => {
                    if a.status != AccountStatus::Recovering {
                        return Err(AccountError::NotRecovering(a.status));
                    }
                    if a.parties.in_order().iter().any(|p| p.identity == *identity) {
                        return Err(AccountError::DeviceIdentityNotNew);
                    }
                }
                RecoveryKind::ShareRotation => {
                    if a.status != AccountStatus::Active {
                        return Err(AccountError::NotActive(a.status));
                    }
                }
            }
            AccountEvent::RecoveryRequested {
                session_id,
                kind,
                at: now,
            }
        }
        AccountCommand::MarkRecoveryInProgress { session_id, now } => {
            match open_recovery(a, session_id)?.status {
                RecoveryStatus::Requested => AccountEvent::RecoveryInProgress {
                    session_id,
                    at: now,
                },
                _ => return Ok(vec![]),
            }
        }
        AccountCommand::CompleteRecovery { session_id, now } => {
            open_recovery(a, session_id)?;
            AccountEvent::RecoveryCompleted {
                session_id,
                at: now,
            }
        }
        AccountCommand::FailRecovery {
            session_id,
            reason,
            now,
        } => {
            reason_ok(&reason)?;
            open_recovery(a, session_id)?;
            AccountEvent::RecoveryFailed {
                session_id,
                reason,
                at: now,
            }
        }
    };
    Ok(vec![event])
}

fn open_recovery(a: &Account, session_id: SessionId) -> Result<&Recovery, AccountError> {
    a.open_recovery()
        .filter(|r| r.session_id == session_id)
        .ok_or(AccountError::NoOpenRecovery(session_id))
}

/// Folds one event into the state. Total.
pub fn evolve(state: AccountState, event: &AccountEvent) -> AccountState {
    let AccountState(current) = state;
    let next = match (current, event) {
        (
            None,
            AccountEvent::AccountOpened {
                account_id,
                username,
                email,
                phone,
                parties,
                keygen_session,
                at,
            },
        ) => Some(Account {
            account_id: *account_id,
            username: username.clone(),
            email: email.clone(),
            phone: phone.clone(),
            parties: parties.clone(),
            keygen_session: *keygen_session,
            status: AccountStatus::Active,
            opened_at: *at,
            last_used_at: None,
            updated_at: *at,
            recoveries: Vec::new(),
        }),
        (Some(mut a), e) => {
            a.updated_at = e.at();
            match e {
                AccountEvent::AccountOpened { .. } => {}
                AccountEvent::AccountKeygenRestarted { keygen_session, .. } => {
                    a.keygen_session = *keygen_session;
                }
                AccountEvent::AccountSuspended { .. } => a.status = AccountStatus::Suspended,
                AccountEvent::AccountLocked { .. } => a.status = AccountStatus::Locked,
                AccountEvent::AccountRecoveryStarted { .. } => {
                    a.status = AccountStatus::Recovering;
                }
                AccountEvent::AccountReactivated { .. } => a.status = AccountStatus::Active,
                AccountEvent::AccountUsed { at, .. } => a.last_used_at = Some(*at),
                AccountEvent::RecoveryRequested {
                    session_id,
                    kind,
                    at,
                } => a.recoveries.push(Recovery {
                    session_id: *session_id,
                    kind: kind.clone(),
                    status: RecoveryStatus::Requested,
                    failure: None,
                    requested_at: *at,
                    updated_at: *at,
                }),
                AccountEvent::RecoveryInProgress { session_id, at } => {
                    settle(&mut a, *session_id, *at, RecoveryStatus::InProgress, None);
                }
                AccountEvent::RecoveryCompleted { session_id, at } => {
                    let kind = settle(&mut a, *session_id, *at, RecoveryStatus::Completed, None);
                    if let Some(RecoveryKind::DeviceLost { identity }) = kind {
                        a.parties.device.identity = identity;
                        a.status = AccountStatus::Active;
                    }
                }
                AccountEvent::RecoveryFailed {
                    session_id,
                    reason,
                    at,
                } => {
                    settle(
                        &mut a,
                        *session_id,
                        *at,
                        RecoveryStatus::Failed,
                        Some(reason.clone()),
                    );
                }
            }
            Some(a)
        }
        (None, _) => None,
    };
    AccountState(next)
}

/// Moves recovery `session_id` to `status`; returns its kind.
fn settle(
    a: &mut Account,
    session_id: SessionId,
    at: Timestamp,
    status: RecoveryStatus,
    failure: Option<String>,
) -> Option<RecoveryKind> {
    let recovery = a
        .recoveries
        .iter_mut()
        .find(|r| r.session_id == session_id)?;
    recovery.status = status;
    recovery.failure = failure;
    recovery.updated_at = at;
    Some(recovery.kind.clone())
}

/// Who holds a unique value (a username or an email), if anyone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimState(pub Option<AccountId>);

/// The claim rules, shared by every kind of unique value. Pure.
pub fn decide_claim(
    state: &ClaimState,
    command: ClaimCommand,
) -> Result<Vec<ClaimEvent>, ClaimError> {
    match (state.0, command) {
        (None, ClaimCommand::Claim { owner, now }) => {
            Ok(vec![ClaimEvent::ValueClaimed { owner, at: now }])
        }
        (Some(holder), ClaimCommand::Claim { owner, .. }) if holder == owner => Ok(vec![]),
        (Some(_), ClaimCommand::Claim { .. }) => Err(ClaimError::Taken),
        (Some(holder), ClaimCommand::Release { owner, now }) if holder == owner => {
            Ok(vec![ClaimEvent::ValueReleased { owner, at: now }])
        }
        (_, ClaimCommand::Release { .. }) => Err(ClaimError::NotOwner),
    }
}

/// Folds one claim event. Total.
pub fn evolve_claim(_state: ClaimState, event: &ClaimEvent) -> ClaimState {
    match event {
        ClaimEvent::ValueClaimed { owner, .. } => ClaimState(Some(*owner)),
        ClaimEvent::ValueReleased { .. } => ClaimState(None),
    }
}

macro_rules! claim_aggregate {
    ($(#[$doc:meta])* $name:ident, $category:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl Aggregate for $name {
            type State = ClaimState;
            type Command = ClaimCommand;
            type Event = ClaimEvent;
            type Error = ClaimError;
            const CATEGORY: &'static str = $category;

            fn decide(state: &ClaimState, command: ClaimCommand) -> Result<Vec<ClaimEvent>, ClaimError> {
                decide_claim(state, command)
            }
            fn evolve(state: ClaimState, event: &ClaimEvent) -> ClaimState {
                evolve_claim(state, event)
            }
            fn encode(event: &ClaimEvent) -> Result<Encoded, SchemaError> {
                mpc_schemas::stored::account::encode_claim(event)
            }
            fn decode(event_type: &str, version: u16, payload: &[u8]) -> Result<ClaimEvent, SchemaError> {
                mpc_schemas::stored::account::decode_claim(event_type, version, payload)
            }
            fn occurred_at(event: &ClaimEvent) -> Timestamp {
                event.at()
            }
        }
    };
}

claim_aggregate!(
    /// Usernames: stream `username-<name>` (names are already lowercase and
    /// stream-safe).
    UsernameClaims,
    stream::USERNAME
);
claim_aggregate!(
    /// Emails: stream `email-<hex SHA-256 of the lowercase address>`, so the
    /// address itself is not a stream name.
    EmailClaims,
    stream::EMAIL
);

#[cfg(test)]
mod tests;
