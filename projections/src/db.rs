//! The read-model database: [`ReadModels`], a handle on either SQLite or PostgreSQL,
//! and the small portable query layer projections write their SQL with.
//!
//! A query is one SQL text for both backends: `$1`, `$2`, … placeholders (SQLite reads
//! them as positional parameters too), parameters that are 64-bit integers or text
//! ([`Param`]), and columns decoded into types both drivers know ([`Value`]). Schemas
//! differ per backend only in their migrations (`migrations/sqlite/`,
//! `migrations/postgres/`); there every integer column is 64-bit (`INTEGER` in SQLite,
//! `BIGINT` in PostgreSQL), so an `i64` reads back from either.

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
};
use sqlx::{
    AssertSqlSafe, Connection, PgPool, Postgres, Row as _, Sqlite, SqlitePool, Transaction,
};
use uuid::Uuid;

use crate::error::ProjectionError;

/// How long an SQLite connection waits for another writer before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The migration table of the read models, apart from the event store's.
const MIGRATIONS_TABLE: &str = "_mpc_projections_migrations";

/// Which database a [`ReadModels`] handle talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database holding the read models and their checkpoints: SQLite or PostgreSQL.
///
/// Cheap to clone (it is a pool). Often the event store's own database:
/// `ReadModels::from(sqlite_store.pool().clone())` or
/// `ReadModels::from(postgres_store.pool().clone())`.
#[derive(Debug, Clone)]
pub enum ReadModels {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl From<SqlitePool> for ReadModels {
    fn from(pool: SqlitePool) -> Self {
        Self::Sqlite(pool)
    }
}

impl From<PgPool> for ReadModels {
    fn from(pool: PgPool) -> Self {
        Self::Postgres(pool)
    }
}

impl ReadModels {
    /// Connects to `url`: a `postgres://` or `postgresql://` URL is PostgreSQL; a
    /// `sqlite:` URL or anything else (a file path) is SQLite, the file created if
    /// missing and opened in WAL mode. Does not migrate (see [`ReadModels::migrate`]).
    pub async fn connect(url: &str) -> Result<Self, ProjectionError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPool::connect(url)
                .await
                .map_err(ProjectionError::database("connecting to PostgreSQL"))?;
            return Ok(Self::Postgres(pool));
        }
        let options = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)
                .map_err(ProjectionError::database(format!("parsing {url}")))?
        } else {
            SqliteConnectOptions::new().filename(Path::new(url))
        };
        let pool = SqlitePoolOptions::new()
            .connect_with(
                options
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT),
            )
            .await
            .map_err(ProjectionError::database(format!("opening {url}")))?;
        Ok(Self::Sqlite(pool))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Creates the read-model tables (and the checkpoint table) if they are missing,
    /// with this backend's migrations.
    ///
    /// The migrations are recorded in their own table, `_mpc_projections_migrations`,
    /// so they share a database with the event store's migrations without either side
    /// seeing the other's as unknown. Concurrent calls on one database (in one process
    /// or several) are safe: on SQLite the migration holds the write lock, on
    /// PostgreSQL sqlx's migrator takes an advisory lock.
    /// [`crate::ProjectionRunner::new`] calls this; call
    /// it yourself only to query read models before any runner exists.
    pub async fn migrate(&self) -> Result<(), ProjectionError> {
        match self {
            Self::Sqlite(pool) => {
                let mut migrator = sqlx::migrate!("./migrations/sqlite");
                migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
                migrator.set_ignore_missing(true);
                // sqlx's migrator takes no lock on SQLite: two of them racing on one
                // file both see a migration missing and the second fails ("table …
                // already exists"). Inside one `BEGIN IMMEDIATE` transaction (each
                // migration becomes a savepoint of it) they run one after the other,
                // in this process or another, and the later ones find nothing to do.
                let mut tx = pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(ProjectionError::database("locking the database to migrate"))?;
                migrator.run_direct(None, &mut *tx, false).await?;
                tx.commit()
                    .await
                    .map_err(ProjectionError::database("committing the migrations"))?;
            }
            Self::Postgres(pool) => {
                let mut migrator = sqlx::migrate!("./migrations/postgres");
                migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
                migrator.set_ignore_missing(true);
                migrator.run(pool).await?;
            }
        }
        Ok(())
    }

    /// A connection from the pool.
    pub async fn acquire(&self) -> Result<PooledConn, ProjectionError> {
        self.pooled().await.map_err(ProjectionError::database(
            "acquiring a read-model connection",
        ))
    }

    async fn pooled(&self) -> Result<PooledConn, sqlx::Error> {
        Ok(match self {
            Self::Sqlite(pool) => PooledConn::Sqlite(pool.acquire().await?),
            Self::Postgres(pool) => PooledConn::Postgres(pool.acquire().await?),
        })
    }

    /// A write transaction. On SQLite it takes the database's write lock at once
    /// (`BEGIN IMMEDIATE`), so it never fails later on a lock upgrade; on PostgreSQL
    /// writers serialize on the rows they lock.
    pub async fn begin_write(&self) -> Result<Tx<'static>, ProjectionError> {
        let context = "beginning a read-model transaction";
        Ok(match self {
            Self::Sqlite(pool) => Tx::Sqlite(
                pool.begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(ProjectionError::database(context))?,
            ),
            Self::Postgres(pool) => Tx::Postgres(
                pool.begin()
                    .await
                    .map_err(ProjectionError::database(context))?,
            ),
        })
    }

    /// A read-only transaction whose statements all see one snapshot (on PostgreSQL,
    /// `REPEATABLE READ`; an SQLite read transaction is one snapshot already). End it
    /// with [`Tx::rollback`].
    pub async fn begin_snapshot(&self) -> Result<Tx<'static>, ProjectionError> {
        let context = "beginning a snapshot read";
        Ok(match self {
            Self::Sqlite(pool) => Tx::Sqlite(
                pool.begin()
                    .await
                    .map_err(ProjectionError::database(context))?,
            ),
            Self::Postgres(pool) => Tx::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await
                    .map_err(ProjectionError::database(context))?,
            ),
        })
    }

    /// Runs `query` on a connection from the pool; returns how many rows it changed.
    pub async fn execute(&self, query: Sql) -> Result<u64, sqlx::Error> {
        let mut conn = self.pooled().await?;
        query.execute(&mut conn.conn()).await
    }

    /// Runs `query` on a connection from the pool; returns its rows.
    pub async fn fetch_all(&self, query: Sql) -> Result<Vec<Row>, sqlx::Error> {
        let mut conn = self.pooled().await?;
        query.fetch_all(&mut conn.conn()).await
    }

    /// Runs `query` on a connection from the pool; returns its first row, if any.
    pub async fn fetch_optional(&self, query: Sql) -> Result<Option<Row>, sqlx::Error> {
        let mut conn = self.pooled().await?;
        query.fetch_optional(&mut conn.conn()).await
    }

    /// An empty database of the same backend for rebuilding read models beside these
    /// ones (see [`crate::replay()`]): on SQLite a private in-memory database, on
    /// PostgreSQL a fresh schema `mpc_replay_<uuid>` of the same database, reached
    /// through a pool whose `search_path` is that schema. Drop it with
    /// [`Scratch::discard`].
    pub async fn scratch(&self) -> Result<Scratch, ProjectionError> {
        match self {
            Self::Sqlite(_) => {
                // One connection that never closes: an in-memory database lives as long
                // as its connection.
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect_with(SqliteConnectOptions::new().in_memory(true))
                    .await
                    .map_err(ProjectionError::database("opening a scratch database"))?;
                Ok(Scratch {
                    models: Self::Sqlite(pool),
                    schema: None,
                    live: None,
                })
            }
            Self::Postgres(live) => {
                let schema = format!("mpc_replay_{}", Uuid::new_v4().simple());
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(live)
                    .await
                    .map_err(ProjectionError::database(format!(
                        "creating schema {schema}"
                    )))?;
                let options: PgConnectOptions = live
                    .connect_options()
                    .as_ref()
                    .clone()
                    .options([("search_path", schema.as_str())]);
                let pool = PgPoolOptions::new()
                    .max_connections(2)
                    .connect_with(options)
                    .await
                    .map_err(ProjectionError::database(
                        "connecting to the scratch schema",
                    ))?;
                Ok(Scratch {
                    models: Self::Postgres(pool),
                    schema: Some(schema),
                    live: Some(live.clone()),
                })
            }
        }
    }

    /// Closes every connection of the pool.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// An empty read-model database made by [`ReadModels::scratch`].
