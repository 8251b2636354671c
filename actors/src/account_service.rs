//! The account service: opens accounts (claiming username and email, then
//! starting the 2-of-3 keygen among device, server and recovery), changes their
//! status, starts signing sessions with an account's key (device + server), and
//! runs recovery sessions: a lost device's share rebuilt by server and recovery for
//! a new device, or a rotation of all three shares, each as a refresh session of
//! the account's key.

use std::sync::Arc;
use std::time::Duration;

use mpc_events::{
    AccountCommand, AccountError, AccountId, AccountParties, ClaimCommand, ClaimError, Email,
    KeyId, KeyPolicy, KeyRef, Phone, RecoveryKind, RecoveryStatus, RepairSpec, SessionError,
    SessionId, SessionStatus, SignedApproval, Threshold, Username,
};
use mpc_schemas::SchemaError;
use mpc_store::{EventStore, StoreError};
use sha2::{Digest, Sha256};

use crate::account::{Account, AccountAggregate, EmailClaims, UsernameClaims};
use crate::aggregate::{Clock, CommandMeta};
use crate::coordinator::{
    Coordinator, CoordinatorError, CreatedSession, NewKeygen, NewRefresh, NewSigning,
    SigningPayload,
};
use crate::registry::{ActorError, ActorRegistry};
use crate::session::repair_authorized;

