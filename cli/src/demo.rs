//! `mpc demo`: end-to-end scenarios on embedded defaults (SQLite event log,
//! in-process transport, encrypted vaults), with every fact read back from the
//! event log and the read models.
//!
//! - `foundation` (default): keygen among t-of-n parties, then two signings by
//!   different signer sets.
//! - `approval`: the seed's multi-person review: a 3-of-5 key among five approvers
//!   who sign only approved payloads; one rejects, three approve, and the signing
//!   session among the three carries their approvals, which every signer checks.
//! - `data`: data-integrity signing with a 2-of-3 data key among an application
//!   server, an HSM-backed party (SoftHSM2 through PKCS#11 when it is installed, the
//!   file vault otherwise) and a backup party; the signature is verified over the
//!   document, and a tampered copy is shown not to verify.
//! - `recovery`: a 2-of-3 account (device, server, recovery) loses its device. The
//!   account goes to `recovering`; server and recovery rebuild the device share for
//!   a newly enrolled device (its identity key bound into the session), every share
//!   is refreshed, then all three are rotated once more. The group key is unchanged
//!   (`public_key_before`), and the new device signs with the server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use futures::future::try_join_all;
use indicatif::{ProgressBar, ProgressStyle};
use mpc_actors::{
    Accounts, Approvals, CommandMeta, Coordinator, CreatedSession, NewAccount, NewKeygen,
    NewSigning, NewWorkflow, SigningPayload, StatusChange, SystemClock,
};
use mpc_engine::{
    Dkls23Engine, FileVault, Pkcs11Vault, ShareVault, ThresholdEngine, verify_signature,
};
use mpc_events::{
    AccountParties, Decision, Email, KeyId, MessageHash, Participant, PartyId, PartyOutcome,
    PublicKey, RecoveryKind, RecoveryStatus, SessionId, SessionStatus, Signature, Threshold,
    Username, WorkflowId, WorkflowStatus,
};
use mpc_party::{PartyIdentity, PartyNode, SigningPolicy};
use mpc_projections::{
    AccountsProjection, AuditLogProjection, ProjectionRunner, ReadModels, SessionStatusProjection,
    SessionStatusRow, WorkflowsProjection,
};
use mpc_store::{EventStore, SqliteStore, StreamName};
use mpc_transport::InProcessTransport;
use serde_json::json;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::local::LocalCoordinator;

const SESSION_TTL: Duration = Duration::from_secs(120);

/// Which end-to-end story the demo tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Keygen, then two signings by different signer sets.
    Foundation,
    /// Multi-person review: t of n approvers approve before the key signs.
    Approval,
    /// Data-integrity signing with an HSM-backed party.
    Data,
    /// Lost-device recovery and a share rotation of a 2-of-3 account.
    Recovery,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::Foundation => "foundation",
            Self::Approval => "approval",
            Self::Data => "data",
            Self::Recovery => "recovery",
        }
    }

    /// t and n when the caller gave none.
    pub fn default_threshold(self) -> (u16, u16) {
        match self {
            Self::Foundation | Self::Data | Self::Recovery => (2, 3),
            Self::Approval => (3, 5),
        }
    }
}

/// Where the HSM-backed party of the data scenario keeps its key-encryption key.
#[derive(Debug, Clone)]
pub struct Hsm {
    /// The PKCS#11 module (SoftHSM2's shared library).
    pub module: PathBuf,
}

/// What `mpc demo` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub scenario: Scenario,
    /// The HSM for the data scenario, when one is available (see
    /// [`prepare_softhsm`]); the file vault otherwise.
    pub hsm: Option<Hsm>,
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

/// What the approval scenario's workflow went through.
#[derive(Debug, Clone)]
pub struct WorkflowReport {
    pub workflow_id: WorkflowId,
    pub title: String,
    pub status: WorkflowStatus,
    /// The workflow as the approval-workflow read model shows it (e.g. `signed`).
    pub read_model_status: Option<String>,
    pub approved_by: Vec<PartyId>,
    pub rejected_by: Vec<PartyId>,
}

/// One recovery session of the recovery scenario's account.
#[derive(Debug, Clone)]
pub struct RecoveryReport {
    pub session_id: SessionId,
    /// `device_lost` or `share_rotation`.
    pub kind: String,
    pub status: RecoveryStatus,
    /// The key's share generation after the session.
    pub epoch: u32,
}

