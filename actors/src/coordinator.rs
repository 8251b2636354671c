//! The session coordinator: creates sessions, hands out single-use join tokens,
//! admits parties and records what they report. It holds no share and reads no
//! protocol message.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mpc_events::{
    ApprovalEvidence, KeyCommand, KeyError, KeyId, KeyPolicy, KeyRef, MessageHash, Participant,
    PartyId, PartyOutcome, RepairSpec, SessionCommand, SessionError, SessionId, SessionSpec,
    SessionStatus, SessionView, Threshold, Timestamp,
};
use mpc_schemas::SchemaError;
use mpc_store::{EventStore, StoreError};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::aggregate::{Clock, CommandMeta};
use crate::key::KeyAggregate;
use crate::registry::{ActorError, ActorRegistry};
use crate::session::{Session, SessionAggregate, SessionState, refreshed_key, token_digest};

/// How long join tokens stay valid unless the session ends sooner.
const JOIN_WINDOW: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("key {0} is not ready: its keygen session has not completed")]
    KeyNotReady(KeyId),
    #[error(
        "key {0} signs only approved payloads (its keygen fixed approved-only): start the \
         signing from an approval workflow"
    )]
    ApprovalRequired(KeyId),
    #[error("key {0} is being refreshed in session {1}; wait until it ends")]
    RefreshRunning(KeyId, SessionId),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    #[error("stored event cannot be read: {0}")]
    Schema(#[from] SchemaError),
    #[error("coordinator is shutting down")]
    Stopped,
}

impl From<ActorError<KeyError>> for CoordinatorError {
    fn from(e: ActorError<KeyError>) -> Self {
        match e {
            ActorError::Domain(e) => Self::Key(e),
            ActorError::Store(e) => Self::Store(e),
            ActorError::Schema(e) => Self::Schema(e),
            ActorError::Stopped => Self::Stopped,
        }
    }
}

impl From<ActorError<SessionError>> for CoordinatorError {
    fn from(e: ActorError<SessionError>) -> Self {
        match e {
            ActorError::Domain(e) => Self::Session(e),
            ActorError::Store(e) => Self::Store(e),
            ActorError::Schema(e) => Self::Schema(e),
            ActorError::Stopped => Self::Stopped,
        }
    }
}

/// A secret, single-use join token. Only its SHA-256 digest is recorded.
pub struct JoinToken(Zeroizing<String>);

impl JoinToken {
    /// Wraps a token made by a [`TokenIssuer`].
    pub fn new(token: String) -> Self {
        Self(Zeroizing::new(token))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JoinToken(..)")
    }
}

/// Makes the join tokens of new sessions. Whatever the token looks like, the
/// coordinator records only its SHA-256 digest, and the session aggregate admits each
/// party once, so every token is single-use.
pub trait TokenIssuer: Send + Sync {
    /// A token for `party` to join `session`, valid until `expires_at` (the join
    /// deadline).
    fn issue(&self, session: SessionId, party: &PartyId, expires_at: Timestamp) -> JoinToken;
}

/// Opaque random tokens (`mpcjt_` and 64 hex digits): 256 bits from the OS RNG.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomTokens;

impl TokenIssuer for RandomTokens {
    fn issue(&self, _session: SessionId, _party: &PartyId, _expires_at: Timestamp) -> JoinToken {
        let bytes = Zeroizing::new(rand::random::<[u8; 32]>());
        JoinToken::new(format!("mpcjt_{}", hex::encode(*bytes)))
    }
}

/// A request for distributed key generation.
#[derive(Debug, Clone)]
pub struct NewKeygen {
    pub threshold: Threshold,
    pub participants: Vec<Participant>,
    pub ttl: Duration,
    /// Which signing sessions of the new key its holders will join.
    pub policy: KeyPolicy,
}

/// What a signing session signs.
#[derive(Debug, Clone)]
pub enum SigningPayload {
    /// The data itself; signers sign its SHA-256 and can see what it is.
    Message(Vec<u8>),
    /// A 32-byte digest computed by the caller (e.g. a transaction sighash).
    Prehash(MessageHash),
}

/// A request to sign with a completed key.
#[derive(Debug, Clone)]
pub struct NewSigning {
    pub key_id: KeyId,
    pub signers: Vec<PartyId>,
    pub payload: SigningPayload,
    pub ttl: Duration,
}

/// A request to refresh every share of a completed key (all holders take part).
#[derive(Debug, Clone)]
pub struct NewRefresh {
    pub key_id: KeyId,
    /// Rebuild a lost share first (its authorizations included). Its `policy` is
    /// not the caller's to choose: the session carries the key's, fixed at keygen.
    pub repair: Option<RepairSpec>,
    pub ttl: Duration,
}