pub struct Scratch {
    models: ReadModels,
    /// PostgreSQL: the schema to drop, through `live`.
    schema: Option<String>,
    live: Option<PgPool>,
}

impl Scratch {
    pub fn models(&self) -> &ReadModels {
        &self.models
    }

    /// Closes the scratch database and drops it (the PostgreSQL schema with all it
    /// holds; the SQLite in-memory database goes with its connection).
    pub async fn discard(self) -> Result<(), ProjectionError> {
        self.models.close().await;
        if let (Some(schema), Some(live)) = (self.schema, self.live) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&live)
                .await
                .map_err(ProjectionError::database(format!(
                    "dropping schema {schema}"
                )))?;
        }
        Ok(())
    }
}

/// A connection taken from a [`ReadModels`] pool.
pub enum PooledConn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl PooledConn {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(c) => Conn::Sqlite(c),
            Self::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// A transaction (or a savepoint inside one) on the read-model database.
pub enum Tx<'c> {
    Sqlite(Transaction<'c, Sqlite>),
    Postgres(Transaction<'c, Postgres>),
}

impl Tx<'_> {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(tx) => Conn::Sqlite(tx),
            Self::Postgres(tx) => Conn::Postgres(tx),
        }
    }

    /// A savepoint: a nested transaction that can be rolled back alone.
    pub async fn savepoint(&mut self) -> Result<Tx<'_>, ProjectionError> {
        let context = "opening a savepoint";
        Ok(match self {
            Self::Sqlite(tx) => Tx::Sqlite(
                Connection::begin(&mut **tx)
                    .await
                    .map_err(ProjectionError::database(context))?,
            ),
            Self::Postgres(tx) => Tx::Postgres(
                Connection::begin(&mut **tx)
                    .await
                    .map_err(ProjectionError::database(context))?,
            ),
        })
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(tx) => tx.commit().await,
            Self::Postgres(tx) => tx.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(tx) => tx.rollback().await,
            Self::Postgres(tx) => tx.rollback().await,
        }
    }
}