/// Everything the demo did.
#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: Scenario,
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
    /// Which vault each party keeps its share in.
    pub vaults: Vec<(PartyId, String)>,
    pub workflow: Option<WorkflowReport>,
    /// Data scenario: whether the signature also verifies over a tampered copy of
    /// the document (it must not).
    pub tampered_verifies: Option<bool>,
    /// Recovery scenario: the group key before the device was lost.
    pub public_key_before: Option<PublicKey>,
    /// Recovery scenario: the account's recovery sessions.
    pub recoveries: Vec<RecoveryReport>,
}

/// Prepares SoftHSM2 for the data scenario before the process starts threads: when
/// the module is installed and `SOFTHSM2_CONF` is unset, points SoftHSM2 at a fresh
/// token directory inside `dir` (tokens are created there, never in the system's
/// token directory). Returns the HSM to use, or `None` when SoftHSM2 is missing.
///
/// # Safety
///
/// Sets an environment variable: call it while the process has one thread.
pub unsafe fn prepare_softhsm(dir: &Path) -> anyhow::Result<Option<Hsm>> {
    let module = std::env::var_os("MPC_PKCS11_MODULE")
        .map_or_else(|| PathBuf::from(SOFTHSM_MODULE), PathBuf::from);
    if !module.is_file() || !softhsm_util_available() {
        return Ok(None);
    }
    if std::env::var_os("SOFTHSM2_CONF").is_none() {
        let tokens = dir.join("softhsm-tokens");
        std::fs::create_dir_all(&tokens)
            .with_context(|| format!("cannot create {}", tokens.display()))?;
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .with_context(|| format!("cannot write {}", conf.display()))?;
        // SAFETY: the caller guarantees the process has one thread.
        unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
    }
    Ok(Some(Hsm { module }))
}

