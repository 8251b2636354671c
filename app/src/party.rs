//! A party node process: its share vault (passphrase-encrypted files or a PKCS#11
//! token), its identity, the [`PartyNode`] over the coordinator's gateway and the
//! transport a configuration names, and the invitation listener of the server role
//! (`POST /v1/invitations`, `GET /health`) that takes part in each session it is
//! invited to.
//!
//! Secrets arrive already read ([`VaultConfig`]); where they come from (files,
//! variables) and what is printed are the binary's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, dev::Server, web};
use mpc_api::{DecisionRequest, WorkflowDto};
use mpc_crypto::{EnvelopeError, PartyIdentity};
use mpc_engine::Dkls23Engine;
use mpc_events::{
    Decision, IdentityKey, KeyId, PartyId, PartyOutcome, SessionId, SignedApproval, WorkflowId,
};
use mpc_party::{FileJournal, GatewayClient, Holder, PartyError, PartyNode, SigningPolicy};
use mpc_transport::Transport;
use mpc_vault::{FileVault, HsmError, Pkcs11Vault, ShareVault, VaultError};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::adapters::{self, AdapterError};

/// The file under a party's data directory that records spent approvals.
pub const APPROVAL_JOURNAL: &str = "approvals.journal";
/// How many invitations may wait for the participation loop.
const PENDING_INVITATIONS: usize = 64;
/// The largest invitation body accepted.
const MAX_INVITATION_BYTES: usize = 16 * 1024;
/// The shortest invitation credential accepted.
const MIN_CREDENTIAL_BYTES: usize = 16;

/// Where a party's shares rest and the secrets that open them.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    pub id: PartyId,
    /// The vault is the `vault` directory under it.
    pub data_dir: PathBuf,
    pub kind: VaultKind,
}

/// The kind of vault, with its secrets.
#[derive(Debug, Clone)]
pub enum VaultKind {
    /// Files encrypted under a passphrase.
    File { passphrase: Zeroizing<String> },
    /// Files encrypted under a non-extractable key in a PKCS#11 token.
    Pkcs11 {
        module: PathBuf,
        token: String,
        pin: Zeroizing<String>,
    },
}

