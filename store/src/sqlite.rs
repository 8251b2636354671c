//! The SQLite adapter: the embedded default event store.
//!
//! One database file in WAL mode with `synchronous=FULL`, so an acknowledged append
//! survives a crash or power loss. Appends run in a `BEGIN IMMEDIATE` transaction: the
//! write lock is taken before the current version is read, so two writers (even in two
//! processes) can never both see the same version and both succeed. The
//! `UNIQUE(stream, version)` constraint stays as the last guard and maps to
//! [`StoreError::WrongExpectedVersion`]. An append, once started, runs to completion
//! (and is announced) even if its caller stops waiting.
//!
//! Appends are committed in groups: an append that arrives while another group is
//! being committed waits for it, and then every append waiting by that time is
//! written in one transaction, each in its own savepoint (so one refused append does
//! not affect the others), with a single commit. Under concurrency the fsyncs
//! of a `synchronous=FULL` commit are shared instead of one per append; every append
//! is still acknowledged only after the commit that holds it.
//!
//! The head channel ([`EventStore::watch_head`]) announces appends made through this
//! process; appends by another process sharing the file are seen by reads but not
//! announced.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mpc_events::Timestamp;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use tokio::sync::{Mutex, oneshot, watch};
use uuid::Uuid;

use crate::port::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamName,
};

/// How long a connection waits for another process's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections of a file-backed store (WAL lets readers run beside the one writer).
const MAX_CONNECTIONS: u32 = 4;
/// The store keeps its own migration table so that read models sharing the database
/// file can run their own migrations without either side seeing "missing" ones.
const MIGRATIONS_TABLE: &str = "_mpc_store_migrations";

macro_rules! select_events {
    ($tail:literal) => {
        concat!(
            "SELECT position, stream, version, event_id, event_type, schema_version, payload, ",
            "correlation_id, causation_id, occurred_at FROM events ",
            $tail
        )
    };
}
const READ_STREAM: &str = select_events!("WHERE stream = ? AND version >= ? ORDER BY version");
const READ_ALL: &str = select_events!("WHERE position > ? ORDER BY position LIMIT ?");

/// Event store on one SQLite database. Cheap to clone: clones share the pool, the
/// writer lock and the head channel.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Serialises this process's group commits so they queue here instead of
    /// spinning on SQLite's busy handler; `BEGIN IMMEDIATE` still guards against
    /// other processes.
    writer: Arc<Mutex<()>>,
    /// Appends waiting for the next group commit.
    pending: Arc<std::sync::Mutex<Vec<Pending>>>,
    head: Arc<watch::Sender<u64>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(backend(&format!("opening {}", path.display())))?;
        Self::with_pool(pool).await
    }

    /// A private in-memory database, gone when the store is dropped. For tests.
    ///
    /// SQLite in-memory databases live and die with their connection, so the pool holds
    /// exactly one connection and never retires it.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(backend("opening an in-memory database"))?;
        Self::with_pool(pool).await
    }

    async fn with_pool(pool: SqlitePool) -> Result<Self, StoreError> {
        let mut migrator = sqlx::migrate!("./migrations/sqlite");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.set_ignore_missing(true);
        migrator
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating the event store: {e}")))?;
        let head = query_head(&pool).await?;
        Ok(Self {
            pool,
            writer: Arc::new(Mutex::new(())),
            pending: Arc::default(),
            head: Arc::new(watch::Sender::new(head)),
        })
    }

    /// The connection pool, so read models can keep their tables in the same file.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection (waiting for checked-out ones to come back). Later
    /// calls on this store or its clones fail with [`StoreError::Backend`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Commits every waiting append as one group; called under the writer lock.
    async fn commit_group(&self) {
        let group = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if group.is_empty() {
            // An earlier group took this task's append along.
            return;
        }
        let outcomes = match self.write_group(&group).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                let message = error.to_string();
                group
                    .iter()
                    .map(|_| Err(StoreError::Backend(message.clone())))
                    .collect()
            }
        };
        let last = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok())
            .map(|o| o.last_position)
            .max();
        if let Some(last) = last {
            // Still under the writer lock, so the head only ever moves forward.
            self.head.send_if_modified(|head| {
                let moved = last > *head;
                if moved {
                    *head = last;
                }
                moved
            });
        }
        for (pending, outcome) in group.into_iter().zip(outcomes) {
            // A caller that stopped waiting no longer needs its outcome.
            let _ = pending.reply.send(outcome);
        }
    }

    /// Writes `group` in one transaction, each append in a savepoint; the outcome of
    /// each, or an error if the transaction itself failed (then nothing was written).
    async fn write_group(
        &self,
        group: &[Pending],
    ) -> Result<Vec<Result<AppendOutcome, StoreError>>, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend("beginning an append"))?;
        let mut outcomes = Vec::with_capacity(group.len());
        for pending in group {
            let mut savepoint = sqlx::Connection::begin(&mut *tx)
                .await
                .map_err(backend("opening a savepoint"))?;
            let outcome = append_on(
                &mut savepoint,
                &pending.stream,
                pending.expected,
                &pending.events,
            )
            .await;
            if outcome.is_ok() {
                savepoint
                    .commit()
                    .await
                    .map_err(backend("releasing a savepoint"))?;
            } else {
                savepoint
                    .rollback()
                    .await
                    .map_err(backend("rolling back a savepoint"))?;
            }
            outcomes.push(outcome);
        }
        tx.commit().await.map_err(backend("committing appends"))?;
        Ok(outcomes)
    }
}