const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn softhsm_util_available() -> bool {
    std::process::Command::new("softhsm2-util")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs the demo and prints its report.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let progress = if options.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
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

/// The running pieces every scenario shares.
struct World {
    dir: PathBuf,
    store: Arc<dyn EventStore>,
    coordinator: Arc<Coordinator>,
    approvals: Arc<Approvals>,
    client: Arc<LocalCoordinator>,
    transport: Arc<InProcessTransport>,
    engine: Arc<dyn ThresholdEngine>,
}

impl World {
    /// A party node with a fresh identity and a file vault under a random
    /// passphrase held only for this run.
    async fn file_node(
        &self,
        name: &PartyId,
        policy: SigningPolicy,
    ) -> anyhow::Result<Arc<PartyNode>> {
        let passphrase = Zeroizing::new(hex::encode(rand::random::<[u8; 32]>()));
        let vault_dir = self.vault_dir(name);
        let vault = tokio::task::spawn_blocking(move || {
            FileVault::create(&vault_dir, passphrase.as_bytes())
        })
        .await?
        .with_context(|| format!("cannot create the vault of {name}"))?;
        Ok(self.node(name, Arc::new(vault), policy))
    }

    /// A party node whose shares rest under a key-encryption key in a fresh token
    /// of `hsm`.
    async fn hsm_node(&self, name: &PartyId, hsm: &Hsm) -> anyhow::Result<Arc<PartyNode>> {
        let label = format!("mpc-demo-{}", &SessionId::new().to_string()[24..]);
        let pin = hex::encode(rand::random::<[u8; 16]>());
        let so_pin = Zeroizing::new(hex::encode(rand::random::<[u8; 16]>()));
        let module = hsm.module.clone();
        let vault_dir = self.vault_dir(name);
        let vault = tokio::task::spawn_blocking(move || {
            let status = std::process::Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", &label])
                .args(["--so-pin", so_pin.as_str(), "--pin", &pin])
                .stdout(std::process::Stdio::null())
                .status()
                .context("cannot run softhsm2-util")?;
            ensure!(
                status.success(),
                "softhsm2-util could not create token {label}"
            );
            Pkcs11Vault::open(&module, &label, &pin, &vault_dir).map_err(anyhow::Error::from)
        })
        .await?
        .with_context(|| format!("cannot open the PKCS#11 vault of {name}"))?;
        Ok(self.node(name, Arc::new(vault), SigningPolicy::AnyRequest))
    }

    fn vault_dir(&self, name: &PartyId) -> PathBuf {
        self.dir
            .join("parties")
            .join(name.as_str())
            .join(format!("vault-{}", SessionId::new()))
    }

    fn node(
        &self,
        name: &PartyId,
        vault: Arc<dyn ShareVault>,
        policy: SigningPolicy,
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
}

/// What a scenario produced.
struct Outcome {
    threshold: Threshold,
    parties: Vec<PartyId>,
    vaults: Vec<(PartyId, String)>,
    key_id: KeyId,
    public_key: PublicKey,
    signatures: Vec<SignatureReport>,
    workflow: Option<WorkflowReport>,
    tampered_verifies: Option<bool>,
    public_key_before: Option<PublicKey>,
    recoveries: Vec<RecoveryReport>,
    /// Sessions beyond the keygen and signing sessions whose history is shown.
    more_sessions: Vec<SessionId>,
}

/// Runs the demo: a fresh store, coordinator, transport and one node per party.
pub async fn execute(options: &Options, progress: &ProgressBar) -> anyhow::Result<Report> {
    let (t, n) = (options.threshold, options.parties);
    let threshold = Threshold::new(t, n).context("invalid --threshold/--parties")?;
    if options.scenario == Scenario::Data {
        ensure!(
            (t, n) == (2, 3),
            "the data scenario runs a 2-of-3 key (application server, HSM-backed party, backup)"
        );
    }
    if options.scenario == Scenario::Recovery {
        ensure!(
            (t, n) == (2, 3),
            "the recovery scenario runs an account's 2-of-3 key (device, server, recovery)"
        );
    }
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
        AuditLogProjection::new(models.clone()),
    )
    .await?;
    let accounts = ProjectionRunner::new(
        store.clone(),
        models.clone(),
        AccountsProjection::new(models.clone()),
    )
    .await?;
    let workflows = ProjectionRunner::new(
        store.clone(),
        models.clone(),
        WorkflowsProjection::new(models),
    )
    .await?;
    // A --data-dir may hold sessions a killed earlier run left open: caught up and
    // resumed, their deadlines fire.
    runner.catch_up().await?;
    let mut projected = runner.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let follower = runner.spawn(async {
        let _ = stopped.await;
    });
    let coordinator = Arc::new(Coordinator::new(store.clone(), Arc::new(SystemClock)));
    crate::serve::resume_open_sessions(&coordinator, &statuses).await?;
    // And workflows left pending, so that they expire.
    workflows.catch_up().await?;
    let approvals = Arc::new(Approvals::new(
        store.clone(),
        Arc::new(SystemClock),
        coordinator.clone(),
    ));
    crate::serve::resume_open_workflows(&approvals, workflows.projection()).await?;
    let world = World {
        dir: dir.to_path_buf(),
        store: store.clone(),
        client: Arc::new(LocalCoordinator(coordinator.clone())),
        coordinator,
        approvals,
        transport: Arc::new(InProcessTransport::new()),
        engine: Arc::new(Dkls23Engine),
    };

    let mut outcome = match options.scenario {
        Scenario::Foundation => foundation(&world, threshold, &options.message, progress).await?,
        Scenario::Approval => approval(&world, threshold, &options.message, progress).await?,
        Scenario::Data => {
            data(
                &world,
                threshold,
                options.hsm.as_ref(),
                &options.message,
                progress,
            )
            .await?
        }
        Scenario::Recovery => recovery(&world, &options.message, progress).await?,
    };

    progress.inc(1);
    progress.set_message("reading the session history back from the log");
    let mut history = Vec::new();
    let keygen_id = outcome.key_id.keygen_session();
    let sessions = std::iter::once(keygen_id)
        .chain(outcome.more_sessions.iter().copied())
        .chain(outcome.signatures.iter().map(|s| s.session_id));
    for session_id in sessions {
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
    accounts
        .catch_up()
        .await
        .context("the accounts projection stopped")?;
    workflows
        .catch_up()
        .await
        .context("the approval-workflow projection stopped")?;
    if let Some(w) = outcome.workflow.as_mut() {
        w.read_model_status = workflows
            .projection()
            .get(w.workflow_id)
            .await?
            .map(|row| row.status.to_string());
    }
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
        scenario: options.scenario,
        threshold: outcome.threshold,
        parties: outcome.parties,
        key_id: outcome.key_id,
        public_key: outcome.public_key,
        signatures: outcome.signatures,
        history,
        read_model,
        audit_records,
        audit_head,
        data_dir: options.data_dir.clone(),
        vaults: outcome.vaults,
        workflow: outcome.workflow,
        tampered_verifies: outcome.tampered_verifies,
        public_key_before: outcome.public_key_before,
        recoveries: outcome.recoveries,
    })
}

