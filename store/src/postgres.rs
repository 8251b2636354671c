//! The PostgreSQL adapter: an event store that several processes can share.
//!
//! Appends run in one `READ COMMITTED` transaction: take the append lock, read the
//! stream's current version, check the expected version, insert the whole batch with
//! one `INSERT … SELECT FROM UNNEST(…)`, announce it with `pg_notify`, commit. The
//! `UNIQUE(stream, version)` constraint stays as the last guard (against writers that
//! bypass the lock) and maps to [`StoreError::WrongExpectedVersion`], exactly as in the
//! SQLite adapter. An append, once started, runs to completion (and is announced) even if
//! its caller stops waiting.
//!
//! # Why appends are serialised
//!
//! Positions come from an identity column, and a sequence hands out numbers at insert
//! time, not at commit time: with two concurrent transactions, position 11 could commit
//! and be read before position 10 commits, and a subscriber that has moved past 11 would
//! skip 10 forever. So every append first takes one transaction-level advisory lock
//! (`pg_advisory_xact_lock`, released when the transaction ends, after its commit is
//! visible). Positions are therefore drawn and committed in the same order, and readers
//! only ever see a prefix of the log grow.
//!
//! The trade-off is throughput: appends to *different* streams also wait for each other,
//! so the database commits one append (one WAL flush) at a time. Batching events into
//! one append amortises that; the optimistic `(stream, version)` check is unaffected.
//! Positions are gapless in practice, but a rolled-back append (a wrong expected version
//! found by the constraint, a duplicate event id, a crash) still consumes its sequence
//! numbers: readers must not assume that positions have no gaps.
//!
//! # The head channel
//!
//! Each append sends `pg_notify('mpc_events', '<last position>')` inside its
//! transaction, which PostgreSQL delivers at commit to every listening session. Each
//! store keeps one connection listening on that channel (a background task) and moves its
//! [`EventStore::watch_head`] channel forward, so appends made by *other processes* wake
//! this process's subscribers too. When the listening connection is lost, the task
//! reconnects (with backoff), listens again and only then re-reads the head, so an
//! append notified while it was away is never missed.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mpc_events::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::port::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamName,
};

/// Connections of the pool, one of which the notification listener holds.
const MAX_CONNECTIONS: u32 = 10;
/// The store keeps its own migration table so that read models sharing the database can
/// run their own migrations without either side seeing "missing" ones.
const MIGRATIONS_TABLE: &str = "_mpc_store_migrations";
/// The `LISTEN`/`NOTIFY` channel on which appends announce their last position.
const CHANNEL: &str = "mpc_events";
/// Key of the advisory lock that serialises appends ("mpc_evts" in ASCII). Advisory
/// locks are per database, so stores on different databases never wait for each other.
const APPEND_LOCK: i64 = 0x6d70_635f_6576_7473;
/// First and longest wait before the listener tries to reconnect.
const RECONNECT_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(5));

macro_rules! select_events {
    ($tail:literal) => {
        concat!(
            "SELECT position, stream, version, event_id::text AS event_id, event_type, ",
            "schema_version, payload, correlation_id::text AS correlation_id, ",
            "causation_id::text AS causation_id, occurred_at FROM events ",
            $tail
        )
    };
}
const READ_STREAM: &str = select_events!("WHERE stream = $1 AND version >= $2 ORDER BY version");
const READ_ALL: &str = select_events!("WHERE position > $1 ORDER BY position LIMIT $2");

/// Inserts a batch (`$1` stream, `$2` version before the batch, `$3…$9` one array per
/// column) in batch order and announces its last position. `ORDER BY` makes PostgreSQL
/// draw the positions in batch order, so they follow the versions.
const INSERT_BATCH: &str = "\
WITH inserted AS (
    INSERT INTO events (stream, version, event_id, event_type, schema_version, payload,
                        correlation_id, causation_id, occurred_at)
    SELECT $1, $2 + batch.n, batch.event_id::uuid, batch.event_type, batch.schema_version,
           batch.payload, batch.correlation_id::uuid, batch.causation_id::uuid,
           batch.occurred_at
    FROM UNNEST($3::text[], $4::text[], $5::int4[], $6::bytea[], $7::text[], $8::text[],
                $9::int8[])
         WITH ORDINALITY AS batch(event_id, event_type, schema_version, payload,
                                  correlation_id, causation_id, occurred_at, n)
    ORDER BY batch.n
    RETURNING position
)
SELECT last_position, pg_notify($10, last_position::text)
FROM (SELECT MAX(position) AS last_position FROM inserted) AS batch_end";

