//! Opening the adapters a composition chooses: the event store (SQLite file or
//! PostgreSQL URL) and its read models, the transport (in-process or Kafka), the
//! domain-event sink (Kafka), and, for measurement runs, a scratch PostgreSQL database
//! and Kafka topic per run plus a description of the machine.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mpc_outbox::{DomainEventSink, KafkaDomainSink, KafkaSinkConfig, OutboxError};
use mpc_projections::{ProjectionError, ReadModels};
use mpc_store::{EventStore, PostgresStore, SqliteStore, StoreError};
use mpc_transport::{InProcessTransport, KafkaConfig, KafkaTransport, Transport, TransportError};
use serde::Serialize;

/// An adapter that could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    #[error("cannot connect to the PostgreSQL event store")]
    PostgresStore(#[source] StoreError),
    #[error("cannot open the SQLite event store")]
    SqliteStore(#[source] StoreError),
    #[error("cannot connect to the PostgreSQL read models")]
    PostgresModels(#[source] ProjectionError),
    #[error("cannot open the read models in {0}")]
    SqliteModels(PathBuf, #[source] ProjectionError),
    #[error("cannot connect to Kafka")]
    Kafka(#[source] TransportError),
    #[error("cannot connect the domain-event topic {0} on Kafka")]
    DomainSink(String, #[source] OutboxError),
    #[error("cannot connect to PostgreSQL at {0}")]
    PostgresServer(String, #[source] sqlx::Error),
    #[error("cannot create database {0}")]
    CreateDatabase(String, #[source] sqlx::Error),
}

/// The event store at the PostgreSQL `url`, else the SQLite file `events.db` in
/// `data_dir`.
pub async fn open_store(
    url: Option<&str>,
    data_dir: &Path,
) -> Result<Arc<dyn EventStore>, AdapterError> {
    Ok(match url {
        Some(url) => Arc::new(
            PostgresStore::connect(url)
                .await
                .map_err(AdapterError::PostgresStore)?,
        ),
        None => Arc::new(
            SqliteStore::open(&data_dir.join("events.db"))
                .await
                .map_err(AdapterError::SqliteStore)?,
        ),
    })
}

/// The read-model database beside the event store: the same PostgreSQL database
/// when `url` is given, else the SQLite file `sqlite_file` names (asked for only
/// then).
pub async fn open_read_models(
    url: Option<&str>,
    sqlite_file: impl FnOnce() -> PathBuf,
) -> Result<ReadModels, AdapterError> {
    match url {
        Some(url) => ReadModels::connect(url)
            .await
            .map_err(AdapterError::PostgresModels),
        None => {
            let file = sqlite_file();
            ReadModels::connect(&file.display().to_string())
                .await
                .map_err(|e| AdapterError::SqliteModels(file, e))
        }
    }
}

/// Kafka on `topic` when `brokers` are given, else the in-process transport.
pub async fn open_transport(
    brokers: Option<&str>,
    topic: &str,
) -> Result<Arc<dyn Transport>, AdapterError> {
    Ok(match brokers {
        Some(brokers) => {
            let mut config = KafkaConfig::new(brokers.to_owned());
            config.topic = topic.to_owned();
            Arc::new(
                KafkaTransport::connect(config)
                    .await
                    .map_err(AdapterError::Kafka)?,
            )
        }
        None => Arc::new(InProcessTransport::new()),
    })
}

/// The Kafka sink for domain events on `topic`, created with one partition if missing.
pub async fn open_domain_sink(
    brokers: &str,
    topic: &str,
) -> Result<Arc<dyn DomainEventSink>, AdapterError> {
    let mut config = KafkaSinkConfig::new(brokers);
    config.topic = topic.to_owned();
    Ok(Arc::new(KafkaDomainSink::connect(config).await.map_err(
        |e| AdapterError::DomainSink(topic.to_owned(), e),
    )?))
}

/// A Kafka transport on a fresh topic `<prefix>.<random hex>` with four partitions.
pub async fn kafka_transport(
    brokers: &str,
    prefix: &str,
) -> Result<Arc<dyn Transport>, AdapterError> {
    let mut config = KafkaConfig::new(brokers.to_owned());
    config.topic = format!("{prefix}.{}", hex::encode(rand::random::<[u8; 6]>()));
    config.partitions = 4;
    Ok(Arc::new(
        KafkaTransport::connect(config)
            .await
            .map_err(AdapterError::Kafka)?,
    ))
}

/// A database created on a PostgreSQL server for one run, dropped by
/// [`TempDatabase::drop_it`].
pub struct TempDatabase {
    server: String,
    name: String,
    pub url: String,
}

impl TempDatabase {
    pub async fn create(server: &str) -> Result<Self, AdapterError> {
        use sqlx::Connection;
        let server = server.trim_end_matches('/').to_owned();
        let name = format!("mpc_bench_{}", hex::encode(rand::random::<[u8; 6]>()));
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .map_err(|e| AdapterError::PostgresServer(server.clone(), e))?;
        // The name is ours: a fixed prefix and hex.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .map_err(|e| AdapterError::CreateDatabase(name.clone(), e))?;
        let url = format!("{server}/{name}");
        Ok(Self { server, name, url })
    }

    pub async fn drop_it(self) {
        use sqlx::Connection;
        if let Ok(mut admin) =
            sqlx::PgConnection::connect(&format!("{}/postgres", self.server)).await
            && let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut admin)
            .await
        {
            tracing::warn!(database = %self.name, "cannot drop the bench database: {e}");
        }
    }
}

/// The machine a measurement ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub memory_gib: Option<f64>,
    pub os: &'static str,
    pub arch: &'static str,
    pub debug_build: bool,
}

impl Machine {
    /// nproc, RAM and CPU model of this machine.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_owned());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kb = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok());
        Self {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model: model,
            memory_gib: mem_kb.map(|kb| (kb as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
            debug_build: cfg!(debug_assertions),
        }
    }
}
