//! `mpc serve`: the coordinator process — HTTP gateway, session actors, the
//! session-status, audit-log, accounts and approval-workflow projections, and, with
//! Kafka, the domain-event outbox. On start-up it resumes every open session, so
//! deadlines fire after a restart, and every pending approval workflow, so they
//! expire. `GET /metrics` serves its Prometheus metrics. Projection runners are restarted after a store
//! outage, and every session that ends has its transport log closed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use mpc_actors::SystemClock;
use mpc_app::{CoordinatorProcess, Services, adapters};
use mpc_gateway::limits::RateLimit;
use mpc_gateway::{Auth, Gateway, GatewayConfig, JwtKeys, TlsFiles};

use crate::infra::{self, StoreArgs, TransportArgs};

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "MPC_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Directory for the SQLite event log (unless --store-url), the read models and
    /// generated secrets.
    #[arg(long, env = "MPC_DATA_DIR", default_value = "mpc-data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub transport: TransportArgs,
    /// Kafka topic (single partition) the outbox publishes domain events to, when
    /// Kafka brokers are configured; see docs/domain-events.md.
    #[arg(long, env = "MPC_DOMAIN_TOPIC", default_value = mpc_outbox::DEFAULT_TOPIC)]
    pub domain_topic: String,
    /// File holding the HS256 secret that signs join and access tokens
    /// (default: `jwt.secret` in the data directory, created if missing).
    #[arg(long, env = "MPC_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,
    /// File holding the bootstrap admin token, the credential with the `admin` role
    /// that adds operators' API keys (default: `admin.token` in the data directory,
    /// created if missing).
    #[arg(long, env = "MPC_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// `iss` of the tokens this coordinator issues.
    #[arg(long, env = "MPC_ISSUER", default_value = "mpc-coordinator")]
    pub issuer: String,
    /// TLS certificate chain (PEM); with --tls-key, serves HTTPS (TLS 1.3 only).
    #[arg(long, env = "MPC_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "MPC_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Calls per minute per credential of a role, `ROLE=N` (e.g. `requester=600`);
    /// repeat for several roles. Over it: 429 with Retry-After. Unnamed roles are
    /// not limited.
    #[arg(
        long = "rate-limit",
        env = "MPC_RATE_LIMITS",
        value_name = "ROLE=N",
        value_delimiter = ','
    )]
    pub rate_limits: Vec<RateLimit>,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let store_url = args.store.store_url.as_deref();
    let store = adapters::open_store(store_url, &args.data_dir).await?;
    let brokers = args.transport.kafka_brokers.as_deref();
    let transport = adapters::open_transport(brokers, &args.transport.kafka_topic).await?;
    let domain_sink = match brokers {
        Some(brokers) => Some(adapters::open_domain_sink(brokers, &args.domain_topic).await?),
        None => None,
    };

    let jwt_secret = infra::secret_file(
        args.jwt_secret_file.as_deref(),
        &args.data_dir.join("jwt.secret"),
        infra::random_hex,
    )?;
    let admin_token = infra::secret_file(
        args.admin_token_file.as_deref(),
        &args.data_dir.join("admin.token"),
        infra::random_hex,
    )?;
    let jwt = JwtKeys::hs256(jwt_secret.as_bytes()).context("invalid JWT secret")?;
    let auth = Arc::new(
        Auth::new(jwt, args.issuer.clone(), &admin_token)
            .context("cannot configure the gateway")?,
    );
    let mut config = GatewayConfig::new(args.bind);
    config.metrics = Some(mpc_app::metrics::install()?);
    config.rate_limits = args.rate_limits.clone();
    config.tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert_path), Some(key_path)) => Some(TlsFiles {
            cert_path: cert_path.clone(),
            key_path: key_path.clone(),
        }),
        _ => None,
    };
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };

    // Read models live in the event store's PostgreSQL database, or else in a local
    // SQLite file beside the SQLite event log.
    let models = adapters::open_read_models(store_url, || {
        args.data_dir.join(crate::audit::READ_MODELS_FILE)
    })
    .await?;
    let services = Services::for_gateway(store, Arc::new(SystemClock), &auth);
    let process =
        CoordinatorProcess::start(&services, models, transport.clone(), domain_sink).await?;
    let gateway = Gateway::new(config, services.gateway(transport, auth));
    let served = gateway.serve(|addr| {
        println!("listening on {scheme}://{addr}");
    });
    tokio::select! {
        result = served => result.context("the HTTP server stopped")?,
        result = process.stopped() => result?,
    }
    Ok(())
}