/// A key's current generation and its latest refresh session, if any.
#[derive(Debug, Clone)]
pub struct KeyState {
    pub key: KeyRef,
    /// When the current generation of shares came to be: the keygen session's or
    /// the latest completed refresh session's last event.
    pub generation_at: Timestamp,
    /// Which signing sessions the holders join, fixed at keygen.
    pub policy: KeyPolicy,
    /// The latest refresh session recorded for the key, with its status (`None`
    /// when the session was recorded but never created).
    pub last_refresh: Option<(SessionId, Option<SessionStatus>)>,
}

/// A created session and the tokens to hand to its participants.
#[derive(Debug)]
pub struct CreatedSession {
    pub session_id: SessionId,
    pub join_tokens: BTreeMap<PartyId, JoinToken>,
    pub expires_at: Timestamp,
}

/// A session's creating command with the tokens it records the digests of.
struct Prepared {
    command: SessionCommand,
    join_tokens: BTreeMap<PartyId, JoinToken>,
    expires_at: Timestamp,
}

/// The coordinator's application service.
pub struct Coordinator {
    sessions: ActorRegistry<SessionAggregate>,
    keys: ActorRegistry<KeyAggregate>,
    tokens: Arc<dyn TokenIssuer>,
}

impl Coordinator {
    /// A coordinator that hands out [`RandomTokens`].
    pub fn new(store: Arc<dyn EventStore>, clock: Arc<dyn Clock>) -> Self {
        Self::with_token_issuer(store, clock, Arc::new(RandomTokens))
    }

    /// A coordinator whose join tokens come from `issuer` (e.g. signed JWTs).
    pub fn with_token_issuer(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        issuer: Arc<dyn TokenIssuer>,
    ) -> Self {
        Self {
            sessions: ActorRegistry::new(store.clone(), clock.clone()),
            keys: ActorRegistry::new(store, clock),
            tokens: issuer,
        }
    }

    fn now(&self) -> Timestamp {
        self.sessions.clock().now()
    }

    /// How many session and key actors are in memory now. A finished session's actor
    /// stops after [`DEFAULT_IDLE_TIMEOUT`](crate::DEFAULT_IDLE_TIMEOUT) without
    /// commands, so this stays bounded by the sessions active in that window.
    pub fn live_actors(&self) -> usize {
        self.sessions.live_actors() + self.keys.live_actors()
    }

    pub async fn create_keygen(
        &self,
        request: NewKeygen,
        meta: CommandMeta,
    ) -> Result<CreatedSession, CoordinatorError> {
        self.create_keygen_as(SessionId::new(), request, meta).await
    }

    /// Creates keygen session `session_id`, an id the caller recorded beforehand
    /// (e.g. in the account that will own the key).
    pub async fn create_keygen_as(
        &self,
        session_id: SessionId,
        request: NewKeygen,
        meta: CommandMeta,
    ) -> Result<CreatedSession, CoordinatorError> {
        let spec = SessionSpec::Keygen {
            threshold: request.threshold,
            policy: request.policy,
        };
        self.create(session_id, spec, request.participants, request.ttl, meta)
            .await
    }

    pub async fn create_signing(
        &self,
        request: NewSigning,
        meta: CommandMeta,
    ) -> Result<CreatedSession, CoordinatorError> {
        self.create_signing_as(SessionId::new(), request, None, meta)
            .await
    }

    /// Creates signing session `session_id`, an id the caller recorded beforehand,
    /// carrying the approvals that allow it when a workflow asks.
    pub async fn create_signing_as(
        &self,
        session_id: SessionId,
        request: NewSigning,
        approval: Option<ApprovalEvidence>,
        meta: CommandMeta,
    ) -> Result<CreatedSession, CoordinatorError> {
        let KeyState { key, policy, .. } = self.key_state(request.key_id).await?;
        // The holders refuse such a session themselves; refusing it here tells the
        // caller at once instead of when the session fails.
        if approval.is_none() && policy == KeyPolicy::ApprovedOnly {
            return Err(CoordinatorError::ApprovalRequired(request.key_id));
        }
        let mut participants = Vec::with_capacity(request.signers.len());
        for signer in &request.signers {
            let holder = key
                .parties
                .iter()
                .find(|p| &p.party_id == signer)
                .ok_or_else(|| SessionError::NotAKeyHolder(signer.clone()))?;
            participants.push(holder.clone());
        }
        let (message_hash, message) = match request.payload {
            SigningPayload::Message(m) => {
                (MessageHash::from_bytes(Sha256::digest(&m).into()), Some(m))
            }
            SigningPayload::Prehash(h) => (h, None),
        };
        let spec = SessionSpec::Signing {
            key,
            message_hash,
            message,
            approval,
        };
        self.create(session_id, spec, participants, request.ttl, meta)
            .await
    }

