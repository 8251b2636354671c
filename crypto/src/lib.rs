//! The cryptography every role shares, and nothing that computes with or keeps a
//! key share: signature verification, party identities, envelope seal/open and
//! approval evidence. The coordinator side (actors, gateway) links this crate and
//! not the threshold engine or the vaults; `scripts/check-boundaries.sh` keeps it so.
//!
//! May depend on `mpc-events` and `mpc-schemas` (the envelope and approval formats)
//! and on verification and envelope primitives (`k256`, `ed25519-dalek`, `hpke`);
//! never on the protocol engine (`dkls23`), PKCS#11 (`cryptoki`) or password hashing
//! (`argon2`).
//!
//! - [`verify_signature`] is the one check of a threshold ECDSA signature
//!   (secp256k1, low S, recovery id), run by the session aggregate, the gateway and
//!   every signing party; [`is_on_curve`] checks a public key.
//! - Protocol messages travel in envelopes that [`seal`] signs with the sender's
//!   [`PartyIdentity`] (Ed25519) and, when point-to-point, encrypts to the recipient
//!   (RFC 9180 HPKE, X25519 + ChaCha20-Poly1305); [`open`] verifies and decrypts them.
//! - The same identity key signs approval decisions
//!   ([`PartyIdentity::sign_decision`]); [`verify_evidence`] is the one check of a
//!   workflow's approvals, run by the session aggregate and by every signing party.
//! - It also authorizes the repair of another holder's lost share
//!   ([`PartyIdentity::authorize_recovery`]); [`verify_recovery`] is the one check
//!   that t holders did, run by the session aggregate and by every holder.

mod approval;
mod envelope;
mod recovery;
mod signature;

pub use approval::{EvidenceError, verify_decision, verify_evidence};
pub use envelope::{
    EnvelopeError, Header, Opened, P2P_OVERHEAD, PartyIdentity, SeenMessages, open, seal,
};
pub use recovery::{RecoveryAuthError, verify_recovery};
pub use signature::{is_on_curve, verify_signature};
