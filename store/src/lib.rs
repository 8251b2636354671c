//! The event-store port and its adapters.
//!
//! An event store keeps append-only streams named `category-id`. Appends carry an
//! expected version (optimistic concurrency: `(stream, version)` is unique), every
//! event also gets a global position, and readers can read a stream, read
//! everything after a position, or [`subscribe`] from a position. Payloads are opaque
//! bytes: their format belongs to `mpc-schemas`.
//!
//! - [`EventStore`] is the port; its types live beside it ([`StreamName`],
//!   [`ExpectedVersion`], [`NewEvent`], [`RecordedEvent`], [`AppendOutcome`],
//!   [`StoreError`]).
//! - [`SqliteStore`] is the embedded default adapter (one WAL-mode file).
//! - [`PostgresStore`] is the shared adapter: several processes append to one
//!   PostgreSQL database, and `LISTEN`/`NOTIFY` wakes every process's subscribers.
//! - [`subscribe`] turns any store into a catch-up-then-live stream of events.
//! - `testing` (feature `testing`): fresh databases and stores for tests, used by the
//!   tests of this crate and of the crates that read the store.
//!
//! Every adapter passes the one contract suite in `tests/contract/mod.rs`; each
//! adapter instantiates it with a single macro call (see `tests/sqlite.rs` and
//! `tests/postgres.rs`).

mod port;
mod postgres;
mod sqlite;
mod subscribe;
#[cfg(feature = "testing")]
pub mod testing;

pub use port::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamName,
};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use subscribe::{SUBSCRIBE_BATCH, subscribe};
