//! The HTTP gateway: the only crate that knows HTTP and JSON.
//!
//! It puts the session coordinator ([`mpc_actors::Coordinator`]) and the message
//! transport ([`mpc_transport::Transport`]) behind an actix-web API:
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /v1/sessions` | key-manager (keygen), requester (signing) | create a keygen or signing session; JWT join tokens |
//! | `POST /v1/sessions/{id}/join` | join token | join; the session view and an access token |
//! | `GET /v1/sessions/{id}` | any operator role, or a party | status (long-poll with `wait_until_not`) |
//! | `POST /v1/sessions/{id}/report` | party | the caller's result |
//! | `POST /v1/sessions/{id}/close` | key-manager, requester | end the session as failed |
//! | `POST /v1/sessions/{id}/messages` | party | publish one envelope (raw bytes) |
//! | `GET /v1/sessions/{id}/messages` | party | the caller's inbox from a cursor (long-poll; resumes the caller's open inbox, [`Inboxes`]) |
//! | `GET /v1/keys/{key_id}` | any operator role | a completed key, its share generation and latest refresh |
//! | `POST /v1/keys/{key_id}/refresh` | key-manager | rotate every share of a completed key (refresh session); join tokens |
//! | `POST /v1/accounts` | key-manager | open an account; its 2-of-3 keygen session and join tokens |
//! | `GET /v1/accounts/{id}` | any operator role | status, share-location map (role → party id), key |
//! | `POST /v1/accounts/{id}/status` | key-manager | suspend, lock, start recovery, reactivate |
//! | `POST /v1/accounts/{id}/keygen` | key-manager | replace a failed or expired keygen session |
//! | `POST /v1/accounts/{id}/signatures` | requester | signing session with the account's key (device + server) |
//! | `POST /v1/accounts/{id}/recoveries` | key-manager | recovery session (`device_lost` or `share_rotation`): a refresh session of the account's key; join tokens |
//! | `GET /v1/accounts/{id}/recoveries` | any operator role | the account's recovery sessions, oldest first |
//! | `POST /v1/workflows` | requester | an approval workflow over a completed key |
//! | `GET /v1/workflows/{id}` | any operator role | status, payload, approvers and their decisions |
//! | `POST /v1/workflows/{id}/decisions` | approver's signature | approve or reject (no bearer: the Ed25519 decision signature is the credential) |
//! | `POST /v1/workflows/{id}/signing` | requester | signing session of an approved workflow, carrying its approvals |
//! | `POST /v1/data/signatures` | requester | signing session over a document or record (`data_hex`) |
//! | `POST /v1/data/verify` | anyone | does a signature sign the SHA-256 of `data_hex`? |
//! | `POST /v1/operators`, `DELETE /v1/operators/{id}` | admin | add an API key (shown once), revoke one ([`operators`]) |
//! | `GET /v1/operators` | admin, auditor | every API key's id, name, role, revocation |
//! | `GET /health`, `GET /ready`, `GET /openapi.json`, `GET /metrics` | anyone | operations ([`metrics`]: Prometheus text, no secret in any label) |
//!
//! Bodies are the DTOs of [`mpc_api`]; every refusal is an
//! [`mpc_api::ApiError`] with a stable code, 4xx for the caller's mistakes; a
//! served path called with another method is a 405 whose `Allow` comes from the
//! OpenAPI document ([`routes::Methods`]). Each request runs in a tracing span
//! named by its `X-Request-Id`, in and out ([`request_id`]).
//! `admin` may call every operator route; the table of who each route admits is
//! [`roles`]. Credentials are described in [`auth`]; a decision on a workflow
//! carries its own credential, the approver's signature, and verifying data needs
//! none. Every other `/v1` call is authenticated and authorized before its path or
//! body is read ([`auth::authenticate`]): without a valid bearer token it is a 401,
//! with one its route does not admit a 403 (`role_forbidden`), never a 400.
//!
//! The gateway is an adapter: it builds no service. Give a [`Gateway`] the
//! [`GatewayServices`] it puts behind the routes (the composition layer, `mpc-app`,
//! builds them with a coordinator whose join tokens are this gateway's JWTs,
//! [`auth::JwtJoinTokens`]), then [`Gateway::start`] or [`Gateway::serve`] it, or
//! mount [`Gateway::configure`] in your own `App`.

pub mod accounts;
pub mod auth;
pub mod error;
mod inboxes;
pub mod limits;
pub mod metrics;
mod openapi;
pub mod operators;
pub mod request_id;
pub mod roles;
pub mod routes;
pub mod workflows;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpServer, web};
use mpc_actors::{Accounts, Approvals, Coordinator, Operators};
use mpc_store::EventStore;
use mpc_transport::Transport;

pub use auth::{Auth, JwtKeys, KeyError};
pub use error::GatewayError;
pub use inboxes::Inboxes;
pub use metrics::MetricsRender;
pub use openapi::ApiDoc;

/// Default cap on JSON request bodies (64 KiB).
pub const DEFAULT_JSON_LIMIT: usize = 64 * 1024;

/// PEM files for TLS: a certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

/// How the gateway serves HTTP.
#[derive(Clone)]
pub struct GatewayConfig {
    /// Where to listen; port 0 picks a free port ([`Gateway::start`] returns it).
    pub bind: SocketAddr,
    /// Serve HTTPS (TLS 1.3 only) instead of plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Cap on JSON request bodies. Envelopes are capped at
    /// [`mpc_schemas::MAX_ENVELOPE_BYTES`] regardless.
    pub json_limit: usize,
    /// HTTP worker threads; `None` is actix-web's default (one per core).
    pub workers: Option<usize>,
    /// What `GET /metrics` serves; `None`: 404.
    pub metrics: Option<MetricsRender>,
    /// Calls per minute per operator credential, by role ([`limits`]); empty: none.
    pub rate_limits: Vec<limits::RateLimit>,
}

impl GatewayConfig {
    /// Plain HTTP on `bind`, 64 KiB JSON bodies.
    pub fn new(bind: SocketAddr) -> Self {
        Self {
            bind,
            tls: None,
            json_limit: DEFAULT_JSON_LIMIT,
            workers: None,
            metrics: None,
            rate_limits: Vec::new(),
        }
    }
}

/// The services the gateway puts behind its routes, and its credentials.
#[derive(Clone)]
pub struct GatewayServices {
    pub coordinator: Arc<Coordinator>,
    pub accounts: Arc<Accounts>,
    pub approvals: Arc<Approvals>,
    pub transport: Arc<dyn Transport>,
    pub store: Arc<dyn EventStore>,
    /// The operators' API keys (digests and roles).
    pub operators: Arc<Operators>,
    /// The JWT keys, issuer and admin token; the coordinator's join tokens must be
    /// signed by the same (`JwtJoinTokens`).
    pub auth: Arc<Auth>,
}

/// What the handlers share.
#[derive(Clone)]
pub struct GatewayState {
    pub coordinator: Arc<Coordinator>,
    pub accounts: Arc<Accounts>,
    pub approvals: Arc<Approvals>,
    pub transport: Arc<dyn Transport>,
    pub store: Arc<dyn EventStore>,
    pub operators: Arc<Operators>,
    pub auth: Arc<Auth>,
    /// The inboxes parties poll, kept open between polls.
    pub inboxes: Arc<Inboxes>,
    openapi: web::Bytes,
    /// Each documented path's methods, for 405 answers.
    methods: Arc<routes::Methods>,
    json_limit: usize,
    metrics: Option<MetricsRender>,
    limits: Arc<limits::RateLimits>,
}

/// A configured gateway, ready to serve.
pub struct Gateway {
    state: GatewayState,
    bind: SocketAddr,
    tls: Option<TlsFiles>,
    workers: Option<usize>,
}

impl Gateway {
    /// A gateway serving `services` as `config` says.
    pub fn new(config: GatewayConfig, services: GatewayServices) -> Self {
        let document = <ApiDoc as utoipa::OpenApi>::openapi();
        let methods = Arc::new(routes::Methods::of(&document));
        let openapi = serde_json::to_vec(&document)
            .unwrap_or_else(|e| panic!("the OpenAPI document is plain data: {e}"));
        Self {
            state: GatewayState {
                coordinator: services.coordinator,
                accounts: services.accounts,
                approvals: services.approvals,
                transport: services.transport,
                store: services.store,
                operators: services.operators,
                auth: services.auth,
                inboxes: Arc::new(Inboxes::default()),
                openapi: openapi.into(),
                methods,
                json_limit: config.json_limit,
                metrics: config.metrics,
                limits: Arc::new(limits::RateLimits::new(&config.rate_limits)),
            },
            bind: config.bind,
            tls: config.tls,
            workers: config.workers,
        }
    }

    pub fn state(&self) -> &GatewayState {
        &self.state
    }

    /// Routes, limits and error handlers, for `App::new().configure(..)`.
    pub fn configure(&self) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
        let state = self.state.clone();
        move |cfg: &mut web::ServiceConfig| configure(cfg, state.clone())
    }

    /// Binds and starts serving; returns the bound address and the running server
    /// (await it, or stop it through [`Server::handle`]).
    pub fn start(self) -> io::Result<(SocketAddr, Server)> {
        let configure = self.configure();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(metrics::record))
                .wrap(actix_web::middleware::from_fn(request_id::trace))
                .configure(configure.clone())
        });
        if let Some(workers) = self.workers {
            server = server.workers(workers);
        }
        server = match &self.tls {
            Some(files) => server.bind_rustls_0_23(self.bind, tls_config(files)?)?,
            None => server.bind(self.bind)?,
        };
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| io::Error::other("server bound no address"))?;
        tracing::info!(%addr, tls = self.tls.is_some(), "gateway listening");
        Ok((addr, server.run()))
    }

    /// Starts, calls `ready` with the bound address, and serves until stopped.
    pub async fn serve(self, ready: impl FnOnce(SocketAddr)) -> io::Result<()> {
        let (addr, server) = self.start()?;
        ready(addr);
        server.await
    }
}

fn configure(cfg: &mut web::ServiceConfig, state: GatewayState) {
    let json_limit = state.json_limit;
    cfg.app_data(web::Data::new(state))
        .app_data(
            web::JsonConfig::default()
                .limit(json_limit)
                .error_handler(json_error),
        )
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .route("/health", web::get().to(routes::health))
        .route("/ready", web::get().to(routes::ready))
        .route("/openapi.json", web::get().to(routes::openapi))
        .route("/metrics", web::get().to(metrics::render))
        .service(
            web::scope("/v1")
                .wrap(actix_web::middleware::from_fn(auth::authenticate))
                .route("/sessions", web::post().to(routes::create_session))
                .route("/sessions/{id}", web::get().to(routes::status))
                .route("/sessions/{id}/join", web::post().to(routes::join))
                .route("/sessions/{id}/report", web::post().to(routes::report))
                .route("/sessions/{id}/close", web::post().to(routes::close))
                .route(
                    "/sessions/{id}/messages",
                    web::post().to(routes::post_message),
                )
                .route("/sessions/{id}/messages", web::get().to(routes::inbox))
                .route("/keys/{key_id}", web::get().to(routes::key))
                .route(
                    "/keys/{key_id}/refresh",
                    web::post().to(routes::refresh_key),
                )
                .route("/accounts", web::post().to(accounts::open))
                .route("/accounts/{id}", web::get().to(accounts::get))
                .route(
                    "/accounts/{id}/status",
                    web::post().to(accounts::change_status),
                )
                .route(
                    "/accounts/{id}/keygen",
                    web::post().to(accounts::restart_keygen),
                )
                .route("/accounts/{id}/signatures", web::post().to(accounts::sign))
                .route(
                    "/accounts/{id}/recoveries",
                    web::post().to(accounts::recover),
                )
                .route(
                    "/accounts/{id}/recoveries",
                    web::get().to(accounts::recoveries),
                )
                .route("/workflows", web::post().to(workflows::create))
                .route("/workflows/{id}", web::get().to(workflows::get))
                .route(
                    "/workflows/{id}/decisions",
                    web::post().to(workflows::decide),
                )
                .route(
                    "/workflows/{id}/signing",
                    web::post().to(workflows::start_signing),
                )
                .route("/data/signatures", web::post().to(workflows::sign_data))
                .route("/data/verify", web::post().to(workflows::verify_data))
                .route("/operators", web::post().to(operators::add))
                .route("/operators", web::get().to(operators::list))
                .route("/operators/{id}", web::delete().to(operators::revoke)),
        )
        .default_service(web::to(routes::not_found));
}

fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let e = match &err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            GatewayError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                err.to_string(),
            )
        }
        JsonPayloadError::ContentType => GatewayError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected `Content-Type: application/json`",
        ),
        JsonPayloadError::Deserialize(de) if de.is_data() => {
            GatewayError::bad_request("invalid_body", de.to_string())
        }
        JsonPayloadError::Deserialize(de) => {
            GatewayError::bad_request("malformed_json", de.to_string())
        }
        other => GatewayError::bad_request("malformed_json", other.to_string()),
    };
    e.into()
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    GatewayError::bad_request("invalid_query", err.to_string()).into()
}

fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    GatewayError::bad_request("invalid_path", err.to_string()).into()
}

/// TLS 1.3 only, with the aws-lc-rs provider.
fn tls_config(files: &TlsFiles) -> io::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let pem = |e: rustls::pki_types::pem::Error| io::Error::new(io::ErrorKind::InvalidData, e);
    let certs = CertificateDer::pem_file_iter(&files.cert_path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    let key = PrivateKeyDer::from_pem_file(&files.key_path).map_err(pem)?;
    rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .map_err(io::Error::other)?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