    pub async fn create_refresh(
        &self,
        request: NewRefresh,
        meta: CommandMeta,
    ) -> Result<CreatedSession, CoordinatorError> {
        self.create_refresh_as(SessionId::new(), request, meta)
            .await
    }

    /// Creates refresh session `session_id`, an id the caller recorded beforehand
    /// (e.g. as an account's recovery session). The session is first recorded in the
    /// key's stream, after the previous refresh of the key ended, so refreshes of one
    /// key never overlap. Its participants are every holder of the key, a repaired
    /// one under its new device identity.
    pub async fn create_refresh_as(
        &self,
        session_id: SessionId,
        request: NewRefresh,
        meta: CommandMeta,
    ) -> Result<CreatedSession, CoordinatorError> {
        let KeyState {
            key,
            last_refresh,
            policy,
            ..
        } = self.key_state(request.key_id).await?;
        if let Some((running, Some(status))) = last_refresh
            && !status.is_terminal()
        {
            return Err(CoordinatorError::RefreshRunning(request.key_id, running));
        }
        let repair = request
            .repair
            .map(|repair| Box::new(RepairSpec { policy, ..repair }));
        let participants = key
            .parties
            .iter()
            .map(|holder| match &repair {
                Some(repair) if repair.target == holder.party_id => Participant {
                    party_id: holder.party_id.clone(),
                    identity: repair.identity,
                },
                _ => holder.clone(),
            })
            .collect();
        let spec = SessionSpec::Refresh { key, repair };
        let prepared = self.prepare(session_id, spec, participants, request.ttl);
        // Refused before anything is recorded: a refresh the session would refuse
        // (too few helpers, say) must not enter the key's lineage either.
        crate::session::decide(&SessionState::default(), prepared.command.clone())?;
        self.keys
            .execute(
                &request.key_id.to_string(),
                KeyCommand::ScheduleRefresh {
                    session_id,
                    after: last_refresh.map(|(id, _)| id),
                    now: self.now(),
                },
                meta,
            )
            .await?;
        self.execute_create(session_id, prepared, meta).await
    }

    async fn create(
        &self,
        session_id: SessionId,
        spec: SessionSpec,
        participants: Vec<Participant>,
        ttl: Duration,
        meta: CommandMeta,
    ) -> Result<CreatedSession, CoordinatorError> {
        let prepared = self.prepare(session_id, spec, participants, ttl);
        self.execute_create(session_id, prepared, meta).await
    }

    /// The command creating session `session_id`, with the join tokens whose
    /// digests it records.
    fn prepare(
        &self,
        session_id: SessionId,
        spec: SessionSpec,
        participants: Vec<Participant>,
        ttl: Duration,
    ) -> Prepared {
        let now = self.now();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let expires_at = now.plus_millis(ttl_ms);
        let join_window = i64::try_from(JOIN_WINDOW.as_millis()).unwrap_or(i64::MAX);
        let join_expires_at = now.plus_millis(join_window.min(ttl_ms));
        let tokens: BTreeMap<PartyId, JoinToken> = participants
            .iter()
            .map(|p| {
                let token = self.tokens.issue(session_id, &p.party_id, join_expires_at);
                (p.party_id.clone(), token)
            })
            .collect();
        let command = SessionCommand::Create {
            session_id,
            spec,
            participants,
            join_tokens: tokens
                .iter()
                .map(|(p, t)| (p.clone(), token_digest(t.expose())))
                .collect(),
            join_expires_at,
            expires_at,
            now,
        };
        Prepared {
            command,
            join_tokens: tokens,
            expires_at,
        }
    }

    async fn execute_create(
        &self,
        session_id: SessionId,
        prepared: Prepared,
        meta: CommandMeta,
    ) -> Result<CreatedSession, CoordinatorError> {
        self.sessions
            .execute(&session_id.to_string(), prepared.command, meta)
            .await?;
        Ok(CreatedSession {
            session_id,
            join_tokens: prepared.join_tokens,
            expires_at: prepared.expires_at,
        })
    }

    /// Admits `party` with its join token and tells it what it joined.
    pub async fn join(
        &self,
        session_id: SessionId,
        party: &PartyId,
        token: &str,
        meta: CommandMeta,
    ) -> Result<SessionView, CoordinatorError> {
        let command = SessionCommand::Join {
            party_id: party.clone(),
            token: token_digest(token),
            now: self.now(),
        };
        self.sessions
            .execute(&session_id.to_string(), command, meta)
            .await?;
        Ok(self.session(session_id).await?.view())
    }

    /// Records a party's result; returns the session's status afterwards.
    pub async fn report_completion(
        &self,
        session_id: SessionId,
        party: &PartyId,
        outcome: PartyOutcome,
        meta: CommandMeta,
    ) -> Result<SessionStatus, CoordinatorError> {
        let command = SessionCommand::ReportCompletion {
            party_id: party.clone(),
            outcome,
            now: self.now(),
        };
        self.sessions
            .execute(&session_id.to_string(), command, meta)
            .await?;
        Ok(self.session(session_id).await?.status)
    }

