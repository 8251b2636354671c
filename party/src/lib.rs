//! The party node runtime.
//!
//! A [`PartyNode`] is one party (a phone, a server node, a recovery key, an
//! approver). For each session it is invited to, it joins through the coordinator,
//! runs its side of the threshold protocol with the engine, exchanging envelopes over
//! the transport, keeps the resulting share in its own vault, and reports only public
//! results (the group public key or the signature) back to the coordinator. Peers are
//! equal: every party, client or server, runs this same code.
//!
//! Every envelope a node sends is signed with its [`PartyIdentity`] and, when
//! point-to-point, encrypted to the recipient; every envelope it receives is
//! verified (signature first), checked for session, sender, recipient and replay,
//! and decrypted before the engine sees it. Envelopes that fail are dropped with a
//! warning: a forger on the bus cannot end a run.
//!
//! `GatewayClient` (feature `http`) reaches the coordinator over HTTP and doubles as
//! the transport for parties that cannot speak Kafka (the gateway's inbox API).
//!
//! The core (joining, running the engine over a [`mpc_transport::Transport`] with
//! sealed envelopes, the [`mpc_vault::ShareVault`] port, reporting) is portable:
//! without default features it builds for `wasm32-unknown-unknown`. The default
//! features bring what only a native process has: `native` (tokio's multi-thread
//! runtime and timer) and `http` (the reqwest client).

mod consent;
mod exchange;
#[cfg(feature = "http")]
mod http;
mod journal;
mod node;
mod roster;
mod runtime;

pub use consent::Holder;
#[cfg(feature = "http")]
pub use http::GatewayClient;
#[cfg(feature = "native")]
pub use journal::FileJournal;
pub use journal::{ApprovalJournal, JournalError, MemoryJournal};
pub use mpc_crypto::PartyIdentity;
pub use mpc_events::KeyPolicy;
pub use node::{CoordinatorClient, CoordinatorError, PartyError, PartyNode, execution_id};
pub use roster::{Peers, RosterError};
