//! The in-process stack that `mpc bench` and `mpc load` drive: a coordinator, three
//! party nodes with file vaults and a transport (counting the bytes it carries) on one
//! event store, plus a scratch PostgreSQL database per run and a description of the
//! machine. Shared so that both commands run exactly the same wiring.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use async_trait::async_trait;
use mpc_actors::{CommandMeta, Coordinator, NewKeygen, NewSigning, SigningPayload, SystemClock};
use mpc_engine::{Dkls23Engine, FileVault, ThresholdEngine, verify_signature};
use mpc_events::{
    KeyId, MessageHash, Participant, PartyId, PartyOutcome, PublicKey, SessionId, SessionStatus,
    Signature, Threshold,
};
use mpc_party::{PartyIdentity, PartyNode};
use mpc_schemas::Envelope;
use mpc_store::EventStore;
use mpc_transport::{Inbox, KafkaConfig, KafkaTransport, Transport, TransportError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::demo::run_all;
use crate::local::LocalCoordinator;

/// How long the stack's keygen and bench signing sessions may take.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(300);
/// The prefix of every message the stack signs (a random suffix follows).
const MESSAGE: &[u8] = b"mpc bench";

/// A transport that counts the encoded size of every envelope it publishes.
pub(crate) struct CountingTransport {
    pub(crate) inner: Arc<dyn Transport>,
    pub(crate) bytes: AtomicU64,
    pub(crate) envelopes: AtomicU64,
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
}

/// A coordinator, three party nodes with file vaults and a transport, on one store.
pub(crate) struct Stack {
    pub(crate) name: &'static str,
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) coordinator: Arc<Coordinator>,
    pub(crate) transport: Arc<CountingTransport>,
    pub(crate) nodes: Vec<Arc<PartyNode>>,
    pub(crate) threshold: Threshold,
}

impl Stack {
    pub(crate) async fn new(
        name: &'static str,
        dir: &Path,
        store: Arc<dyn EventStore>,
        transport: Arc<dyn Transport>,
    ) -> anyhow::Result<Self> {
        let coordinator = Arc::new(Coordinator::new(store.clone(), Arc::new(SystemClock)));
        let client = Arc::new(LocalCoordinator(coordinator.clone()));
        let transport = Arc::new(CountingTransport {
            inner: transport,
            bytes: AtomicU64::new(0),
            envelopes: AtomicU64::new(0),
        });
        let engine: Arc<dyn ThresholdEngine> = Arc::new(Dkls23Engine);
        let mut nodes = Vec::new();
        for name in ["device", "server", "recovery"] {
            let id = PartyId::parse(name)?;
            let passphrase = Zeroizing::new(hex::encode(rand::random::<[u8; 32]>()));
            let vault_dir = dir.join("parties").join(name);
            let vault = tokio::task::spawn_blocking(move || {
                FileVault::create(&vault_dir, passphrase.as_bytes())
            })
            .await?
            .with_context(|| format!("cannot create the vault of {name}"))?;
            nodes.push(Arc::new(PartyNode::new(
                id,
                PartyIdentity::generate(),
                engine.clone(),
                Arc::new(vault),
                transport.clone(),
                client.clone(),
            )));
        }
        Ok(Self {
            name,
            store,
            coordinator,
            transport,
            nodes,
            threshold: Threshold::new(2, 3)?,
        })
    }

    /// API request → all three parties' keygen → `Completed` recorded.
    pub(crate) async fn keygen(&self) -> anyhow::Result<(KeyId, PublicKey)> {
        let created = self
            .coordinator
            .create_keygen(
                NewKeygen {
                    threshold: self.threshold,
                    participants: self
                        .nodes
                        .iter()
                        .map(|n| Participant {
                            party_id: n.id().clone(),
                            identity: n.identity().public(),
                        })
                        .collect(),
                    ttl: SESSION_TTL,
                },
                CommandMeta::new(),
            )
            .await?;
        let session_id = created.session_id;
        run_all(&self.nodes, &created).await?;
        let session = self
            .coordinator
            .wait_for(session_id, |s| s.status == SessionStatus::Completed)
            .await?;
        match (&session.status, &session.outcome) {
            (SessionStatus::Completed, Some(PartyOutcome::PublicKey(pk))) => {
                Ok((KeyId::of_keygen(session_id), *pk))
            }
            (status, _) => bail!("keygen session ended {status}: {:?}", session.failure),
        }
    }

