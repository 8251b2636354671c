//! `mpc demo`: keygen among t-of-n parties, then two signings by different signer
//! sets, all on embedded defaults, with every fact read back from the event log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use futures::future::try_join_all;
use indicatif::{ProgressBar, ProgressStyle};
use mpc_actors::{CommandMeta, Coordinator, NewKeygen, NewSigning, SigningPayload, SystemClock};
use mpc_engine::{Dkls23Engine, FileVault, ThresholdEngine, verify_signature};
use mpc_events::{
    KeyId, MessageHash, PartyId, PartyOutcome, PublicKey, SessionId, SessionStatus, Signature,
    Threshold,
};
use mpc_party::{PartyIdentity, PartyNode};
use mpc_projections::{
    AuditLogProjection, ProjectionRunner, ReadModels, SessionStatusProjection, SessionStatusRow,
};
use mpc_store::{EventStore, SqliteStore, StreamName};
use mpc_transport::InProcessTransport;
use serde_json::json;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::local::LocalCoordinator;

const SESSION_TTL: Duration = Duration::from_secs(120);

/// What `mpc demo` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub threshold: u16,
    pub parties: u16,
    pub data_dir: Option<PathBuf>,
    pub message: Vec<u8>,
    pub json: bool,
}

/// One signature the demo produced.
#[derive(Debug, Clone)]
pub struct SignatureReport {
    pub session_id: SessionId,
    pub signers: Vec<PartyId>,
    pub message: Vec<u8>,
    pub message_hash: MessageHash,
    pub signature: Signature,
    pub verified: bool,
}

/// One recorded event, as read back from the log.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub position: u64,
    pub version: u64,
    pub event_type: String,
    pub occurred_at: i64,
}

/// Everything the demo did.
#[derive(Debug, Clone)]
pub struct Report {
    pub threshold: Threshold,
    pub parties: Vec<PartyId>,
    pub key_id: KeyId,
    pub public_key: PublicKey,
    pub signatures: Vec<SignatureReport>,
    pub history: Vec<(SessionId, Vec<HistoryEntry>)>,
    /// The sessions as the session-status projection shows them.
    pub read_model: Vec<SessionStatusRow>,
    /// How many records the audit log holds after the run.
    pub audit_records: u64,
    /// The audit log's chain head: the last record's hash.
    pub audit_head: Option<[u8; 32]>,
    pub data_dir: Option<PathBuf>,
}

/// Runs the demo and prints its report.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let progress = if options.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(4)
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{pos}/{len}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    progress.enable_steady_tick(Duration::from_millis(100));
    let report = execute(&options, &progress).await;
    progress.finish_and_clear();
    let report = report?;
    if options.json {
        println!("{}", to_json(&report));
    } else {
        print_text(&report);
    }
    Ok(())
}

