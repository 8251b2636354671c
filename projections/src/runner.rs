//! The projection framework: the [`Projection`] trait, stored checkpoints and the
//! [`ProjectionRunner`] that feeds a projection from the event store.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use mpc_store::{EventStore, RecordedEvent, subscribe};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::db::{Backend, Conn, ReadModels, Row, Tx, sql};
use crate::error::ProjectionError;

/// Events applied per transaction (and read per [`EventStore::read_all`] call while
/// catching up). Each transaction holds SQLite's write lock, so batches stay small.
pub const BATCH_SIZE: usize = 256;

/// A read model kept from the event log.
///
/// The runner calls [`Projection::apply_all`] with a batch of events, in position
/// order, inside a transaction that also advances the projection's checkpoint. If it
/// fails, the batch is rolled back and [`Projection::apply`] is called once per event,
/// each in a savepoint that is rolled back on its own when it fails, so `apply` may
/// leave partial writes behind when it returns an error. A projection decides itself which events concern
/// it and returns `Ok(())` for the others. It writes through [`crate::db::sql`], one
/// SQL text for SQLite and PostgreSQL.
#[async_trait]
pub trait Projection: Send + Sync {
    /// A stable name, unique among projections sharing a database: the key of the
    /// projection's checkpoint. Renaming it rebuilds the projection.
    fn name(&self) -> &str;

    /// Applies one event to the read model through `conn`, which is inside the
    /// runner's transaction. An event this projection cannot understand is an error,
    /// not something to skip.
    async fn apply(
        &self,
        conn: &mut Conn<'_>,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError>;

    /// Applies `events` (in position order) through `conn`, with the same effect as
    /// [`Projection::apply`] on each in turn. The runner calls it for a whole batch
    /// first; a projection may override it to write a batch with fewer statements.
    /// If it fails, the runner rolls the batch back and applies it event by event
    /// with [`Projection::apply`], to find the offending event.
    async fn apply_all(
        &self,
        conn: &mut Conn<'_>,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for event in events {
            self.apply(conn, event).await?;
        }
        Ok(())
    }

