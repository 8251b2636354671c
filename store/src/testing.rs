//! Test set-ups for the event store, behind the `testing` feature: a fresh
//! PostgreSQL database per test, an SQLite store in a temporary directory, and
//! appending test events at a stream's current version. Used by the tests of this
//! crate and of the crates that read the store (projections, outbox).
//!
//! PostgreSQL: `MPC_TEST_POSTGRES_URL` (default [`DEFAULT_POSTGRES_URL`], no database
//! name) must let us create and drop databases; `scripts/ensure-postgres.sh` sets one
//! up. Without a server the PostgreSQL tests fail: none is skipped.

use std::path::{Path, PathBuf};

use mpc_events::Timestamp;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tempfile::TempDir;
use uuid::Uuid;

use crate::{EventStore, ExpectedVersion, NewEvent, PostgresStore, SqliteStore, StreamName};

/// The PostgreSQL server the tests use when `MPC_TEST_POSTGRES_URL` is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432";

/// The test server's URL, without a database name.
pub fn postgres_server_url() -> String {
    std::env::var("MPC_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// A connection to the server's maintenance database, or a panic that says what to do.
async fn admin_connection(server: &str) -> PgConnection {
    PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is unreachable at {server} ({e}). These tests need a server: \
                 run scripts/ensure-postgres.sh, or point MPC_TEST_POSTGRES_URL at one whose \
                 user may create databases."
            )
        })
}

/// A PostgreSQL database `mpc_test_<uuid>` created for one test and dropped
/// (forcibly) when this is dropped, even if the test panics. Drop every pool on it
/// first (declare them before this in a struct).
pub struct TestDatabase {
    server: String,
    name: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let server = postgres_server_url();
        let name = format!("mpc_test_{}", Uuid::new_v4().simple());
        let mut admin = admin_connection(&server).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("creating database {name} on {server}: {e}"));
        admin.close().await.ok();
        Self { server, name }
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    /// An event store on this database, through a pool of its own.
    pub async fn connect(&self) -> PostgresStore {
        PostgresStore::connect(&self.url())
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: drop the
        // database from a thread with a runtime of its own. `WITH (FORCE)` ends the
        // sessions the test's pools may still hold.
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&format!("{server}/postgres"))
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .map_err(|e| e.to_string())?;
                admin.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

/// An [`SqliteStore`] in a file `events.sqlite` of a temporary directory, removed when
/// this is dropped.
pub struct TempSqlite {
    // Declared before `dir`, so the store closes before the directory is removed.
    store: SqliteStore,
    path: PathBuf,
    dir: TempDir,
}

impl TempSqlite {
    pub async fn create() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("events.sqlite");
        let store = SqliteStore::open(&path).await.expect("open the store");
        Self { store, path, dir }
    }

    pub fn store(&self) -> &SqliteStore {
        &self.store
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary directory the file is in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Closes the store and opens the same file again, as a restarted process would.
    pub async fn reopen(&mut self) {
        self.store.close().await;
        self.store = SqliteStore::open(&self.path)
            .await
            .expect("reopen the store");
    }
}

/// A new event with fresh ids, as the coordinator would append it.
pub fn new_event(
    event_type: &str,
    schema_version: u16,
    payload: Vec<u8>,
    occurred_at: Timestamp,
) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version,
        payload,
        correlation_id: Uuid::now_v7(),
        causation_id: Uuid::now_v7(),
        occurred_at,
    }
}

/// Appends `events` to `stream` at its current version (read first); returns the
/// position of the last one.
pub async fn append_next(
    store: &dyn EventStore,
    stream: &StreamName,
    events: Vec<NewEvent>,
) -> u64 {
    let version = store.read_stream(stream, 1).await.unwrap().len() as u64;
    store
        .append(stream, ExpectedVersion::Exact(version), events)
        .await
        .unwrap()
        .last_position
}
