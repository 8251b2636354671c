//! The message-bus port that carries protocol envelopes between parties.
//!
//! Envelopes ([`mpc_schemas::Envelope`]) are opaque to the transport: sender-signed and
//! recipient-encrypted by the engine. The transport only routes them:
//!
//! - [`Transport`] is the port. Each session is an append-only log; a party's
//!   [`Inbox`] yields every envelope of the session addressed to it (point-to-point or
//!   broadcast from someone else), including those published before it subscribed, in
//!   publish order and once per message id.
//! - [`Inbox::new`] is the one place those delivery rules (session, addressee,
//!   de-duplication by message id) are applied; every adapter builds its inboxes with
//!   it.
//! - [`SessionBudget`] bounds what one session may cost: payload bytes per session and
//!   envelopes per sender. Every adapter refuses a publish over it, and [`Usage`] is
//!   the one count they keep (a party counts the same over what it verified).
//! - [`InProcessTransport`] is the default adapter, for parties in one process.
//! - `KafkaTransport` (feature `kafka`, on by default; native only) carries envelopes through one Kafka topic keyed by session id,
//!   for parties in different processes or hosts; each inbox reads its session's
//!   partition by explicit assignment, from an offset it finds itself (`src/kafka.rs`
//!   explains the layout and why).
//!
//! Every adapter passes the one contract suite in `tests/contract/mod.rs`; each
//! adapter instantiates it with a single macro call (see `tests/in_process.rs` and
//! `tests/kafka.rs`; the Kafka tests need a broker: `scripts/ensure-kafka.sh`).

mod budget;
mod error;
mod in_process;
mod inbox;
#[cfg(feature = "kafka")]
mod kafka;
mod port;

pub use budget::{SessionBudget, Usage};
pub use error::TransportError;
pub use in_process::InProcessTransport;
pub use inbox::Inbox;
#[cfg(feature = "kafka")]
pub use kafka::{CONTROL_HEADER, DEFAULT_TOPIC, KafkaConfig, KafkaTransport, partition_for};
pub use port::{Transport, encode_for_transport};
