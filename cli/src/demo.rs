//! `mpc demo`: end-to-end scenarios on embedded defaults (SQLite event log,
//! in-process transport, encrypted vaults), with every fact read back from the
//! event log and the read models.
//!
//! The stories are the [`Scenario`]s (`foundation`, `approval`, `data`,
//! `recovery`); the function that runs each one says what it shows.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use indicatif::{ProgressBar, ProgressStyle};
use mpc_actors::{
    CommandMeta, CoordinatorError, CreatedSession, NewAccount, NewSigning, NewWorkflow,
    SigningPayload, StatusChange,
};
use mpc_crypto::verify_signature;
use mpc_events::{
    AccountParties, Decision, Email, KeyId, Participant, PartyId, PartyOutcome, PublicKey,
    RecoveryKind, RecoveryStatus, SessionId, SessionStatus, Signature, Threshold, Username,
    WorkflowStatus,
};
use mpc_party::{KeyPolicy, PartyNode};
use mpc_projections::{
    AuditLogProjection, ReadModels, SessionStatusProjection, WorkflowsProjection,
};
use mpc_store::{EventStore, SqliteStore, StreamName};
use mpc_transport::InProcessTransport;
use serde::Serialize;

use mpc_app::process::resume;
use mpc_app::softhsm::Hsm;
use mpc_app::stack::{Stack, message_hash, run_all};

pub use crate::demo_report::{
    HistoryEntry, RecoveryReport, Report, SignatureReport, WorkflowReport, print_text, to_json,
};

const SESSION_TTL: Duration = Duration::from_secs(120);

/// Which end-to-end story the demo tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
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
    pub(crate) fn name(self) -> &'static str {
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

/// What `mpc demo` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub scenario: Scenario,
    /// The HSM for the data scenario, when one is available (see
    /// `mpc_app::softhsm::prepare_softhsm`); the file vault otherwise.
    pub hsm: Option<Hsm>,
    pub threshold: u16,
    pub parties: u16,
    pub data_dir: Option<PathBuf>,
    pub message: Vec<u8>,
    pub json: bool,
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

