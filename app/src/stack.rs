//! The in-process stack: the services of one coordinator over an event store and its
//! read models, party nodes (fresh identities, file vaults under passphrases held only
//! in memory, or any vault the caller opens) that reach the coordinator through
//! [`LocalCoordinator`], and a transport that counts the bytes it carries. `mpc demo`,
//! `mpc bench` and `mpc load` all run on it; [`run_all`] is the one way a set of nodes
//! joins and runs a session.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::try_join_all;
use mpc_actors::{
    CommandMeta, CoordinatorError, CreatedSession, NewKeygen, NewSigning, SigningPayload,
    SystemClock,
};
use mpc_crypto::verify_signature;
use mpc_engine::{Dkls23Engine, ThresholdEngine};
use mpc_events::{
    KeyId, MessageHash, Participant, PartyId, PartyOutcome, PublicKey, SessionId, SessionStatus,
    Signature, Threshold,
};
use mpc_party::{KeyPolicy, PartyError, PartyIdentity, PartyNode};
use mpc_projections::{
    AccountsProjection, AuditLogProjection, Projection, ProjectionError, ProjectionRunner,
    ReadModels, SessionStatusProjection, WorkflowsProjection,
};
use mpc_schemas::Envelope;
use mpc_store::EventStore;
use mpc_transport::{Inbox, Transport, TransportError};
use mpc_vault::{FileVault, ShareVault, VaultError};
use sha2::{Digest, Sha256};
use tokio::task::JoinError;
use zeroize::Zeroizing;

use crate::{LocalCoordinator, Services};

/// Why the stack could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Coordinator(#[from] CoordinatorError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error("cannot create the vault of {party}")]
    Vault {
        party: PartyId,
        #[source]
        source: VaultError,
    },
    #[error("no join token for {0}")]
    NoJoinToken(PartyId),
    #[error("{party} failed in session {session}")]
    Party {
        party: PartyId,
        session: SessionId,
        #[source]
        source: PartyError,
    },
    #[error("a task of the stack stopped")]
    Task(#[from] JoinError),
    #[error("{kind} session ended {status}: {failure}")]
    Ended {
        kind: &'static str,
        status: SessionStatus,
        failure: String,
    },
    #[error("parties derived different public keys")]
    KeysDiffer,
    #[error("signers produced different signatures")]
    SignaturesDiffer,
    #[error("the recorded signature does not verify")]
    Unverified,
}

/// A transport that counts the encoded size of every envelope it publishes.
pub struct CountingTransport {
    inner: Arc<dyn Transport>,
    bytes: AtomicU64,
    envelopes: AtomicU64,
}

impl CountingTransport {
    pub fn new(inner: Arc<dyn Transport>) -> Self {
        Self {
            inner,
            bytes: AtomicU64::new(0),
            envelopes: AtomicU64::new(0),
        }
    }