/// An append waiting for its group commit.
#[derive(Debug)]
struct Pending {
    stream: StreamName,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

/// Checks `expected` and inserts `events` through `conn`, which holds the write lock.
async fn append_on(
    conn: &mut SqliteConnection,
    stream: &StreamName,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> Result<AppendOutcome, StoreError> {
    let actual = stream_version(conn, stream).await?;
    if let ExpectedVersion::Exact(n) = expected
        && n != actual
    {
        return Err(StoreError::WrongExpectedVersion {
            stream: stream.clone(),
            expected,
            actual,
        });
    }
    let mut version = actual;
    let mut last_position = 0;
    for event in events {
        version = version
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend(format!("stream {stream} is full")))?;
        let inserted = sqlx::query(
            "INSERT INTO events (stream, version, event_id, event_type, schema_version, \
             payload, correlation_id, causation_id, occurred_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(stream.as_str())
        .bind(to_sql_int(version, "version")?)
        .bind(event.event_id.as_bytes().as_slice())
        .bind(event.event_type.as_str())
        .bind(i64::from(event.schema_version))
        .bind(event.payload.as_slice())
        .bind(event.correlation_id.as_bytes().as_slice())
        .bind(event.causation_id.as_bytes().as_slice())
        .bind(event.occurred_at.as_millis())
        .execute(&mut *conn)
        .await;
        match inserted {
            Ok(done) => last_position = from_sql_int(done.last_insert_rowid(), "position")?,
            Err(e) => {
                return Err(match classify_unique_violation(&e) {
                    Some(UniqueViolation::EventId) => StoreError::DuplicateEventId(event.event_id),
                    Some(UniqueViolation::StreamVersion) => StoreError::WrongExpectedVersion {
                        stream: stream.clone(),
                        expected,
                        actual: stream_version(conn, stream).await?,
                    },
                    None => backend(&format!("appending to {stream}"))(e),
                });
            }
        }
    }
    Ok(AppendOutcome {
        stream_version: version,
        last_position,
    })
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        if events.is_empty() {
            return Err(StoreError::EmptyAppend);
        }
        // The append joins the next group; the group commit runs as its own task so
        // that it finishes, and a commit is always announced on the head channel,
        // even if the caller stops waiting midway.
        let (reply, outcome) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Pending {
                stream: stream.clone(),
                expected,
                events,
                reply,
            });
        let store = self.clone();
        tokio::spawn(async move {
            let _writer = store.writer.lock().await;
            store.commit_group().await;
        });
        outcome
            .await
            .map_err(|_| StoreError::Backend("the append task did not finish".to_owned()))?
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

/// Which unique constraint an insert violated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UniqueViolation {
    EventId,
    StreamVersion,
}

fn classify_unique_violation(error: &sqlx::Error) -> Option<UniqueViolation> {
    let db = error.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    // SQLite names the columns: "UNIQUE constraint failed: events.event_id" or
    // "UNIQUE constraint failed: events.stream, events.version".
    let message = db.message();
    if message.contains("events.event_id") {
        Some(UniqueViolation::EventId)
    } else if message.contains("events.stream") {
        Some(UniqueViolation::StreamVersion)
    } else {
        None
    }
}

async fn stream_version(
    conn: &mut SqliteConnection,
    stream: &StreamName,
) -> Result<u64, StoreError> {
    let version: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?")
            .bind(stream.as_str())
            .fetch_one(conn)
            .await
            .map_err(backend(&format!("reading the version of {stream}")))?;
    from_sql_int(version, "version")
}

async fn query_head(pool: &SqlitePool) -> Result<u64, StoreError> {
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(pool)
        .await
        .map_err(backend("reading the head position"))?;
    from_sql_int(head, "position")
}

fn decode_event(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    let column = |name: &str| backend(&format!("decoding column {name}"));
    let position: i64 = row.try_get("position").map_err(column("position"))?;
    let stream: String = row.try_get("stream").map_err(column("stream"))?;
    let version: i64 = row.try_get("version").map_err(column("version"))?;
    let event_id: Vec<u8> = row.try_get("event_id").map_err(column("event_id"))?;
    let event_type: String = row.try_get("event_type").map_err(column("event_type"))?;
    let schema_version: i64 = row
        .try_get("schema_version")
        .map_err(column("schema_version"))?;
    let payload: Vec<u8> = row.try_get("payload").map_err(column("payload"))?;
    let correlation_id: Vec<u8> = row
        .try_get("correlation_id")
        .map_err(column("correlation_id"))?;
    let causation_id: Vec<u8> = row
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

fn to_uuid(bytes: &[u8], what: &str) -> Result<Uuid, StoreError> {
    Uuid::from_slice(bytes).map_err(|_| {
        StoreError::Backend(format!(
            "stored {what} is {} bytes, not a 16-byte uuid",
            bytes.len()
        ))
    })
}

fn to_sql_int(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Backend(format!("{what} {value} does not fit in SQLite")))
}

/// Positions and versions beyond SQLite's range match nothing, like any value above the
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use tokio::sync::Barrier;