/// Runs the demo: a fresh store, coordinator, transport and one node per party.
pub async fn execute(options: &Options, progress: &ProgressBar) -> anyhow::Result<Report> {
    let threshold = Threshold::new(options.threshold, options.parties)
        .context("invalid --threshold/--parties")?;
    let temp;
    let dir: &Path = match &options.data_dir {
        Some(d) => d,
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary data directory")?;
            temp.path()
        }
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;

    progress.set_message("opening event store and vaults");
    let sqlite = SqliteStore::open(&dir.join("events.db"))
        .await
        .context("cannot open the event store")?;
    // The read models share the event log's SQLite database.
    let models = ReadModels::from(sqlite.pool().clone());
    let store: Arc<dyn EventStore> = Arc::new(sqlite);
    let statuses = SessionStatusProjection::new(models.clone());
    let runner = ProjectionRunner::new(store.clone(), models.clone(), statuses.clone()).await?;
    let audit = ProjectionRunner::new(
        store.clone(),
        models.clone(),
        AuditLogProjection::new(models),
    )
    .await?;
    let mut projected = runner.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let follower = runner.spawn(async {
        let _ = stopped.await;
    });
    let coordinator = Arc::new(Coordinator::new(store.clone(), Arc::new(SystemClock)));
    let client = Arc::new(LocalCoordinator(coordinator.clone()));
    let transport = Arc::new(InProcessTransport::new());
    let engine: Arc<dyn ThresholdEngine> = Arc::new(Dkls23Engine);
    let names = party_names(threshold.n());
    let mut nodes = Vec::with_capacity(names.len());
    for name in &names {
        // Demo vaults get a random passphrase held only for this run.
        let passphrase = Zeroizing::new(hex::encode(rand::random::<[u8; 32]>()));
        let vault_dir = dir
            .join("parties")
            .join(name.as_str())
            .join(format!("vault-{}", SessionId::new()));
        let vault = tokio::task::spawn_blocking(move || {
            FileVault::create(&vault_dir, passphrase.as_bytes())
        })
        .await?
        .with_context(|| format!("cannot create the vault of {name}"))?;
        nodes.push(Arc::new(PartyNode::new(
            name.clone(),
            PartyIdentity::generate(),
            engine.clone(),
            Arc::new(vault),
            transport.clone(),
            client.clone(),
        )));
    }

    progress.inc(1);
    progress.set_message(format!("distributed key generation ({threshold})"));
    let created = coordinator
        .create_keygen(
            NewKeygen {
                threshold,
                participants: nodes
                    .iter()
                    .map(|n| mpc_events::Participant {
                        party_id: n.id().clone(),
                        identity: n.identity().public(),
                    })
                    .collect(),
                ttl: SESSION_TTL,
            },
            CommandMeta::new(),
        )
        .await?;
    let keygen_id = created.session_id;
    let tasks = nodes.iter().map(|node| {
        let node = node.clone();
        let token = created
            .join_tokens
            .get(node.id())
            .map(|t| t.expose().to_owned());
        async move {
            let token = token.context("no join token for party")?;
            tokio::spawn(async move { node.keygen(keygen_id, &token).await })
                .await?
                .with_context(|| "keygen failed")
        }
    });
    let keys = try_join_all(tasks).await?;
    ensure!(
        keys.windows(2).all(|w| w[0] == w[1]),
        "parties derived different public keys"
    );
    let session = coordinator
        .wait_for(keygen_id, |s| s.status == SessionStatus::Completed)
        .await?;
    let public_key = match (&session.status, &session.outcome) {
        (SessionStatus::Completed, Some(PartyOutcome::PublicKey(pk))) => *pk,
        (status, _) => bail!("keygen session ended {status}: {:?}", session.failure),
    };
    let key_id = KeyId::of_keygen(keygen_id);

    let t = usize::from(threshold.t());
    let signer_sets = [nodes[..t].to_vec(), nodes[nodes.len() - t..].to_vec()];
    let mut signatures = Vec::new();
    for signers in signer_sets {
        progress.inc(1);
        let names: Vec<_> = signers.iter().map(|n| n.id().clone()).collect();
        progress.set_message(format!(
            "signing with {}",
            names
                .iter()
                .map(PartyId::as_str)
                .collect::<Vec<_>>()
                .join(" + ")
        ));
        signatures.push(sign(&coordinator, key_id, public_key, &signers, &options.message).await?);
    }

    progress.inc(1);
    progress.set_message("reading the session history back from the log");
    let mut history = Vec::new();
    for session_id in std::iter::once(keygen_id).chain(signatures.iter().map(|s| s.session_id)) {
        let stream = StreamName::new("session", session_id)?;
        let events = store
            .read_stream(&stream, 1)
            .await?
            .into_iter()
            .map(|e| HistoryEntry {
                position: e.position,
                version: e.version,
                event_type: e.event_type,
                occurred_at: e.occurred_at.as_millis(),
            })
            .collect();
        history.push((session_id, events));
    }
    progress.set_message("waiting for the session-status read model");
    let head = store.head().await?;
    tokio::time::timeout(Duration::from_secs(10), projected.wait_for(|p| *p >= head))
        .await
        .context("the session-status projection did not catch up")?
        .context("the session-status projection stopped")?;
    let _ = stop.send(());
    follower.await??;
    audit
        .catch_up()
        .await
        .context("the audit-log projection stopped")?;
    let (audit_records, audit_head) = audit.projection().head().await?;
    let mut read_model = Vec::new();
    for (session_id, _) in &history {
        read_model.push(
            statuses
                .get(*session_id)
                .await?
                .with_context(|| format!("session {session_id} missing from the read model"))?,
        );
    }
    Ok(Report {
        threshold,
        parties: names,
        key_id,
        public_key,
        signatures,
        history,
        read_model,
        audit_records,
        audit_head,
        data_dir: options.data_dir.clone(),
    })
}

async fn sign(
    coordinator: &Coordinator,
    key_id: KeyId,
    public_key: PublicKey,
    signers: &[Arc<PartyNode>],
    message: &[u8],
) -> anyhow::Result<SignatureReport> {
    let created = coordinator
        .create_signing(
            NewSigning {
                key_id,
                signers: signers.iter().map(|n| n.id().clone()).collect(),
                payload: SigningPayload::Message(message.to_vec()),
                ttl: SESSION_TTL,
            },
            CommandMeta::new(),
        )
        .await?;
    let session_id = created.session_id;
    let tasks = signers.iter().map(|node| {
        let node = node.clone();
        let token = created
            .join_tokens
            .get(node.id())
            .map(|t| t.expose().to_owned());
        async move {
            let token = token.context("no join token for signer")?;
            tokio::spawn(async move { node.sign(session_id, &token).await })
                .await?
                .with_context(|| "signing failed")
        }
    });
    let produced = try_join_all(tasks).await?;
    let session = coordinator
        .wait_for(session_id, |s| s.status == SessionStatus::Completed)
        .await?;
    let signature = match (&session.status, &session.outcome) {
        (SessionStatus::Completed, Some(PartyOutcome::Signature(sig))) => *sig,
        (status, _) => bail!("signing session ended {status}: {:?}", session.failure),
    };
    ensure!(
        produced.iter().all(|s| *s == signature),
        "signers produced different signatures"
    );
    let message_hash = MessageHash::from_bytes(Sha256::digest(message).into());
    let verified = verify_signature(&public_key, &message_hash, &signature);
    ensure!(verified, "the recorded signature does not verify");
    Ok(SignatureReport {
        session_id,
        signers: signers.iter().map(|n| n.id().clone()).collect(),
        message: message.to_vec(),
        message_hash,
        signature,
        verified,
    })
}