    /// Encoded envelope bytes published so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Envelopes published so far.
    pub fn envelopes(&self) -> u64 {
        self.envelopes.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Transport for CountingTransport {
    async fn publish(&self, envelope: &Envelope) -> Result<(), TransportError> {
        let size = envelope
            .encode()
            .map_err(|e| TransportError::Encoding(e.to_string()))?
            .len();
        self.inner.publish(envelope).await?;
        self.bytes.fetch_add(size as u64, Ordering::Relaxed);
        self.envelopes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn subscribe(
        &self,
        session: SessionId,
        party: &PartyId,
    ) -> Result<Inbox, TransportError> {
        self.inner.subscribe(session, party).await
    }

    async fn close_session(&self, session: SessionId) -> Result<(), TransportError> {
        self.inner.close_session(session).await
    }

    async fn ready(&self) -> Result<(), TransportError> {
        self.inner.ready().await
    }
}

/// One coordinator's services, its read models and a transport, in this process;
/// party nodes made by [`Stack::file_node`] or [`Stack::node`] reach them directly.
#[derive(Clone)]
pub struct Stack {
    /// Where the nodes' vaults go (`parties/<party>/vault-<random>`).
    pub dir: PathBuf,
    pub store: Arc<dyn EventStore>,
    pub models: ReadModels,
    pub services: Services,
    pub transport: Arc<CountingTransport>,
    client: Arc<LocalCoordinator>,
    engine: Arc<dyn ThresholdEngine>,
}

impl Stack {
    /// Services over `store` (system clock, random join tokens), the DKLs23 engine,
    /// `transport` counted; vaults under `dir`.
    pub fn new(
        dir: &Path,
        store: Arc<dyn EventStore>,
        models: ReadModels,
        transport: Arc<dyn Transport>,
    ) -> Self {
        let services = Services::new(store.clone(), Arc::new(SystemClock));
        Self {
            dir: dir.to_path_buf(),
            client: Arc::new(LocalCoordinator(services.coordinator.clone())),
            store,
            models,
            services,
            transport: Arc::new(CountingTransport::new(transport)),
            engine: Arc::new(Dkls23Engine),
        }
    }

    /// A node with a fresh identity and a file vault under a random passphrase held
    /// only for this run.
    pub async fn file_node(
        &self,
        name: &PartyId,
        policy: KeyPolicy,
    ) -> Result<Arc<PartyNode>, StackError> {
        let passphrase = Zeroizing::new(hex::encode(rand::random::<[u8; 32]>()));
        let vault_dir = self.vault_dir(name);
        let vault = tokio::task::spawn_blocking(move || {
            FileVault::create(&vault_dir, passphrase.as_bytes())
        })
        .await?
        .map_err(|source| StackError::Vault {
            party: name.clone(),
            source,
        })?;
        Ok(self.node(name, Arc::new(vault), policy))
    }

    /// A fresh directory for a vault of `name`.
    pub fn vault_dir(&self, name: &PartyId) -> PathBuf {
        self.dir
            .join("parties")
            .join(name.as_str())
            .join(format!("vault-{}", SessionId::new()))
    }

    /// A node with a fresh identity keeping its shares in `vault`.
    pub fn node(
        &self,
        name: &PartyId,
        vault: Arc<dyn ShareVault>,
        policy: KeyPolicy,
    ) -> Arc<PartyNode> {
        Arc::new(
            PartyNode::new(
                name.clone(),
                PartyIdentity::generate(),
                self.engine.clone(),
                vault,
                self.transport.clone(),
                self.client.clone(),
            )
            .with_policy(policy),
        )
    }

    /// Distributed key generation among `nodes`; the key once every party reported
    /// the same one and the session completed.
    pub async fn keygen(
        &self,
        threshold: Threshold,
        policy: KeyPolicy,
        nodes: &[Arc<PartyNode>],
        ttl: Duration,
    ) -> Result<(KeyId, PublicKey), StackError> {
        let coordinator = &self.services.coordinator;
        let created = coordinator
            .create_keygen(
                NewKeygen {
                    threshold,
                    participants: nodes.iter().map(|n| participant(n)).collect(),
                    ttl,
                    policy,
                },
                CommandMeta::new(),
            )
            .await?;
        let session_id = created.session_id;
        let outcomes = run_all(nodes, &created).await?;
        if !outcomes.windows(2).all(|w| w[0] == w[1]) {
            return Err(StackError::KeysDiffer);
        }
        let session = coordinator
            .wait_for(session_id, |s| s.status == SessionStatus::Completed)
            .await?;
        match (&session.status, &session.outcome) {
            (SessionStatus::Completed, Some(PartyOutcome::PublicKey(pk))) => {
                Ok((KeyId::of_keygen(session_id), *pk))
            }
            (status, _) => Err(ended("keygen", *status, &session.failure)),
        }
    }

    /// A signing session of `message` with `key_id` among `signers`, run to its end;
    /// the signature once it is recorded and verified against `public_key`.
    pub async fn sign_message(
        &self,
        (key_id, public_key): (KeyId, PublicKey),
        signers: &[Arc<PartyNode>],
        message: &[u8],
        ttl: Duration,
    ) -> Result<(SessionId, Signature), StackError> {
        let created = self
            .services
            .coordinator
            .create_signing(
                NewSigning {
                    key_id,
                    signers: signers.iter().map(|n| n.id().clone()).collect(),
                    payload: SigningPayload::Message(message.to_vec()),
                    ttl,
                },
                CommandMeta::new(),
            )
            .await?;
        let session_id = created.session_id;
        let signature = self.sign(&created, public_key, signers, message).await?;
        Ok((session_id, signature))
    }

    /// Has `signers` sign in `created`, however it was created; the signature once it
    /// is recorded, every signer produced it and it verifies over `message`.
    pub async fn sign(
        &self,
        created: &CreatedSession,
        public_key: PublicKey,
        signers: &[Arc<PartyNode>],
        message: &[u8],
    ) -> Result<Signature, StackError> {
        let session_id = created.session_id;
        let produced = run_all(signers, created).await?;
        let session = self
            .services
            .coordinator
            .wait_for(session_id, |s| s.status == SessionStatus::Completed)
            .await?;
        let signature = match (&session.status, &session.outcome) {
            (SessionStatus::Completed, Some(PartyOutcome::Signature(sig))) => *sig,
            (status, _) => return Err(ended("signing", *status, &session.failure)),
        };
        if !produced
            .iter()
            .all(|o| *o == PartyOutcome::Signature(signature))
        {
            return Err(StackError::SignaturesDiffer);
        }
        if !verify_signature(&public_key, &message_hash(message), &signature) {
            return Err(StackError::Unverified);
        }
        Ok(signature)
    }

    /// Catches every read model up with the store.
    pub async fn catch_up_read_models(&self) -> Result<(), ProjectionError> {
        let models = &self.models;
        self.catch_up(SessionStatusProjection::new(models.clone()))
            .await?;
        self.catch_up(AuditLogProjection::new(models.clone()))
            .await?;
        self.catch_up(AccountsProjection::new(models.clone()))
            .await?;
        self.catch_up(WorkflowsProjection::new(models.clone()))
            .await
    }

    async fn catch_up<P: Projection>(&self, projection: P) -> Result<(), ProjectionError> {
        ProjectionRunner::new(self.store.clone(), self.models.clone(), projection)
            .await?
            .catch_up()
            .await?;
        Ok(())
    }
}

/// A node as a participant of a new session.
pub fn participant(node: &PartyNode) -> Participant {
    Participant {
        party_id: node.id().clone(),
        identity: node.identity().public(),
    }
}

/// SHA-256 of `message`, the hash a signing session of it signs.
pub fn message_hash(message: &[u8]) -> MessageHash {
    MessageHash::from_bytes(Sha256::digest(message).into())
}

fn ended(
    kind: &'static str,
    status: SessionStatus,
    failure: &Option<impl std::fmt::Debug>,
) -> StackError {
    StackError::Ended {
        kind,
        status,
        failure: format!("{failure:?}"),
    }
}

/// Has every node take part in `created` (whatever its kind) with its join token,
/// each on its own task; their outcomes, in the order of `nodes`.
pub async fn run_all(
    nodes: &[Arc<PartyNode>],
    created: &CreatedSession,
) -> Result<Vec<PartyOutcome>, StackError> {
    let session = created.session_id;
    let tasks = nodes.iter().map(|node| {
        let node = node.clone();
        let token = created
            .join_tokens
            .get(node.id())
            .map(|t| Zeroizing::new(t.expose().to_owned()));
        async move {
            let party = node.id().clone();
            let token = token.ok_or_else(|| StackError::NoJoinToken(party.clone()))?;
            tokio::spawn(async move { node.participate(session, &token).await })
                .await?
                .map_err(|source| StackError::Party {
                    party,
                    session,
                    source,
                })
        }
    });
    try_join_all(tasks).await
}

/// The 2-of-3 key holders `device`, `server` and `recovery` on one [`Stack`], as
/// `mpc bench` and `mpc load` use them.
#[derive(Clone)]
pub struct Holders {
    pub stack: Stack,
    pub nodes: Vec<Arc<PartyNode>>,
}

/// How long the holders' keygen and bench signing sessions may take.
pub const SESSION_TTL: Duration = Duration::from_secs(300);
/// The prefix of every message the holders sign (a random suffix follows).
const MESSAGE: &[u8] = b"mpc bench";

impl Holders {
    pub async fn new(stack: Stack) -> Result<Self, StackError> {
        let mut nodes = Vec::new();
        for name in ["device", "server", "recovery"] {
            let id = PartyId::parse(name).unwrap_or_else(|_| unreachable!("valid party ids"));
            nodes.push(stack.file_node(&id, KeyPolicy::AnyRequest).await?);
        }
        Ok(Self { stack, nodes })
    }

    pub fn threshold() -> Threshold {
        Threshold::new(2, 3).unwrap_or_else(|_| unreachable!("2-of-3 is a threshold"))
    }

    /// API request → all three parties' keygen → `Completed` recorded.
    pub async fn keygen(&self) -> Result<(KeyId, PublicKey), StackError> {
        self.stack
            .keygen(
                Self::threshold(),
                KeyPolicy::AnyRequest,
                &self.nodes,
                SESSION_TTL,
            )
            .await
    }

    /// API request → the two `signers` (indices) sign a random message →
    /// `Completed` recorded → signature verified.
    pub async fn sign(
        &self,
        key: (KeyId, PublicKey),
        signers: [usize; 2],
    ) -> Result<(SessionId, Signature), StackError> {
        let message = [MESSAGE, &rand::random::<[u8; 16]>()].concat();
        let signers: Vec<_> = signers.iter().map(|i| self.nodes[*i].clone()).collect();
        self.stack
            .sign_message(key, &signers, &message, SESSION_TTL)
            .await
    }
}