/// A party node whose shares rest under a key-encryption key in a fresh token of
/// `hsm`.
async fn hsm_node(stack: &Stack, name: &PartyId, hsm: &Hsm) -> anyhow::Result<Arc<PartyNode>> {
    let vault = hsm
        .fresh_vault(stack.vault_dir(name))
        .await
        .with_context(|| format!("cannot open the PKCS#11 vault of {name}"))?;
    Ok(stack.node(name, Arc::new(vault), KeyPolicy::AnyRequest))
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

impl Outcome {
    /// A key among `parties` (each with a file vault) and its signatures.
    fn new(
        threshold: Threshold,
        parties: Vec<PartyId>,
        (key_id, public_key): (KeyId, PublicKey),
        signatures: Vec<SignatureReport>,
    ) -> Self {
        Self {
            threshold,
            vaults: parties
                .iter()
                .map(|n| (n.clone(), "file".to_owned()))
                .collect(),
            parties,
            key_id,
            public_key,
            signatures,
            workflow: None,
            tampered_verifies: None,
            public_key_before: None,
            recoveries: Vec::new(),
            more_sessions: Vec::new(),
        }
    }
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
    let world = &Stack::new(
        dir,
        store.clone(),
        models.clone(),
        Arc::new(InProcessTransport::new()),
    );
    // A --data-dir may hold sessions a killed earlier run left open, and workflows
    // left pending: caught up and resumed, their deadlines fire.
    resume(&world.services, &models).await?;

    let mut outcome = match options.scenario {
        Scenario::Foundation => foundation(world, threshold, &options.message, progress).await?,
        Scenario::Approval => approval(world, threshold, &options.message, progress).await?,
        Scenario::Data => {
            data(
                world,
                threshold,
                options.hsm.as_ref(),
                &options.message,
                progress,
            )
            .await?
        }
        Scenario::Recovery => recovery(world, &options.message, progress).await?,
    };

    progress.inc(1);
    progress.set_message("reading the session history back from the log");
    let mut history = Vec::new();
    let keygen_id = outcome.key_id.keygen_session();
    let sessions = std::iter::once(keygen_id)
        .chain(outcome.more_sessions.iter().copied())
        .chain(outcome.signatures.iter().map(|s| s.session_id));
    for session_id in sessions {
        let stream = StreamName::new(mpc_events::stream::SESSION, session_id)?;
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
    progress.set_message("catching the read models up");
    world.catch_up_read_models().await?;
    let (audit_records, audit_head) = AuditLogProjection::new(models.clone()).head().await?;
    if let Some(w) = outcome.workflow.as_mut() {
        w.read_model_status = WorkflowsProjection::new(models.clone())
            .get(w.workflow_id)
            .await?
            .map(|row| row.status.to_string());
    }
    let statuses = SessionStatusProjection::new(models);
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
    world: &Stack,
    threshold: Threshold,
    message: &[u8],
    progress: &ProgressBar,
) -> anyhow::Result<Outcome> {
    progress.set_length(4);
    let names = party_names(threshold.n());
    let mut nodes = Vec::with_capacity(names.len());
    for name in &names {
        nodes.push(world.file_node(name, KeyPolicy::AnyRequest).await?);
    }
    let (key_id, public_key) =
        keygen(world, threshold, KeyPolicy::AnyRequest, &nodes, progress).await?;
    let t = usize::from(threshold.t());
    let signer_sets = [nodes[..t].to_vec(), nodes[nodes.len() - t..].to_vec()];
    let mut signatures = Vec::new();
    for signers in signer_sets {
        progress.inc(1);
        progress.set_message(format!("signing with {}", joined(&signers)));
        signatures.push(sign_new(world, (key_id, public_key), &signers, message).await?);
    }
    Ok(Outcome::new(
        threshold,
        names,
        (key_id, public_key),
        signatures,
    ))
}

/// A t-of-n review: one approver rejects, t approve, the approvers sign.
async fn approval(
    world: &Stack,
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
        nodes.push(world.file_node(name, KeyPolicy::AnyRequest).await?);
    }
    // The gate is the key's, pinned by every approver at keygen: the nodes run
    // with the default policy and still refuse to sign this key unapproved.
    let (key_id, public_key) =
        keygen(world, threshold, KeyPolicy::ApprovedOnly, &nodes, progress).await?;
    let unapproved = world
        .services
        .coordinator
        .create_signing(
            NewSigning {
                key_id,
                signers: names[..usize::from(threshold.t())].to_vec(),
                payload: SigningPayload::Message(message.to_vec()),
                ttl: SESSION_TTL,
            },
            CommandMeta::new(),
        )
        .await;
    let unapproved_request = match unapproved {
        Err(refusal @ CoordinatorError::ApprovalRequired(_)) => refusal.to_string(),
        Err(other) => return Err(other.into()),
        Ok(created) => bail!(
            "a plain signing session {} of an approved-only key was created",
            created.session_id
        ),
    };

    progress.inc(1);
    progress.set_message("approval workflow: collecting signed decisions");
    let approvals = &world.services.approvals;
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
            .holder()
            .decide(workflow_id, key_id, message, decision)?;
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
        workflow: Some(WorkflowReport {
            workflow_id,
            title,
            status: workflow.status,
            read_model_status: None,
            approved_by: workflow.approvers.clone(),
            rejected_by,
            key_policy: world.services.coordinator.key_state(key_id).await?.policy,
            unapproved_request,
        }),
        ..Outcome::new(threshold, names, (key_id, public_key), vec![signature])
    })
}

/// A 2-of-3 data key among an application server, an HSM-backed party and a
/// backup; the application server and the HSM party sign a document.
async fn data(
    world: &Stack,
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
            hsm_node(world, &hsm_party, hsm).await?,
            format!("pkcs11 ({})", hsm.module.display()),
        ),
        None => (
            world.file_node(&hsm_party, KeyPolicy::AnyRequest).await?,
            "file (SoftHSM2 not installed)".to_owned(),
        ),
    };
    let nodes = vec![
        world.file_node(&app, KeyPolicy::AnyRequest).await?,
        hsm_node,
        world.file_node(&backup, KeyPolicy::AnyRequest).await?,
    ];
    let (key_id, public_key) =
        keygen(world, threshold, KeyPolicy::AnyRequest, &nodes, progress).await?;

    progress.inc(1);
    let signers = nodes[..2].to_vec();
    progress.set_message(format!("signing the document with {}", joined(&signers)));
    let signature = sign_new(world, (key_id, public_key), &signers, document).await?;
    let mut tampered = document.to_vec();
    tampered.push(b'!');
    let tampered_verifies =
        verify_signature(&public_key, &message_hash(&tampered), &signature.signature);
    ensure!(
        !tampered_verifies,
        "the signature verifies over a tampered document"
    );
    let mut outcome = Outcome::new(
        threshold,
        vec![app, hsm_party, backup],
        (key_id, public_key),
        vec![signature],
    );
    outcome.vaults[1].1 = hsm_vault;
    outcome.tampered_verifies = Some(tampered_verifies);
    Ok(outcome)
}

