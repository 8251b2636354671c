//! `mpc party`: a party node process (the process itself is `mpc_app::party`).
//!
//! - `init` creates the party's vault and identity keys and prints the public
//!   identity to register with sessions;
//! - `identity` prints it again;
//! - `run` is the server role: it listens for invitations (session id + join token)
//!   and takes part in each session it is invited to;
//! - `join` is the client role: it takes part in one session and prints the result;
//! - `authorize-recovery` signs this holder's authorization of another holder's
//!   repair, checked against the roster it pinned (offline);
//! - `approvals list|show|approve|reject` is an approver's review desk: the review
//!   requests its node received (`mpc_app::reviews`), each payload shown with its
//!   SHA-256, and the decision signed over the stored payload the human saw (named
//!   by that digest) and posted;
//! - `recoveries list|show|approve|reject` is a holder's recovery desk: the requests
//!   to rebuild another holder's lost share for a new device that its node received
//!   (`mpc_app::recoveries`), each with the new device's identity keys to compare
//!   with what that device shows; approving signs the authorization (checked
//!   against the pinned roster) and keeps it for `mpc recovery start
//!   --authorizations-from`;
//! - `decide` signs this approver's decision on a workflow over a payload file it
//!   reviewed and the key as its vault holds it, and posts it.
//!
//! `run` and `join` take `--peers FILE`: the other parties' identities, obtained out
//! of band; a keygen (or a repair onto this device) runs only among exactly those.
//!
//! Shares rest in a vault chosen with `--vault` (`MPC_VAULT`): `file` (the default,
//! encrypted under a passphrase) or `pkcs11` (encrypted under a non-extractable key in
//! a PKCS#11 token, configured with `--pkcs11-module`, `--pkcs11-token` and
//! `--pkcs11-pin-file` or `MPC_PKCS11_PIN`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use mpc_api::{IdentityDto, ReportRequest, SignedApprovalDto};
use mpc_app::party::{self as process, InvitationListener, NodeConfig, VaultConfig};
use mpc_app::recoveries::RecoveryDesk;
use mpc_app::reviews::ReviewDesk;
use mpc_crypto::PartyIdentity;
use mpc_events::{Decision, IdentityKey, KeyId, PartyId, PartyOutcome, SessionId, WorkflowId};
use mpc_party::{KeyPolicy, Peers};
use serde_json::json;
use zeroize::Zeroizing;

use crate::infra::TransportArgs;
use crate::operator::read_identity;

pub(crate) const INVITATION_TOKEN: &str = "MPC_PARTY_INVITATION_TOKEN";
const APPROVER_TOKEN: &str = "MPC_PARTY_APPROVER_TOKEN";

#[derive(Subcommand, Debug)]
pub enum PartyCommand {
    /// Create this party's vault and identity keys; print the public identity.
    Init(VaultArgs),
    /// Print this party's public identity.
    Identity(VaultArgs),
    /// Server role: take part in every session this party is invited to.
    Run(RunArgs),
    /// Client role: take part in one session and print the result.
    Join(JoinArgs),
    /// Authorize rebuilding another holder's lost share for a new device; print the
    /// authorization for `mpc recovery start --authorization`.
    AuthorizeRecovery(AuthorizeArgs),
    /// Approve or reject a workflow's payload (the file you reviewed); print the
    /// workflow afterwards.
    Decide(DecideArgs),
    /// The review requests this node received: list, show, approve or reject them.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// The recovery requests this node received: list, show, approve or reject them.
    #[command(subcommand)]
    Recoveries(RecoveriesCommand),
}