/// Keygen, then two signings by the first and the last t parties.
async fn foundation(
    world: &World,
    threshold: Threshold,
    message: &[u8],
    progress: &ProgressBar,
) -> anyhow::Result<Outcome> {
    progress.set_length(4);
    let names = party_names(threshold.n());
    let mut nodes = Vec::with_capacity(names.len());
    for name in &names {
        nodes.push(world.file_node(name, SigningPolicy::AnyRequest).await?);
    }
    let (key_id, public_key) = keygen(world, threshold, &nodes, progress).await?;
    let t = usize::from(threshold.t());
    let signer_sets = [nodes[..t].to_vec(), nodes[nodes.len() - t..].to_vec()];
    let mut signatures = Vec::new();
    for signers in signer_sets {
        progress.inc(1);
        progress.set_message(format!("signing with {}", joined(&signers)));
        let created = world
            .coordinator
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
        signatures.push(sign(world, created, public_key, &signers, message).await?);
    }
    Ok(Outcome {
        threshold,
        vaults: file_vaults(&names),
        parties: names,
        key_id,
        public_key,
        signatures,
        workflow: None,
        tampered_verifies: None,
        public_key_before: None,
        recoveries: Vec::new(),
        more_sessions: Vec::new(),
    })
}

/// A t-of-n review: one approver rejects, t approve, the approvers sign.
async fn approval(
    world: &World,
    threshold: Threshold,
    message: &[u8],
    progress: &ProgressBar,
) -> anyhow::Result<Outcome> {
    progress.set_length(5);
    let names: Vec<PartyId> = (1..=threshold.n())
        .map(|i| PartyId::parse(format!("approver-{i}")))
        .collect::<Result<_, _>>()?;
    let mut nodes = Vec::with_capacity(names.len());
    for name in &names {
        nodes.push(world.file_node(name, SigningPolicy::ApprovedOnly).await?);
    }
    let (key_id, public_key) = keygen(world, threshold, &nodes, progress).await?;

    progress.inc(1);
    progress.set_message("approval workflow: collecting signed decisions");
    let approvals = &world.approvals;
    let title = "Demo review: release the payload".to_owned();
    let workflow_id = approvals
        .create(
            NewWorkflow {
                key_id,
                title: title.clone(),
                payload: message.to_vec(),
                ttl: SESSION_TTL,
            },
            CommandMeta::new(),
        )
        .await?;
    let payload_hash = MessageHash::from_bytes(Sha256::digest(message).into());
    // Approver 2 rejects (when n − t allows one rejection); then the first t others
    // approve.
    let t = usize::from(threshold.t());
    let rejecter = (nodes.len() > t).then_some(1);
    let approvers: Vec<usize> = (0..nodes.len())
        .filter(|i| Some(*i) != rejecter)
        .take(t)
        .collect();
    let decisions = rejecter
        .map(|i| (i, Decision::Reject))
        .into_iter()
        .chain(approvers.iter().map(|i| (*i, Decision::Approve)));
    let mut workflow = None;
    for (i, decision) in decisions {
        let node = &nodes[i];
        let signature = node
            .identity()
            .sign_decision(workflow_id, &payload_hash, decision);
        workflow = Some(
            approvals
                .decide(
                    workflow_id,
                    node.id().clone(),
                    decision,
                    signature,
                    CommandMeta::new(),
                )
                .await?,
        );
    }
    let workflow = workflow.context("no decisions were made")?;
    ensure!(
        workflow.status == WorkflowStatus::Approved,
        "the workflow is {} after {t} approvals",
        workflow.status
    );

    progress.inc(1);
    let signers: Vec<Arc<PartyNode>> = workflow
        .approvers
        .iter()
        .filter_map(|a| nodes.iter().find(|n| n.id() == a).cloned())
        .collect();
    progress.set_message(format!("signing with the approvers {}", joined(&signers)));
    let created = approvals
        .start_signing(workflow_id, SESSION_TTL, CommandMeta::new())
        .await?;
    let signature = sign(world, created, public_key, &signers, message).await?;
    let workflow = approvals.workflow(workflow_id).await?;
    let rejected_by = workflow
        .decisions
        .iter()
        .filter(|d| d.decision == Decision::Reject)
        .map(|d| d.approver.clone())
        .collect();
    Ok(Outcome {
        threshold,
        vaults: file_vaults(&names),
        parties: names,
        key_id,
        public_key,
        signatures: vec![signature],
        workflow: Some(WorkflowReport {
            workflow_id,
            title,
            status: workflow.status,
            read_model_status: None,
            approved_by: workflow.approvers.clone(),
            rejected_by,
        }),
        tampered_verifies: None,
        public_key_before: None,
        recoveries: Vec::new(),
        more_sessions: Vec::new(),
    })
}