/// A 2-of-3 account loses its device: the account goes to recovery, server and
/// recovery rebuild the device share for a new device and every share is refreshed;
/// then a share rotation; then the new device signs with the server.
async fn recovery(
    world: &Stack,
    message: &[u8],
    progress: &ProgressBar,
) -> anyhow::Result<Outcome> {
    progress.set_length(6);
    let accounts = &world.services.accounts;
    let names = party_names(3);
    let mut nodes = Vec::with_capacity(3);
    for name in &names {
        nodes.push(world.file_node(name, KeyPolicy::AnyRequest).await?);
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
        .services
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
    let new_device = world.file_node(&names[0], KeyPolicy::AnyRequest).await?;
    let after_loss = vec![new_device.clone(), nodes[1].clone(), nodes[2].clone()];

    progress.inc(1);
    progress
        .set_message("server and recovery authorize and rebuild the device share; all refreshed");
    let identity = new_device.identity().public();
    let key_id = accounts.key(account_id).await?.key_id;
    let authorizations = nodes[1..]
        .iter()
        .map(|helper| {
            helper
                .holder()
                .authorize_recovery(key_id, &names[0], &identity)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut recoveries = Vec::new();
    let mut more_sessions = Vec::new();
    for (kind, authorizations) in [
        (RecoveryKind::DeviceLost { identity }, authorizations),
        (RecoveryKind::ShareRotation, Vec::new()),
    ] {
        if kind == RecoveryKind::ShareRotation {
            progress.inc(1);
            progress.set_message("share rotation: all three shares refreshed again");
        }
        let authorized_by = authorizations.iter().map(|a| a.approver.clone()).collect();
        let created = accounts
            .recover(
                account_id,
                kind,
                authorizations,
                SESSION_TTL,
                CommandMeta::new(),
            )
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
            authorized_by,
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
    let public_key = accounts.key(account_id).await?.public_key;
    Ok(Outcome {
        public_key_before: Some(public_key_before),
        recoveries,
        more_sessions,
        ..Outcome::new(
            Threshold::new(2, 3)?,
            names,
            (KeyId::of_keygen(keygen_id), public_key),
            vec![signature],
        )
    })
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
    world: &Stack,
    threshold: Threshold,
    policy: KeyPolicy,
    nodes: &[Arc<PartyNode>],
    progress: &ProgressBar,
) -> anyhow::Result<(KeyId, PublicKey)> {
    progress.inc(1);
    progress.set_message(format!(
        "distributed key generation ({threshold}, {policy})"
    ));
    Ok(world.keygen(threshold, policy, nodes, SESSION_TTL).await?)
}

/// Has `signers` sign in `created`; the signature once it is recorded and verified.
async fn sign(
    world: &Stack,
    created: CreatedSession,
    public_key: PublicKey,
    signers: &[Arc<PartyNode>],
    message: &[u8],
) -> anyhow::Result<SignatureReport> {
    let signature = world.sign(&created, public_key, signers, message).await?;
    Ok(signature_report(
        created.session_id,
        signers,
        message,
        signature,
    ))
}

/// A signing session of `message` among `signers`, run; its signature once recorded
/// and verified.
async fn sign_new(
    world: &Stack,
    key: (KeyId, PublicKey),
    signers: &[Arc<PartyNode>],
    message: &[u8],
) -> anyhow::Result<SignatureReport> {
    let (session_id, signature) = world
        .sign_message(key, signers, message, SESSION_TTL)
        .await?;
    Ok(signature_report(session_id, signers, message, signature))
}

fn signature_report(
    session_id: SessionId,
    signers: &[Arc<PartyNode>],
    message: &[u8],
    signature: Signature,
) -> SignatureReport {
    SignatureReport {
        session_id,
        signers: signers.iter().map(|n| n.id().clone()).collect(),
        message: message.to_vec(),
        message_hash: message_hash(message),
        signature,
        verified: true,
    }
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
