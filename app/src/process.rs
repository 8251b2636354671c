//! Running a coordinator process beside its API: on start-up the open sessions and
//! the pending approval workflows are resumed (so deadlines and expiries fire after a
//! restart), then the session-status, audit-log, accounts and approval-workflow
//! projections run under a [`Supervisor`] (restarted after a store outage), the
//! transport log of every session that ends is closed ([`transport_logs`]), and, when
//! a domain-event sink is given, the [`Outbox`] relays the event log to it.
//!
//! [`transport_logs`]: crate::transport_logs

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mpc_actors::{Approvals, Coordinator};
use mpc_outbox::{DomainEventSink, Outbox};
use mpc_projections::{
    AccountsProjection, AuditLogProjection, ProjectionError, ProjectionRunner, ReadModels,
    SessionStatusProjection, Supervisor, WorkflowsProjection,
};
use mpc_store::EventStore;
use mpc_transport::Transport;
use tokio::task::JoinHandle;

use crate::Services;
use crate::transport_logs::{CLOSE_GRACE, close_finished_sessions};

/// How long the domain-event relay waits before resuming after a failure.
const RELAY_RETRY: Duration = Duration::from_secs(5);

/// Why a coordinator process stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error("the {0} projection task panicked")]
    Panicked(&'static str),
}

/// A started coordinator process: its supervised projection runners (and, detached,
/// the transport-log closer and the outbox relay).
pub struct CoordinatorProcess {
    projections: Vec<(&'static str, JoinHandle<Result<u64, ProjectionError>>)>,
}

impl CoordinatorProcess {
    /// Catches the session-status and workflow read models in `models` up with
    /// `store`, resumes every open session and pending workflow of `services`, then
    /// starts the supervised projections, the closer of finished sessions' logs on
    /// `transport` and, with `domain_sink`, the outbox relay. Serve the API after this
    /// returns.
    pub async fn start(
        services: &Services,
        models: ReadModels,
        transport: Arc<dyn Transport>,
        domain_sink: Option<Arc<dyn DomainEventSink>>,
    ) -> Result<Self, ProjectionError> {
        let store = services.store.clone();
        if let Some(sink) = domain_sink {
            tokio::spawn(relay_domain_events(Outbox::new(store.clone(), sink)));
        }
        // Sessions that ended after this position may still have transport logs (or,
        // with Kafka, open remote inboxes): the closer starts here.
        let projected = ProjectionRunner::new(
            store.clone(),
            models.clone(),
            SessionStatusProjection::new(models.clone()),
        )
        .await?
        .checkpoint()
        .await?;
        resume(services, &models).await?;
        // Each runner is restarted after a transient error (a store outage); one that
        // stops on corrupt data stops the process.
        let projections =
            supervise_read_models(&Supervisor::new(), &store, &models, std::future::pending);
        tokio::spawn(close_finished_sessions(
            store,
            transport,
            projected,
            CLOSE_GRACE,
        ));
        Ok(Self { projections })
    }

    /// Completes when a projection runner stops for good (an error a restart cannot
    /// cure, or a panic); runs for ever otherwise.
    pub async fn stopped(self) -> Result<(), ProcessError> {
        let (names, tasks): (Vec<_>, Vec<_>) = self.projections.into_iter().unzip();
        let (result, index, _) = futures::future::select_all(tasks).await;
        match result {
            Ok(checkpoint) => checkpoint.map(|_| ()).map_err(ProcessError::from),
            Err(_) => Err(ProcessError::Panicked(names[index])),
        }
    }
}

/// Runs the session-status, audit-log, accounts and approval-workflow projections
/// from `store` into `models` under `supervisor`, each until its `shutdown()`
/// completes; their tasks, named.
pub fn supervise_read_models<F>(
    supervisor: &Supervisor,
    store: &Arc<dyn EventStore>,
    models: &ReadModels,
    shutdown: impl Fn() -> F,
) -> Vec<(&'static str, JoinHandle<Result<u64, ProjectionError>>)>
where
    F: Future<Output = ()> + Send + 'static,
{
    vec![
        (
            "session-status",
            supervisor.spawn(
                store.clone(),
                models.clone(),
                SessionStatusProjection::new,
                shutdown(),
            ),
        ),
        (
            "audit-log",
            supervisor.spawn(
                store.clone(),
                models.clone(),
                AuditLogProjection::new,
                shutdown(),
            ),
        ),
        (
            "accounts",
            supervisor.spawn(
                store.clone(),
                models.clone(),
                AccountsProjection::new,
                shutdown(),
            ),
        ),
        (
            "approval-workflows",
            supervisor.spawn(
                store.clone(),
                models.clone(),
                WorkflowsProjection::new,
                shutdown(),
            ),
        ),
    ]
}

/// Catches the session-status and approval-workflow read models in `models` up with
/// the store of `services`, then resumes every session they show open
/// ([`resume_open_sessions`]) and every workflow they show pending
/// ([`resume_open_workflows`]): what an earlier process left running ends after a
/// restart too.
pub async fn resume(services: &Services, models: &ReadModels) -> Result<(), ProjectionError> {
    let store = &services.store;
    // Caught up first, so every session in the log is in the read model.
    let sessions = ProjectionRunner::new(
        store.clone(),
        models.clone(),
        SessionStatusProjection::new(models.clone()),
    )
    .await?;
    sessions.catch_up().await?;
    // Likewise for approval workflows, whose expiry is armed only while their actor
    // is live.
    let workflows = ProjectionRunner::new(
        store.clone(),
        models.clone(),
        WorkflowsProjection::new(models.clone()),
    )
    .await?;
    workflows.catch_up().await?;
    let resumed = resume_open_sessions(&services.coordinator, sessions.projection()).await?;
    tracing::info!(resumed, "resumed the open sessions");
    let resumed = resume_open_workflows(&services.approvals, workflows.projection()).await?;
    tracing::info!(resumed, "resumed the pending approval workflows");
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