/// A party node: its vault, the coordinator's gateway, and Kafka (when brokers are
/// given) or the gateway as the envelopes' transport.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub vault: VaultConfig,
    pub coordinator: String,
    pub kafka_brokers: Option<String>,
    pub kafka_topic: String,
    /// Which signing sessions the node takes part in.
    pub policy: SigningPolicy,
    /// Whether it signs sessions that carry only a hash of the data.
    pub allow_prehash: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PartyProcessError {
    #[error("cannot create the vault")]
    CreateVault(#[source] VaultError),
    #[error("cannot open the vault in {}", .dir.display())]
    OpenVault {
        dir: PathBuf,
        #[source]
        source: VaultError,
    },
    #[error("cannot open the PKCS#11 vault in {}", .dir.display())]
    OpenPkcs11Vault {
        dir: PathBuf,
        #[source]
        source: HsmError,
    },
    #[error("cannot store the identity")]
    StoreIdentity(#[source] VaultError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("the vault holds no identity for {0}; run `mpc party init`")]
    NoIdentity(PartyId),
    #[error("the stored identity is malformed")]
    MalformedIdentity(#[source] EnvelopeError),
    #[error(transparent)]
    Blocking(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Gateway(String),
    #[error(transparent)]
    Transport(Box<AdapterError>),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the invitation server bound no address")]
    NoAddress,
    #[error("the invitation server stopped")]
    ServerStopped(#[source] std::io::Error),
    #[error("the invitation queue closed")]
    QueueClosed,
    #[error(
        "refusing to accept invitations on {0} without a credential: anyone who reaches it \
         could queue sessions; set an invitation credential or bind to a loopback address"
    )]
    UnauthenticatedBind(SocketAddr),
    #[error("the invitation credential must be at least {MIN_CREDENTIAL_BYTES} bytes")]
    WeakCredential,
    #[error("cannot sign: {0}")]
    Authorize(#[source] PartyError),
}

/// Creates the party's vault and a new identity stored in it.
pub async fn init(config: VaultConfig) -> Result<PartyIdentity, PartyProcessError> {
    tokio::task::spawn_blocking(move || {
        let vault = share_vault(&config, true)?;
        let identity = PartyIdentity::generate();
        vault
            .put_identity(&config.id, &identity.to_secret_bytes())
            .map_err(PartyProcessError::StoreIdentity)?;
        Ok(identity)
    })
    .await?
}

/// Opens the party's vault and the identity stored in it.
pub async fn open_vault(
    config: VaultConfig,
) -> Result<(Arc<dyn ShareVault>, PartyIdentity), PartyProcessError> {
    tokio::task::spawn_blocking(move || {
        let vault = share_vault(&config, false)?;
        let secret = vault
            .get_identity(&config.id)?
            .ok_or_else(|| PartyProcessError::NoIdentity(config.id.clone()))?;
        let identity = PartyIdentity::from_secret_bytes(&secret)
            .map_err(PartyProcessError::MalformedIdentity)?;
        Ok((vault, identity))
    })
    .await?
}

/// This holder's authorization of rebuilding `target`'s share of `key_id` for the
/// new device `identity` (see [`Holder::authorize_recovery`]); offline.
pub async fn authorize_recovery(
    config: VaultConfig,
    key_id: KeyId,
    target: PartyId,
    identity: IdentityKey,
) -> Result<SignedApproval, PartyProcessError> {
    let id = config.id.clone();
    let (vault, signer) = open_vault(config).await?;
    tokio::task::spawn_blocking(move || {
        Holder::new(&*vault, &id, &signer)
            .authorize_recovery(key_id, &target, &identity)
            .map_err(PartyProcessError::Authorize)
    })
    .await?
}

/// This approver's decision on workflow `workflow`: signed with its identity over
/// `payload` (what it reviewed) and key `key_id` as its own vault holds it (see
/// [`Holder::decide`]), then posted to the coordinator at `coordinator`. Answers
/// with the workflow afterwards.
pub async fn decide(
    config: VaultConfig,
    coordinator: &str,
    workflow: WorkflowId,
    key_id: KeyId,
    payload: Vec<u8>,
    decision: Decision,
) -> Result<WorkflowDto, PartyProcessError> {
    let id = config.id.clone();
    let (vault, signer) = open_vault(config).await?;
    let approver = id.to_string();
    let signature = tokio::task::spawn_blocking(move || {
        Holder::new(&*vault, &id, &signer)
            .decide(workflow, key_id, &payload, decision)
            .map_err(PartyProcessError::Authorize)
    })
    .await??;
    let request = DecisionRequest {
        approver,
        decision: decision.into(),
        signature_hex: hex::encode(signature.as_bytes()),
    };
    GatewayClient::new(coordinator)
        .map_err(PartyProcessError::Gateway)?
        .decide(workflow, &request)
        .await
        .map_err(|e| PartyProcessError::Gateway(e.to_string()))
}

/// The party's vault as configured (`create`: a new one). Blocking.
fn share_vault(
    config: &VaultConfig,
    create: bool,
) -> Result<Arc<dyn ShareVault>, PartyProcessError> {
    let dir = config.data_dir.join("vault");
    match &config.kind {
        VaultKind::File { passphrase } => {
            let vault = if create {
                FileVault::create(&dir, passphrase.as_bytes())
                    .map_err(PartyProcessError::CreateVault)?
            } else {
                FileVault::open(&dir, passphrase.as_bytes())
                    .map_err(|source| PartyProcessError::OpenVault { dir, source })?
            };
            Ok(Arc::new(vault))
        }
        VaultKind::Pkcs11 { module, token, pin } => {
            let vault = Pkcs11Vault::open(module, token, pin, &dir)
                .map_err(|source| PartyProcessError::OpenPkcs11Vault { dir, source })?;
            Ok(Arc::new(vault))
        }
    }
}

/// The party node `config` names, over its vault and identity.
pub async fn node(config: NodeConfig) -> Result<PartyNode, PartyProcessError> {
    let id = config.vault.id.clone();
    let journal = config.vault.data_dir.join(APPROVAL_JOURNAL);
    let (vault, identity) = open_vault(config.vault).await?;
    let client =
        Arc::new(GatewayClient::new(&config.coordinator).map_err(PartyProcessError::Gateway)?);
    let transport: Arc<dyn Transport> = match &config.kafka_brokers {
        Some(brokers) => adapters::open_transport(Some(brokers), &config.kafka_topic)
            .await
            .map_err(|e| PartyProcessError::Transport(Box::new(e)))?,
        None => client.clone(),
    };
    Ok(PartyNode::new(
        id,
        identity,
        Arc::new(Dkls23Engine),
        vault,
        transport,
        client,
    )
    .with_policy(config.policy)
    .allow_prehash(config.allow_prehash)
    .with_journal(Arc::new(FileJournal::new(journal))))
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

/// The server role: an HTTP listener that queues invitations, and a loop that takes
/// part in each invited session.
pub struct InvitationListener {
    node: Arc<PartyNode>,
    addr: SocketAddr,
    server: Server,
    inbox: mpsc::Receiver<Invitation>,
}

impl InvitationListener {
    /// Listens on `bind` (port 0: any free port, see [`Self::addr`]). With a
    /// `credential`, an invitation must carry it as `Authorization: Bearer …`;
    /// without one, only a loopback `bind` is accepted.
    pub fn bind(
        node: PartyNode,
        bind: SocketAddr,
        credential: Option<Zeroizing<String>>,
    ) -> Result<Self, PartyProcessError> {
        let credential = match credential {
            Some(c) if c.len() < MIN_CREDENTIAL_BYTES => {
                return Err(PartyProcessError::WeakCredential);
            }
            None if !bind.ip().is_loopback() => {
                return Err(PartyProcessError::UnauthenticatedBind(bind));
            }
            credential => web::Data::new(credential.map(|c| Sha256::digest(c.as_bytes()))),
        };
        let (invitations, inbox) = mpsc::channel::<Invitation>(PENDING_INVITATIONS);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(invitations.clone()))
                .app_data(credential.clone())
                .app_data(web::PayloadConfig::new(MAX_INVITATION_BYTES))
                .route("/health", web::get().to(HttpResponse::Ok))
                .route("/v1/invitations", web::post().to(invite))
        })
        .workers(1)
        .bind(bind)
        .map_err(|source| PartyProcessError::Bind { addr: bind, source })?;
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or(PartyProcessError::NoAddress)?;
        Ok(Self {
            node: Arc::new(node),
            addr,
            server: server.run(),
            inbox,
        })
    }

    /// The address the listener is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves invitations until the server stops; `on_outcome` receives each
    /// session's outcome (a failure is also logged).
    pub async fn run<F>(self, on_outcome: F) -> Result<(), PartyProcessError>
    where
        F: Fn(SessionId, Result<PartyOutcome, PartyError>) + Send + Sync + 'static,
    {
        let Self {
            node,
            server,
            mut inbox,
            ..
        } = self;
        let on_outcome = Arc::new(on_outcome);
        let participations = async {
            while let Some(invitation) = inbox.recv().await {
                let node = node.clone();
                let on_outcome = on_outcome.clone();
                tokio::spawn(async move {
                    let session = invitation.session_id;
                    let outcome = node.participate(session, &invitation.token).await;
                    if let Err(e) = &outcome {
                        tracing::warn!(%session, error = %e, "session failed");
                    }
                    on_outcome(session, outcome);
                });
            }
        };
        tokio::select! {
            result = server => result.map_err(PartyProcessError::ServerStopped),
            () = participations => Err(PartyProcessError::QueueClosed),
        }
    }
}

/// The SHA-256 digest of the invitation credential, if one is configured.
type CredentialDigest = Option<sha2::digest::Output<Sha256>>;

async fn invite(
    http: HttpRequest,
    queue: web::Data<mpsc::Sender<Invitation>>,
    credential: web::Data<CredentialDigest>,
    body: web::Bytes,
) -> HttpResponse {
    // Authenticate before reading the body. Digests are compared, so the time taken
    // tells nothing about the credential.
    if let Some(expected) = credential.get_ref() {
        let presented = http
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|token| Sha256::digest(token.as_bytes()));
        if presented.as_ref() != Some(expected) {
            return HttpResponse::Unauthorized().json(json!({
                "code": "unauthorized",
                "message": "an invitation needs this party's invitation credential as a bearer token"
            }));
        }
    }
    let Ok(request) = serde_json::from_slice::<InvitationRequest>(&body) else {
        return HttpResponse::BadRequest().json(json!({
            "code": "invalid_body",
            "message": "expected {\"session_id\": <uuid>, \"token\": <join token>}"
        }));
    };
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
