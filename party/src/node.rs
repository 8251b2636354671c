//! Running one party's side of a session.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mpc_crypto::{
    EnvelopeError, EvidenceError, PartyIdentity, RecoveryAuthError, verify_evidence,
    verify_recovery,
};
use mpc_engine::{
    EngineError, Incoming, KeygenParams, PartyIndex, Protocol, RefreshParams, RepairPlan,
    ShareSlot, SignParams, Step, ThresholdEngine,
};
use mpc_events::{
    KeyId, KeyPolicy, KeyRef, MessageHash, PartyId, PartyOutcome, PublicKey, RefreshDigest,
    RepairSpec, SessionId, SessionSpec, SessionStatus, SessionView, Signature, Timestamp,
};
use mpc_transport::{Transport, TransportError};
use mpc_vault::{ShareRecord, ShareVault, VaultError};
use sha2::{Digest, Sha256};

use crate::consent;
use crate::exchange::Exchange;
use crate::journal::{ApprovalJournal, JournalError, MemoryJournal};
use crate::roster::{self, Peers, RosterError};
use crate::runtime;

/// What a party needs from the session coordinator, whatever carries it (in-process
/// calls, HTTP).
#[async_trait]
pub trait CoordinatorClient: Send + Sync {
    /// Presents the join token; returns what the party joined. Not retried: a join
    /// token is single-use.
    async fn join(
        &self,
        session: SessionId,
        party: &PartyId,
        token: &str,
    ) -> Result<SessionView, CoordinatorError>;
    /// Waits until every participant has joined; returns the status then reached
    /// (`InProgress`, or a terminal status if the session ended first).
    async fn wait_started(&self, session: SessionId) -> Result<SessionStatus, CoordinatorError>;
    /// Waits until the session has ended; returns its terminal status.
    async fn wait_finished(&self, session: SessionId) -> Result<SessionStatus, CoordinatorError>;
    /// Reports this party's result. Repeating the same report is harmless (the
    /// coordinator records it once), so the node retries it while the coordinator
    /// is unreachable.
    async fn report_completion(
        &self,
        session: SessionId,
        party: &PartyId,
        outcome: PartyOutcome,
    ) -> Result<(), CoordinatorError>;
    async fn report_failure(
        &self,
        session: SessionId,
        party: &PartyId,
        culprits: Vec<PartyId>,
        detail: String,
    ) -> Result<(), CoordinatorError>;
}

/// Why a call to the coordinator failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoordinatorError {
    /// The call or its answer was lost: connection refused or cut, a timeout, the
    /// coordinator stopping or its event store unavailable. It may or may not have
    /// taken effect; the node repeats the calls that are safe to repeat.
    #[error("coordinator unreachable: {0}")]
    Unreachable(String),
    /// The coordinator answered and refused the call.
    #[error("{0}")]
    Refused(String),
}