/// `device`, `server`, `recovery`, then `party-4` … `party-n`.
fn party_names(n: u8) -> Vec<PartyId> {
    (1..=n)
        .map(|i| match i {
            1 => "device".to_owned(),
            2 => "server".to_owned(),
            3 => "recovery".to_owned(),
            i => format!("party-{i}"),
        })
        .map(|s| PartyId::parse(s).unwrap_or_else(|_| unreachable!("demo party names are valid")))
        .collect()
}

/// The `--json` form of a report.
pub fn to_json(report: &Report) -> serde_json::Value {
    json!({
        "threshold": {"t": report.threshold.t(), "n": report.threshold.n()},
        "parties": report.parties.iter().map(PartyId::as_str).collect::<Vec<_>>(),
        "key_id": report.key_id.to_string(),
        "public_key": hex::encode(report.public_key.as_bytes()),
        "signatures": report.signatures.iter().map(|s| json!({
            "session_id": s.session_id.to_string(),
            "signers": s.signers.iter().map(PartyId::as_str).collect::<Vec<_>>(),
            "message_hex": hex::encode(&s.message),
            "message_hash_hex": hex::encode(s.message_hash.as_bytes()),
            "r_hex": hex::encode(s.signature.r()),
            "s_hex": hex::encode(s.signature.s()),
            "recovery_id": s.signature.recovery_id(),
            "verified": s.verified,
        })).collect::<Vec<_>>(),
        "sessions": report.read_model.iter().map(|r| json!({
            "session_id": r.session_id.to_string(),
            "kind": r.kind.to_string(),
            "status": r.status.to_string(),
            "joined": r.joined,
            "reported": r.reported,
        })).collect::<Vec<_>>(),
        "audit_records": report.audit_records,
        "audit_head": report.audit_head.map(hex::encode),
        "history": report.history.iter().map(|(session, events)| json!({
            "session_id": session.to_string(),
            "events": events.iter().map(|e| json!({
                "position": e.position,
                "version": e.version,
                "type": e.event_type,
                "occurred_at_ms": e.occurred_at,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn print_text(report: &Report) {
    let names = |ps: &[PartyId]| {
        ps.iter()
            .map(PartyId::as_str)
            .collect::<Vec<_>>()
            .join(" + ")
    };
    println!("{} key among {}", report.threshold, names(&report.parties));
    println!("  key id      {}", report.key_id);
    println!(
        "  public key  {}",
        hex::encode(report.public_key.as_bytes())
    );
    for s in &report.signatures {
        println!();
        println!("signature by {}", names(&s.signers));
        println!("  message     {:?}", String::from_utf8_lossy(&s.message));
        println!("  sha-256     {}", hex::encode(s.message_hash.as_bytes()));
        println!("  r           {}", hex::encode(s.signature.r()));
        println!("  s           {}", hex::encode(s.signature.s()));
        println!("  recovery id {}", s.signature.recovery_id());
        println!(
            "  verified    {}",
            if s.verified {
                "yes (k256, low-S)"
            } else {
                "NO"
            }
        );
    }
    println!();
    println!("session history, read back from the event log:");
    for (session, events) in &report.history {
        println!("  session-{session}");
        for e in events {
            println!(
                "    #{:<4} v{:<2} {:<18} {}",
                e.position,
                e.version,
                e.event_type,
                rfc3339(e.occurred_at)
            );
        }
    }
    println!();
    println!("session-status read model (projection):");
    for r in &report.read_model {
        println!(
            "  {} {:<8} {:<10} joined {} reported {}",
            r.session_id, r.kind, r.status, r.joined, r.reported
        );
    }
    println!();
    println!(
        "audit log: {} records, chain head {}",
        report.audit_records,
        report
            .audit_head
            .map_or_else(|| "(none)".to_owned(), hex::encode)
    );
    if let Some(dir) = &report.data_dir {
        println!();
        println!("event log and vaults kept in {}", dir.display());
    }
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{ms} ms"))
}
