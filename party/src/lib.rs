//! The party node runtime.
//!
//! A [`PartyNode`] is one party (a phone, a server node, a recovery key, an
//! approver). For each session it is invited to, it joins through the coordinator,
//! runs its side of the threshold protocol with the engine, exchanging envelopes over
//! the transport, keeps the resulting share in its own vault, and reports only public
//! results (the group public key or the signature) back to the coordinator. Peers are
//! equal: every party, client or server, runs this same code.

mod identity;
mod node;

pub use identity::PartyIdentity;
pub use node::{CoordinatorClient, PartyError, PartyNode, execution_id};