/// The first pause before a call to an unreachable coordinator is repeated; it
/// doubles up to [`MAX_RETRY_PAUSE`]. Retries stop at the session's deadline.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(50);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum PartyError {
    #[error("coordinator: {0}")]
    Coordinator(#[from] CoordinatorError),
    #[error("this party is not a participant of session {0}")]
    NotInvited(SessionId),
    #[error(
        "the session lists another identity key for this party than this node's: a recovery \
         moved this party's share to another device, or the coordinator substituted it"
    )]
    IdentityMismatch,
    #[error("session {session} is a {actual} session, not a {expected} one")]
    WrongKind {
        session: SessionId,
        expected: &'static str,
        actual: String,
    },
    #[error("session {0} ended ({1}) before the protocol could start")]
    NotStarted(SessionId, SessionStatus),
    #[error("session {0} ended ({1}) while this party was still running the protocol")]
    Ended(SessionId, SessionStatus),
    #[error("refresh session is malformed: {0}")]
    BadRefresh(String),
    #[error("repair target does not present the new device identity the session names")]
    RepairTargetMismatch,
    #[error(
        "the repair says the key's signing policy is {claimed}; this holder pinned {pinned} \
         at keygen and sends no repair terms for another"
    )]
    RepairPolicyMismatch {
        claimed: KeyPolicy,
        pinned: KeyPolicy,
    },
    #[error("the data to sign does not hash to the session's message hash")]
    MessageHashMismatch,
    #[error("vault holds a share of another key than the session's")]
    ShareKeyMismatch,
    #[error(
        "session {0} carries no approvals and this party signs only approved payloads with this \
         key (the key's policy fixed at keygen, or the node's --policy)"
    )]
    ApprovalRequired(SessionId),
    #[error(
        "session {0} carries only a hash of the data to sign; this party signs a bare hash \
         only when started with --allow-prehash"
    )]
    PrehashRefused(SessionId),
    #[error("roster: {0}")]
    Roster(#[from] RosterError),
    #[error("approvals refused: {0}")]
    Approvals(#[from] EvidenceError),
    #[error("repair refused: {0}")]
    RecoveryNotAuthorized(#[from] RecoveryAuthError),
    #[error("approvals refused: {0}")]
    ApprovalsSpent(#[from] JournalError),
    #[error("session deadline passed before the protocol finished")]
    Timeout,
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// The engine refused to start this party's run (its share or the session's
    /// parameters do not fit): unlike an abort during the run, nobody else knows.
    #[error("engine could not start the protocol: {0}")]
    Setup(EngineError),
    #[error("vault: {0}")]
    Vault(#[from] VaultError),
    #[error("envelope: {0}")]
    Envelope(#[from] EnvelopeError),
}

impl PartyError {
    /// A stable snake_case name of the failure (a metric label, a log field).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Coordinator(_) => "coordinator",
            Self::NotInvited(_) => "not_invited",
            Self::IdentityMismatch => "identity_mismatch",
            Self::WrongKind { .. } => "wrong_kind",
            Self::NotStarted(..) => "not_started",
            Self::Ended(..) => "ended",
            Self::BadRefresh(_) => "bad_refresh",
            Self::RepairTargetMismatch => "repair_target_mismatch",
            Self::RepairPolicyMismatch { .. } => "repair_policy_mismatch",
            Self::MessageHashMismatch => "message_hash_mismatch",
            Self::ShareKeyMismatch => "share_key_mismatch",
            Self::ApprovalRequired(_) => "approval_required",
            Self::PrehashRefused(_) => "prehash_refused",
            Self::Roster(_) => "roster",
            Self::Approvals(_) => "approvals",
            Self::RecoveryNotAuthorized(_) => "recovery_not_authorized",
            Self::ApprovalsSpent(_) => "approvals_spent",
            Self::Timeout => "timeout",
            Self::Transport(_) => "transport",
            Self::Engine(_) => "engine_abort",
            Self::Setup(_) => "engine_setup",
            Self::Vault(_) => "vault",
            Self::Envelope(_) => "envelope",
        }
    }

    /// Whether the coordinator has yet to hear of this failure from this party. A
    /// protocol abort is reported with its culprit as it happens; a session that
    /// ended or expired needs no report; a party not invited, or that cannot reach
    /// the coordinator, cannot make one.
    fn is_unreported(&self) -> bool {
        !matches!(
            self,
            Self::Engine(_)
                | Self::Ended(..)
                | Self::NotStarted(..)
                | Self::Timeout
                | Self::Coordinator(_)
                | Self::NotInvited(_)
        )
    }
}

/// The fresh run id every party of a session derives identically: SHA-256 over a
/// domain tag, the session id, the kind, the threshold, for keygen the key's signing
/// policy, for signing and refresh the
/// key and its share generation, for signing the message hash and the approval
/// evidence, for refresh the repair (target, new identity, helpers, the key's
/// policy), and each
/// participant's index, party id and identity keys, all length-prefixed. Parties shown different sessions (say,
/// different approvals) therefore derive different ids and their run fails.
pub fn execution_id(view: &SessionView) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut put = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    put(b"mpc-platform/execution-id/v1");
    put(view.session_id.as_uuid().as_bytes());
    put(view.spec.kind().to_string().as_bytes());
    let threshold = view.spec.threshold();
    put(&[threshold.t(), threshold.n()]);
    if let SessionSpec::Keygen { policy, .. } = &view.spec {
        put(policy.as_str().as_bytes());
    }
    if let Some(key) = view.spec.key() {
        put(key.key_id.keygen_session().as_uuid().as_bytes());
        put(key.public_key.as_bytes());
        put(&key.epoch.to_be_bytes());
    }
    if let SessionSpec::Refresh { repair, .. } = &view.spec {
        match repair {
            None => put(b"no-repair"),
            Some(repair) => {
                put(b"repair");
                put(repair.target.as_str().as_bytes());
                put(repair.identity.signing());
                put(repair.identity.encryption());
                for helper in &repair.helpers {
                    put(helper.as_str().as_bytes());
                }
                put(repair.policy.as_str().as_bytes());
            }
        }
    }
    if let SessionSpec::Signing {
        message_hash,
        approval,
        ..
    } = &view.spec
    {
        put(message_hash.as_bytes());
        match approval {
            None => put(b"no-approval"),
            Some(evidence) => {
                put(b"approval");
                put(evidence.workflow_id.as_uuid().as_bytes());
                put(evidence.payload_hash.as_bytes());
                for a in &evidence.approvals {
                    put(a.approver.as_str().as_bytes());
                    put(a.signature.as_bytes());
                }
            }
        }
    }
    for (index, p) in &view.participants {
        put(&[*index]);
        put(p.party_id.as_str().as_bytes());
        put(p.identity.signing());
        put(p.identity.encryption());
    }
    h.finalize().into()
}

/// One party: its identity, engine, vault, and how it reaches peers and coordinator.
pub struct PartyNode {
    id: PartyId,
    identity: PartyIdentity,
    engine: Arc<dyn ThresholdEngine>,
    vault: Arc<dyn ShareVault>,
    transport: Arc<dyn Transport>,
    coordinator: Arc<dyn CoordinatorClient>,
    policy: KeyPolicy,
    allow_prehash: bool,
    journal: Arc<dyn ApprovalJournal>,
    peers: Peers,
}

impl PartyNode {
    pub fn new(
        id: PartyId,
        identity: PartyIdentity,
        engine: Arc<dyn ThresholdEngine>,
        vault: Arc<dyn ShareVault>,
        transport: Arc<dyn Transport>,
        coordinator: Arc<dyn CoordinatorClient>,
    ) -> Self {
        Self {
            id,
            identity,
            engine,
            vault,
            transport,
            coordinator,
            policy: KeyPolicy::default(),
            allow_prehash: false,
            journal: Arc::new(MemoryJournal::default()),
            peers: Peers::new(),
        }
    }

    /// This node given its peers' identity keys out of band: it runs a keygen, or
    /// receives a repaired share, only among exactly those peers (default: none
    /// given, so a keygen's participants are the ones the session names).
    pub fn with_peers(mut self, peers: Peers) -> Self {
        self.peers = peers;
        self
    }

    /// This node recording spent approvals in `journal` (default: in memory, for
    /// the process's lifetime; a node process passes a [`crate::FileJournal`]).
    pub fn with_journal(mut self, journal: Arc<dyn ApprovalJournal>) -> Self {
        self.journal = journal;
        self
    }

    /// This node with signing policy `policy` for every key it holds. A key whose
    /// keygen fixed `approved-only` needs approvals whatever the node's policy.
    pub fn with_policy(mut self, policy: KeyPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Whether this node signs sessions that carry only a hash of the data (it
    /// cannot see what it signs then). Off by default.
    pub fn allow_prehash(mut self, allow: bool) -> Self {
        self.allow_prehash = allow;
        self
    }

    pub fn id(&self) -> &PartyId {
        &self.id
    }

    pub fn identity(&self) -> &PartyIdentity {
        &self.identity
    }

    /// Joins keygen session `session`, runs distributed key generation, stores the
    /// share in the vault and reports the group public key.
    pub async fn keygen(&self, session: SessionId, token: &str) -> Result<PublicKey, PartyError> {
        let view = self.join(session, token).await?;
        let result = self.keygen_in(&view).await;
        self.settle(&view, result).await
    }

    /// Joins signing session `session`, checks what it is asked to sign, signs with
    /// its share and reports the verified signature.
    pub async fn sign(&self, session: SessionId, token: &str) -> Result<Signature, PartyError> {
        let view = self.join(session, token).await?;
        let result = self.sign_in(&view).await;
        self.settle(&view, result).await
    }

    /// Joins `session` and runs whichever protocol it is (keygen or signing); returns
    /// what this party reported.
    pub async fn participate(
        &self,
        session: SessionId,
        token: &str,
    ) -> Result<PartyOutcome, PartyError> {
        let view = self.join(session, token).await?;
        let result = match view.spec {
            SessionSpec::Keygen { .. } => self.keygen_in(&view).await.map(PartyOutcome::PublicKey),
            SessionSpec::Signing { .. } => self.sign_in(&view).await.map(PartyOutcome::Signature),
            SessionSpec::Refresh { .. } => self.refresh_in(&view).await,
        };
        self.settle(&view, result).await
    }

    /// This node as a key holder, to sign what a person decides outside sessions
    /// (workflow decisions, recovery authorizations; see [`consent::Holder`]).
    /// What keeps this node from taking part in a session now, by component
    /// (`vault`: its identity does not open; `transport`: the backend does not
    /// answer), with the reason; empty when it is ready.
    pub async fn unready(&self) -> Vec<(&'static str, String)> {
        let mut failing = Vec::new();
        match self.vault.get_identity(&self.id) {
            Ok(Some(_)) => {}
            Ok(None) => failing.push(("vault", format!("no identity for {}", self.id))),
            Err(e) => failing.push(("vault", e.to_string())),
        }
        if let Err(e) = self.transport.ready().await {
            failing.push(("transport", e.to_string()));
        }
        failing
    }

    pub fn holder(&self) -> consent::Holder<'_> {
        consent::Holder::new(&*self.vault, &self.id, &self.identity)
    }

    /// Joins refresh session `session`: re-randomizes this party's share (or, as a
    /// repair's target, receives a rebuilt one), stores it as the key's next share
    /// version, exchanges signed attestations of the refreshed key with every
    /// holder, reports, and retires the old version only if it holds every holder's
    /// attestation and the session completed. Otherwise it keeps both versions: no
    /// lie about how the session ended makes it drop a share another holder relies on.
    pub async fn refresh(
        &self,
        session: SessionId,
        token: &str,
    ) -> Result<RefreshDigest, PartyError> {
        let view = self.join(session, token).await?;
        let result = self.refresh_in(&view).await;
        match self.settle(&view, result).await? {
            PartyOutcome::Refreshed { digest, .. } => Ok(digest),
            _ => Err(wrong_kind(&view, "refresh")),
        }
    }

    async fn refresh_in(&self, view: &SessionView) -> Result<PartyOutcome, PartyError> {
        let session = view.session_id;
        let SessionSpec::Refresh { key, repair } = &view.spec else {
            return Err(wrong_kind(view, "refresh"));
        };
        let repair = repair.as_deref();
        // Every holder takes part: a refresh that left one out would leave its
        // share on a generation nobody else holds.
        if view.participants.len() != key.parties.len() {
            return Err(PartyError::BadRefresh(
                "a refresh must include every holder of the key".into(),
            ));
        }
        let me = self.my_index(view)?;
        let plan = repair
            .map(|repair| repair_plan(view, key, repair))
            .transpose()?;
        let params = RefreshParams {
            execution_id: execution_id(view),
            repair: plan.clone(),
        };
        let (protocol, next_roster, policy) = match (&plan, repair) {
            // The new device has no share and so no roster or policy of its own: it
            // takes the session's, moved on by the repair. The holders vouch for
            // both: each checks them against its pins, and the execution id binds
            // them, so the device runs only with holders that were shown the same.
            (Some(plan), Some(repair)) if plan.target == me => {
                let protocol = self
                    .engine
                    .recover(
                        ShareSlot {
                            engine: self.engine.name().to_owned(),
                            public_key: key.public_key,
                            index: me,
                            threshold: key.threshold.t(),
                            parties: key.threshold.n(),
                        },
                        params,
                    )
                    .map_err(PartyError::Setup)?;
                (
                    protocol,
                    Some(roster::refreshed(&key.parties, Some(repair))),
                    repair.policy,
                )
            }
            _ => {
                let record = self.vault.get_version(&self.id, &key.key_id, key.epoch)?;
                if record.share.public_key != key.public_key {
                    return Err(PartyError::ShareKeyMismatch);
                }
                let next_roster = match (&record.roster, repair) {
                    (Some(pinned), _) => {
                        roster::check(pinned, key, view, repair)?;
                        if let Some(repair) = repair {
                            let t = key.threshold.t();
                            verify_recovery(pinned, t, key.key_id, key.epoch, repair)?;
                            if repair.policy != record.policy {
                                return Err(PartyError::RepairPolicyMismatch {
                                    claimed: repair.policy,
                                    pinned: record.policy,
                                });
                            }
                        }
                        Some(roster::refreshed(pinned, repair))
                    }
                    (None, Some(_)) => return Err(RosterError::Missing(key.key_id).into()),
                    (None, None) => None,
                };
                (
                    self.engine
                        .refresh(&record.share, params)
                        .map_err(PartyError::Setup)?,
                    next_roster,
                    record.policy,
                )
            }
        };
        let mut exchange = self.open(view).await?;
        let refreshed = self.run(view, &mut exchange, protocol).await?;
        let next = key.epoch.saturating_add(1);
        // A share of the next generation can only be left over from a refresh that
        // never completed: every holder still holds this generation (the protocol
        // just ran with all of them), so none retired it. Replace it.
        match self.vault.get_version(&self.id, &key.key_id, next) {
            Ok(_) => self.vault.retire(&self.id, &key.key_id, next)?,
            Err(VaultError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let public_key = refreshed.share.public_key;
        self.vault.put(&ShareRecord {
            party_id: self.id.clone(),
            key_id: key.key_id,
            version: next,
            share: refreshed.share,
            roster: next_roster,
            policy,
        })?;
        // From here on the new share is kept whatever anyone says: a holder that
        // has every attestation, this party's among them, may retire its old one.
        if let Err(error) = self.guarded(view, exchange.attest(&refreshed.digest)).await {
            tracing::warn!(party = %self.id, %session, %error, "the refresh is not attested by every holder; both share versions kept");
            return Err(error);
        }
        let outcome = PartyOutcome::Refreshed {
            public_key,
            digest: RefreshDigest::from_bytes(refreshed.digest),
        };
        self.report(view, outcome.clone()).await?;
        let ended = runtime::timeout(
            deadline_in(view.expires_at),
            self.retrying(view, "wait_finished", || {
                self.coordinator.wait_finished(session)
            }),
        )
        .await;
        match ended {
            Ok(Ok(SessionStatus::Completed)) => {
                match self.vault.retire(&self.id, &key.key_id, key.epoch) {
                    Ok(()) | Err(VaultError::NotFound { .. }) => Ok(outcome),
                    Err(e) => Err(e.into()),
                }
            }
            Ok(Ok(status)) => {
                tracing::warn!(party = %self.id, %session, %status, "every holder attested the refresh but the session did not complete; both share versions kept");
                Err(PartyError::Ended(session, status))
            }
            Ok(Err(error)) => {
                tracing::warn!(party = %self.id, %session, %error, "could not learn how the refresh ended; both share versions kept");
                Ok(outcome)
            }
            Err(_) => {
                tracing::warn!(party = %self.id, %session, "refresh did not end before its deadline; both share versions kept");
                Ok(outcome)
            }
        }
    }

    async fn keygen_in(&self, view: &SessionView) -> Result<PublicKey, PartyError> {
        let session = view.session_id;
        let SessionSpec::Keygen { threshold, policy } = &view.spec else {
            return Err(wrong_kind(view, "keygen"));
        };
        let params = KeygenParams {
            execution_id: execution_id(view),
            threshold: threshold.t(),
            parties: threshold.n(),
            me: self.my_index(view)?,
        };
        let others = view.participants.iter().map(|(_, p)| p);
        roster::check_peers(&self.peers, others.filter(|p| p.party_id != self.id))?;
        let roster = roster::pin(view)?;
        let protocol = self.engine.keygen(params).map_err(PartyError::Setup)?;
        let mut exchange = self.open(view).await?;
        let share = self.run(view, &mut exchange, protocol).await?;
        let public_key = share.public_key;
        self.vault.put(&ShareRecord {
            party_id: self.id.clone(),
            key_id: KeyId::of_keygen(session),
            version: 1,
            share,
            roster: Some(roster),
            policy: *policy,
        })?;
        self.report(view, PartyOutcome::PublicKey(public_key))
            .await?;
        Ok(public_key)
    }

    async fn sign_in(&self, view: &SessionView) -> Result<Signature, PartyError> {
        let session = view.session_id;
        let SessionSpec::Signing {
            key,
            message_hash,
            message,
            approval,
        } = &view.spec
        else {
            return Err(wrong_kind(view, "signing"));
        };
        if let Some(message) = message
            && MessageHash::from_bytes(Sha256::digest(message).into()) != *message_hash
        {
            return Err(PartyError::MessageHashMismatch);
        }
        if message.is_none() && !self.allow_prehash {
            return Err(PartyError::PrehashRefused(session));
        }
        let record = self.vault.get_version(&self.id, &key.key_id, key.epoch)?;
        // The key's own gate, pinned at its keygen, holds whatever the node's
        // policy: a coordinator cannot lift it.
        if approval.is_none()
            && (self.policy == KeyPolicy::ApprovedOnly || record.policy == KeyPolicy::ApprovedOnly)
        {
            return Err(PartyError::ApprovalRequired(session));
        }
        if record.share.public_key != key.public_key {
            return Err(PartyError::ShareKeyMismatch);
        }
        if let Some(pinned) = &record.roster {
            roster::check(pinned, key, view, None)?;
        }
        if let Some(evidence) = approval {
            // Approvals are verified against the identity keys this party pinned,
            // never against the ones the session claims.
            let pinned = KeyRef {
                parties: record
                    .roster
                    .clone()
                    .ok_or(RosterError::Missing(key.key_id))?,
                ..key.clone()
            };
            let signers: Vec<PartyId> = view
                .participants
                .iter()
                .map(|(_, p)| p.party_id.clone())
                .collect();
            verify_evidence(evidence, &pinned, message.as_deref(), &signers)?;
            // Spent before anything is sent: a second session carrying these
            // approvals is refused, whatever the coordinator says.
            self.journal.spend(evidence.workflow_id, session)?;
        }
        let signers = view
            .participants
            .iter()
            .map(|(i, _)| PartyIndex::new(*i))
            .collect::<Result<Vec<_>, _>>()?;
        let params = SignParams {
            execution_id: execution_id(view),
            signers,
            message_hash: *message_hash,
        };
        let protocol = self
            .engine
            .sign(&record.share, params)
            .map_err(PartyError::Setup)?;
        let mut exchange = self.open(view).await?;
        let signature = self.run(view, &mut exchange, protocol).await?;
        self.report(view, PartyOutcome::Signature(signature))
            .await?;
        Ok(signature)
    }

    async fn join(&self, session: SessionId, token: &str) -> Result<SessionView, PartyError> {
        let view = self.coordinator.join(session, &self.id, token).await?;
        let me = view
            .participants
            .iter()
            .find(|(_, p)| p.party_id == self.id)
            .ok_or(PartyError::NotInvited(session))?;
        if me.1.identity != self.identity.public() {
            return self.settle(&view, Err(PartyError::IdentityMismatch)).await;
        }
        Ok(view)
    }

    /// `result` of this party's part in `view`. A refusal the coordinator has not
    /// heard of (this party would not take part: a check failed, or its own
    /// vault or transport did) is reported first, so the session fails at once
    /// with this party's reason instead of every participant waiting out its
    /// deadline.
    async fn settle<T>(
        &self,
        view: &SessionView,
        result: Result<T, PartyError>,
    ) -> Result<T, PartyError> {
        if let Err(error) = &result
            && error.is_unreported()
        {
            self.report_failure(view, Vec::new(), error.to_string())
                .await;
        }
        result
    }

    fn my_index(&self, view: &SessionView) -> Result<PartyIndex, PartyError> {
        let i = view
            .index_of(&self.id)
            .ok_or(PartyError::NotInvited(view.session_id))?;
        Ok(PartyIndex::new(i)?)
    }

    /// Reports `outcome`, repeating the report while the coordinator is unreachable
    /// (a report whose answer was lost is recorded once however often it is sent).
    async fn report(&self, view: &SessionView, outcome: PartyOutcome) -> Result<(), PartyError> {
        let session = view.session_id;
        self.retrying(view, "report", || {
            self.coordinator
                .report_completion(session, &self.id, outcome.clone())
        })
        .await?;
        Ok(())
    }

    /// Runs `call`, repeating it while the coordinator is unreachable, with pauses
    /// doubling from [`FIRST_RETRY_PAUSE`] to [`MAX_RETRY_PAUSE`], until the session's
    /// deadline; then returns the last error. Only for calls safe to repeat.
    async fn retrying<T, F, Fut>(
        &self,
        view: &SessionView,
        what: &'static str,
        mut call: F,
    ) -> Result<T, CoordinatorError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, CoordinatorError>>,
    {
        let deadline = runtime::Instant::now() + deadline_in(view.expires_at);
        let mut pause = FIRST_RETRY_PAUSE;
        loop {
            match call().await {
                Err(CoordinatorError::Unreachable(error))
                    if runtime::Instant::now() + pause < deadline =>
                {
                    tracing::warn!(
                        party = %self.id,
                        session = %view.session_id,
                        call = what,
                        %error,
                        retry_in_ms = pause.as_millis() as u64,
                        "coordinator unreachable; retrying"
                    );
                    runtime::sleep(pause).await;
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
                result => return result,
            }
        }
    }

    /// Opens this party's exchange of `view`'s session and waits until every
    /// participant has joined.
    async fn open<'a>(&'a self, view: &'a SessionView) -> Result<Exchange<'a>, PartyError> {
        let session = view.session_id;
        let inbox = self.transport.subscribe(session, &self.id).await?;
        match self
            .retrying(view, "wait_started", || {
                self.coordinator.wait_started(session)
            })
            .await?
        {
            SessionStatus::InProgress => {}
            other => return Err(PartyError::NotStarted(session, other)),
        }
        Ok(Exchange::new(
            &self.id,
            &self.identity,
            &*self.transport,
            view,
            inbox,
        ))
    }

    /// Agrees on the view with every participant, then drives `protocol` to its
    /// output.
    async fn run<O: Send + 'static>(
        &self,
        view: &SessionView,
        exchange: &mut Exchange<'_>,
        protocol: Box<dyn Protocol<Output = O>>,
    ) -> Result<O, PartyError> {
        self.guarded(view, async {
            exchange.agree_on_view(&execution_id(view)).await?;
            let (mut protocol, first) = compute(protocol, |p| p.start()).await?;
            exchange.send(first).await?;
            loop {
                let (from, mut message) = exchange.next().await?;
                let incoming = Incoming {
                    round: message.round,
                    from: PartyIndex::new(from)?,
                    broadcast: message.broadcast,
                    payload: std::mem::take(&mut *message.payload),
                };
                let (next, step) = compute(protocol, move |p| p.handle(incoming)).await?;
                protocol = next;
                match step {
                    Step::Continue(out) => exchange.send(out).await?,
                    Step::Done { output, outgoing } => {
                        exchange.send(outgoing).await?;
                        return Ok(output);
                    }
                }
            }
        })
        .await
    }

    /// Runs `work` until the session's deadline, ending it at once if the session
    /// fails meanwhile (another party aborted, an operator closed it); on a protocol
    /// failure tells the coordinator whom the engine blames, so the session fails
    /// with a named culprit. A completed session cannot end `work` early, because a
    /// signing session completes with its first verified signature.
    async fn guarded<T>(
        &self,
        view: &SessionView,
        work: impl std::future::Future<Output = Result<T, PartyError>>,
    ) -> Result<T, PartyError> {
        let session = view.session_id;
        let failed = async {
            match self
                .retrying(view, "wait_finished", || {
                    self.coordinator.wait_finished(session)
                })
                .await
            {
                Ok(status) if status != SessionStatus::Completed => status,
                _ => std::future::pending().await,
            }
        };
        let result = match runtime::timeout(deadline_in(view.expires_at), async {
            tokio::select! {
                result = work => result,
                status = failed => Err(PartyError::Ended(session, status)),
            }
        })
        .await
        {
            Ok(result) => result,
            Err(_) => Err(PartyError::Timeout),
        };
        if let Err(PartyError::Engine(e)) = &result {
            self.blame(view, e).await;
        }
        result
    }

    async fn blame(&self, view: &SessionView, error: &EngineError) {
        let culprit = match error {
            EngineError::Aborted { culprit, .. } => *culprit,
            EngineError::Malformed { from, .. }
            | EngineError::Unexpected { from, .. }
            | EngineError::Equivocation { from, .. } => Some(*from),
            _ => None,
        };
        let culprits = culprit
            .and_then(|i| view.party_at(i.get()))
            .map(|p| vec![p.party_id.clone()])
            .unwrap_or_default();
        self.report_failure(view, culprits, error.to_string()).await;
    }

    /// Tells the coordinator this party ends `view`'s session, naming `culprits`;
    /// repeated while the coordinator is unreachable, logged if refused.
    async fn report_failure(&self, view: &SessionView, culprits: Vec<PartyId>, detail: String) {
        if let Err(e) = self
            .retrying(view, "report_failure", || {
                self.coordinator.report_failure(
                    view.session_id,
                    &self.id,
                    culprits.clone(),
                    detail.clone(),
                )
            })
            .await
        {
            tracing::warn!(party = %self.id, session = %view.session_id, error = %e, "could not report the failure");
        }
    }
}

/// Runs one CPU-heavy protocol step through the runtime (natively off the async
/// workers).
async fn compute<O, R>(
    mut protocol: Box<dyn Protocol<Output = O>>,
    step: impl FnOnce(&mut dyn Protocol<Output = O>) -> Result<R, EngineError> + Send + 'static,
) -> Result<(Box<dyn Protocol<Output = O>>, R), PartyError>
where
    O: Send + 'static,
    R: Send + 'static,
{
    let joined = runtime::compute(move || {
        let r = step(protocol.as_mut());
        (protocol, r)
    })
    .await;
    match joined {
        Ok((protocol, Ok(r))) => Ok((protocol, r)),
        Ok((_, Err(e))) => Err(e.into()),
        Err(e) => Err(EngineError::Aborted {
            culprit: None,
            ban: false,
            detail: format!("engine task failed: {e}"),
        }
        .into()),
    }
}

/// The engine's repair plan for `repair`, after this party's own checks of the
/// target: the target must present the new device identity the session names, an
/// identity no holder of the key has, so helpers send terms to no one else.
fn repair_plan(
    view: &SessionView,
    key: &KeyRef,
    repair: &RepairSpec,
) -> Result<RepairPlan, PartyError> {
    let index = |party: &PartyId| {
        view.index_of(party)
            .ok_or_else(|| PartyError::BadRefresh(format!("{party} is not a participant")))
            .and_then(|i| Ok(PartyIndex::new(i)?))
    };
    let target = index(&repair.target)?;
    let presented = view
        .party_at(target.get())
        .map(|p| &p.identity)
        .ok_or_else(|| PartyError::BadRefresh("no participant at the target's index".into()))?;
    if *presented != repair.identity || key.parties.iter().any(|p| p.identity == repair.identity) {
        return Err(PartyError::RepairTargetMismatch);
    }
    let helpers = repair
        .helpers
        .iter()
        .map(index)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RepairPlan { helpers, target })
}

fn deadline_in(expires_at: Timestamp) -> Duration {
    Duration::from_millis(
        u64::try_from(expires_at.as_millis() - runtime::unix_millis()).unwrap_or(0),
    )
}

fn wrong_kind(view: &SessionView, expected: &'static str) -> PartyError {
    PartyError::WrongKind {
        session: view.session_id,
        expected,
        actual: view.spec.kind().to_string(),
    }
}
