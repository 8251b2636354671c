//! Share vaults: where a party's key shares and identity secret rest between runs.
//!
//! [`ShareVault`] is the port (always built, portable). Its adapters are behind
//! features, both on by default:
//! - `file`: [`FileVault`] encrypts each share with AES-256-GCM under a key derived
//!   from a passphrase with Argon2id, binding party id, key id and version.
//! - `pkcs11`: [`Pkcs11Vault`] keeps the key-encryption key in a PKCS#11 token (an
//!   HSM, or SoftHSM2 in tests) instead: non-extractable, wrapping a fresh data key
//!   per share. It shares the file vault's layout and sealing, so it implies `file`.
//!
//! May depend on `mpc-events` and `mpc-engine` (for [`mpc_engine::KeyShare`]), and, in
//! the adapters only, on `argon2`, `aes-gcm` and `cryptoki`. Only the party runtime
//! and the binaries link it; the coordinator side never does
//! (`scripts/check-boundaries.sh`).

#[cfg(feature = "file")]
mod file;
#[cfg(feature = "pkcs11")]
mod hsm;
mod port;

#[cfg(feature = "file")]
pub use file::FileVault;
#[cfg(feature = "pkcs11")]
pub use hsm::{HsmError, Pkcs11Vault};
pub use port::{ShareMeta, ShareRecord, ShareVault, VaultError};
