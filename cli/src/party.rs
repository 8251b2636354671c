//! `mpc party`: a party node process.
//!
//! - `init` creates the party's vault and identity keys and prints the public
//!   identity to register with sessions;
//! - `identity` prints it again;
//! - `run` is the server role: it listens for invitations (session id + join token)
//!   and takes part in each session it is invited to;
//! - `join` is the client role: it takes part in one session and prints the result.
//!
//! Shares rest in a vault chosen with `--vault` (`MPC_VAULT`): `file` (the default,
//! encrypted under a passphrase) or `pkcs11` (encrypted under a non-extractable key in
//! a PKCS#11 token, configured with `--pkcs11-module`, `--pkcs11-token` and
//! `--pkcs11-pin-file` or `MPC_PKCS11_PIN`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use mpc_engine::{Dkls23Engine, FileVault, PartyIdentity, Pkcs11Vault, ShareVault};
use mpc_events::{PartyId, PartyOutcome, SessionId};
use mpc_party::{GatewayClient, PartyNode};
use mpc_transport::Transport;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::infra::{self, TransportArgs};

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
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Where invitations are accepted (`POST /v1/invitations`).
    #[arg(long, env = "MPC_PARTY_BIND", default_value = "127.0.0.1:8090")]
    pub bind: SocketAddr,
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

/// An invitation to take part in a session (`POST /v1/invitations`).
#[derive(Deserialize)]
struct InvitationRequest {
    session_id: String,
    token: String,
}

struct Invitation {
    session_id: SessionId,
    token: Zeroizing<String>,
}

pub async fn run(command: PartyCommand) -> anyhow::Result<()> {
    match command {
        PartyCommand::Init(args) => {
            let config = args.clone();
            let identity = tokio::task::spawn_blocking(move || {
                let vault = share_vault(&config, true)?;
                let identity = PartyIdentity::generate();
                vault
                    .put_identity(&config.id, &identity.to_secret_bytes())
                    .context("cannot store the identity")?;
                Ok::<_, anyhow::Error>(identity)
            })
            .await??;
            print_identity(&args.id, &identity);
        }
        PartyCommand::Identity(args) => {
            let (_, identity) = open_vault(&args).await?;
            print_identity(&args.id, &identity);
        }
        PartyCommand::Join(args) => {
            let node = node(&args.node).await?;
            let outcome = node.participate(args.session, &args.token).await?;
            println!("{}", outcome_json(args.session, &outcome));
        }
        PartyCommand::Run(args) => serve(args).await?,
    }
    Ok(())
}

async fn serve(args: RunArgs) -> anyhow::Result<()> {
    let node = Arc::new(node(&args.node).await?);
    let (invitations, mut inbox) = mpsc::channel::<Invitation>(64);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(invitations.clone()))
            .app_data(web::JsonConfig::default().limit(16 * 1024))
            .route("/health", web::get().to(HttpResponse::Ok))
            .route("/v1/invitations", web::post().to(invite))
    })
    .workers(1)
    .bind(args.bind)
    .with_context(|| format!("cannot listen on {}", args.bind))?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .context("the invitation server bound no address")?;
    println!("listening on http://{addr}");
    let server = server.run();
    let participations = async {
        while let Some(invitation) = inbox.recv().await {
            let node = node.clone();
            tokio::spawn(async move {
                let session = invitation.session_id;
                match node.participate(session, &invitation.token).await {
                    Ok(outcome) => println!("{}", outcome_json(session, &outcome)),
                    Err(e) => {
                        tracing::warn!(%session, error = %e, "session failed");
                        println!(
                            "{}",
                            json!({"session_id": session.to_string(), "error": e.to_string()})
                        );
                    }
                }
            });
        }
    };
    tokio::select! {
        result = server => result.context("the invitation server stopped")?,
        () = participations => bail!("the invitation queue closed"),
    }
    Ok(())
}

