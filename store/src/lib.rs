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
//! - [`subscribe`] turns any store into a catch-up-then-live stream of events.
//!
//! Every adapter passes the one contract suite in `tests/contract/mod.rs`; each
//! adapter instantiates it with a single macro call (see `tests/sqlite.rs`).

mod port;
mod sqlite;
mod subscribe;

pub use port::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamName,
};
pub use sqlite::SqliteStore;
pub use subscribe::{SUBSCRIBE_BATCH, subscribe};
