//! `mpc party`: a party node process.
//!
//! - `init` creates the party's vault and identity keys and prints the public
//!   identity to register with sessions;
//! - `identity` prints it again;
//! - `run` is the server role: it listens for invitations (session id + join token)
//!   and takes part in each session it is invited to;
//! - `join` is the client role: it takes part in one session and prints the result.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use mpc_engine::{Dkls23Engine, FileVault, PartyIdentity, ShareVault};
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
            let passphrase = passphrase(&args)?;
            let dir = args.data_dir.join("vault");
            let id = args.id.clone();
            let identity = tokio::task::spawn_blocking(move || {
                let vault = FileVault::create(&dir, passphrase.as_bytes())?;
                let identity = PartyIdentity::generate();
                vault.put_identity(&id, &identity.to_secret_bytes())?;
                Ok::<_, mpc_engine::VaultError>(identity)
            })
            .await?
            .context("cannot create the vault")?;
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

fn passphrase(args: &VaultArgs) -> anyhow::Result<Zeroizing<String>> {
    match &args.passphrase_file {
        Some(path) => Ok(Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        )),
        None => std::env::var("MPC_VAULT_PASSPHRASE")
            .map(Zeroizing::new)
            .context("set MPC_VAULT_PASSPHRASE or --passphrase-file"),
    }
}

async fn open_vault(args: &VaultArgs) -> anyhow::Result<(Arc<FileVault>, PartyIdentity)> {
    let passphrase = passphrase(args)?;
    let dir = args.data_dir.join("vault");
    let id = args.id.clone();
    tokio::task::spawn_blocking(move || {
        let vault = FileVault::open(&dir, passphrase.as_bytes())
            .with_context(|| format!("cannot open the vault in {}", dir.display()))?;
        let secret = vault.get_identity(&id)?.with_context(|| {
            format!("the vault holds no identity for {id}; run `mpc party init`")
        })?;
        let identity = PartyIdentity::from_secret_bytes(&secret)
            .context("the stored identity is malformed")?;
        Ok((Arc::new(vault), identity))
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
    }
}
