//! Read models of the MPC platform, kept from the event log.
//!
//! A read model is a set of tables shaped for queries, filled by a [`Projection`] that
//! applies events in global-position order. A [`ProjectionRunner`] feeds it: it catches
//! up from the projection's stored checkpoint, then follows the store through
//! [`mpc_store::subscribe`]. Every batch of events is applied in one transaction that
//! re-reads and locks the checkpoint (table `projection_checkpoints`), skips events at
//! or below it, applies the rest (as a whole; if one fails, again one by one, each in a
//! savepoint, up to the failing one) and advances it, so projections
//! are idempotent: an event re-delivered at or below the checkpoint is skipped, a crash
//! loses or repeats nothing, and two runners of one projection (two processes) never
//! interleave. [`ProjectionRunner::rebuild`] empties a model and replays it from
//! position 0, which yields exactly the model kept live.
//!
//! Events a projection cannot decode stop its runner with
//! [`ProjectionError::Decode`], leaving the checkpoint just before the offending
//! event: corrupt data is never skipped silently. Events of stream categories a
//! projection does not read are skipped. A [`Supervisor`] runs a projection through
//! store outages: a runner that stops on a transient error (store or database
//! unreachable, [`ProjectionError::is_transient`]) is started again after a bounded
//! backoff; one that stops on corrupt data stays stopped.
//!
//! Read models:
//! - [`SessionStatusProjection`]: one row per session (`session_status`), with its
//!   status, join and report counts, and its result (public key, signature or failure).
//! - [`AuditLogProjection`]: one hash-chained record per event of every stream
//!   (`audit_log`); [`verify_chain`] recomputes the chain and names its first broken
//!   link (the chain is defined in the [`audit`] module).
//! - [`AccountsProjection`]: one row per account (`accounts`) with its status and the
//!   state of its key (pending, ready or failed, from its current keygen session), and
//!   the share-location map (`account_shares`: which party holds the device, server
//!   and recovery share), and one row per recovery session of an account
//!   (`account_recovery_sessions`: its kind, status, new device identity and failure).
//! - [`WorkflowsProjection`]: one row per approval workflow (`approval_workflows`)
//!   with its status, decision counts and the outcome of its latest signing session
//!   (signed with its signature, or signing failed), and one row per approver
//!   (`workflow_approvers`) with its decision.
//!
//! [`replay()`] rebuilds every read model from position 0 into a scratch database and
//! compares it with the live one, row by row.
//!
//! # Backends
//!
//! The tables live in SQLite or PostgreSQL, behind one handle, [`ReadModels`]:
//! [`ReadModels::connect`] takes a `postgres://` URL or an SQLite path, and
//! `ReadModels::from(pool)` reuses an event store's pool
//! ([`mpc_store::SqliteStore::pool`], [`mpc_store::PostgresStore::pool`]), so the read
//! models usually share the event store's database. There is one code path for both:
//! projections write through the portable query layer in [`db`] (one SQL text with
//! `$1` placeholders, integer and text parameters); only the migrations differ
//! (`migrations/sqlite/`, `migrations/postgres/`, recorded in
//! `_mpc_projections_migrations`) and a few runner details: SQLite batches take the
//! write lock (`BEGIN IMMEDIATE`), PostgreSQL batches lock their projection's
//! checkpoint row (`INSERT … ON CONFLICT DO NOTHING`, then `SELECT … FOR UPDATE`);
//! snapshot reads are `REPEATABLE READ` on PostgreSQL; [`replay()`]'s scratch database
//! is an in-memory SQLite database or a `mpc_replay_<uuid>` schema of the live
//! PostgreSQL database, dropped afterwards.
//!
//! # Adding a projection
//!
//! 1. Add a migration with the same file name to `migrations/sqlite/` and
//!    `migrations/postgres/` (`INTEGER` ↔ `BIGINT`, `BLOB` ↔ `BYTEA`; keep every
//!    integer 64-bit, and give text keys you order by `COLLATE "C"` on PostgreSQL).
//! 2. Write a type holding a [`ReadModels`] for its queries and implement
//!    [`Projection`] for it: a unique `name` (its checkpoint key), `apply` writing
//!    through [`db::sql`] on the given connection, `reset` emptying its tables.
//! 3. Start a [`ProjectionRunner`] for it where the others start (`mpc serve`,
//!    `mpc demo`), and, to have `mpc replay` check it, list it in `replay.rs` with a
//!    `Snapshot` impl (its rows in a stable order).
//! 4. Write its tests as `async fn case(backend: TestBackend)` and list them in
//!    `on_every_backend!` (module `testing`, feature `testing`), so they run on both
//!    backends.

mod accounts;
pub mod audit;
pub mod db;
mod error;
mod replay;
mod runner;
mod session_status;
mod stream;
mod supervise;
#[cfg(feature = "testing")]
pub mod testing;
mod workflows;

pub use accounts::{AccountRow, AccountShare, AccountsProjection, KeyStatus, RecoverySessionRow};

pub use audit::{
    AuditLogProjection, AuditRecord, BreakReason, BrokenLink, ChainReport, GENESIS_HASH,
    verify_chain,
};

pub use db::{Backend, ReadModels};
pub use error::ProjectionError;
pub use replay::{ModelComparison, replay};
pub use runner::{BATCH_SIZE, Projection, ProjectionRunner, from_sql_int, to_sql_int};
pub use session_status::{SessionStatusProjection, SessionStatusRow};
pub use supervise::{MAX_RESTART_DELAY, MIN_RESTART_DELAY, Supervisor};
pub use workflows::{ApproverRow, WorkflowRow, WorkflowState, WorkflowsProjection};