    pub(crate) fn shared(&self) -> Arc<StackRef> {
        Arc::new(StackRef {
            coordinator: self.coordinator.clone(),
            nodes: self.nodes.clone(),
        })
    }
}

/// What a throughput worker needs of a [`Stack`] (shared across tasks).
pub(crate) struct StackRef {
    pub(crate) coordinator: Arc<Coordinator>,
    pub(crate) nodes: Vec<Arc<PartyNode>>,
}

impl StackRef {
    pub(crate) async fn sign(
        &self,
        key_id: KeyId,
        public_key: PublicKey,
        signers: [usize; 2],
    ) -> anyhow::Result<(SessionId, Signature)> {
        let message = [MESSAGE, &rand::random::<[u8; 16]>()].concat();
        let signers: Vec<Arc<PartyNode>> = signers.iter().map(|i| self.nodes[*i].clone()).collect();
        let created = self
            .coordinator
            .create_signing(
                NewSigning {
                    key_id,
                    signers: signers.iter().map(|n| n.id().clone()).collect(),
                    payload: SigningPayload::Message(message.clone()),
                    ttl: SESSION_TTL,
                },
                CommandMeta::new(),
            )
            .await?;
        let session_id = created.session_id;
        run_all(&signers, &created).await?;
        let session = self
            .coordinator
            .wait_for(session_id, |s| s.status == SessionStatus::Completed)
            .await?;
        let signature = match (&session.status, &session.outcome) {
            (SessionStatus::Completed, Some(PartyOutcome::Signature(sig))) => *sig,
            (status, _) => bail!("signing session ended {status}: {:?}", session.failure),
        };
        let hash = MessageHash::from_bytes(Sha256::digest(&message).into());
        ensure!(
            verify_signature(&public_key, &hash, &signature),
            "the recorded signature does not verify"
        );
        Ok((session_id, signature))
    }
}

// ---------------------------------------------------------------------------------
// PostgreSQL scratch database.

/// A Kafka transport on a fresh topic `<prefix>.<random hex>` with four partitions.
pub(crate) async fn kafka_transport(
    brokers: &str,
    prefix: &str,
) -> anyhow::Result<Arc<dyn Transport>> {
    let mut config = KafkaConfig::new(brokers.to_owned());
    config.topic = format!("{prefix}.{}", hex::encode(rand::random::<[u8; 6]>()));
    config.partitions = 4;
    Ok(Arc::new(
        KafkaTransport::connect(config)
            .await
            .context("cannot connect to Kafka")?,
    ))
}

/// A database created on a PostgreSQL server for one run, dropped by
/// [`TempDatabase::drop_it`].
pub(crate) struct TempDatabase {
    server: String,
    name: String,
    pub(crate) url: String,
}

impl TempDatabase {
    pub(crate) async fn create(server: &str) -> anyhow::Result<Self> {
        use sqlx::Connection;
        let server = server.trim_end_matches('/').to_owned();
        let name = format!("mpc_bench_{}", hex::encode(rand::random::<[u8; 6]>()));
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {server}"))?;
        // The name is ours: a fixed prefix and hex.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .with_context(|| format!("cannot create database {name}"))?;
        let url = format!("{server}/{name}");
        Ok(Self { server, name, url })
    }

    pub(crate) async fn drop_it(self) {
        use sqlx::Connection;
        if let Ok(mut admin) =
            sqlx::PgConnection::connect(&format!("{}/postgres", self.server)).await
            && let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut admin)
            .await
        {
            tracing::warn!(database = %self.name, "cannot drop the bench database: {e}");
        }
    }
}

/// nproc, RAM and CPU model.
pub(crate) fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok());
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, usize::from),
        "cpu_model": model,
        "memory_gib": mem_kb.map(|kb| (kb as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "debug_build": cfg!(debug_assertions),
    })
}