    /// Records that a party's protocol run aborted, blaming `culprits`.
    pub async fn report_failure(
        &self,
        session_id: SessionId,
        party: &PartyId,
        culprits: Vec<PartyId>,
        detail: String,
        meta: CommandMeta,
    ) -> Result<(), CoordinatorError> {
        let command = SessionCommand::ReportFailure {
            party_id: party.clone(),
            culprits,
            detail,
            now: self.now(),
        };
        self.sessions
            .execute(&session_id.to_string(), command, meta)
            .await?;
        Ok(())
    }

    /// Ends an unfinished session as failed.
    pub async fn close(
        &self,
        session_id: SessionId,
        reason: String,
        meta: CommandMeta,
    ) -> Result<(), CoordinatorError> {
        let command = SessionCommand::Close {
            reason,
            now: self.now(),
        };
        self.sessions
            .execute(&session_id.to_string(), command, meta)
            .await?;
        Ok(())
    }

    /// The session as recorded.
    pub async fn session(&self, session_id: SessionId) -> Result<Session, CoordinatorError> {
        self.sessions
            .state(&session_id.to_string())
            .await?
            .0
            .ok_or(CoordinatorError::Session(SessionError::UnknownSession))
    }

    /// Loads session `session_id` into a live actor and returns its status. A
    /// session's deadline is armed only while its actor is live, so a restarted
    /// coordinator resumes every session that has not ended (see
    /// `SessionStatusProjection::open_sessions`): one whose deadline passed while no
    /// coordinator ran expires at once, the others when they are due, even if no party
    /// ever comes back.
    pub async fn resume(&self, session_id: SessionId) -> Result<SessionStatus, CoordinatorError> {
        Ok(self.session(session_id).await?.status)
    }

    /// The session's state now and every change to it, as its actor publishes them
    /// (`None` until the session is created). The receiver keeps the last state the
    /// actor published after the actor stops.
    pub async fn watch(
        &self,
        session_id: SessionId,
    ) -> Result<watch::Receiver<SessionState>, CoordinatorError> {
        Ok(self.sessions.watch(&session_id.to_string()).await?)
    }

    /// Waits until `done` holds for the session (or it reaches a terminal status,
    /// which is returned as it is).
    pub async fn wait_for(
        &self,
        session_id: SessionId,
        done: impl Fn(&Session) -> bool,
    ) -> Result<Session, CoordinatorError> {
        let mut rx = self.watch(session_id).await?;
        loop {
            if let Some(s) = rx.borrow_and_update().0.as_ref() {
                if done(s) || s.status.is_terminal() {
                    return Ok(s.clone());
                }
            } else {
                return Err(SessionError::UnknownSession.into());
            }
            rx.changed().await.map_err(|_| CoordinatorError::Stopped)?;
        }
    }

    /// The current generation of key `key_id`: its keygen session's result, moved on
    /// by every refresh of it that completed.
    pub async fn key(&self, key_id: KeyId) -> Result<KeyRef, CoordinatorError> {
        Ok(self.key_state(key_id).await?.key)
    }

    /// The key's current generation and where its latest refresh stands.
    pub async fn key_state(&self, key_id: KeyId) -> Result<KeyState, CoordinatorError> {
        let session = self.session(key_id.keygen_session()).await?;
        let (mut key, policy) = match (&session.created.spec, session.status, &session.outcome) {
            (
                SessionSpec::Keygen { threshold, policy },
                SessionStatus::Completed,
                Some(PartyOutcome::PublicKey(pk)),
            ) => (
                KeyRef {
                    key_id,
                    public_key: *pk,
                    threshold: *threshold,
                    parties: session.created.participants.clone(),
                    epoch: 1,
                },
                *policy,
            ),
            _ => return Err(CoordinatorError::KeyNotReady(key_id)),
        };
        let lineage = self.keys.state(&key_id.to_string()).await?;
        let mut generation_at = session.updated_at;
        let mut last_refresh = None;
        for (refresh, _) in lineage.refreshes {
            let status = match self.session(refresh).await {
                Ok(s) => {
                    if s.status == SessionStatus::Completed
                        && let Some(next) = refreshed_key(&s.created.spec)
                    {
                        key = next;
                        generation_at = s.updated_at;
                    }
                    Some(s.status)
                }
                Err(CoordinatorError::Session(SessionError::UnknownSession)) => None,
                Err(e) => return Err(e),
            };
            last_refresh = Some((refresh, status));
        }
        Ok(KeyState {
            key,
            generation_at,
            policy,
            last_refresh,
        })
    }
}
