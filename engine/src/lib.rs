//! Threshold ECDSA over secp256k1, behind a port.
//!
//! [`ThresholdEngine`] starts protocol runs (distributed keygen, signing,
//! complete refresh, and repair of a lost share followed by a refresh). A run is a
//! message-driven state machine ([`Protocol`]): `start` yields the first outgoing
//! messages, each `handle(incoming)` yields more and eventually the output. The same
//! party code therefore runs over any transport. [`Dkls23Engine`] is the first
//! adapter (DKLs23, crate `dkls23`, pinned; not audited).
//!
//! Key shares leave a run as [`KeyShare`] (secret bytes zeroized on drop) and rest in
//! a share vault (crate `mpc-vault`). Envelopes, identities and signature
//! verification live in `mpc-crypto`.
//!
//! May depend on `mpc-events`, `mpc-crypto` and the protocol's own crates (`dkls23`,
//! `k256`). Only the party runtime and the binaries link it: the coordinator side
//! never computes with a share (`scripts/check-boundaries.sh`).

mod dkls;
mod port;
mod rounds;
#[cfg(feature = "testing")]
pub mod testing;

pub use dkls::Dkls23Engine;
pub use port::{
    EngineError, Incoming, KeyShare, KeygenParams, Outgoing, ParameterError, PartyIndex, Protocol,
    RefreshParams, Refreshed, RepairPlan, ShareSlot, SignParams, Step, ThresholdEngine, To,
};