/// A 2-of-3 data key among an application server, an HSM-backed party and a
/// backup; the application server and the HSM party sign a document.
async fn data(
    world: &World,
    threshold: Threshold,
    hsm: Option<&Hsm>,
    document: &[u8],
    progress: &ProgressBar,
) -> anyhow::Result<Outcome> {
    progress.set_length(4);
    let app = PartyId::parse("app-server")?;
    let hsm_party = PartyId::parse("hsm")?;
    let backup = PartyId::parse("backup")?;
    let (hsm_node, hsm_vault) = match hsm {
        Some(hsm) => (
            world.hsm_node(&hsm_party, hsm).await?,
            format!("pkcs11 ({})", hsm.module.display()),
        ),
        None => (
            world
                .file_node(&hsm_party, SigningPolicy::AnyRequest)
                .await?,
            "file (SoftHSM2 not installed)".to_owned(),
        ),
    };
    let nodes = vec![
        world.file_node(&app, SigningPolicy::AnyRequest).await?,
        hsm_node,
        world.file_node(&backup, SigningPolicy::AnyRequest).await?,
    ];
    let (key_id, public_key) = keygen(world, threshold, &nodes, progress).await?;

    progress.inc(1);
    let signers = nodes[..2].to_vec();
    progress.set_message(format!("signing the document with {}", joined(&signers)));
    let created = world
        .coordinator
        .create_signing(
            NewSigning {
                key_id,
                signers: signers.iter().map(|n| n.id().clone()).collect(),
                payload: SigningPayload::Message(document.to_vec()),
                ttl: SESSION_TTL,
            },
            CommandMeta::new(),
        )
        .await?;
    let signature = sign(world, created, public_key, &signers, document).await?;
    let mut tampered = document.to_vec();
    tampered.push(b'!');
    let tampered_hash = MessageHash::from_bytes(Sha256::digest(&tampered).into());
    let tampered_verifies = verify_signature(&public_key, &tampered_hash, &signature.signature);
    ensure!(
        !tampered_verifies,
        "the signature verifies over a tampered document"
    );
    let parties = vec![app.clone(), hsm_party.clone(), backup.clone()];
    Ok(Outcome {
        threshold,
        vaults: vec![
            (app, "file".to_owned()),
            (hsm_party, hsm_vault),
            (backup, "file".to_owned()),
        ],
        parties,
        key_id,
        public_key,
        signatures: vec![signature],
        workflow: None,
        tampered_verifies: Some(tampered_verifies),
        public_key_before: None,
        recoveries: Vec::new(),
        more_sessions: Vec::new(),
    })
}

