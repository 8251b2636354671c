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
//! a [`ShareVault`]; [`FileVault`] encrypts each share with AES-256-GCM under a key
//! derived from a passphrase with Argon2id, binding party id, key id and version.
//! [`Pkcs11Vault`] keeps the key-encryption key in a PKCS#11 token (an HSM, or
//! SoftHSM2 in tests) instead: non-extractable, wrapping a fresh data key per share.
//!
//! Protocol messages travel in envelopes that [`seal`] signs with the sender's
//! [`PartyIdentity`] (Ed25519) and, when point-to-point, encrypts to the recipient
//! (RFC 9180 HPKE, X25519 + ChaCha20-Poly1305); [`open`] verifies and decrypts them.
//!
//! The same identity key signs approval decisions
//! ([`PartyIdentity::sign_decision`]); [`verify_evidence`] is the one check of a
//! workflow's approvals, run by the session aggregate and by every signing party.

mod approval;
mod dkls;
mod envelope;
mod hsm_vault;
mod port;
mod rounds;
mod vault;

pub use approval::{EvidenceError, verify_decision, verify_evidence};
pub use dkls::Dkls23Engine;
pub use envelope::{
    EnvelopeError, Header, Opened, P2P_OVERHEAD, PartyIdentity, SeenMessages, open, seal,
};
pub use hsm_vault::{HsmError, Pkcs11Vault};
pub use port::{
    EngineError, Incoming, KeyShare, KeygenParams, Outgoing, PartyIndex, Protocol, RefreshParams,
    Refreshed, RepairPlan, ShareSlot, SignParams, Step, ThresholdEngine, To, is_on_curve,
    verify_signature,
};
pub use vault::{FileVault, ShareMeta, ShareRecord, ShareVault, VaultError};
