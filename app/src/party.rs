//! A party node process: its share vault (passphrase-encrypted files or a PKCS#11
//! token), its identity, the [`PartyNode`] over the coordinator's gateway and the
//! transport a configuration names, and the listener of the server role: it takes
//! part in each session it is invited to (`POST /v1/invitations`), keeps the review
//! requests of an approver (`POST /v1/reviews`, `GET /v1/reviews[/{workflow}]`, see
//! [`crate::reviews`]) and signs its human's decision on one
//! (`POST /v1/reviews/{workflow}/decision`), and keeps the recovery requests of a
//! holder (`POST /v1/recoveries`, `GET /v1/recoveries[/{id}]`, see
//! [`crate::recoveries`]) and signs the authorization its human approves
//! (`POST /v1/recoveries/{id}/decision`), and serves its Prometheus metrics
//! (`GET /metrics`), all behind the party's credential but the decisions, which
//! need the approver credential instead (never the invitation credential the
//! operator holds); `GET /health` and
//! `GET /ready` (vault, transport and coordinator) answer anyone.
//!
//! Secrets arrive already read ([`VaultConfig`]); where they come from (files,
//! variables) and what is printed are the binary's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use mpc_api::{DecisionRequest, WorkflowDto};
use mpc_crypto::{EnvelopeError, PartyIdentity};
use mpc_engine::Dkls23Engine;
use mpc_events::{
    Decision, IdentityKey, IdentitySignature, KeyId, PartyId, PartyOutcome, SessionId,
    SignedApproval, WorkflowId,
};
use mpc_party::{FileJournal, GatewayClient, Holder, KeyPolicy, PartyError, PartyNode, Peers};
use mpc_transport::Transport;
use mpc_vault::{FileVault, HsmError, Pkcs11Vault, ShareVault, VaultError};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::adapters::{self, AdapterError};
use crate::metrics::MetricsRender;
use crate::recoveries::{Recovery, RecoveryDesk, RecoveryError, RecoveryRequest};
use crate::reviews::{MAX_PAYLOAD_BYTES, ReviewDesk, ReviewError, ReviewRequest};