#[derive(Subcommand, Debug)]
pub enum RecoveriesCommand {
    /// Every recovery request, pending and decided, as JSON lines.
    List(DeskArgs),
    /// One recovery request: the key, the holder whose share is lost and the new
    /// device's identity keys (compare them with what the new device shows).
    Show(RecoveryShowArgs),
    /// Approve: sign this holder's authorization of the repair; print the request.
    Approve(RecoveryApproveArgs),
    /// Reject the request; print it.
    Reject(RecoveryShowArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RecoveryShowArgs {
    #[command(flatten)]
    pub desk: DeskArgs,
    /// The request's id (`list` prints it).
    #[arg(long)]
    pub request: String,
}

#[derive(Args, Debug, Clone)]
pub struct RecoveryApproveArgs {
    #[command(flatten)]
    pub vault: VaultArgs,
    /// The request's id (`list` prints it): the SHA-256 of what it asks, so it
    /// names exactly the key, lost holder and device identity you were shown.
    #[arg(long)]
    pub request: String,
}

#[derive(Subcommand, Debug)]
pub enum ApprovalsCommand {
    /// Every review request, pending and decided, as JSON lines (without payloads).
    List(DeskArgs),
    /// One review request: its payload (hex, and as text when it is UTF-8) and the
    /// SHA-256 an approval or rejection must name.
    Show(ShowArgs),
    /// Approve the payload you were shown; print the workflow afterwards.
    Approve(VerdictArgs),
    /// Reject the payload you were shown; print the workflow afterwards.
    Reject(VerdictArgs),
}

#[derive(Args, Debug, Clone)]
pub struct DeskArgs {
    /// Directory of this party's vault (its reviews are under it).
    #[arg(long, env = "MPC_DATA_DIR")]
    pub data_dir: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct ShowArgs {
    #[command(flatten)]
    pub desk: DeskArgs,
    #[arg(long)]
    pub workflow: String,
}

#[derive(Args, Debug, Clone)]
pub struct VerdictArgs {
    #[command(flatten)]
    pub vault: VaultArgs,
    /// Base URL of the coordinator's gateway.
    #[arg(long, env = "MPC_COORDINATOR_URL")]
    pub coordinator: String,
    #[arg(long)]
    pub workflow: String,
    /// The SHA-256 `show` printed for the payload you reviewed; refused if the
    /// stored payload changed since.
    #[arg(long)]
    pub payload_sha256: String,
}

#[derive(Args, Debug, Clone)]
pub struct DecideArgs {
    #[command(flatten)]
    pub vault: VaultArgs,
    /// Base URL of the coordinator's gateway.
    #[arg(long, env = "MPC_COORDINATOR_URL")]
    pub coordinator: String,
    #[arg(long)]
    pub workflow: WorkflowId,
    /// The key the payload is to be signed with.
    #[arg(long)]
    pub key: KeyId,
    /// The payload you reviewed; the decision is signed over exactly these bytes.
    #[arg(long)]
    pub payload_file: PathBuf,
    #[arg(long, value_enum)]
    pub decision: Verdict,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

#[derive(Args, Debug, Clone)]
pub struct AuthorizeArgs {
    #[command(flatten)]
    pub vault: VaultArgs,
    #[arg(long)]
    pub key: KeyId,
    /// The holder whose share is lost (e.g. `device`).
    #[arg(long)]
    pub target: PartyId,
    /// The new device's identity: the JSON `mpc party identity` prints, `-` for stdin.
    #[arg(long)]
    pub device_identity_json: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct VaultArgs {
    /// This party's id (e.g. `server`).
    #[arg(long, env = "MPC_PARTY_ID")]
    pub id: PartyId,
    /// Directory of this party's vault.
    #[arg(long, env = "MPC_DATA_DIR")]
    pub data_dir: PathBuf,
    /// File holding the vault passphrase (default: the MPC_VAULT_PASSPHRASE variable).
    #[arg(long, env = "MPC_VAULT_PASSPHRASE_FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Where shares rest: passphrase-encrypted files, or files encrypted under a
    /// key-encryption key that stays in a PKCS#11 token.
    #[arg(long = "vault", env = "MPC_VAULT", value_enum, default_value_t = VaultKind::File)]
    pub vault_kind: VaultKind,
    /// PKCS#11 module (shared library) of the HSM, for `--vault pkcs11`.
    #[arg(long, env = "MPC_PKCS11_MODULE")]
    pub pkcs11_module: Option<PathBuf>,
    /// Label of the token holding the key-encryption key, for `--vault pkcs11`.
    #[arg(long, env = "MPC_PKCS11_TOKEN")]
    pub pkcs11_token: Option<String>,
    /// File holding the token's user PIN (default: the MPC_PKCS11_PIN variable).
    #[arg(long, env = "MPC_PKCS11_PIN_FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaultKind {
    File,
    Pkcs11,
}

#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    #[command(flatten)]
    pub vault: VaultArgs,
    /// Base URL of the coordinator's gateway.
    #[arg(long, env = "MPC_COORDINATOR_URL")]
    pub coordinator: String,
    /// Envelopes go through Kafka when brokers are given, else through the gateway.
    #[command(flatten)]
    pub transport: TransportArgs,
    /// Which signing sessions this node joins: `any-request`, or `approved-only` (t valid
    /// approvals by the signers, checked against the identity keys pinned at keygen) for
    /// every key it holds. A key created with policy `approved-only` needs approvals
    /// whatever this says: each holder pins the key's policy at keygen.
    #[arg(long, env = "MPC_SIGNING_POLICY", default_value = "any-request")]
    pub policy: KeyPolicy,
    /// Also sign sessions carrying only a hash of the data (unseen by this node).
    #[arg(long, env = "MPC_ALLOW_PREHASH")]
    pub allow_prehash: bool,
    /// A JSON array of the peers' `mpc party identity` outputs, obtained out of band:
    /// this node then runs a keygen, or receives a repaired share, only among exactly
    /// those peers under those identity keys, so the coordinator cannot introduce its
    /// own keys in their place.
    #[arg(long, env = "MPC_PEERS_FILE")]
    pub peers: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Where invitations are accepted (`POST /v1/invitations`). A non-loopback address
    /// needs an invitation credential: otherwise anyone who reaches it queues sessions.
    #[arg(long, env = "MPC_PARTY_BIND", default_value = "127.0.0.1:8090")]
    pub bind: SocketAddr,
    /// File holding the credential invitations must carry as a bearer token (default:
    /// the MPC_PARTY_INVITATION_TOKEN variable; neither: loopback only).
    #[arg(long, env = "MPC_PARTY_INVITATION_TOKEN_FILE")]
    pub invitation_token_file: Option<PathBuf>,
    /// File holding the credential a decision on a review or recovery request must
    /// carry over HTTP (default: the MPC_PARTY_APPROVER_TOKEN variable). It must differ
    /// from the invitation credential, which the operator holds. Neither: this node
    /// decides only through `mpc party approvals|recoveries` on its host.
    #[arg(long, env = "MPC_PARTY_APPROVER_TOKEN_FILE")]
    pub approver_token_file: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct JoinArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    #[arg(long)]
    pub session: SessionId,
    /// The join token the session's creator handed to this party.
    #[arg(long, env = "MPC_JOIN_TOKEN")]
    pub token: String,
}

pub async fn run(command: PartyCommand) -> anyhow::Result<()> {
    match command {
        PartyCommand::Init(args) => {
            let identity = process::init(vault_config(&args)?).await?;
            print_identity(&args.id, &identity);
        }
        PartyCommand::Identity(args) => {
            let (_, identity) = process::open_vault(vault_config(&args)?).await?;
            print_identity(&args.id, &identity);
        }
        PartyCommand::AuthorizeRecovery(args) => {
            let device = read_identity(&args.device_identity_json)?;
            let vault = vault_config(&args.vault)?;
            let signed =
                process::authorize_recovery(vault, args.key, args.target, (&device).try_into()?)
                    .await?;
            println!(
                "{}",
                serde_json::to_string(&SignedApprovalDto::from(&signed))?
            );
        }
        PartyCommand::Decide(args) => {
            let payload = std::fs::read(&args.payload_file)
                .with_context(|| format!("cannot read {}", args.payload_file.display()))?;
            let decision = match args.decision {
                Verdict::Approve => Decision::Approve,
                Verdict::Reject => Decision::Reject,
            };
            let vault = vault_config(&args.vault)?;
            let workflow = process::decide(
                vault,
                &args.coordinator,
                args.workflow,
                args.key,
                payload,
                decision,
            )
            .await?;
            println!("{}", serde_json::to_string(&workflow)?);
        }
        PartyCommand::Approvals(command) => approvals(command).await?,
        PartyCommand::Recoveries(command) => recoveries(command).await?,
        PartyCommand::Join(args) => {
            let node = process::node(node_config(&args.node)?).await?;
            let outcome = node.participate(args.session, &args.token).await?;
            println!("{}", outcome_json(args.session, &outcome));
        }
        PartyCommand::Run(args) => {
            let node = process::node(node_config(&args.node)?).await?;
            let file = args.invitation_token_file.as_deref();
            let credential = match (file, std::env::var_os(INVITATION_TOKEN)) {
                (None, None) => None,
                _ => Some(secret(file, INVITATION_TOKEN, "--invitation-token-file")?),
            };
            let file = args.approver_token_file.as_deref();
            let approver = match (file, std::env::var_os(APPROVER_TOKEN)) {
                (None, None) => None,
                _ => Some(secret(file, APPROVER_TOKEN, "--approver-token-file")?),
            };
            let listener = InvitationListener::bind(
                node,
                args.bind,
                credential,
                approver,
                &args.node.vault.data_dir,
                &args.node.coordinator,
            )?;
            println!("listening on http://{}", listener.addr());
            listener
                .run(|session, outcome| match outcome {
                    Ok(outcome) => println!("{}", outcome_json(session, &outcome)),
                    Err(e) => println!(
                        "{}",
                        json!({"session_id": session.to_string(), "error": e.to_string()})
                    ),
                })
                .await?;
        }
    }
    Ok(())
}

async fn approvals(command: ApprovalsCommand) -> anyhow::Result<()> {
    match command {
        ApprovalsCommand::List(args) => {
            for review in ReviewDesk::new(&args.data_dir).list()? {
                println!(
                    "{}",
                    json!({
                        "workflow_id": review.workflow_id,
                        "key_id": review.key_id,
                        "title": review.title,
                        "payload_bytes": review.payload_hex.len() / 2,
                        "payload_sha256": review.payload_sha256,
                        "decision": review.decision,
                    })
                );
            }
        }
        ApprovalsCommand::Show(args) => {
            let review = ReviewDesk::new(&args.desk.data_dir).get(&args.workflow)?;
            let text = String::from_utf8(review.payload()?).ok();
            let mut shown = serde_json::to_value(&review)?;
            shown["payload_text"] = json!(text);
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
        ApprovalsCommand::Approve(args) => verdict(args, Decision::Approve).await?,
        ApprovalsCommand::Reject(args) => verdict(args, Decision::Reject).await?,
    }
    Ok(())
}

async fn recoveries(command: RecoveriesCommand) -> anyhow::Result<()> {
    let recovery = match command {
        RecoveriesCommand::List(args) => {
            for recovery in RecoveryDesk::new(&args.data_dir).list()? {
                println!("{}", serde_json::to_string(&recovery)?);
            }
            return Ok(());
        }
        RecoveriesCommand::Show(args) => {
            RecoveryDesk::new(&args.desk.data_dir).get(&args.request)?
        }
        RecoveriesCommand::Approve(args) => {
            process::approve_recovery(vault_config(&args.vault)?, args.request).await?
        }
        RecoveriesCommand::Reject(args) => {
            let desk = RecoveryDesk::new(&args.desk.data_dir);
            desk.rejected(desk.to_decide(&args.request)?)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&recovery)?);
    Ok(())
}

async fn verdict(args: VerdictArgs, decision: Decision) -> anyhow::Result<()> {
    let workflow = process::decide_review(
        vault_config(&args.vault)?,
        &args.coordinator,
        &args.workflow,
        &args.payload_sha256,
        decision,
    )
    .await?;
    println!("{}", serde_json::to_string(&workflow)?);
    Ok(())
}

/// A secret from `file` (trailing newline dropped), else from the variable `var`.
pub(crate) fn secret(
    file: Option<&Path>,
    var: &str,
    flag: &str,
) -> anyhow::Result<Zeroizing<String>> {
    match file {
        Some(path) => Ok(Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        )),
        None => std::env::var(var)
            .map(Zeroizing::new)
            .with_context(|| format!("set {var} or {flag}")),
    }
}

/// The vault `args` configure, with its secrets read.
fn vault_config(args: &VaultArgs) -> anyhow::Result<VaultConfig> {
    let kind = match args.vault_kind {
        VaultKind::File => process::VaultKind::File {
            passphrase: secret(
                args.passphrase_file.as_deref(),
                "MPC_VAULT_PASSPHRASE",
                "--passphrase-file",
            )?,
        },
        VaultKind::Pkcs11 => process::VaultKind::Pkcs11 {
            module: args
                .pkcs11_module
                .clone()
                .context("--vault pkcs11 needs --pkcs11-module (MPC_PKCS11_MODULE)")?,
            token: args
                .pkcs11_token
                .clone()
                .context("--vault pkcs11 needs --pkcs11-token (MPC_PKCS11_TOKEN)")?,
            pin: secret(
                args.pkcs11_pin_file.as_deref(),
                "MPC_PKCS11_PIN",
                "--pkcs11-pin-file",
            )?,
        },
    };
    Ok(VaultConfig {
        id: args.id.clone(),
        data_dir: args.data_dir.clone(),
        kind,
    })
}

fn node_config(args: &NodeArgs) -> anyhow::Result<NodeConfig> {
    Ok(NodeConfig {
        vault: vault_config(&args.vault)?,
        coordinator: args.coordinator.clone(),
        kafka_brokers: args.transport.kafka_brokers.clone(),
        kafka_topic: args.transport.kafka_topic.clone(),
        policy: args.policy,
        allow_prehash: args.allow_prehash,
        peers: match &args.peers {
            Some(path) => peers(path)?,
            None => Peers::new(),
        },
    })
}

/// One peer as `mpc party identity` prints it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerEntry {
    party_id: String,
    identity: IdentityDto,
}

/// The peers file `--peers` names: a JSON array of `mpc party identity` outputs.
fn peers(path: &Path) -> anyhow::Result<Peers> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let entries: Vec<PeerEntry> = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is not a JSON array of `mpc party identity` outputs",
            path.display()
        )
    })?;
    let mut peers = Peers::new();
    for entry in entries {
        let id = PartyId::parse(&entry.party_id)
            .with_context(|| format!("{}: bad party id {:?}", path.display(), entry.party_id))?;
        let identity = IdentityKey::try_from(&entry.identity)
            .with_context(|| format!("{}: bad identity of {id}", path.display()))?;
        if peers.insert(id.clone(), identity).is_some() {
            bail!("{}: {id} is listed twice", path.display());
        }
    }
    if peers.is_empty() {
        bail!("{} lists no peers", path.display());
    }
    Ok(peers)
}