/// A 2-of-3 account loses its device: the account goes to recovery, server and
/// recovery rebuild the device share for a new device and every share is refreshed;
/// then a share rotation; then the new device signs with the server.
async fn recovery(
    world: &World,
    message: &[u8],
    progress: &ProgressBar,
) -> anyhow::Result<Outcome> {
    progress.set_length(6);
    let accounts = Accounts::new(
        world.store.clone(),
        Arc::new(SystemClock),
        world.coordinator.clone(),
    );
    let names = party_names(3);
    let mut nodes = Vec::with_capacity(3);
    for name in &names {
        nodes.push(world.file_node(name, SigningPolicy::AnyRequest).await?);
    }
    let holder = |node: &Arc<PartyNode>| Participant {
        party_id: node.id().clone(),
        identity: node.identity().public(),
    };
    progress.inc(1);
    progress.set_message("opening account alice and its 2-of-3 keygen");
    let opened = accounts
        .open(
            NewAccount {
                username: Username::parse("alice")?,
                email: Email::parse("alice@example.com")?,
                phone: None,
                parties: AccountParties {
                    device: holder(&nodes[0]),
                    server: holder(&nodes[1]),
                    recovery: holder(&nodes[2]),
                },
                keygen_ttl: SESSION_TTL,
            },
            CommandMeta::new(),
        )
        .await?;
    let account_id = opened.account_id;
    let keygen_id = opened.keygen.session_id;
    run_all(&nodes, &opened.keygen).await?;
    let session = world
        .coordinator
        .wait_for(keygen_id, |s| s.status.is_terminal())
        .await?;
    let public_key_before = match (&session.status, &session.outcome) {
        (SessionStatus::Completed, Some(PartyOutcome::PublicKey(pk))) => *pk,
        (status, _) => bail!("keygen session ended {status}: {:?}", session.failure),
    };

    progress.inc(1);
    progress.set_message("device lost: the account goes to recovery");
    accounts
        .change_status(
            account_id,
            StatusChange::StartRecovery("the user's phone was lost".into()),
            CommandMeta::new(),
        )
        .await?;
    let new_device = world
        .file_node(&names[0], SigningPolicy::AnyRequest)
        .await?;
    let after_loss = vec![new_device.clone(), nodes[1].clone(), nodes[2].clone()];

    progress.inc(1);
    progress.set_message("server and recovery rebuild the device share; all shares refreshed");
    let kind = RecoveryKind::DeviceLost {
        identity: new_device.identity().public(),
    };
    let mut recoveries = Vec::new();
    let mut more_sessions = Vec::new();
    for kind in [kind, RecoveryKind::ShareRotation] {
        if kind == RecoveryKind::ShareRotation {
            progress.inc(1);
            progress.set_message("share rotation: all three shares refreshed again");
        }
        let created = accounts
            .recover(account_id, kind, SESSION_TTL, CommandMeta::new())
            .await?;
        let (ran, account) = tokio::join!(
            run_all(&after_loss, &created),
            accounts.follow_recovery(account_id, CommandMeta::new())
        );
        ran?;
        let account = account?;
        let recovery = account
            .recoveries
            .iter()
            .find(|r| r.session_id == created.session_id)
            .context("the recovery session is not recorded")?;
        ensure!(
            recovery.status == RecoveryStatus::Completed,
            "{} recovery ended {}: {:?}",
            recovery.kind.name(),
            recovery.status,
            recovery.failure
        );
        let key = accounts.key(account_id).await?;
        ensure!(
            key.public_key == public_key_before,
            "the group key changed in a refresh"
        );
        recoveries.push(RecoveryReport {
            session_id: created.session_id,
            kind: recovery.kind.name().to_owned(),
            status: recovery.status,
            epoch: key.epoch,
        });
        more_sessions.push(created.session_id);
    }

    progress.inc(1);
    progress.set_message("the new device signs with the server");
    let created = accounts
        .sign(
            account_id,
            SigningPayload::Message(message.to_vec()),
            SESSION_TTL,
            CommandMeta::new(),
        )
        .await?;
    let signature = sign(world, created, public_key_before, &after_loss[..2], message).await?;
    Ok(Outcome {
        threshold: Threshold::new(2, 3)?,
        vaults: file_vaults(&names),
        parties: names,
        key_id: KeyId::of_keygen(keygen_id),
        public_key: accounts.key(account_id).await?.public_key,
        signatures: vec![signature],
        workflow: None,
        tampered_verifies: None,
        public_key_before: Some(public_key_before),
        recoveries,
        more_sessions,
    })
}