    use super::*;

    fn event(n: u8) -> NewEvent {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: "Happened".into(),
            schema_version: 1,
            payload: vec![n],
            correlation_id: Uuid::now_v7(),
            causation_id: Uuid::now_v7(),
            occurred_at: Timestamp::from_millis(i64::from(n)),
        }
    }

    fn stream(name: &str) -> StreamName {
        StreamName::parse(name).unwrap()
    }

    #[tokio::test]
    async fn a_file_store_is_durable_wal_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("events.sqlite"))
            .await
            .unwrap();
        let mut conn = store.pool().acquire().await.unwrap();
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let busy_timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        assert_eq!(synchronous, 2, "FULL");
        assert_eq!(foreign_keys, 1);
        assert_eq!(busy_timeout, 10_000);
    }

    #[tokio::test]
    async fn an_in_memory_store_appends_and_reads() {
        let store = SqliteStore::in_memory().await.unwrap();
        let s = stream("session-mem");
        let outcome = store
            .append(&s, ExpectedVersion::Exact(0), vec![event(1), event(2)])
            .await
            .unwrap();
        assert_eq!(outcome.stream_version, 2);
        assert_eq!(store.read_stream(&s, 1).await.unwrap().len(), 2);
        assert_eq!(store.head().await.unwrap(), outcome.last_position);
        assert_eq!(*store.watch_head().borrow(), outcome.last_position);
    }

    #[tokio::test]
    async fn an_append_the_caller_stops_waiting_for_still_lands_and_is_announced() {
        let store = SqliteStore::in_memory().await.unwrap();
        let mut head = store.watch_head();
        let s = stream("session-gone");
        let append = store.append(&s, ExpectedVersion::Any, vec![event(1)]);
        // Polls the append once, then drops it.
        let _ = tokio::time::timeout(Duration::ZERO, append).await;
        tokio::time::timeout(Duration::from_secs(10), head.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.read_all(0, 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn unique_violations_are_told_apart() {
        let store = SqliteStore::in_memory().await.unwrap();
        let s = stream("session-u");
        let stored = event(1);
        store
            .append(&s, ExpectedVersion::Exact(0), vec![stored.clone()])
            .await
            .unwrap();
        let insert = |version: i64, event_id: Uuid| {
            sqlx::query(
                "INSERT INTO events (stream, version, event_id, event_type, schema_version, \
                 payload, correlation_id, causation_id, occurred_at) \
                 VALUES ('session-u', ?, ?, 'T', 1, x'', x'', x'', 0)",
            )
            .bind(version)
            .bind(event_id.as_bytes().to_vec())
            .execute(store.pool())
        };
        let same_version = insert(1, Uuid::now_v7()).await.unwrap_err();
        assert_eq!(
            classify_unique_violation(&same_version),
            Some(UniqueViolation::StreamVersion)
        );
        let same_id = insert(2, stored.event_id).await.unwrap_err();
        assert_eq!(
            classify_unique_violation(&same_id),
            Some(UniqueViolation::EventId)
        );
        let not_unique = sqlx::query("INSERT INTO events (stream) VALUES ('session-u')")
            .execute(store.pool())
            .await
            .unwrap_err();
        assert_eq!(classify_unique_violation(&not_unique), None);
    }

    /// Two stores on one file share no in-process lock, like two processes: only
    /// `BEGIN IMMEDIATE` (and the unique constraint behind it) keeps them honest.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_stores_sharing_a_file_never_both_win_a_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.sqlite");
        let stores = [
            SqliteStore::open(&path).await.unwrap(),
            SqliteStore::open(&path).await.unwrap(),
        ];
        let s = stream("session-shared");
        for version in 0..10_u64 {
            let start = Arc::new(Barrier::new(8));
            let racers: Vec<_> = (0..8_u8)
                .map(|i| {
                    let store = stores[usize::from(i % 2)].clone();
                    let (s, start) = (s.clone(), Arc::clone(&start));
                    tokio::spawn(async move {
                        start.wait().await;
                        store
                            .append(&s, ExpectedVersion::Exact(version), vec![event(i)])
                            .await
                    })
                })
                .collect();
            let mut wins = 0;
            for racer in racers {
                match racer.await.unwrap() {
                    Ok(_) => wins += 1,
                    Err(StoreError::WrongExpectedVersion { actual, .. }) => {
                        assert_eq!(actual, version + 1);
                    }
                    Err(other) => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!(wins, 1, "round {version}");
        }
        let read = stores[0].read_stream(&s, 1).await.unwrap();
        assert_eq!(
            read.iter().map(|e| e.version).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        let ids: HashSet<_> = read.iter().map(|e| e.event_id).collect();
        assert_eq!(ids.len(), 10);
    }
}