    /// Empties the read model (inside the runner's transaction), ready for a replay
    /// from position 0.
    async fn reset(&self, conn: &mut Conn<'_>) -> Result<(), ProjectionError>;
}

/// The stored checkpoint of projection `name`: the position of the last event it has
/// applied (0 when it has applied none).
pub(crate) async fn read_checkpoint(
    conn: &mut Conn<'_>,
    name: &str,
) -> Result<u64, ProjectionError> {
    let row = sql("SELECT position FROM projection_checkpoints WHERE name = $1")
        .bind(name)
        .fetch_optional(conn)
        .await
        .map_err(ProjectionError::database(format!(
            "reading the checkpoint of {name}"
        )))?;
    checkpoint_of(row)
}

/// [`read_checkpoint`] inside a write transaction, holding off every other writer of
/// projection `name` until the transaction ends. SQLite's `BEGIN IMMEDIATE` already
/// holds the database's write lock; on PostgreSQL the checkpoint row is created if
/// missing and locked (`SELECT … FOR UPDATE`), so two runners of one projection apply
/// their batches one after the other and the second sees the first's checkpoint.
async fn lock_checkpoint(conn: &mut Conn<'_>, name: &str) -> Result<u64, ProjectionError> {
    if conn.backend() == Backend::Sqlite {
        return read_checkpoint(conn, name).await;
    }
    sql(
        "INSERT INTO projection_checkpoints (name, position) VALUES ($1, 0) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .execute(conn)
    .await
    .map_err(ProjectionError::database(format!(
        "creating the checkpoint of {name}"
    )))?;
    let row = sql("SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE")
        .bind(name)
        .fetch_optional(conn)
        .await
        .map_err(ProjectionError::database(format!(
            "locking the checkpoint of {name}"
        )))?;
    checkpoint_of(row)
}

/// The checkpoint a `SELECT position FROM projection_checkpoints` found.
fn checkpoint_of(row: Option<Row>) -> Result<u64, ProjectionError> {
    let Some(row) = row else {
        return Ok(0);
    };
    let position = row.get("position").map_err(ProjectionError::database(
        "decoding projection_checkpoints.position",
    ))?;
    from_sql_int(position, "checkpoint")
}

async fn write_checkpoint(
    conn: &mut Conn<'_>,
    name: &str,
    position: u64,
) -> Result<(), ProjectionError> {
    sql(
        "INSERT INTO projection_checkpoints (name, position) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET position = excluded.position",
    )
    .bind(name)
    .bind(to_sql_int(position, "checkpoint")?)
    .execute(conn)
    .await
    .map_err(ProjectionError::database(format!(
        "writing the checkpoint of {name}"
    )))?;
    Ok(())
}

/// What one batch transaction did.
enum Batch {
    /// Events were applied (or already had been); the checkpoint is now here.
    Applied(u64),
    /// The stored checkpoint is behind what the caller expected (someone rebuilt the
    /// projection meanwhile): nothing was applied; continue from here.
    Rewound(u64),
}

/// Feeds one [`Projection`] from an [`EventStore`], keeping its checkpoint in the
/// read-model database.
///
/// Each batch of events is applied in one write transaction that first reads (and
/// locks) the checkpoint, skips events at or below it, applies the rest and stores the
/// new checkpoint: the read model and its checkpoint always change together, so a
/// crash, a re-delivered event or a second runner of the same projection (another
/// process) never applies anything twice. SQLite serializes the transactions with
/// `BEGIN IMMEDIATE`; PostgreSQL with a row lock on the checkpoint.
pub struct ProjectionRunner<P> {
    store: Arc<dyn EventStore>,
    models: ReadModels,
    projection: P,
    progress: watch::Sender<u64>,
}

impl<P: Projection> ProjectionRunner<P> {
    /// A runner for `projection`, whose tables live in `models` (which may be the
    /// event store's own database). Migrates the read-model schema first.
    pub async fn new(
        store: Arc<dyn EventStore>,
        models: ReadModels,
        projection: P,
    ) -> Result<Self, ProjectionError> {
        models.migrate().await?;
        let runner = Self {
            store,
            models,
            projection,
            progress: watch::Sender::new(0),
        };
        let checkpoint = runner.checkpoint().await?;
        runner.progress.send_replace(checkpoint);
        Ok(runner)
    }

    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// The checkpoint as this runner last committed it (or found it when created),
    /// announced on every change: wait on it to read your own writes, e.g.
    /// `progress.wait_for(|p| *p >= outcome.last_position)`.
    pub fn progress(&self) -> watch::Receiver<u64> {
        self.progress.subscribe()
    }

    /// The checkpoint as stored now.
    pub async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        let mut conn = self.models.acquire().await?;
        read_checkpoint(&mut conn.conn(), self.projection.name()).await
    }

    /// Applies every event stored when called (beyond the checkpoint) and returns the
    /// new checkpoint. On error, everything before the offending event stays applied
    /// and the checkpoint stays just before it.
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        let head = self.store.head().await?;
        let mut checkpoint = self.checkpoint().await?;
        while checkpoint < head {
            let events = self.store.read_all(checkpoint, BATCH_SIZE).await?;
            if events.is_empty() {
                break;
            }
            checkpoint = match self.apply_batch(&events, checkpoint).await? {
                Batch::Applied(position) | Batch::Rewound(position) => position,
            };
        }
        Ok(checkpoint)
    }

    /// Empties the read model, sets the checkpoint to 0 and replays the whole log.
    /// Readers see the model empty and then filling up while this runs.
    pub async fn rebuild(&self) -> Result<u64, ProjectionError> {
        let name = self.projection.name();
        tracing::info!(projection = name, "rebuilding from position 0");
        let mut tx = self.models.begin_write().await?;
        lock_checkpoint(&mut tx.conn(), name).await?;
        self.projection.reset(&mut tx.conn()).await?;
        write_checkpoint(&mut tx.conn(), name, 0).await?;
        tx.commit()
            .await
            .map_err(ProjectionError::database(format!(
                "committing the reset of {name}"
            )))?;
        self.progress.send_replace(0);
        self.catch_up().await
    }

