//! The outbox: selected domain events, published from the event log to Kafka for
//! external consumers, at least once.
//!
//! # Design
//!
//! The event log *is* the outbox. Every fact is already an event in the append-only
//! store, committed in the same transaction as the state change it records, so there
//! is no second table to write and nothing to keep consistent with it. A relay
//! ([`Outbox`]) tails the store from a position ([`mpc_store::subscribe`]: catch-up,
//! then live) and [`domain_event`] maps each recorded event to zero or one
//! [`DomainEvent`] (schema `mpc.domain-event/v1`, see [`mpc_schemas::domain`] and
//! `docs/domain-events.md`). The mapping is one function per stream category; a
//! mapper may read the event's own stream for context (a session's terminal event
//! needs the session's creation facts).
//!
//! A [`DomainEventSink`] publishes batches: when `publish` returns, the whole batch is
//! durable; when it fails, at most a *prefix* of the batch is durable, never a later
//! event without every earlier one. The sink also knows where the relay stopped:
//! [`DomainEventSink::last_position`] is the source position of the last durable
//! domain event. On start the relay reads from there, so the sink's own contents are
//! the checkpoint: no checkpoint table, and no window in which a checkpoint could run
//! ahead of what was published. A crash can only lose acknowledgements, never
//! events: what follows is republished, and consumers deduplicate by `event_id`.
//!
//! Adapters: [`KafkaDomainSink`] (one single-partition topic, so consumers see one
//! total order and the relay finds its resume point in the partition's last record)
//! and [`InMemoryDomainSink`] (embedded use and tests). Both pass one contract suite,
//! `tests/contract/mod.rs`.

mod error;
mod kafka;
mod map;
mod relay;
mod sink;

pub use error::OutboxError;
pub use kafka::{
    DEFAULT_TOPIC, EVENT_ID_HEADER, KafkaDomainSink, KafkaSinkConfig, SCHEMA_HEADER, TYPE_HEADER,
};
pub use map::domain_event;
pub use relay::{DEFAULT_BATCH, Outbox};
pub use sink::{DomainEventSink, InMemoryDomainSink};
