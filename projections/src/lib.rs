//! Read models of the MPC platform, kept from the event log.
//!
//! A read model is a set of tables shaped for queries, filled by a [`Projection`] that
//! applies events in global-position order. A [`ProjectionRunner`] feeds it: it catches
//! up from the projection's stored checkpoint, then follows the store through
//! [`mpc_store::subscribe`]. Every batch of events is applied in one transaction that
//! also advances the checkpoint (table `projection_checkpoints`), so projections are
//! idempotent: an event re-delivered at or below the checkpoint is skipped, and a
//! crash loses or repeats nothing. [`ProjectionRunner::rebuild`] empties a model and
//! replays it from position 0, which yields exactly the model kept live.
//!
//! Events a projection cannot decode stop its runner with
//! [`ProjectionError::Decode`], leaving the checkpoint just before the offending
//! event: corrupt data is never skipped silently. Events of stream categories a
//! projection does not read are skipped.
//!
//! Read models:
//! - [`SessionStatusProjection`]: one row per session (`session_status`), with its
//!   status, join and report counts, and its result (public key, signature or failure).
//! - [`AuditLogProjection`]: one hash-chained record per event of every stream
//!   (`audit_log`); [`verify_chain`] recomputes the chain and names its first broken
//!   link (the chain is defined in the [`audit`] module).
//!
//! [`replay()`] rebuilds every read model from position 0 into a scratch database and
//! compares it with the live one, row by row.
//!
//! The tables live in SQLite (often the event store's own file, through
//! [`mpc_store::SqliteStore::pool`]); their migrations are in `migrations/sqlite/`,
//! recorded in their own migration table. The SQL is kept portable for a PostgreSQL
//! adapter.

pub mod audit;
pub mod db;
mod error;
mod replay;
mod runner;
mod session_status;

pub use audit::{
    AuditLogProjection, AuditRecord, BreakReason, BrokenLink, ChainReport, GENESIS_HASH,
    verify_chain,
};

pub use db::{Backend, ReadModels};
pub use error::ProjectionError;
pub use replay::{ModelComparison, replay};
pub use runner::{BATCH_SIZE, Projection, ProjectionRunner, from_sql_int, to_sql_int};
pub use session_status::{SESSION_CATEGORY, SessionStatusProjection, SessionStatusRow};