    /// Follows the store: applies everything after the checkpoint, then each new event
    /// as it is appended, until `shutdown` completes (returning the checkpoint) or an
    /// event cannot be applied or read (returning that error; a later run resumes from
    /// the checkpoint).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<u64, ProjectionError> {
        let name = self.projection.name();
        let mut shutdown = pin!(shutdown);
        let mut checkpoint = self.checkpoint().await?;
        tracing::info!(projection = name, checkpoint, "following the event store");
        let result = 'subscription: loop {
            let mut events =
                subscribe(Arc::clone(&self.store), checkpoint).ready_chunks(BATCH_SIZE);
            loop {
                let chunk = tokio::select! {
                    biased;
                    () = &mut shutdown => break 'subscription Ok(checkpoint),
                    chunk = events.next() => chunk,
                };
                let Some(chunk) = chunk else {
                    break 'subscription Err(ProjectionError::SubscriptionEnded);
                };
                let mut batch = Vec::with_capacity(chunk.len());
                let mut read_error = None;
                for item in chunk {
                    match item {
                        Ok(event) => batch.push(event),
                        Err(e) => {
                            read_error = Some(e);
                            break;
                        }
                    }
                }
                if !batch.is_empty() {
                    match self.apply_batch(&batch, checkpoint).await {
                        Ok(Batch::Applied(position)) => checkpoint = position,
                        Ok(Batch::Rewound(position)) => {
                            checkpoint = position;
                            continue 'subscription;
                        }
                        Err(e) => break 'subscription Err(e),
                    }
                }
                if let Some(e) = read_error {
                    break 'subscription Err(e.into());
                }
            }
        };
        match &result {
            Ok(checkpoint) => tracing::info!(projection = name, checkpoint, "stopped"),
            Err(error) => tracing::error!(projection = name, %error, "stopped on an error"),
        }
        result
    }

    /// [`ProjectionRunner::run`] as a tokio task.
    pub fn spawn(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<Result<u64, ProjectionError>>
    where
        P: 'static,
    {
        tokio::spawn(self.run(shutdown))
    }

    /// Applies `events` (in position order) in one transaction together with the
    /// checkpoint, skipping those at or below the stored checkpoint. `expected` is the
    /// checkpoint the caller believes is stored.
    ///
    /// The batch is first applied as a whole, without savepoints (a savepoint costs
    /// two more statements per event). Only if an event fails is the transaction
    /// rolled back and the batch applied again event by event, each in a savepoint,
    /// so that everything before the offending event is kept and the checkpoint stops
    /// just before it.
    async fn apply_batch(
        &self,
        events: &[RecordedEvent],
        expected: u64,
    ) -> Result<Batch, ProjectionError> {
        match self.apply_in_one_go(events, expected).await? {
            Some(batch) => Ok(batch),
            None => self.apply_one_by_one(events, expected).await,
        }
    }

    /// The fast path of [`Self::apply_batch`]: `None` when an event failed (and
    /// nothing was committed).
    async fn apply_in_one_go(
        &self,
        events: &[RecordedEvent],
        expected: u64,
    ) -> Result<Option<Batch>, ProjectionError> {
        let name = self.projection.name();
        let mut tx = self.models.begin_write().await?;
        let stored = lock_checkpoint(&mut tx.conn(), name).await?;
        if stored < expected {
            tracing::info!(projection = name, stored, expected, "checkpoint was reset");
            tx.rollback()
                .await
                .map_err(ProjectionError::database("rolling back a stale batch"))?;
            return Ok(Some(Batch::Rewound(stored)));
        }
        let fresh = &events[events.partition_point(|e| e.position <= stored)..];
        if let Err(error) = self.projection.apply_all(&mut tx.conn(), fresh).await {
            tracing::debug!(projection = name, %error,
                "a batch failed; applying it again event by event");
            tx.rollback()
                .await
                .map_err(ProjectionError::database("rolling back a failed batch"))?;
            return Ok(None);
        }
        let checkpoint = fresh.last().map_or(stored, |e| e.position);
        self.commit_batch(tx, stored, checkpoint).await?;
        Ok(Some(Batch::Applied(checkpoint)))
    }

    /// The careful path of [`Self::apply_batch`]: each event in a savepoint.
    async fn apply_one_by_one(
        &self,
        events: &[RecordedEvent],
        expected: u64,
    ) -> Result<Batch, ProjectionError> {
        let name = self.projection.name();
        let mut tx = self.models.begin_write().await?;
        let stored = lock_checkpoint(&mut tx.conn(), name).await?;
        if stored < expected {
            tx.rollback()
                .await
                .map_err(ProjectionError::database("rolling back a stale batch"))?;
            return Ok(Batch::Rewound(stored));
        }
        let mut checkpoint = stored;
        let mut failure = None;
        for event in events.iter().filter(|e| e.position > stored) {
            let mut savepoint = tx.savepoint().await?;
            match self.projection.apply(&mut savepoint.conn(), event).await {
                Ok(()) => {
                    savepoint
                        .commit()
                        .await
                        .map_err(ProjectionError::database("releasing a savepoint"))?;
                    checkpoint = event.position;
                }
                Err(e) => {
                    savepoint
                        .rollback()
                        .await
                        .map_err(ProjectionError::database("rolling back a savepoint"))?;
                    failure = Some(e);
                    break;
                }
            }
        }
        self.commit_batch(tx, stored, checkpoint).await?;
        match failure {
            Some(e) => Err(e),
            None => Ok(Batch::Applied(checkpoint)),
        }
    }

    /// Stores the new checkpoint (if it moved), commits and announces it.
    async fn commit_batch(
        &self,
        mut tx: Tx<'static>,
        stored: u64,
        checkpoint: u64,
    ) -> Result<(), ProjectionError> {
        let name = self.projection.name();
        if checkpoint > stored {
            write_checkpoint(&mut tx.conn(), name, checkpoint).await?;
        }
        tx.commit()
            .await
            .map_err(ProjectionError::database(format!(
                "committing a batch of {name}"
            )))?;
        self.progress.send_if_modified(|progress| {
            let moved = *progress != checkpoint;
            *progress = checkpoint;
            moved
        });
        tracing::debug!(projection = name, checkpoint, "applied a batch");
        Ok(())
    }
}