async fn invite(
    queue: web::Data<mpsc::Sender<Invitation>>,
    request: web::Json<InvitationRequest>,
) -> HttpResponse {
    let request = request.into_inner();
    let Ok(session_id) = request.session_id.parse() else {
        return HttpResponse::BadRequest()
            .json(json!({"code": "invalid_session_id", "message": "session_id must be a uuid"}));
    };
    let invitation = Invitation {
        session_id,
        token: Zeroizing::new(request.token),
    };
    match queue.try_send(invitation) {
        Ok(()) => HttpResponse::Accepted().finish(),
        Err(_) => HttpResponse::ServiceUnavailable()
            .json(json!({"code": "busy", "message": "too many pending invitations"})),
    }
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

/// This party's vault as configured (`create`: a new one, for `init`). Blocking.
fn share_vault(args: &VaultArgs, create: bool) -> anyhow::Result<Arc<dyn ShareVault>> {
    let dir = args.data_dir.join("vault");
    match args.vault_kind {
        VaultKind::File => {
            let passphrase = secret(
                args.passphrase_file.as_deref(),
                "MPC_VAULT_PASSPHRASE",
                "--passphrase-file",
            )?;
            let vault = if create {
                FileVault::create(&dir, passphrase.as_bytes()).context("cannot create the vault")?
            } else {
                FileVault::open(&dir, passphrase.as_bytes())
                    .with_context(|| format!("cannot open the vault in {}", dir.display()))?
            };
            Ok(Arc::new(vault))
        }
        VaultKind::Pkcs11 => {
            let module = args
                .pkcs11_module
                .as_ref()
                .context("--vault pkcs11 needs --pkcs11-module (MPC_PKCS11_MODULE)")?;
            let token = args
                .pkcs11_token
                .as_ref()
                .context("--vault pkcs11 needs --pkcs11-token (MPC_PKCS11_TOKEN)")?;
            let pin = secret(
                args.pkcs11_pin_file.as_deref(),
                "MPC_PKCS11_PIN",
                "--pkcs11-pin-file",
            )?;
            let vault = Pkcs11Vault::open(module, token, &pin, &dir)
                .with_context(|| format!("cannot open the PKCS#11 vault in {}", dir.display()))?;
            Ok(Arc::new(vault))
        }
    }
}

async fn open_vault(args: &VaultArgs) -> anyhow::Result<(Arc<dyn ShareVault>, PartyIdentity)> {
    let args = args.clone();
    tokio::task::spawn_blocking(move || {
        let vault = share_vault(&args, false)?;
        let id = &args.id;
        let secret = vault.get_identity(id)?.with_context(|| {
            format!("the vault holds no identity for {id}; run `mpc party init`")
        })?;
        let identity = PartyIdentity::from_secret_bytes(&secret)
            .context("the stored identity is malformed")?;
        Ok((vault, identity))
    })
    .await?
}

async fn node(args: &NodeArgs) -> anyhow::Result<PartyNode> {
    let (vault, identity) = open_vault(&args.vault).await?;
    let client = Arc::new(GatewayClient::new(&args.coordinator).map_err(anyhow::Error::msg)?);
    let transport: Arc<dyn Transport> = match &args.transport.kafka_brokers {
        Some(_) => infra::open_transport(&args.transport).await?,
        None => client.clone(),
    };
    Ok(PartyNode::new(
        args.vault.id.clone(),
        identity,
        Arc::new(Dkls23Engine),
        vault,
        transport,
        client,
    ))
}

fn print_identity(id: &PartyId, identity: &PartyIdentity) {
    let public = identity.public();
    println!(
        "{}",
        json!({
            "party_id": id.as_str(),
            "identity": {
                "signing": hex::encode(public.signing()),
                "encryption": hex::encode(public.encryption()),
            },
        })
    );
}

fn outcome_json(session: SessionId, outcome: &PartyOutcome) -> serde_json::Value {
    match outcome {
        PartyOutcome::PublicKey(pk) => json!({
            "session_id": session.to_string(),
            "public_key": hex::encode(pk.as_bytes()),
        }),
        PartyOutcome::Signature(s) => json!({
            "session_id": session.to_string(),
            "r_hex": hex::encode(s.r()),
            "s_hex": hex::encode(s.s()),
            "recovery_id": s.recovery_id(),
        }),
        PartyOutcome::Refreshed { public_key, digest } => json!({
            "session_id": session.to_string(),
            "public_key": hex::encode(public_key.as_bytes()),
            "refresh_digest": hex::encode(digest.as_bytes()),
        }),
    }
}