/// Has every node take part in `created` (whatever its kind) with its join token.
pub(crate) async fn run_all(
    nodes: &[Arc<PartyNode>],
    created: &CreatedSession,
) -> anyhow::Result<()> {
    let session_id = created.session_id;
    let tasks = nodes.iter().map(|node| {
        let node = node.clone();
        let token = created
            .join_tokens
            .get(node.id())
            .map(|t| t.expose().to_owned());
        async move {
            let token = token.with_context(|| format!("no join token for {}", node.id()))?;
            let id = node.id().clone();
            tokio::spawn(async move { node.participate(session_id, &token).await })
                .await?
                .with_context(|| format!("{id} failed in session {session_id}"))
        }
    });
    try_join_all(tasks).await?;
    Ok(())
}

fn file_vaults(names: &[PartyId]) -> Vec<(PartyId, String)> {
    names
        .iter()
        .map(|n| (n.clone(), "file".to_owned()))
        .collect()
}

fn joined(nodes: &[Arc<PartyNode>]) -> String {
    nodes
        .iter()
        .map(|n| n.id().as_str())
        .collect::<Vec<_>>()
        .join(" + ")
}

/// Distributed key generation among `nodes`; the key once every party agrees.
async fn keygen(
    world: &World,
    threshold: Threshold,
    nodes: &[Arc<PartyNode>],
    progress: &ProgressBar,
) -> anyhow::Result<(KeyId, PublicKey)> {
    progress.inc(1);
    progress.set_message(format!("distributed key generation ({threshold})"));
    let created = world
        .coordinator
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
    let session = world
        .coordinator
        .wait_for(keygen_id, |s| s.status == SessionStatus::Completed)
        .await?;
    match (&session.status, &session.outcome) {
        (SessionStatus::Completed, Some(PartyOutcome::PublicKey(pk))) => {
            Ok((KeyId::of_keygen(keygen_id), *pk))
        }
        (status, _) => bail!("keygen session ended {status}: {:?}", session.failure),
    }
}

/// Has `signers` sign in `created`; the signature once it is recorded and verified.
async fn sign(
    world: &World,
    created: CreatedSession,
    public_key: PublicKey,
    signers: &[Arc<PartyNode>],
    message: &[u8],
) -> anyhow::Result<SignatureReport> {
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
    let session = world
        .coordinator
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
        "scenario": report.scenario.name(),
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
        "vaults": report.vaults.iter().map(|(p, v)| json!({
            "party": p.as_str(),
            "vault": v,
        })).collect::<Vec<_>>(),
        "workflow": report.workflow.as_ref().map(|w| json!({
            "workflow_id": w.workflow_id.to_string(),
            "title": w.title,
            "status": w.status.to_string(),
            "read_model_status": w.read_model_status,
            "approved_by": w.approved_by.iter().map(PartyId::as_str).collect::<Vec<_>>(),
            "rejected_by": w.rejected_by.iter().map(PartyId::as_str).collect::<Vec<_>>(),
        })),
        "tampered_data_verifies": report.tampered_verifies,
        "public_key_before": report.public_key_before.map(|pk| hex::encode(pk.as_bytes())),
        "recovery_sessions": report.recoveries.iter().map(|r| json!({
            "session_id": r.session_id.to_string(),
            "type": r.kind,
            "status": r.status.to_string(),
            "epoch": r.epoch,
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
    println!(
        "scenario {}: {} key among {}",
        report.scenario.name(),
        report.threshold,
        names(&report.parties)
    );
    for (party, vault) in &report.vaults {
        println!("  {:<12} vault {vault}", party.as_str());
    }
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
    if let Some(w) = &report.workflow {
        println!();
        println!("approval workflow {} ({:?})", w.workflow_id, w.title);
        println!("  rejected by {}", names(&w.rejected_by));
        println!("  approved by {}", names(&w.approved_by));
        println!("  status      {}", w.status);
        if let Some(projected) = &w.read_model_status {
            println!("  read model  {projected}");
        }
    }
    if let Some(before) = &report.public_key_before {
        println!();
        println!(
            "public key before recovery {}",
            hex::encode(before.as_bytes())
        );
        for r in &report.recoveries {
            println!(
                "  recovery {} {:<14} {:<10} share generation {}",
                r.session_id, r.kind, r.status, r.epoch
            );
        }
    }
    if let Some(tampered) = report.tampered_verifies {
        println!();
        println!(
            "tampered document verifies: {}",
            if tampered { "YES (broken)" } else { "no" }
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
