//! The share-vault port: where key shares (and a party's identity secret) rest
//! between runs.
//!
//! [`ShareVault`] is what the party runtime needs; the adapters are `FileVault`
//! (passphrase, Argon2id; feature `file`) and `Pkcs11Vault` (key-encryption key in a
//! PKCS#11 token; feature `pkcs11`). Every adapter passes the one contract suite in
//! `tests/vault_contract/mod.rs`.

use mpc_engine::KeyShare;
use mpc_events::{KeyId, KeyPolicy, Participant, PartyId};
use zeroize::Zeroizing;

/// Public facts about a stored share (never its content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareMeta {
    pub party_id: PartyId,
    pub key_id: KeyId,
    /// Starts at 1; a refresh stores the next version and retires the old one.
    pub version: u32,
    pub engine: String,
    pub public_key: mpc_events::PublicKey,
}

/// A share with the facts that bind it: party, key, version, pinned roster and
/// signing policy are authenticated together with the ciphertext (AAD), so a share
/// cannot be swapped for another and neither its roster nor its policy can be
/// edited.
#[derive(Debug)]
pub struct ShareRecord {
    pub party_id: PartyId,
    pub key_id: KeyId,
    pub version: u32,
    pub share: KeyShare,
    /// The key's holders as this party verified them, in protocol-index order
    /// (holder `i` at position `i - 1`): pinned from the keygen it ran, carried to
    /// each refreshed version and changed only by a repair. Every later session on
    /// the key is checked against it. `None` for shares stored before rosters were
    /// pinned; such a share is refused where the roster decides (approval-gated
    /// signing, repairs).
    pub roster: Option<Vec<Participant>>,
    /// Which signing sessions of the key this party joins, pinned from the keygen
    /// it ran and carried to each refreshed version (`any-request` for shares stored
    /// before policies were pinned).
    pub policy: KeyPolicy,
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("wrong vault passphrase")]
    WrongPassphrase,
    #[error("no share for key {key_id} held by party {party_id}")]
    NotFound { party_id: PartyId, key_id: KeyId },
    #[error("share version {version} of key {key_id} is already stored")]
    AlreadyStored { key_id: KeyId, version: u32 },
    #[error("share failed authentication (tampered, or bound to another party, key or version)")]
    Tampered,
    #[error("party {0} already has an identity in this vault")]
    IdentityExists(PartyId),
    #[error("vault file is malformed: {0}")]
    Malformed(String),
    #[error("vault io: {0}")]
    Io(String),
}

/// The share-vault port. Every adapter passes the vault contract tests.
pub trait ShareVault: Send + Sync {
    /// Stores a new share version; refuses to overwrite an existing version.
    fn put(&self, record: &ShareRecord) -> Result<ShareMeta, VaultError>;
    /// The newest stored version of `key_id` held by `party_id`.
    fn get(&self, party_id: &PartyId, key_id: &KeyId) -> Result<ShareRecord, VaultError>;
    /// What the vault holds, newest version per key.
    fn list(&self) -> Result<Vec<ShareMeta>, VaultError>;
    /// One stored version of `key_id` held by `party_id`; [`VaultError::NotFound`] if
    /// that version is not stored (never stored, or retired).
    fn get_version(
        &self,
        party_id: &PartyId,
        key_id: &KeyId,
        version: u32,
    ) -> Result<ShareRecord, VaultError>;
    /// Erases one stored version (after a refresh, the share it replaced): afterwards
    /// `get_version` is [`VaultError::NotFound`], `get` returns the newest remaining
    /// version and `list` no longer shows it. Retiring a version that is not stored
    /// is [`VaultError::NotFound`].
    ///
    /// The adapters delete the version's file and sync its directory. Deleting a file
    /// cannot guarantee erasure on every medium (copy-on-write file systems,
    /// journals, SSD wear levelling, snapshots and backups may keep the bytes); the
    /// share stays encrypted there, under the vault's key.
    fn retire(&self, party_id: &PartyId, key_id: &KeyId, version: u32) -> Result<(), VaultError>;
    /// Stores `party_id`'s identity secret (its signing and encryption keys) once;
    /// refuses to replace an existing one.
    fn put_identity(&self, party_id: &PartyId, secret: &[u8]) -> Result<(), VaultError>;
    /// `party_id`'s identity secret, if one was stored.
    fn get_identity(&self, party_id: &PartyId) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError>;
}
