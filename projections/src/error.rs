//! Why a projection could not be kept or read.

use mpc_schemas::SchemaError;
use mpc_store::{StoreError, StreamName};

/// Everything that can stop a projection or fail a query.
///
/// [`ProjectionError::Decode`] and [`ProjectionError::Inconsistent`] mean the event log
/// holds something this projection cannot apply: the runner stops at that event (its
/// checkpoint stays just before it) instead of skipping data it does not understand.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("reading the event store: {0}")]
    Store(#[from] StoreError),
    #[error("read-model database, {context}: {source}")]
    Database {
        context: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrating the read-model schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "cannot decode the event at position {position} ({stream} version {version}, \
         {event_type} schema v{schema_version}): {source}"
    )]
    Decode {
        position: u64,
        stream: StreamName,
        version: u64,
        event_type: String,
        schema_version: u16,
        #[source]
        source: SchemaError,
    },
    #[error("the event at position {position} ({stream}) cannot be applied: {detail}")]
    Inconsistent {
        position: u64,
        stream: StreamName,
        detail: String,
    },
    #[error("the read model holds an invalid value: {0}")]
    InvalidRow(String),
    #[error("the event subscription ended while the projection was following it")]
    SubscriptionEnded,
}

impl ProjectionError {
    /// A closure turning a database error into [`ProjectionError::Database`] with
    /// `context` (what was being done).
    pub fn database(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> Self {
        let context = context.into();
        move |source| Self::Database { context, source }
    }
}