fn print_identity(id: &PartyId, identity: &PartyIdentity) {
    let identity = IdentityDto::from(&identity.public());
    println!("{}", json!({"party_id": id.as_str(), "identity": identity}));
}

/// The outcome as its report to the coordinator reads, with the session id.
fn outcome_json(session: SessionId, outcome: &PartyOutcome) -> serde_json::Value {
    let mut json = json!(ReportRequest::completion(outcome));
    json["session_id"] = json!(session.to_string());
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dir/peers.json` holding `text`; its parse.
    fn parse(text: &str) -> anyhow::Result<Peers> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.json");
        std::fs::write(&path, text).unwrap();
        peers(&path)
    }

    fn identity_json(id: &str) -> serde_json::Value {
        let identity = IdentityDto::from(&PartyIdentity::generate().public());
        json!({"party_id": id, "identity": identity})
    }

    #[test]
    fn a_peers_file_is_the_identity_outputs_of_the_other_parties() {
        let server = identity_json("server");
        let recovery = identity_json("recovery");
        let peers = parse(&json!([server, recovery]).to_string()).unwrap();
        let expected = IdentityKey::try_from(
            &serde_json::from_value::<IdentityDto>(server["identity"].clone()).unwrap(),
        )
        .unwrap();
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[&PartyId::parse("server").unwrap()], expected);
    }

    #[test]
    fn a_bad_peers_file_is_refused_with_what_is_wrong() {
        let server = identity_json("server");
        let mut bad = server.clone();
        bad["identity"]["signing"] = json!("00");
        for (text, says) in [
            (json!([server, server]).to_string(), "listed twice"),
            ("[]".to_owned(), "lists no peers"),
            (server.to_string(), "not a JSON array"),
            (json!([bad]).to_string(), "bad identity of server"),
            (
                json!([{"party_id": "bad id", "identity": server["identity"]}]).to_string(),
                "bad party id",
            ),
        ] {
            let error = format!("{:#}", parse(&text).unwrap_err());
            assert!(error.contains(says), "{says}: {error}");
        }
    }
}
