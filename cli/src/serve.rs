//! `mpc serve`: the coordinator process — HTTP gateway, session actors, the
//! session-status, audit-log, accounts and approval-workflow projections, and, with
//! Kafka, the domain-event outbox. On start-up it resumes every open session, so
//! deadlines fire after a restart, and every pending approval workflow, so they
//! expire. Projection runners are restarted after a store
//! outage, and every session that ends has its transport log closed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use mpc_actors::{Approvals, Coordinator, SystemClock};
use mpc_gateway::{Gateway, GatewayConfig, JwtKeys, TlsFiles};
use mpc_outbox::Outbox;
use mpc_projections::{
    AccountsProjection, AuditLogProjection, ProjectionError, ProjectionRunner,
    SessionStatusProjection, Supervisor, WorkflowsProjection,
};

use crate::infra::{self, StoreArgs, TransportArgs};

/// How long the domain-event relay waits before resuming after a failure.
const RELAY_RETRY: Duration = Duration::from_secs(5);

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
    if let Some(brokers) = &args.transport.kafka_brokers {
        let sink = infra::open_domain_sink(brokers, &args.domain_topic).await?;
        tokio::spawn(relay_domain_events(Outbox::new(store.clone(), sink)));
    }

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
    // Sessions that ended after this position may still have transport logs (or, with
    // Kafka, open remote inboxes): the closer below starts here.
    let projected = projection.checkpoint().await?;
    // Caught up before serving, so every session in the log is in the read model and
    // the open ones can be resumed below.
    projection.catch_up().await?;
    let sessions = projection.projection().clone();
    drop(projection);
    // Likewise for approval workflows, whose expiry is armed only while their actor
    // is live.
    let workflows = ProjectionRunner::new(
        store.clone(),
        models.clone(),
        WorkflowsProjection::new(models.clone()),
    )
    .await?;
    workflows.catch_up().await?;
    let open_workflows = workflows.projection().clone();
    drop(workflows);
    // Each runner is restarted after a transient error (a store outage); one that
    // stops on corrupt data stops the process.
    let supervisor = Supervisor::new();
    let forever = std::future::pending::<()>;
    let projection = supervisor.spawn(
        store.clone(),
        models.clone(),
        SessionStatusProjection::new,
        forever(),
    );
    let audit = supervisor.spawn(
        store.clone(),
        models.clone(),
        AuditLogProjection::new,
        forever(),
    );
    let accounts = supervisor.spawn(
        store.clone(),
        models.clone(),
        AccountsProjection::new,
        forever(),
    );
    let workflows = supervisor.spawn(
        store.clone(),
        models.clone(),
        WorkflowsProjection::new,
        forever(),
    );

    let gateway = Gateway::new(config, store, std::sync::Arc::new(SystemClock), transport)
        .context("cannot configure the gateway")?;
    tokio::spawn(gateway.close_finished_sessions(projected));
    let resumed = resume_open_sessions(gateway.coordinator(), &sessions).await?;
    tracing::info!(resumed, "resumed the open sessions");
    let resumed = resume_open_workflows(gateway.approvals(), &open_workflows).await?;
    tracing::info!(resumed, "resumed the pending approval workflows");
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

/// Loads every session the session-status read model shows open (`created` or
/// `in_progress`) into `coordinator`, so that each one's deadline is armed again: a
/// session whose parties never come back after a restart still ends, expiring at
/// once if its deadline passed while no coordinator ran. Catch the read model's
/// runner up first. A session that cannot be loaded is logged and skipped (the
/// others are still resumed); returns how many were resumed.
pub async fn resume_open_sessions(
    coordinator: &Coordinator,
    sessions: &SessionStatusProjection,
) -> Result<usize, ProjectionError> {
    let mut resumed = 0;
    for session_id in sessions.open_sessions().await? {
        match coordinator.resume(session_id).await {
            Ok(_) => resumed += 1,
            Err(error) => {
                tracing::warn!(%session_id, %error, "could not resume an open session");
            }
        }
    }
    Ok(resumed)
}

/// Loads every workflow the workflows read model shows pending into `approvals`, so
/// that each one's expiry is armed again (at once if it passed while no coordinator
/// ran). Catch the read model's runner up first. A workflow that cannot be loaded is
/// logged and skipped; returns how many were resumed.
pub async fn resume_open_workflows(
    approvals: &Approvals,
    workflows: &WorkflowsProjection,
) -> Result<usize, ProjectionError> {
    let mut resumed = 0;
    for workflow_id in workflows.open_workflows().await? {
        match approvals.resume(workflow_id).await {
            Ok(_) => resumed += 1,
            Err(error) => {
                tracing::warn!(%workflow_id, %error, "could not resume a pending workflow");
            }
        }
    }
    Ok(resumed)
}

/// Runs the outbox for the life of the process. After a failure (Kafka unreachable, an
/// event that cannot be mapped) it waits and starts again from the topic's last record:
/// nothing is lost, and consumers drop what is republished by event id.
async fn relay_domain_events(outbox: Outbox) {
    loop {
        match outbox.run(std::future::pending()).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%error, retry_in = ?RELAY_RETRY, "the domain-event relay failed");
            }
        }
        tokio::time::sleep(RELAY_RETRY).await;
    }
}