/// Event store on one PostgreSQL database. Cheap to clone: clones share the pool, the
/// head channel and the notification listener.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    head: Arc<watch::Sender<u64>>,
    listener: Arc<ListenerTask>,
}

/// The task that follows notifications; stopped when the last store clone goes away.
#[derive(Debug)]
struct ListenerTask(JoinHandle<()>);

impl Drop for ListenerTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/database`),
    /// migrates it and starts listening for appends.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(backend("connecting to PostgreSQL"))?;
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.set_ignore_missing(true);
        migrator
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating the event store: {e}")))?;
        // Listen before reading the head: an append committed in between is both counted
        // in the head and notified, none falls between the two.
        let listener = listen(&pool)
            .await
            .map_err(backend("listening for appends"))?;
        let head = Arc::new(watch::Sender::new(query_head(&pool).await?));
        let task = tokio::spawn(follow_appends(pool.clone(), Arc::clone(&head), listener));
        Ok(Self {
            pool,
            head,
            listener: Arc::new(ListenerTask(task)),
        })
    }

    /// The connection pool, so read models can keep their tables in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Stops listening and closes every connection (waiting for checked-out ones to come
    /// back). Later calls on this store or its clones fail with [`StoreError::Backend`],
    /// and its head channel no longer moves.
    pub async fn close(&self) {
        self.listener.0.abort();
        self.pool.close().await;
    }

    async fn append_in_transaction(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError> {
        // Explicitly READ COMMITTED: each statement must see the appends committed before
        // it, in particular the version read right after taking the lock, whatever the
        // server's default isolation level.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(backend("beginning an append"))?;
        match insert_locked(&mut tx, stream, expected, events).await {
            Ok(outcome) => {
                tx.commit()
                    .await
                    .map_err(backend(&format!("committing an append to {stream}")))?;
                Ok(outcome)
            }
            Err(failure) => {
                // Ends the transaction (and so releases the append lock) before anything
                // else. If the rollback itself fails the connection is broken, and
                // PostgreSQL aborts the transaction when it closes: the failure reported
                // is the one that matters.
                let _ = tx.rollback().await;
                Err(self.explain(failure, stream, expected, events).await)
            }
        }
    }

    /// Turns a failed append into the error the port promises. Runs after the rollback.
    async fn explain(
        &self,
        failure: Failure,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> StoreError {
        match failure {
            Failure::Rejected(error) => error,
            Failure::Violated(UniqueViolation::StreamVersion) => {
                match stream_version(&self.pool, stream).await {
                    Ok(actual) => StoreError::WrongExpectedVersion {
                        stream: stream.clone(),
                        expected,
                        actual,
                    },
                    Err(error) => error,
                }
            }
            Failure::Violated(UniqueViolation::EventId) => {
                match first_duplicate(&self.pool, events).await {
                    Ok(Some(event_id)) => StoreError::DuplicateEventId(event_id),
                    Ok(None) => StoreError::Backend(format!(
                        "appending to {stream}: PostgreSQL reported a taken event id, but \
                         no event id of the batch is stored or repeated"
                    )),
                    Err(error) => error,
                }
            }
        }
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        if events.is_empty() {
            return Err(StoreError::EmptyAppend);
        }
        // The append runs as its own task so that it finishes, and a commit is always
        // announced on the head channel, even if the caller stops waiting midway.
        let (store, stream) = (self.clone(), stream.clone());
        tokio::spawn(async move {
            let outcome = store
                .append_in_transaction(&stream, expected, &events)
                .await?;
            // The notification reaches this process too, but telling our own
            // subscribers now saves them the round trip.
            advance(&store.head, outcome.last_position);
            Ok(outcome)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("the append task did not finish: {e}")))?
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(READ_STREAM)
            .bind(stream.as_str())
            .bind(clamp_to_sql_int(from_version))
            .fetch_all(&self.pool)
            .await
            .map_err(backend(&format!("reading stream {stream}")))?;
        rows.iter().map(decode_event).collect()
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(READ_ALL)
            .bind(clamp_to_sql_int(after))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(backend(&format!("reading events after position {after}")))?;
        rows.iter().map(decode_event).collect()
    }

    async fn head(&self) -> Result<u64, StoreError> {
        query_head(&self.pool).await
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }
}

/// Why an append inside the transaction did not go through.
enum Failure {
    /// Already the error to report.
    Rejected(StoreError),
    /// The insert hit a unique constraint; which event or version needs a fresh look.
    Violated(UniqueViolation),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Rejected(error)
    }
}

/// Which unique constraint an insert violated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UniqueViolation {
    EventId,
    StreamVersion,
}

/// Takes the append lock, checks the expected version and inserts the batch.
async fn insert_locked(
    conn: &mut PgConnection,
    stream: &StreamName,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> Result<AppendOutcome, Failure> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(backend("taking the append lock"))?;
    let actual = stream_version(&mut *conn, stream).await?;
    if let ExpectedVersion::Exact(n) = expected
        && n != actual
    {
        return Err(StoreError::WrongExpectedVersion {
            stream: stream.clone(),
            expected,
            actual,
        }
        .into());
    }
    let stream_version = u64::try_from(events.len())
        .ok()
        .and_then(|len| actual.checked_add(len))
        .filter(|&version| i64::try_from(version).is_ok())
        .ok_or_else(|| StoreError::Backend(format!("stream {stream} is full")))?;

    let uuids = |id: fn(&NewEvent) -> Uuid| -> Vec<String> {
        events
            .iter()
            .map(|e| id(e).hyphenated().to_string())
            .collect()
    };
    let inserted = sqlx::query(INSERT_BATCH)
        .bind(stream.as_str())
        .bind(to_sql_int(actual, "version")?)
        .bind(uuids(|e| e.event_id))
        .bind(
            events
                .iter()
                .map(|e| e.event_type.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|e| i32::from(e.schema_version))
                .collect::<Vec<_>>(),
        )
        .bind(
            events
                .iter()
                .map(|e| e.payload.as_slice())
                .collect::<Vec<_>>(),
        )
        .bind(uuids(|e| e.correlation_id))
        .bind(uuids(|e| e.causation_id))
        .bind(
            events
                .iter()
                .map(|e| e.occurred_at.as_millis())
                .collect::<Vec<_>>(),
        )
        .bind(CHANNEL)
        .fetch_one(&mut *conn)
        .await;
    let row = match inserted {
        Ok(row) => row,
        Err(e) => {
            return Err(match classify_unique_violation(&e) {
                Some(violation) => Failure::Violated(violation),
                None => backend(&format!("appending to {stream}"))(e).into(),
            });
        }
    };
    let last_position: i64 = row
        .try_get("last_position")
        .map_err(backend("decoding the appended position"))?;
    Ok(AppendOutcome {
        stream_version,
        last_position: from_sql_int(last_position, "position")?,
    })
}

fn classify_unique_violation(error: &sqlx::Error) -> Option<UniqueViolation> {
    let db = error.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    // The constraints are named in the migration.
    match db.constraint()? {
        "events_event_id" => Some(UniqueViolation::EventId),
        "events_stream_version" => Some(UniqueViolation::StreamVersion),
        _ => None,
    }
}

/// The first event of the batch whose id is already stored or appears earlier in the
/// batch: the one an event-by-event insert would have failed on.
async fn first_duplicate(pool: &PgPool, events: &[NewEvent]) -> Result<Option<Uuid>, StoreError> {
    let ids: Vec<String> = events
        .iter()
        .map(|e| e.event_id.hyphenated().to_string())
        .collect();
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT event_id::text FROM events WHERE event_id = ANY($1::uuid[])")
            .bind(ids)
            .fetch_all(pool)
            .await
            .map_err(backend("looking up duplicate event ids"))?;
    let stored = stored
        .iter()
        .map(|id| to_uuid(id, "event_id"))
        .collect::<Result<HashSet<_>, _>>()?;
    let mut seen = HashSet::new();
    Ok(events
        .iter()
        .map(|e| e.event_id)
        .find(|id| stored.contains(id) || !seen.insert(*id)))
}

/// Connects a listener to the append channel.
async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Moves `head` forward on every notification until the pool closes or the task is
/// aborted. Whenever notifications may have been lost (the connection dropped), it
/// listens again first and then re-reads the head.
async fn follow_appends(pool: PgPool, head: Arc<watch::Sender<u64>>, mut listener: PgListener) {
    let (first_wait, longest_wait) = RECONNECT_BACKOFF;
    loop {
        let in_step = match listener.try_recv().await {
            Ok(Some(notification)) => match notification.payload().parse() {
                Ok(position) => {
                    advance(&head, position);
                    true
                }
                // Not one of ours (someone else notifying on the channel): look it up.
                Err(_) => refresh_head(&pool, &head).await,
            },
            // The connection was lost and has already been re-established, listening
            // included: whatever was notified meanwhile is in the head.
            Ok(None) => refresh_head(&pool, &head).await,
            Err(_) if pool.is_closed() => return,
            Err(_) => false,
        };
        if in_step {
            continue;
        }
        let mut wait = first_wait;
        loop {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(longest_wait);
            if pool.is_closed() {
                return;
            }
            if let Ok(fresh) = listen(&pool).await {
                listener = fresh;
                if refresh_head(&pool, &head).await {
                    break;
                }
            }
        }
    }
}

/// Re-reads the head into the channel; false if the database could not be asked.
async fn refresh_head(pool: &PgPool, head: &watch::Sender<u64>) -> bool {
    match query_head(pool).await {
        Ok(position) => {
            advance(head, position);
            true
        }
        Err(_) => false,
    }
}

/// Moves the head to `position` if that is further; announcements may arrive out of
/// order (our own append and its notification), the head never moves back.
fn advance(head: &watch::Sender<u64>, position: u64) {
    head.send_if_modified(|current| {
        let moved = position > *current;
        if moved {
            *current = position;
        }
        moved
    });
}

async fn stream_version<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    stream: &StreamName,
) -> Result<u64, StoreError> {
    let version: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = $1")
            .bind(stream.as_str())
            .fetch_one(executor)
            .await
            .map_err(backend(&format!("reading the version of {stream}")))?;
    from_sql_int(version, "version")
}

async fn query_head(pool: &PgPool) -> Result<u64, StoreError> {
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(pool)
        .await
        .map_err(backend("reading the head position"))?;
    from_sql_int(head, "position")
}

fn decode_event(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let column = |name: &str| backend(&format!("decoding column {name}"));
    let position: i64 = row.try_get("position").map_err(column("position"))?;
    let stream: String = row.try_get("stream").map_err(column("stream"))?;
    let version: i64 = row.try_get("version").map_err(column("version"))?;
    let event_id: String = row.try_get("event_id").map_err(column("event_id"))?;
    let event_type: String = row.try_get("event_type").map_err(column("event_type"))?;
    let schema_version: i32 = row
        .try_get("schema_version")
        .map_err(column("schema_version"))?;
    let payload: Vec<u8> = row.try_get("payload").map_err(column("payload"))?;
    let correlation_id: String = row
        .try_get("correlation_id")
        .map_err(column("correlation_id"))?;
    let causation_id: String = row
        .try_get("causation_id")
        .map_err(column("causation_id"))?;
    let occurred_at: i64 = row.try_get("occurred_at").map_err(column("occurred_at"))?;
    Ok(RecordedEvent {
        position: from_sql_int(position, "position")?,
        stream: StreamName::parse(stream)
            .map_err(|e| StoreError::Backend(format!("stored event has {e}")))?,
        version: from_sql_int(version, "version")?,
        event_id: to_uuid(&event_id, "event_id")?,
        event_type,
        schema_version: u16::try_from(schema_version).map_err(|_| {
            StoreError::Backend(format!(
                "stored schema_version {schema_version} is out of range"
            ))
        })?,
        payload,
        correlation_id: to_uuid(&correlation_id, "correlation_id")?,
        causation_id: to_uuid(&causation_id, "causation_id")?,
        occurred_at: Timestamp::from_millis(occurred_at),
    })
}

fn to_uuid(text: &str, what: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text)
        .map_err(|e| StoreError::Backend(format!("stored {what} {text:?} is not a uuid: {e}")))
}

fn to_sql_int(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Backend(format!("{what} {value} does not fit in a BIGINT")))
}

/// Positions and versions beyond BIGINT's range match nothing, like any value above the
/// largest stored one.
fn clamp_to_sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_sql_int(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value)
        .map_err(|_| StoreError::Backend(format!("stored {what} {value} is negative")))
}

fn backend(context: &str) -> impl FnOnce(sqlx::Error) -> StoreError + use<> {
    let context = context.to_owned();
    move |e| StoreError::Backend(format!("{context}: {e}"))
}