/// A borrowed connection to the read-model database, inside a transaction or not:
/// what [`Sql`] runs on and what [`crate::Projection::apply`] writes through.
pub enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl Conn<'_> {
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }
}

/// A query parameter: a 64-bit integer or text, either possibly `NULL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Self::Int(Some(value))
    }
}

impl From<Option<i64>> for Param {
    fn from(value: Option<i64>) -> Self {
        Self::Int(value)
    }
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Self::Text(Some(value))
    }
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Self::Text(Some(value.to_owned()))
    }
}

impl From<&String> for Param {
    fn from(value: &String) -> Self {
        Self::Text(Some(value.clone()))
    }
}

impl From<Option<String>> for Param {
    fn from(value: Option<String>) -> Self {
        Self::Text(value)
    }
}

impl From<Option<&str>> for Param {
    fn from(value: Option<&str>) -> Self {
        Self::Text(value.map(str::to_owned))
    }
}

/// One SQL statement with its parameters, runnable on either backend.
#[derive(Debug, Clone)]
#[must_use = "a query does nothing until it is executed or fetched"]
pub struct Sql {
    text: Cow<'static, str>,
    params: Vec<Param>,
}

/// A statement in SQL both backends accept, with `$1`, `$2`, … placeholders.
pub fn sql(text: &'static str) -> Sql {
    Sql {
        text: Cow::Borrowed(text),
        params: Vec::new(),
    }
}