/// A store position or count as a 64-bit SQL integer.
pub fn to_sql_int(value: u64, what: &str) -> Result<i64, ProjectionError> {
    i64::try_from(value).map_err(|_| {
        ProjectionError::InvalidRow(format!("{what} {value} does not fit in a 64-bit integer"))
    })
}

/// A 64-bit SQL integer as a position or count.
pub fn from_sql_int(value: i64, what: &str) -> Result<u64, ProjectionError> {
    u64::try_from(value)
        .map_err(|_| ProjectionError::InvalidRow(format!("{what} {value} is negative")))
}

#[cfg(test)]
mod tests {
    use mpc_events::Timestamp;
    use mpc_store::{ExpectedVersion, NewEvent, SqliteStore, StoreError, StreamName};
    use tempfile::TempDir;
    use uuid::Uuid;

    use super::*;

    /// Records the position of every event it applies; `Fail` events write a row and
    /// then fail.
    struct Recorder;

    #[async_trait]
    impl Projection for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }

        async fn apply(
            &self,
            conn: &mut Conn<'_>,
            event: &RecordedEvent,
        ) -> Result<(), ProjectionError> {
            sql("INSERT INTO recorded (position) VALUES ($1)")
                .bind(to_sql_int(event.position, "position")?)
                .execute(conn)
                .await
                .map_err(ProjectionError::database("recording"))?;
            if event.event_type == "Fail" {
                return Err(ProjectionError::Inconsistent {
                    position: event.position,
                    stream: event.stream.clone(),
                    detail: "told to fail".into(),
                });
            }
            Ok(())
        }

        async fn reset(&self, conn: &mut Conn<'_>) -> Result<(), ProjectionError> {
            sql("DELETE FROM recorded")
                .execute(conn)
                .await
                .map_err(ProjectionError::database("resetting"))?;
            Ok(())
        }
    }

    struct Fixture {
        _dir: TempDir,
        store: SqliteStore,
        runner: ProjectionRunner<Recorder>,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("events.sqlite"))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE recorded (position INTEGER NOT NULL)")
            .execute(store.pool())
            .await
            .unwrap();
        let runner = ProjectionRunner::new(
            Arc::new(store.clone()),
            ReadModels::from(store.pool().clone()),
            Recorder,
        )
        .await
        .unwrap();
        Fixture {
            _dir: dir,
            store,
            runner,
        }
    }

    fn event(event_type: &str) -> NewEvent {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            payload: Vec::new(),
            correlation_id: Uuid::now_v7(),
            causation_id: Uuid::now_v7(),
            occurred_at: Timestamp::from_millis(0),
        }
    }

    impl Fixture {
        async fn append(&self, types: &[&str]) -> Result<u64, StoreError> {
            let stream = StreamName::parse("test-1")?;
            let events = types.iter().map(|t| event(t)).collect();
            let outcome = self
                .store
                .append(&stream, ExpectedVersion::Any, events)
                .await?;
            Ok(outcome.last_position)
        }

        async fn recorded(&self) -> Vec<i64> {
            sqlx::query_scalar("SELECT position FROM recorded ORDER BY position")
                .fetch_all(self.store.pool())
                .await
                .unwrap()
        }
    }

    #[tokio::test]
    async fn redelivered_positions_are_skipped() {
        let f = fixture().await;
        f.append(&["A", "B", "C"]).await.unwrap();
        assert_eq!(f.runner.catch_up().await.unwrap(), 3);
        let delivered = f.store.read_all(0, 10).await.unwrap();

        let outcome = f.runner.apply_batch(&delivered, 3).await.unwrap();
        assert!(matches!(outcome, Batch::Applied(3)));
        assert_eq!(f.recorded().await, [1, 2, 3]);

        f.append(&["D"]).await.unwrap();
        let overlapping = f.store.read_all(1, 10).await.unwrap();
        let outcome = f.runner.apply_batch(&overlapping, 3).await.unwrap();
        assert!(matches!(outcome, Batch::Applied(4)));
        assert_eq!(f.recorded().await, [1, 2, 3, 4]);
        assert_eq!(f.runner.checkpoint().await.unwrap(), 4);
    }

    #[tokio::test]
    async fn a_batch_behind_a_reset_checkpoint_applies_nothing() {
        let f = fixture().await;
        f.append(&["A", "B"]).await.unwrap();
        f.runner.catch_up().await.unwrap();
        f.append(&["C"]).await.unwrap();
        sqlx::query("UPDATE projection_checkpoints SET position = 0")
            .execute(f.store.pool())
            .await
            .unwrap();
        let third = f.store.read_all(2, 10).await.unwrap();
        let outcome = f.runner.apply_batch(&third, 2).await.unwrap();
        assert!(matches!(outcome, Batch::Rewound(0)));
        assert_eq!(f.recorded().await, [1, 2]);
    }

    #[tokio::test]
    async fn a_failing_apply_leaves_no_partial_write_and_keeps_what_came_before() {
        let f = fixture().await;
        f.append(&["A", "B", "Fail", "D"]).await.unwrap();
        let error = f.runner.catch_up().await.unwrap_err();
        assert!(
            matches!(error, ProjectionError::Inconsistent { position: 3, .. }),
            "{error:?}"
        );
        assert_eq!(f.recorded().await, [1, 2]);
        assert_eq!(f.runner.checkpoint().await.unwrap(), 2);
        assert_eq!(*f.runner.progress().borrow(), 2);
    }

    #[tokio::test]
    async fn catch_up_spans_many_batches_and_rebuild_replays_them_all() {
        let f = fixture().await;
        let per_append = BATCH_SIZE / 2 + 1;
        for _ in 0..5 {
            f.append(&vec!["E"; per_append]).await.unwrap();
        }
        let head = f.store.head().await.unwrap();
        assert_eq!(head, 5 * per_append as u64);
        assert!(head > 2 * BATCH_SIZE as u64);
        assert_eq!(f.runner.catch_up().await.unwrap(), head);
        let expected: Vec<i64> = (1..=head as i64).collect();
        assert_eq!(f.recorded().await, expected);

        assert_eq!(f.runner.rebuild().await.unwrap(), head);
        assert_eq!(f.recorded().await, expected);
    }

    /// The fixture's store, whose reads fail while `failing` is set (an outage).
    struct FlakyStore {
        inner: SqliteStore,
        failing: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl EventStore for FlakyStore {
        async fn append(
            &self,
            stream: &StreamName,
            expected: ExpectedVersion,
            events: Vec<NewEvent>,
        ) -> Result<mpc_store::AppendOutcome, StoreError> {
            self.inner.append(stream, expected, events).await
        }

        async fn read_stream(
            &self,
            stream: &StreamName,
            from_version: u64,
        ) -> Result<Vec<RecordedEvent>, StoreError> {
            self.check()?;
            self.inner.read_stream(stream, from_version).await
        }

        async fn read_all(
            &self,
            after: u64,
            limit: usize,
        ) -> Result<Vec<RecordedEvent>, StoreError> {
            self.check()?;
            self.inner.read_all(after, limit).await
        }

        async fn head(&self) -> Result<u64, StoreError> {
            self.check()?;
            self.inner.head().await
        }

        fn watch_head(&self) -> watch::Receiver<u64> {
            self.inner.watch_head()
        }
    }

    impl FlakyStore {
        fn check(&self) -> Result<(), StoreError> {
            if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(StoreError::Backend("the store is restarting".into()));
            }
            Ok(())
        }
    }

    async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
        let waited = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            while !done().await {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "timed out waiting until {what}");
    }

    #[tokio::test]
    async fn a_supervised_runner_outlives_a_store_outage_and_catches_up() {
        let f = fixture().await;
        let store = Arc::new(FlakyStore {
            inner: f.store.clone(),
            failing: false.into(),
        });
        let supervisor = crate::Supervisor::with_delays(
            std::time::Duration::from_millis(10),
            std::time::Duration::from_millis(50),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = supervisor.spawn(
            store.clone(),
            ReadModels::from(f.store.pool().clone()),
            |_| Recorder,
            async move {
                let _ = stopped.await;
            },
        );
        f.append(&["A", "B"]).await.unwrap();
        wait_until("A and B are applied", async || f.recorded().await == [1, 2]).await;

        store
            .failing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        f.append(&["C", "D"]).await.unwrap();
        wait_until("the runner was restarted twice", async || {
            supervisor.restarts() >= 2
        })
        .await;
        assert!(
            !task.is_finished(),
            "the outage stopped the supervised runner"
        );
        assert_eq!(f.recorded().await, [1, 2]);

        store
            .failing
            .store(false, std::sync::atomic::Ordering::SeqCst);
        wait_until("C and D are applied", async || {
            f.recorded().await == [1, 2, 3, 4]
        })
        .await;
        f.append(&["E"]).await.unwrap();
        wait_until("E is applied", async || {
            f.recorded().await == [1, 2, 3, 4, 5]
        })
        .await;

        stop.send(()).unwrap();
        assert_eq!(task.await.unwrap().unwrap(), 5);
    }

    #[tokio::test]
    async fn a_supervised_runner_still_stops_on_an_event_it_cannot_apply() {
        let f = fixture().await;
        f.append(&["A", "Fail", "C"]).await.unwrap();
        let supervisor = crate::Supervisor::with_delays(
            std::time::Duration::from_millis(10),
            std::time::Duration::from_millis(50),
        );
        let result = supervisor
            .run(
                Arc::new(f.store.clone()),
                ReadModels::from(f.store.pool().clone()),
                |_| Recorder,
                std::future::pending(),
            )
            .await;
        assert!(
            matches!(
                result,
                Err(ProjectionError::Inconsistent { position: 2, .. })
            ),
            "{result:?}"
        );
        assert_eq!(supervisor.restarts(), 0);
        assert_eq!(f.recorded().await, [1]);
    }
}
