//! `mpc serve`: the coordinator process — HTTP gateway, session actors and the
//! session-status, audit-log, accounts and approval-workflow projections.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use mpc_actors::SystemClock;
use mpc_gateway::{Gateway, GatewayConfig, JwtKeys, TlsFiles};
use mpc_projections::{
    AccountsProjection, AuditLogProjection, ProjectionRunner, SessionStatusProjection,
    WorkflowsProjection,
};

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
    /// File holding the HS256 secret that signs join and access tokens
    /// (default: `jwt.secret` in the data directory, created if missing).
    #[arg(long, env = "MPC_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,
    /// File holding the operator's bearer token for creating and closing sessions
    /// (default: `admin.token` in the data directory, created if missing).
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
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let store = infra::open_store(&args.store, &args.data_dir).await?;
    let transport = infra::open_transport(&args.transport).await?;

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
    let mut config = GatewayConfig::new(args.bind, jwt, admin_token.as_str());
    config.issuer = args.issuer.clone();
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
    let models = infra::open_read_models(&args.store, || {
        Ok(args.data_dir.join(crate::audit::READ_MODELS_FILE))
    })
    .await?;
    let projection = ProjectionRunner::new(
        store.clone(),
        models.clone(),
        SessionStatusProjection::new(models.clone()),
    )
    .await?;
    let projection = projection.spawn(std::future::pending());
    let audit = ProjectionRunner::new(
        store.clone(),
        models.clone(),
        AuditLogProjection::new(models.clone()),
    )
    .await?
    .spawn(std::future::pending());
    let accounts = ProjectionRunner::new(
        store.clone(),
        models.clone(),
        AccountsProjection::new(models.clone()),
    )
    .await?
    .spawn(std::future::pending());
    let workflows = ProjectionRunner::new(
        store.clone(),
        models.clone(),
        WorkflowsProjection::new(models),
    )
    .await?
    .spawn(std::future::pending());

    let gateway = Gateway::new(config, store, std::sync::Arc::new(SystemClock), transport)
        .context("cannot configure the gateway")?;
    let served = gateway.serve(|addr| {
        println!("listening on {scheme}://{addr}");
    });
    tokio::select! {
        result = served => result.context("the HTTP server stopped")?,
        result = projection => {
            result.context("the projection task panicked")??;
        }
        result = audit => {
            result.context("the audit-log projection task panicked")??;
        }
        result = accounts => {
            result.context("the accounts projection task panicked")??;
        }
        result = workflows => {
            result.context("the approval-workflows projection task panicked")??;
        }
    }
    Ok(())
}
