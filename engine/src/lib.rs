//! Threshold ECDSA over secp256k1, behind a port.
//!
//! [`ThresholdEngine`] starts protocol runs (distributed keygen, signing). A run is a
//! message-driven state machine ([`Protocol`]): `start` yields the first outgoing
//! messages, each `handle(incoming)` yields more and eventually the output. The same
//! party code therefore runs over any transport. [`Dkls23Engine`] is the first
//! adapter (DKLs23, crate `dkls23`, pinned; not audited).
//!
//! Key shares leave a run as [`KeyShare`] (secret bytes zeroized on drop) and rest in
//! a [`ShareVault`]; [`FileVault`] encrypts each share with AES-256-GCM under a key
//! derived from a passphrase with Argon2id, binding party id, key id and version.

mod dkls;
mod port;
mod rounds;
mod vault;

pub use dkls::Dkls23Engine;
pub use port::{
    EngineError, Incoming, KeyShare, KeygenParams, Outgoing, PartyIndex, Protocol, SignParams,
    Step, ThresholdEngine, To, verify_signature,
};
pub use vault::{FileVault, ShareMeta, ShareRecord, ShareVault, VaultError};