/// Sessions a node took part in, by outcome (`completed` or [`PartyError::code`]).
pub const PARTY_SESSIONS_TOTAL: &str = "mpc_party_sessions_total";
/// Time a node spent in a session, from its invitation to its outcome.
pub const PARTY_SESSION_SECONDS: &str = "mpc_party_session_duration_seconds";

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
    pub policy: KeyPolicy,
    /// Whether it signs sessions that carry only a hash of the data.
    pub allow_prehash: bool,
    /// Its peers' identity keys, given out of band (empty: none given).
    pub peers: Peers,
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
    #[error("a listener credential must be at least {MIN_CREDENTIAL_BYTES} bytes")]
    WeakCredential,
    #[error(
        "the approver credential must differ from the invitation credential: whoever sends \
         invitations would also decide"
    )]
    SharedApproverCredential,
    #[error("cannot sign: {0}")]
    Authorize(#[source] PartyError),
    #[error(transparent)]
    Review(#[from] ReviewError),
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    #[error("{0}")]
    Metrics(String),
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

/// Approves the pending recovery request `id` under the party's data directory
/// (see [`crate::recoveries`]): the authorization is signed from the party's vault
/// after it checked the request against the pinned roster, then recorded with it.
/// Offline.
pub async fn approve_recovery(
    config: VaultConfig,
    id: String,
) -> Result<Recovery, PartyProcessError> {
    let desk = RecoveryDesk::new(&config.data_dir);
    let party = config.id.clone();
    let (vault, signer) = open_vault(config).await?;
    tokio::task::spawn_blocking(move || {
        settle_recovery(&desk, &id, Decision::Approve, |key, target, identity| {
            Holder::new(&*vault, &party, &signer).authorize_recovery(key, target, identity)
        })
    })
    .await?
}

/// Decides the pending recovery request `id` on `desk`; an approval first signs the
/// authorization with `authorize`, and nothing is recorded if that refuses.
fn settle_recovery(
    desk: &RecoveryDesk,
    id: &str,
    decision: Decision,
    authorize: impl FnOnce(KeyId, &PartyId, &IdentityKey) -> Result<SignedApproval, PartyError>,
) -> Result<Recovery, PartyProcessError> {
    let recovery = desk.to_decide(id)?;
    match decision {
        Decision::Reject => Ok(desk.rejected(recovery)?),
        Decision::Approve => {
            let (key, target, identity) = recovery.asked()?;
            let signed =
                authorize(key, &target, &identity).map_err(PartyProcessError::Authorize)?;
            Ok(desk.approved(recovery, &signed)?)
        }
    }
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
    let approver = id.clone();
    let signature = tokio::task::spawn_blocking(move || {
        Holder::new(&*vault, &id, &signer)
            .decide(workflow, key_id, &payload, decision)
            .map_err(PartyProcessError::Authorize)
    })
    .await??;
    post_decision(coordinator, &approver, workflow, decision, &signature).await
}

/// The decision on the pending review of `workflow` under the party's data
/// directory (see [`crate::reviews`]), whose payload the human was shown as
/// `shown_sha256`: signed from the party's vault over the stored payload, posted to
/// the coordinator at `coordinator`, then recorded. Answers with the workflow.
pub async fn decide_review(
    config: VaultConfig,
    coordinator: &str,
    workflow: &str,
    shown_sha256: &str,
    decision: Decision,
) -> Result<WorkflowDto, PartyProcessError> {
    let desk = ReviewDesk::new(&config.data_dir);
    let id = config.id.clone();
    let (vault, signer) = open_vault(config).await?;
    settle(
        &desk,
        coordinator,
        &id,
        workflow,
        shown_sha256,
        decision,
        |w, k, p| Holder::new(&*vault, &id, &signer).decide(w, k, p, decision),
    )
    .await
}

/// Decides the pending review of `workflow` shown as `shown_sha256`: `sign` signs
/// over the stored payload, the decision goes to the coordinator, and the desk
/// records it once the coordinator accepted it.
async fn settle(
    desk: &ReviewDesk,
    coordinator: &str,
    approver: &PartyId,
    workflow: &str,
    shown_sha256: &str,
    decision: Decision,
    sign: impl FnOnce(WorkflowId, KeyId, &[u8]) -> Result<IdentitySignature, PartyError>,
) -> Result<WorkflowDto, PartyProcessError> {
    let review = desk.to_decide(workflow, shown_sha256)?;
    let workflow = review.workflow()?;
    let signature =
        sign(workflow, review.key()?, &review.payload()?).map_err(PartyProcessError::Authorize)?;
    let answer = post_decision(coordinator, approver, workflow, decision, &signature).await?;
    desk.decided(review, decision)?;
    Ok(answer)
}

async fn post_decision(
    coordinator: &str,
    approver: &PartyId,
    workflow: WorkflowId,
    decision: Decision,
    signature: &IdentitySignature,
) -> Result<WorkflowDto, PartyProcessError> {
    let request = DecisionRequest {
        approver: approver.to_string(),
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
    .with_peers(config.peers)
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

/// What the review routes need: the node's identity and vault (to sign), its desk
/// and the coordinator (to post the decision).
struct Reviewer {
    node: Arc<PartyNode>,
    desk: ReviewDesk,
    recoveries: RecoveryDesk,
    coordinator: String,
    /// The coordinator's gateway, for the readiness probe.
    gateway: GatewayClient,
    /// The digest of the credential a decision must carry, if decisions over HTTP
    /// are enabled: never the invitation credential, which whoever sends
    /// invitations (the operator) holds.
    approver: CredentialDigest,
}

/// The server role: an HTTP listener that queues invitations and keeps review
/// requests, and a loop that takes part in each invited session.
pub struct InvitationListener {
    node: Arc<PartyNode>,
    addr: SocketAddr,
    server: Server,
    inbox: mpsc::Receiver<Invitation>,
}

impl InvitationListener {
    /// Listens on `bind` (port 0: any free port, see [`Self::addr`]). With a
    /// `credential`, every request but `/health`, `/ready` and the decisions must
    /// carry it as `Authorization: Bearer …`; without one, only a loopback `bind` is
    /// accepted. A decision over HTTP must carry the `approver` credential instead,
    /// which must differ from `credential`; without one, this node decides only
    /// through the `mpc party` commands on its host. Reviews are kept under
    /// `data_dir`; decisions go to `coordinator`.
    pub fn bind(
        node: PartyNode,
        bind: SocketAddr,
        credential: Option<Zeroizing<String>>,
        approver: Option<Zeroizing<String>>,
        data_dir: &std::path::Path,
        coordinator: &str,
    ) -> Result<Self, PartyProcessError> {
        let approver = match approver {
            Some(a) if a.len() < MIN_CREDENTIAL_BYTES => {
                return Err(PartyProcessError::WeakCredential);
            }
            Some(a)
                if credential
                    .as_ref()
                    .is_some_and(|c| c.as_bytes() == a.as_bytes()) =>
            {
                return Err(PartyProcessError::SharedApproverCredential);
            }
            approver => approver.map(|a| Sha256::digest(a.as_bytes())),
        };
        let metrics = web::Data::new(
            crate::metrics::install().map_err(|e| PartyProcessError::Metrics(e.to_string()))?,
        );
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
        let node = Arc::new(node);
        let reviewer = web::Data::new(Reviewer {
            node: node.clone(),
            desk: ReviewDesk::new(data_dir),
            recoveries: RecoveryDesk::new(data_dir),
            coordinator: coordinator.to_owned(),
            gateway: GatewayClient::new(coordinator).map_err(PartyProcessError::Gateway)?,
            approver,
        });
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(authenticate))
                .app_data(web::Data::new(invitations.clone()))
                .app_data(credential.clone())
                .app_data(reviewer.clone())
                .app_data(metrics.clone())
                .app_data(web::PayloadConfig::new(MAX_INVITATION_BYTES))
                .route("/health", web::get().to(HttpResponse::Ok))
                .route("/ready", web::get().to(ready))
                .route("/metrics", web::get().to(render_metrics))
                .route("/v1/invitations", web::post().to(invite))
                .service(
                    web::resource("/v1/reviews")
                        .app_data(web::PayloadConfig::new(2 * MAX_PAYLOAD_BYTES + 4096))
                        .post(receive_review)
                        .get(list_reviews),
                )
                .route("/v1/reviews/{workflow}", web::get().to(show_review))
                .route(
                    "/v1/reviews/{workflow}/decision",
                    web::post().to(decide_on_review),
                )
                .service(
                    web::resource("/v1/recoveries")
                        .post(receive_recovery)
                        .get(list_recoveries),
                )
                .route("/v1/recoveries/{id}", web::get().to(show_recovery))
                .route(
                    "/v1/recoveries/{id}/decision",
                    web::post().to(decide_on_recovery),
                )
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
            node,
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
                    let started = std::time::Instant::now();
                    let outcome = node.participate(session, &invitation.token).await;
                    let label = match &outcome {
                        Ok(_) => "completed",
                        Err(e) => {
                            tracing::warn!(%session, error = %e, "session failed");
                            e.code()
                        }
                    };
                    metrics::counter!(PARTY_SESSIONS_TOTAL, "outcome" => label).increment(1);
                    metrics::histogram!(PARTY_SESSION_SECONDS, "outcome" => label)
                        .record(started.elapsed().as_secs_f64());
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

/// The 401 answer, unless the request carries the party's credential.
/// Digests are compared, so the time taken tells nothing about the credential.
fn unauthorized(http: &HttpRequest, credential: &CredentialDigest) -> Option<HttpResponse> {
    let expected = credential.as_ref()?;
    let presented = http
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|token| Sha256::digest(token.as_bytes()));
    (presented.as_ref() != Some(expected)).then(|| {
        HttpResponse::Unauthorized().json(json!({
            "code": "unauthorized",
            "message": "this party's listener needs its credential as a bearer token"
        }))
    })
}

/// `GET /ready`, open like `/health`: 200 when the vault opens, the transport
/// answers and the coordinator answers its own readiness probe; else 503 naming
/// the failing components (the reasons are logged, not answered).
async fn ready(reviewer: web::Data<Reviewer>) -> HttpResponse {
    let mut failing = reviewer.node.unready().await;
    if let Err(e) = reviewer.gateway.ready().await {
        failing.push(("coordinator", e.to_string()));
    }
    if failing.is_empty() {
        return HttpResponse::Ok().json(json!({"status": "ready"}));
    }
    for (component, reason) in &failing {
        tracing::warn!(component, reason, "not ready");
    }
    let names: Vec<&str> = failing.iter().map(|(component, _)| *component).collect();
    HttpResponse::ServiceUnavailable().json(json!({
        "code": "not_ready",
        "message": format!("not ready: {}", names.join(", ")),
        "failing": names,
    }))
}

/// `GET /metrics`: the node's Prometheus metrics, behind its credential.
async fn render_metrics(render: web::Data<MetricsRender>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(render())
}

/// The listener's credentials, checked before a route reads anything: `/health` and
/// `/ready` answer anyone (and an unknown path is a 404), a decision needs the
/// approver credential
/// ([`not_the_approver`]), every other request the invitation credential
/// ([`unauthorized`]).
async fn authenticate(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let refused = match request.match_pattern().as_deref() {
        None | Some("/health" | "/ready") => None,
        Some("/v1/reviews/{workflow}/decision" | "/v1/recoveries/{id}/decision") => {
            match request.app_data::<web::Data<Reviewer>>() {
                Some(reviewer) => not_the_approver(request.request(), &reviewer.approver),
                None => Some(HttpResponse::InternalServerError().finish()),
            }
        }
        _ => match request.app_data::<web::Data<CredentialDigest>>() {
            Some(credential) => unauthorized(request.request(), credential),
            None => Some(HttpResponse::InternalServerError().finish()),
        },
    };
    match refused {
        Some(response) => Ok(request.into_response(response).map_into_right_body()),
        None => next
            .call(request)
            .await
            .map(ServiceResponse::map_into_left_body),
    }
}

/// The refusal of a decision over HTTP, unless it carries the approver credential:
/// 403 when none is configured (decisions only through `mpc party` on this host),
/// 401 when it is missing or another (the invitation credential included).
fn not_the_approver(http: &HttpRequest, approver: &CredentialDigest) -> Option<HttpResponse> {
    if approver.is_none() {
        return Some(HttpResponse::Forbidden().json(json!({
            "code": "decisions_disabled",
            "message": "this node takes decisions only from `mpc party approvals|recoveries` on \
                        its host; start it with an approver credential to decide over HTTP"
        })));
    }
    unauthorized(http, approver).map(|_| {
        HttpResponse::Unauthorized().json(json!({
            "code": "unauthorized",
            "message": "a decision needs the approver credential as a bearer token"
        }))
    })
}

async fn invite(queue: web::Data<mpsc::Sender<Invitation>>, body: web::Bytes) -> HttpResponse {
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

/// A human's decision on a review (`POST /v1/reviews/{workflow}/decision`): the
/// SHA-256 of the payload it was shown names what it decides on.
#[derive(Deserialize)]
struct DecisionBody {
    decision: String,
    payload_sha256: String,
}

async fn receive_review(reviewer: web::Data<Reviewer>, body: web::Bytes) -> HttpResponse {
    let Ok(request) = serde_json::from_slice::<ReviewRequest>(&body) else {
        return HttpResponse::BadRequest().json(json!({
            "code": "invalid_body",
            "message": "expected {\"workflow_id\", \"key_id\", \"title\", \"payload_hex\"}"
        }));
    };
    answer(
        reviewer.desk.receive(request).map_err(Into::into),
        StatusCode::CREATED,
    )
}

async fn list_reviews(reviewer: web::Data<Reviewer>) -> HttpResponse {
    answer(reviewer.desk.list().map_err(Into::into), StatusCode::OK)
}

async fn show_review(reviewer: web::Data<Reviewer>, workflow: web::Path<String>) -> HttpResponse {
    answer(
        reviewer.desk.get(&workflow).map_err(Into::into),
        StatusCode::OK,
    )
}

async fn decide_on_review(
    reviewer: web::Data<Reviewer>,
    workflow: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let decision = match serde_json::from_slice::<DecisionBody>(&body) {
        Ok(body) => match body.decision.as_str() {
            "approve" => (Decision::Approve, body.payload_sha256),
            "reject" => (Decision::Reject, body.payload_sha256),
            _ => return invalid_decision(),
        },
        Err(_) => return invalid_decision(),
    };
    let (decision, shown) = decision;
    let node = &reviewer.node;
    let settled = settle(
        &reviewer.desk,
        &reviewer.coordinator,
        node.id(),
        &workflow,
        &shown,
        decision,
        |w, k, p| node.holder().decide(w, k, p, decision),
    )
    .await;
    answer(settled, StatusCode::OK)
}

fn invalid_decision() -> HttpResponse {
    HttpResponse::BadRequest().json(json!({
        "code": "invalid_body",
        "message": "expected {\"decision\": \"approve\" | \"reject\", \"payload_sha256\": <hex>}"
    }))
}

async fn receive_recovery(reviewer: web::Data<Reviewer>, body: web::Bytes) -> HttpResponse {
    let Ok(request) = serde_json::from_slice::<RecoveryRequest>(&body) else {
        return HttpResponse::BadRequest().json(json!({
            "code": "invalid_body",
            "message": "expected {\"key_id\", \"target\", \"device_identity\": \
                        {\"signing\", \"encryption\"}, \"reason\"}"
        }));
    };
    answer(
        reviewer.recoveries.receive(request).map_err(Into::into),
        StatusCode::CREATED,
    )
}

async fn list_recoveries(reviewer: web::Data<Reviewer>) -> HttpResponse {
    answer(
        reviewer.recoveries.list().map_err(Into::into),
        StatusCode::OK,
    )
}

async fn show_recovery(reviewer: web::Data<Reviewer>, id: web::Path<String>) -> HttpResponse {
    answer(
        reviewer.recoveries.get(&id).map_err(Into::into),
        StatusCode::OK,
    )
}

/// A human's decision on a recovery request (`POST /v1/recoveries/{id}/decision`):
/// the id names everything the request asks.
#[derive(Deserialize)]
struct RecoveryDecisionBody {
    decision: String,
}

async fn decide_on_recovery(
    reviewer: web::Data<Reviewer>,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let decision = match serde_json::from_slice::<RecoveryDecisionBody>(&body) {
        Ok(body) if body.decision == "approve" => Decision::Approve,
        Ok(body) if body.decision == "reject" => Decision::Reject,
        _ => {
            return HttpResponse::BadRequest().json(json!({
                "code": "invalid_body",
                "message": "expected {\"decision\": \"approve\" | \"reject\"}"
            }));
        }
    };
    let holder = reviewer.node.holder();
    answer(
        settle_recovery(
            &reviewer.recoveries,
            &id,
            decision,
            |key, target, identity| holder.authorize_recovery(key, target, identity),
        ),
        StatusCode::OK,
    )
}

/// The one table from a review route's outcome to its answer.
fn answer<T: serde::Serialize>(
    result: Result<T, PartyProcessError>,
    ok: StatusCode,
) -> HttpResponse {
    let error = match result {
        Ok(body) => return HttpResponse::build(ok).json(body),
        Err(error) => error,
    };
    let (status, code) = match &error {
        PartyProcessError::Review(review) => match review {
            ReviewError::InvalidWorkflow(_)
            | ReviewError::InvalidKey(_)
            | ReviewError::InvalidPayload => (StatusCode::BAD_REQUEST, "invalid_review"),
            ReviewError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ReviewError::Full => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ReviewError::AlreadyDecided(_) => (StatusCode::CONFLICT, "already_decided"),
            ReviewError::Changed { .. } => (StatusCode::CONFLICT, "payload_changed"),
            ReviewError::Unknown(_) => (StatusCode::NOT_FOUND, "unknown_review"),
            ReviewError::Corrupt(_) | ReviewError::Io(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        },
        PartyProcessError::Recovery(recovery) => match recovery {
            RecoveryError::InvalidKey(_)
            | RecoveryError::InvalidTarget(_)
            | RecoveryError::InvalidIdentity(_)
            | RecoveryError::ReasonTooLong
            | RecoveryError::InvalidRequestId(_) => {
                (StatusCode::BAD_REQUEST, "invalid_recovery_request")
            }
            RecoveryError::Full => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            RecoveryError::AlreadyDecided(_) => (StatusCode::CONFLICT, "already_decided"),
            RecoveryError::Unknown(_) => (StatusCode::NOT_FOUND, "unknown_recovery_request"),
            RecoveryError::Corrupt(_) | RecoveryError::Io(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        },
        PartyProcessError::Authorize(_) => (StatusCode::UNPROCESSABLE_ENTITY, "cannot_sign"),
        PartyProcessError::Gateway(_) => (StatusCode::BAD_GATEWAY, "coordinator_refused"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    if status.is_server_error() {
        tracing::warn!(%error, "review route failed");
    }
    HttpResponse::build(status).json(json!({"code": code, "message": error.to_string()}))
}
