//! Running every projection test against both read-model backends.
//!
//! A test case is an `async fn case(backend: TestBackend)`; [`on_every_backend!`]
//! turns a list of cases into `sqlite::case` and `postgres::case` tests. Each test gets
//! a fresh database ([`TestDb`]): an SQLite file in a temporary directory, or a
//! PostgreSQL database `mpc_test_<uuid>` created for the test and dropped (`WITH
//! (FORCE)`) afterwards. The event store and the read models share that database, as
//! `mpc demo` (SQLite) and `mpc serve --store-url` (PostgreSQL) do.
//!
//! PostgreSQL: `MPC_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432`,
//! no database name) must let us create and drop databases; `scripts/ensure-postgres.sh`
//! sets one up. Without a server the PostgreSQL tests fail: none is skipped.

use std::sync::Arc;

use mpc_projections::ReadModels;
use mpc_store::{EventStore, PostgresStore, SqliteStore};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tempfile::TempDir;
use uuid::Uuid;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432";

/// Instantiates every listed case as a `#[tokio::test]` per backend.
macro_rules! on_every_backend {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::support::TestBackend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::support::TestBackend::Postgres).await;
                }
            )+
        }
    };
}
pub(crate) use on_every_backend;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

/// A fresh database holding an event store and the read models, for one test.
pub struct TestDb {
    // Declared before `backing`, so the store goes before its database.
    store: Arc<dyn EventStore>,
    models: ReadModels,
    backing: Backing,
}

enum Backing {
    Sqlite(TempDir),
    Postgres(TestDatabase),
}

impl TestDb {
    pub async fn create(backend: TestBackend) -> Self {
        match backend {
            TestBackend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let store = SqliteStore::open(&dir.path().join("events.sqlite"))
                    .await
                    .unwrap();
                Self {
                    models: ReadModels::from(store.pool().clone()),
                    store: Arc::new(store),
                    backing: Backing::Sqlite(dir),
                }
            }
            TestBackend::Postgres => {
                let database = TestDatabase::create().await;
                let store = PostgresStore::connect(&database.url())
                    .await
                    .expect("connect to the test database");
                Self {
                    models: ReadModels::from(store.pool().clone()),
                    store: Arc::new(store),
                    backing: Backing::Postgres(database),
                }
            }
        }
    }

    pub fn store(&self) -> Arc<dyn EventStore> {
        Arc::clone(&self.store)
    }

    /// The read models, in the event store's own database (its pool).
    pub fn models(&self) -> ReadModels {
        self.models.clone()
    }

    /// The same read-model database through a pool of its own, as another process
    /// would open it.
    pub async fn other_pool(&self) -> ReadModels {
        match &self.backing {
            Backing::Sqlite(dir) => {
                ReadModels::connect(&dir.path().join("events.sqlite").display().to_string())
                    .await
                    .unwrap()
            }
            Backing::Postgres(database) => ReadModels::connect(&database.url()).await.unwrap(),
        }
    }

    /// Runs `statement` (no parameters) on the read-model database, e.g. to damage it.
    pub async fn exec(&self, statement: impl Into<String>) {
        let statement = sqlx::AssertSqlSafe(statement.into());
        match &self.models {
            ReadModels::Sqlite(pool) => sqlx::raw_sql(statement).execute(pool).await.map(drop),
            ReadModels::Postgres(pool) => sqlx::raw_sql(statement).execute(pool).await.map(drop),
        }
        .unwrap();
    }
}

fn server_url() -> String {
    std::env::var("MPC_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

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

/// A database created for one test and dropped (forcibly) when this is dropped, even if
/// the test panics.
struct TestDatabase {
    server: String,
    name: String,
}

impl TestDatabase {
    async fn create() -> Self {
        let server = server_url();
        let name = format!("mpc_test_{}", Uuid::new_v4().simple());
        let mut admin = admin_connection(&server).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("creating database {name} on {server}: {e}"));
        admin.close().await.ok();
        Self { server, name }
    }

    fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
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
