//! Keeping a projection running through store outages: [`Supervisor`].
//!
//! A [`ProjectionRunner`] stops on the first error. A transient one (the event store
//! or the read-model database unreachable, as while PostgreSQL restarts) is worth
//! waiting out: the supervisor starts a fresh runner after a bounded, growing delay,
//! and the checkpoint makes it resume where the last one stopped. Corrupt data
//! ([`ProjectionError::is_transient`] is false: an event that cannot be decoded or
//! applied, an invalid row, a migration that does not match) stops it for good, with
//! that error.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mpc_store::EventStore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::db::ReadModels;
use crate::error::ProjectionError;
use crate::runner::{Projection, ProjectionRunner};

/// The first delay before restarting a runner.
pub const MIN_RESTART_DELAY: Duration = Duration::from_millis(200);
/// The longest delay between restarts: the delay doubles after each failure up to it.
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(10);

impl ProjectionError {
    /// Whether waiting may cure this error: the store or the read-model database
    /// could not be reached or used. Decoding and consistency errors, invalid rows and
    /// migration mismatches are not: the data or the code must change.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(_) | Self::Database { .. } | Self::SubscriptionEnded => true,
            Self::Migrate(e) => matches!(
                e,
                sqlx::migrate::MigrateError::Execute(_)
                    | sqlx::migrate::MigrateError::ExecuteMigration(..)
            ),
            Self::Decode { .. } | Self::Inconsistent { .. } | Self::InvalidRow(_) => false,
        }
    }
}

/// Runs projections, restarting each after a transient error with a bounded backoff.
/// Cheap to clone; clones share the restart count.
#[derive(Debug, Clone)]
pub struct Supervisor {
    min_delay: Duration,
    max_delay: Duration,
    restarts: Arc<AtomicU64>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    /// Delays from [`MIN_RESTART_DELAY`] up to [`MAX_RESTART_DELAY`].
    pub fn new() -> Self {
        Self::with_delays(MIN_RESTART_DELAY, MAX_RESTART_DELAY)
    }

    /// Delays from `min` doubling up to `max`.
    pub fn with_delays(min: Duration, max: Duration) -> Self {
        Self {
            min_delay: min,
            max_delay: max.max(min),
            restarts: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many runners this supervisor (and its clones) restarted.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Runs the projection `make(models)` from `store` until `shutdown` completes
    /// (returning the checkpoint), starting a new runner (migrating, then following
    /// from the stored checkpoint) after each transient error, each restart logged.
    /// Returns the first error that is not transient. The delay goes back to the
    /// minimum once a runner has run for longer than the maximum delay.
    pub async fn run<P: Projection>(
        &self,
        store: Arc<dyn EventStore>,
        models: ReadModels,
        make: impl Fn(ReadModels) -> P,
        shutdown: impl Future<Output = ()>,
    ) -> Result<u64, ProjectionError> {
        let mut shutdown = pin!(shutdown);
        let mut delay = self.min_delay;
        loop {
            let started = Instant::now();
            let projection = make(models.clone());
            let name = projection.name().to_owned();
            let result =
                match ProjectionRunner::new(Arc::clone(&store), models.clone(), projection).await {
                    Ok(runner) => runner.run(shutdown.as_mut()).await,
                    Err(error) => Err(error),
                };
            let error = match result {
                Ok(checkpoint) => return Ok(checkpoint),
                Err(error) if error.is_transient() => error,
                Err(error) => {
                    tracing::error!(projection = name, %error,
                        "the projection stopped on an error that a restart cannot cure");
                    return Err(error);
                }
            };
            if started.elapsed() > self.max_delay {
                delay = self.min_delay;
            }
            self.restarts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(projection = name, %error, restart_in = ?delay,
                "the projection stopped on a transient error; restarting it");
            tokio::select! {
                () = shutdown.as_mut() => return Err(error),
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(self.max_delay);
        }
    }

    /// [`Supervisor::run`] as a tokio task.
    pub fn spawn<P: Projection + 'static>(
        &self,
        store: Arc<dyn EventStore>,
        models: ReadModels,
        make: impl Fn(ReadModels) -> P + Send + 'static,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<Result<u64, ProjectionError>> {
        let supervisor = self.clone();
        tokio::spawn(async move { supervisor.run(store, models, make, shutdown).await })
    }
}