#[derive(Debug, thiserror::Error)]
pub enum AccountServiceError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Claim(#[from] ClaimError),
    #[error(transparent)]
    Coordinator(#[from] CoordinatorError),
    #[error("keygen session {0} of this account has not failed; it cannot be replaced")]
    KeygenNotFailed(SessionId),
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    #[error("stored event cannot be read: {0}")]
    Schema(#[from] SchemaError),
    #[error("account service is shutting down")]
    Stopped,
}

impl<E: std::error::Error + 'static> From<ActorError<E>> for AccountServiceError
where
    AccountServiceError: From<E>,
{
    fn from(e: ActorError<E>) -> Self {
        match e {
            ActorError::Domain(e) => e.into(),
            ActorError::Store(e) => Self::Store(e),
            ActorError::Schema(e) => Self::Schema(e),
            ActorError::Stopped => Self::Stopped,
        }
    }
}

/// A request to open an account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: Username,
    pub email: Email,
    pub phone: Option<Phone>,
    pub parties: AccountParties,
    /// Lifetime of the keygen session.
    pub keygen_ttl: Duration,
}

/// An opened account and its keygen session, whose join tokens go to the three
/// parties.
#[derive(Debug)]
pub struct OpenedAccount {
    pub account_id: AccountId,
    pub keygen: CreatedSession,
}

/// The stream id of an email's claim: the hex SHA-256 of the (lowercase) address.
pub fn email_claim_id(email: &Email) -> String {
    hex::encode(Sha256::digest(email.as_str().as_bytes()))
}

/// The account service.
pub struct Accounts {
    accounts: ActorRegistry<AccountAggregate>,
    usernames: ActorRegistry<UsernameClaims>,
    emails: ActorRegistry<EmailClaims>,
    coordinator: Arc<Coordinator>,
}

impl Accounts {
    pub fn new(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        coordinator: Arc<Coordinator>,
    ) -> Self {
        Self {
            accounts: ActorRegistry::new(store.clone(), clock.clone()),
            usernames: ActorRegistry::new(store.clone(), clock.clone()),
            emails: ActorRegistry::new(store, clock),
            coordinator,
        }
    }

    fn now(&self) -> mpc_events::Timestamp {
        self.accounts.clock().now()
    }

    /// Claims the username and the email, opens the account and creates its 2-of-3
    /// keygen session. A refusal at any step releases what was claimed.
    pub async fn open(
        &self,
        request: NewAccount,
        meta: CommandMeta,
    ) -> Result<OpenedAccount, AccountServiceError> {
        let account_id = AccountId::new();
        let claim = ClaimCommand::Claim {
            owner: account_id,
            now: self.now(),
        };
        let username = request.username.as_str().to_owned();
        if let Err(e) = self.usernames.execute(&username, claim.clone(), meta).await {
            return Err(match e {
                ActorError::Domain(ClaimError::Taken) => {
                    AccountError::UsernameTaken(request.username).into()
                }
                other => other.into(),
            });
        }
        let email = email_claim_id(&request.email);
        if let Err(e) = self.emails.execute(&email, claim, meta).await {
            self.release(&username, None, account_id, meta).await;
            return Err(match e {
                ActorError::Domain(ClaimError::Taken) => {
                    AccountError::EmailTaken(request.email).into()
                }
                other => other.into(),
            });
        }
        let keygen_session = SessionId::new();
        let opened = self
            .open_and_start(account_id, keygen_session, request, meta)
            .await;
        match opened {
            Ok(keygen) => Ok(OpenedAccount { account_id, keygen }),
            Err(e) => {
                self.release(&username, Some(&email), account_id, meta)
                    .await;
                Err(e)
            }
        }
    }

    async fn open_and_start(
        &self,
        account_id: AccountId,
        keygen_session: SessionId,
        request: NewAccount,
        meta: CommandMeta,
    ) -> Result<CreatedSession, AccountServiceError> {
        let participants = request.parties.in_order();
        self.accounts
            .execute(
                &account_id.to_string(),
                AccountCommand::Open {
                    account_id,
                    username: request.username,
                    email: request.email,
                    phone: request.phone,
                    parties: request.parties,
                    keygen_session,
                    now: self.now(),
                },
                meta,
            )
            .await?;
        self.start_keygen(keygen_session, participants, request.keygen_ttl, meta)
            .await
    }

    async fn start_keygen(
        &self,
        session_id: SessionId,
        participants: Vec<mpc_events::Participant>,
        ttl: Duration,
        meta: CommandMeta,
    ) -> Result<CreatedSession, AccountServiceError> {
        let threshold = Threshold::new(2, 3).map_err(AccountError::from)?;
        Ok(self
            .coordinator
            .create_keygen_as(
                session_id,
                NewKeygen {
                    policy: KeyPolicy::AnyRequest,
                    threshold,
                    participants,
                    ttl,
                },
                meta,
            )
            .await?)
    }

    /// Best effort: a claim left behind by a crash only blocks its value, never
    /// opens anything, and the account that holds it does not exist.
    async fn release(
        &self,
        username: &str,
        email: Option<&str>,
        owner: AccountId,
        meta: CommandMeta,
    ) {
        let release = ClaimCommand::Release {
            owner,
            now: self.now(),
        };
        if let Err(e) = self
            .usernames
            .execute(username, release.clone(), meta)
            .await
        {
            tracing::warn!(%owner, error = %e, "could not release a username claim");
        }
        if let Some(email) = email
            && let Err(e) = self.emails.execute(email, release, meta).await
        {
            tracing::warn!(%owner, error = %e, "could not release an email claim");
        }
    }

    /// The account as recorded.
    pub async fn account(&self, account_id: AccountId) -> Result<Account, AccountServiceError> {
        self.accounts
            .state(&account_id.to_string())
            .await?
            .0
            .ok_or(AccountServiceError::Account(AccountError::UnknownAccount))
    }

    /// The account's key, once its keygen session has completed.
    pub async fn key(&self, account_id: AccountId) -> Result<KeyRef, AccountServiceError> {
        let account = self.account(account_id).await?;
        Ok(self
            .coordinator
            .key(KeyId::of_keygen(account.keygen_session))
            .await?)
    }

    /// Replaces a failed or expired keygen session with a new one.
    pub async fn restart_keygen(
        &self,
        account_id: AccountId,
        ttl: Duration,
        meta: CommandMeta,
    ) -> Result<CreatedSession, AccountServiceError> {
        let account = self.account(account_id).await?;
        match self.coordinator.session(account.keygen_session).await {
            Ok(s) if matches!(s.status, SessionStatus::Failed | SessionStatus::Expired) => {}
            Err(CoordinatorError::Session(SessionError::UnknownSession)) => {}
            Ok(_) => return Err(AccountServiceError::KeygenNotFailed(account.keygen_session)),
            Err(e) => return Err(e.into()),
        }
        let keygen_session = SessionId::new();
        self.accounts
            .execute(
                &account_id.to_string(),
                AccountCommand::RestartKeygen {
                    keygen_session,
                    now: self.now(),
                },
                meta,
            )
            .await?;
        self.start_keygen(keygen_session, account.parties.in_order(), ttl, meta)
            .await
    }

    /// Starts a signing session with the account's key between the device and the
    /// server party, recording the use first.
    pub async fn sign(
        &self,
        account_id: AccountId,
        payload: SigningPayload,
        ttl: Duration,
        meta: CommandMeta,
    ) -> Result<CreatedSession, AccountServiceError> {
        let account = self.account(account_id).await?;
        if account.status != mpc_events::AccountStatus::Active {
            return Err(AccountError::NotActive(account.status).into());
        }
        let key = self.key(account_id).await?;
        let session_id = SessionId::new();
        self.accounts
            .execute(
                &account_id.to_string(),
                AccountCommand::RecordUse {
                    signing_session: session_id,
                    now: self.now(),
                },
                meta,
            )
            .await?;
        let request = NewSigning {
            key_id: key.key_id,
            signers: vec![
                account.parties.device.party_id.clone(),
                account.parties.server.party_id.clone(),
            ],
            payload,
            ttl,
        };
        Ok(self
            .coordinator
            .create_signing_as(session_id, request, None, meta)
            .await?)
    }

    /// Starts a recovery session of the account: records it in the account, then
    /// creates its refresh session of the account's key. A `device_lost` recovery
    /// rebuilds the device share (server and recovery help) for the new device
    /// identity; a `share_rotation` refreshes all three shares. The returned join
    /// tokens go to device (the new one, for `device_lost`), server and recovery.
    /// A `device_lost` recovery carries `authorizations`: server's and recovery's
    /// signatures over the recovery transcript, without which the session is
    /// refused here and each of them refuses to help.
    /// If the session cannot be created, the recovery is recorded as failed.
    pub async fn recover(
        &self,
        account_id: AccountId,
        kind: RecoveryKind,
        authorizations: Vec<SignedApproval>,
        ttl: Duration,
        meta: CommandMeta,
    ) -> Result<CreatedSession, AccountServiceError> {
        let account = self.account(account_id).await?;
        let key = self.key(account_id).await?;
        let session_id = SessionId::new();
        let repair = match &kind {
            RecoveryKind::DeviceLost { identity } => Some(RepairSpec {
                target: account.parties.device.party_id.clone(),
                identity: *identity,
                helpers: vec![
                    account.parties.server.party_id.clone(),
                    account.parties.recovery.party_id.clone(),
                ],
                authorizations,
                policy: KeyPolicy::AnyRequest,
            }),
            RecoveryKind::ShareRotation => None,
        };
        // Checked before the recovery is recorded, so an unauthorized request
        // changes nothing; the session and every holder check again.
        if let Some(repair) = &repair {
            repair_authorized(&key, repair).map_err(CoordinatorError::Session)?;
        }
        self.accounts
            .execute(
                &account_id.to_string(),
                AccountCommand::RequestRecovery {
                    session_id,
                    kind,
                    now: self.now(),
                },
                meta,
            )
            .await?;
        let request = NewRefresh {
            key_id: key.key_id,
            repair,
            ttl,
        };
        match self
            .coordinator
            .create_refresh_as(session_id, request, meta)
            .await
        {
            Ok(created) => Ok(created),
            Err(e) => {
                let failed = AccountCommand::FailRecovery {
                    session_id,
                    reason: format!("the refresh session could not be created: {e}"),
                    now: self.now(),
                };
                if let Err(record) = self
                    .accounts
                    .execute(&account_id.to_string(), failed, meta)
                    .await
                {
                    tracing::warn!(%account_id, %session_id, error = %record, "could not record a failed recovery");
                }
                Err(e.into())
            }
        }
    }

    /// Brings the account's open recovery up to date with its refresh session:
    /// in progress once every party joined, completed or failed once it ended.
    /// Idempotent, also when another caller settles the same recovery at the same
    /// time; returns the account afterwards.
    pub async fn settle_recovery(
        &self,
        account_id: AccountId,
        meta: CommandMeta,
    ) -> Result<Account, AccountServiceError> {
        let account = self.account(account_id).await?;
        let Some(open) = account.open_recovery() else {
            return Ok(account);
        };
        let session_id = open.session_id;
        let (status, failure) = match self.coordinator.session(session_id).await {
            Ok(s) => (Some(s.status), s.failure.map(|f| f.to_string())),
            Err(CoordinatorError::Session(SessionError::UnknownSession)) => (None, None),
            Err(e) => return Err(e.into()),
        };
        let now = self.now();
        let mut commands = Vec::new();
        if matches!(
            status,
            Some(SessionStatus::InProgress | SessionStatus::Completed)
        ) && open.status == RecoveryStatus::Requested
        {
            commands.push(AccountCommand::MarkRecoveryInProgress { session_id, now });
        }
        match status {
            Some(SessionStatus::Completed) => {
                commands.push(AccountCommand::CompleteRecovery { session_id, now });
            }
            Some(SessionStatus::Failed) => commands.push(AccountCommand::FailRecovery {
                session_id,
                reason: failure.unwrap_or_else(|| "the refresh session failed".into()),
                now,
            }),
            Some(SessionStatus::Expired) => commands.push(AccountCommand::FailRecovery {
                session_id,
                reason: "the refresh session expired".into(),
                now,
            }),
            None => commands.push(AccountCommand::FailRecovery {
                session_id,
                reason: "the refresh session was never created".into(),
                now,
            }),
            Some(SessionStatus::Created | SessionStatus::InProgress) => {}
        }
        for command in commands {
            match self
                .accounts
                .execute(&account_id.to_string(), command, meta)
                .await
            {
                Ok(_) => {}
                // Another caller (the recovery's follower, say) settled it meanwhile.
                Err(ActorError::Domain(AccountError::NoOpenRecovery(_))) => break,
                Err(e) => return Err(e.into()),
            }
        }
        self.account(account_id).await
    }

    /// Follows the account's open recovery until its refresh session ends,
    /// recording each step (see [`Accounts::settle_recovery`]).
    pub async fn follow_recovery(
        &self,
        account_id: AccountId,
        meta: CommandMeta,
    ) -> Result<Account, AccountServiceError> {
        let account = self.settle_recovery(account_id, meta).await?;
        let Some(open) = account.open_recovery() else {
            return Ok(account);
        };
        let session_id = open.session_id;
        self.coordinator
            .wait_for(session_id, |s| s.status != SessionStatus::Created)
            .await?;
        self.settle_recovery(account_id, meta).await?;
        self.coordinator
            .wait_for(session_id, |s| s.status.is_terminal())
            .await?;
        self.settle_recovery(account_id, meta).await
    }

    /// Applies a status change (suspend, lock, start recovery, reactivate).
    pub async fn change_status(
        &self,
        account_id: AccountId,
        change: StatusChange,
        meta: CommandMeta,
    ) -> Result<Account, AccountServiceError> {
        let now = self.now();
        let command = match change {
            StatusChange::Suspend(reason) => AccountCommand::Suspend { reason, now },
            StatusChange::Lock(reason) => AccountCommand::Lock { reason, now },
            StatusChange::StartRecovery(reason) => AccountCommand::StartRecovery { reason, now },
            StatusChange::Reactivate => AccountCommand::Reactivate { now },
        };
        self.accounts
            .execute(&account_id.to_string(), command, meta)
            .await?;
        self.account(account_id).await
    }
}

/// A status change requested by an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    Suspend(String),
    Lock(String),
    StartRecovery(String),
    Reactivate,
}