/// Like [`sql`], for a statement whose text is built at run time (e.g. a multi-row
/// `INSERT` with as many `VALUES` tuples as rows). The text must hold only SQL and
/// `$n` placeholders: values are always bound. Such statements are not kept
/// prepared on the connection: their texts vary, and each would take a slot of the
/// connection's statement cache.
pub fn dynamic_sql(text: String) -> Sql {
    Sql {
        text: Cow::Owned(text),
        params: Vec::new(),
    }
}

/// Binds every parameter of `$params` to the sqlx query `$query`.
macro_rules! bound {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                Param::Int(value) => query.bind(value),
                Param::Text(value) => query.bind(value),
            };
        }
        query
    }};
}

/// The sqlx query of `$text` (a `Cow<'static, str>`) on backend `$db`. A text built
/// at run time ([`dynamic_sql`]) holds only SQL and `$n` placeholders, never a value,
/// which is why it may be asserted safe; it is not kept prepared.
macro_rules! query {
    ($db:ty, $text:expr) => {{
        let persistent = matches!($text, Cow::Borrowed(_));
        sqlx::query::<$db>(AssertSqlSafe($text)).persistent(persistent)
    }};
}

impl Sql {
    /// Binds the next placeholder.
    pub fn bind(mut self, value: impl Into<Param>) -> Self {
        self.params.push(value.into());
        self
    }

    /// Runs the statement; returns how many rows it changed.
    pub async fn execute(self, conn: &mut Conn<'_>) -> Result<u64, sqlx::Error> {
        Ok(match conn {
            Conn::Sqlite(c) => bound!(query!(Sqlite, self.text), self.params)
                .execute(&mut **c)
                .await?
                .rows_affected(),
            Conn::Postgres(c) => bound!(query!(Postgres, self.text), self.params)
                .execute(&mut **c)
                .await?
                .rows_affected(),
        })
    }

    /// Runs the query; returns its rows.
    pub async fn fetch_all(self, conn: &mut Conn<'_>) -> Result<Vec<Row>, sqlx::Error> {
        Ok(match conn {
            Conn::Sqlite(c) => bound!(query!(Sqlite, self.text), self.params)
                .fetch_all(&mut **c)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
            Conn::Postgres(c) => bound!(query!(Postgres, self.text), self.params)
                .fetch_all(&mut **c)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
        })
    }

    /// Runs the query; returns its first row, if any.
    pub async fn fetch_optional(self, conn: &mut Conn<'_>) -> Result<Option<Row>, sqlx::Error> {
        Ok(match conn {
            Conn::Sqlite(c) => bound!(query!(Sqlite, self.text), self.params)
                .fetch_optional(&mut **c)
                .await?
                .map(Row::Sqlite),
            Conn::Postgres(c) => bound!(query!(Postgres, self.text), self.params)
                .fetch_optional(&mut **c)
                .await?
                .map(Row::Postgres),
        })
    }
}

/// A column type both backends decode: `i64`, `String`, `bool`, `Option` of them, ….
pub trait Value:
    for<'r> sqlx::Decode<'r, Sqlite>
    + sqlx::Type<Sqlite>
    + for<'r> sqlx::Decode<'r, Postgres>
    + sqlx::Type<Postgres>
{
}

impl<T> Value for T where
    T: for<'r> sqlx::Decode<'r, Sqlite>
        + sqlx::Type<Sqlite>
        + for<'r> sqlx::Decode<'r, Postgres>
        + sqlx::Type<Postgres>
{
}

/// A result row of either backend.
#[derive(Debug)]
pub enum Row {
    Sqlite(SqliteRow),
    Postgres(PgRow),
}

impl Row {
    /// The value of `column`.
    pub fn get<T: Value>(&self, column: &str) -> Result<T, sqlx::Error> {
        match self {
            Self::Sqlite(row) => row.try_get(column),
            Self::Postgres(row) => row.try_get(column),
        }
    }
}
