//! The file-system share vault.
//!
//! [`FileVault`] is the passphrase adapter of the [`ShareVault`] port. A file vault
//! is a directory holding `vault.json` (format version, Argon2id parameters and
//! salt, and a key-check blob that tells a wrong passphrase from a damaged share)
//! and one file per share version at `<key_id>/<party_id>.v<version>.share`.
//!
//! Each share file holds the public metadata (engine, public key, index, `t`, `n`,
//! the pinned roster of holders and the key's signing policy when it is
//! `approved-only`),
//! a random 96-bit nonce and the AES-256-GCM ciphertext of the secret. The
//! associated data is a length-prefixed encoding of the tag `mpc-share-v1`, the
//! party id, key id and version taken from the file's *path*, and the public
//! metadata, with the pinned roster where the share has one and the policy where it
//! is `approved-only`: a file edited, or
//! moved to another party, key or version, does not decrypt. Files are written to a temporary file, synced, then linked into place
//! (which never replaces an existing file), and the directory is synced.
//! Retiring a version deletes its file and syncs the directory (see
//! [`ShareVault::retire`] for what deletion can and cannot erase).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use mpc_engine::{KeyShare, PartyIndex};
use mpc_events::{IdentityKey, KeyId, KeyPolicy, Participant, PartyId, PublicKey};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::port::{ShareMeta, ShareRecord, ShareVault, VaultError};

const VAULT_FILE: &str = "vault.json";
const VAULT_FORMAT: &str = "mpc-file-vault";
const VAULT_VERSION: u32 = 1;
const SHARE_FORMAT: u32 = 1;
const SHARE_SUFFIX: &str = ".share";
const SHARE_AAD_TAG: &[u8] = b"mpc-share-v1";
const ROSTER_AAD_TAG: &[u8] = b"roster";
const POLICY_AAD_TAG: &[u8] = b"policy";
pub(crate) const IDENTITY_DIR: &str = "identity";
pub(crate) const IDENTITY_SUFFIX: &str = ".identity";
const IDENTITY_AAD_TAG: &[u8] = b"mpc-identity-v1";
const KEY_CHECK_LABEL: &[u8] = b"mpc-file-vault key check v1";
const KEY_CHECK_AAD: &[u8] = b"mpc-file-vault-v1/key-check";
const KDF_ALGORITHM: &str = "argon2id";
/// Argon2id parameters for new vaults (OWASP's minimum recommendation).
const M_COST_KIB: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
/// Upper bounds accepted when opening, so a hostile `vault.json` cannot demand
/// unbounded memory or time.
const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
const MAX_T_COST: u32 = 64;
const MAX_P_COST: u32 = 64;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VaultFile {
    format: String,
    version: u32,
    kdf: KdfParams,
    key_check: Sealed,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfParams {
    algorithm: String,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    /// Hex.
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sealed {
    /// Hex, 12 bytes.
    pub(crate) nonce: String,
    /// Hex, ciphertext followed by the 16-byte tag.
    pub(crate) ciphertext: String,
}

/// On-disk form of one share version. Party, key and version are not stored:
/// they come from the path and are authenticated as associated data.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareFile {
    format: u32,
    engine: String,
    /// Hex, compressed SEC1.
    public_key: String,
    index: u8,
    threshold: u8,
    parties: u8,
    /// The pinned roster (authenticated as associated data); absent in shares
    /// stored before rosters were pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    roster: Option<Vec<RosterEntry>>,
    /// `approved-only` when the key's keygen fixed it (authenticated as associated
    /// data); absent for `any-request`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    policy: Option<String>,
    #[serde(flatten)]
    sealed: Sealed,
}

/// On-disk form of one holder of a pinned roster; its index is its position + 1.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RosterEntry {
    party_id: String,
    /// Hex, Ed25519 verifying key.
    signing: String,
    /// Hex, X25519 public key.
    encryption: String,
}

/// The on-disk form of `roster`.
pub(crate) fn roster_entries(roster: &[Participant]) -> Vec<RosterEntry> {
    roster
        .iter()
        .map(|p| RosterEntry {
            party_id: p.party_id.as_str().to_owned(),
            signing: hex::encode(p.identity.signing()),
            encryption: hex::encode(p.identity.encryption()),
        })
        .collect()
}

/// The roster `entries` describe; checked, never trusted blindly (it is
/// authenticated only afterwards, with the share).
pub(crate) fn roster_of(entries: &[RosterEntry]) -> Result<Vec<Participant>, VaultError> {
    entries
        .iter()
        .map(|e| {
            let party_id = PartyId::parse(e.party_id.clone())
                .map_err(|err| VaultError::Malformed(format!("roster party id: {err}")))?;
            let identity = IdentityKey::new(
                &decode_hex(&e.signing, "roster signing key")?,
                &decode_hex(&e.encryption, "roster encryption key")?,
            )
            .map_err(|err| VaultError::Malformed(format!("roster identity: {err}")))?;
            Ok(Participant { party_id, identity })
        })
        .collect()
}

/// A passphrase-protected vault in a directory; see the module docs.
pub struct FileVault {
    dir: PathBuf,
    key: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for FileVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileVault")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl FileVault {
    /// Creates a new vault in `dir` (created if missing); fails if `dir` already
    /// holds one.
    pub fn create(dir: impl AsRef<Path>, passphrase: &[u8]) -> Result<Self, VaultError> {
        let dir = dir.as_ref().to_path_buf();
        create_dir(&dir)?;
        let path = dir.join(VAULT_FILE);
        if path.exists() {
            return Err(VaultError::Io(format!(
                "a vault already exists at {}",
                path.display()
            )));
        }
        let mut salt = [0u8; SALT_LEN];
        rand::rng().fill(&mut salt[..]);
        let key = derive_key(passphrase, &salt, M_COST_KIB, T_COST, P_COST)?;
        let key_check = seal(&key, KEY_CHECK_AAD, KEY_CHECK_LABEL)?;
        let file = VaultFile {
            format: VAULT_FORMAT.to_owned(),
            version: VAULT_VERSION,
            kdf: KdfParams {
                algorithm: KDF_ALGORITHM.to_owned(),
                m_cost_kib: M_COST_KIB,
                t_cost: T_COST,
                p_cost: P_COST,
                salt: hex::encode(salt),
            },
            key_check,
        };
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| VaultError::Io(format!("encoding {VAULT_FILE}: {e}")))?;
        if !write_new(&dir, VAULT_FILE, &bytes)? {
            return Err(VaultError::Io(format!(
                "a vault already exists at {}",
                path.display()
            )));
        }
        Ok(Self { dir, key })
    }

    /// Opens the vault in `dir`; [`VaultError::WrongPassphrase`] if the passphrase
    /// does not match the one it was created with.
    pub fn open(dir: impl AsRef<Path>, passphrase: &[u8]) -> Result<Self, VaultError> {
        let dir = dir.as_ref().to_path_buf();
        let bytes = read_limited(&dir.join(VAULT_FILE))?.ok_or_else(|| {
            VaultError::Io(format!("no vault at {}", dir.join(VAULT_FILE).display()))
        })?;
        let file: VaultFile = serde_json::from_slice(&bytes)
            .map_err(|e| VaultError::Malformed(format!("{VAULT_FILE}: {e}")))?;
        if file.format != VAULT_FORMAT || file.version != VAULT_VERSION {
            return Err(VaultError::Malformed(format!(
                "{VAULT_FILE}: unsupported format {:?} version {}",
                file.format, file.version
            )));
        }
        let kdf = &file.kdf;
        if kdf.algorithm != KDF_ALGORITHM
            || !(M_COST_KIB..=MAX_M_COST_KIB).contains(&kdf.m_cost_kib)
            || !(T_COST..=MAX_T_COST).contains(&kdf.t_cost)
            || !(P_COST..=MAX_P_COST).contains(&kdf.p_cost)
        {
            return Err(VaultError::Malformed(format!(
                "{VAULT_FILE}: unsupported key derivation parameters"
            )));
        }
        let salt: [u8; SALT_LEN] = decode_hex(&kdf.salt, "salt")?
            .try_into()
            .map_err(|_| VaultError::Malformed(format!("{VAULT_FILE}: salt length")))?;
        let key = derive_key(passphrase, &salt, kdf.m_cost_kib, kdf.t_cost, kdf.p_cost)?;
        let check = open_sealed(&key, KEY_CHECK_AAD, &file.key_check)
            .map_err(|_| VaultError::WrongPassphrase)?;
        if check.as_slice() != KEY_CHECK_LABEL {
            return Err(VaultError::WrongPassphrase);
        }
        Ok(Self { dir, key })
    }

    fn key_dir(&self, key_id: &KeyId) -> PathBuf {
        self.dir.join(key_id.to_string())
    }

    /// Newest version of `party_id`'s share in `key_dir`, if any.
    fn newest_version(key_dir: &Path, party_id: &PartyId) -> Result<Option<u32>, VaultError> {
        Ok(share_files(key_dir)?
            .into_iter()
            .filter(|(party, _)| party == party_id)
            .map(|(_, version)| version)
            .max())
    }

    /// Reads and authenticates one share file.
    fn read_share(
        &self,
        party_id: &PartyId,
        key_id: &KeyId,
        version: u32,
    ) -> Result<ShareRecord, VaultError> {
        let path = self.key_dir(key_id).join(share_name(party_id, version));
        let bytes = read_limited(&path)?.ok_or_else(|| VaultError::NotFound {
            party_id: party_id.clone(),
            key_id: *key_id,
        })?;
        let file: ShareFile = serde_json::from_slice(&bytes)
            .map_err(|e| VaultError::Malformed(format!("{}: {e}", path.display())))?;
        if file.format != SHARE_FORMAT {
            return Err(VaultError::Malformed(format!(
                "{}: unsupported share format {}",
                path.display(),
                file.format
            )));
        }
        let public_key = decode_hex(&file.public_key, "public key")?;
        let roster = file.roster.as_deref().map(roster_of).transpose()?;
        let policy = policy_of(file.policy.as_deref())?;
        let meta = PublicMeta {
            engine: &file.engine,
            public_key: &public_key,
            index: file.index,
            threshold: file.threshold,
            parties: file.parties,
            roster: roster.as_deref(),
            policy,
        };
        let aad = share_aad(party_id, key_id, version, &meta);
        let secret = open_sealed(&self.key, &aad, &file.sealed)?;
        meta.into_record(&path, party_id, key_id, version, secret)
    }
}

impl ShareVault for FileVault {
    fn put(&self, record: &ShareRecord) -> Result<ShareMeta, VaultError> {
        let share = &record.share;
        let (key_dir, name) = new_share_file(&self.dir, record)?;
        let meta = PublicMeta::of(record);
        let aad = share_aad(&record.party_id, &record.key_id, record.version, &meta);
        let file = ShareFile {
            format: SHARE_FORMAT,
            engine: share.engine.clone(),
            public_key: hex::encode(share.public_key.as_bytes()),
            index: share.index.get(),
            threshold: share.threshold,
            parties: share.parties,
            roster: record.roster.as_deref().map(roster_entries),
            policy: policy_entry(record.policy),
            sealed: seal(&self.key, &aad, &share.secret)?,
        };
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|e| VaultError::Io(format!("encoding share: {e}")))?;
        if !write_new(&key_dir, &name, &bytes)? {
            return Err(already_stored(record));
        }
        sync_dir(&self.dir)?;
        Ok(ShareMeta {
            party_id: record.party_id.clone(),
            key_id: record.key_id,
            version: record.version,
            engine: share.engine.clone(),
            public_key: share.public_key,
        })
    }

    fn put_identity(&self, party_id: &PartyId, secret: &[u8]) -> Result<(), VaultError> {
        let dir = self.dir.join(IDENTITY_DIR);
        create_dir(&dir)?;
        let sealed = seal(&self.key, &identity_aad(party_id), secret)?;
        let bytes = serde_json::to_vec_pretty(&sealed)
            .map_err(|e| VaultError::Io(format!("encoding identity: {e}")))?;
        if !write_new(&dir, &format!("{party_id}{IDENTITY_SUFFIX}"), &bytes)? {
            return Err(VaultError::IdentityExists(party_id.clone()));
        }
        sync_dir(&self.dir)
    }

    fn get_identity(&self, party_id: &PartyId) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        let path = self
            .dir
            .join(IDENTITY_DIR)
            .join(format!("{party_id}{IDENTITY_SUFFIX}"));
        let Some(bytes) = read_limited(&path)? else {
            return Ok(None);
        };
        let sealed: Sealed = serde_json::from_slice(&bytes)
            .map_err(|e| VaultError::Malformed(format!("{}: {e}", path.display())))?;
        open_sealed(&self.key, &identity_aad(party_id), &sealed).map(Some)
    }

    fn get(&self, party_id: &PartyId, key_id: &KeyId) -> Result<ShareRecord, VaultError> {
        let not_found = || VaultError::NotFound {
            party_id: party_id.clone(),
            key_id: *key_id,
        };
        let version =
            Self::newest_version(&self.key_dir(key_id), party_id)?.ok_or_else(not_found)?;
        self.read_share(party_id, key_id, version)
    }

    fn list(&self) -> Result<Vec<ShareMeta>, VaultError> {
        let mut metas = Vec::new();
        for entry in read_dir(&self.dir)? {
            let entry = entry.map_err(io_error)?;
            let Some(key_id) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<KeyId>().ok())
            else {
                continue;
            };
            if !entry.file_type().map_err(io_error)?.is_dir() {
                continue;
            }
            let mut newest: BTreeMap<PartyId, u32> = BTreeMap::new();
            for (party, version) in share_files(&entry.path())? {
                let slot = newest.entry(party).or_insert(version);
                *slot = (*slot).max(version);
            }
            for (party_id, version) in newest {
                let record = self.read_share(&party_id, &key_id, version)?;
                metas.push(ShareMeta {
                    party_id,
                    key_id,
                    version,
                    engine: record.share.engine.clone(),
                    public_key: record.share.public_key,
                });
            }
        }
        metas.sort_by(|a, b| (a.key_id, &a.party_id).cmp(&(b.key_id, &b.party_id)));
        Ok(metas)
    }

    fn get_version(
        &self,
        party_id: &PartyId,
        key_id: &KeyId,
        version: u32,
    ) -> Result<ShareRecord, VaultError> {
        self.read_share(party_id, key_id, version)
    }

    fn retire(&self, party_id: &PartyId, key_id: &KeyId, version: u32) -> Result<(), VaultError> {
        remove_share_file(&self.key_dir(key_id), party_id, key_id, version)
    }
}

/// The public facts bound into a share's associated data.
pub(crate) struct PublicMeta<'a> {
    pub(crate) engine: &'a str,
    pub(crate) public_key: &'a [u8],
    pub(crate) index: u8,
    pub(crate) threshold: u8,
    pub(crate) parties: u8,
    pub(crate) roster: Option<&'a [Participant]>,
    pub(crate) policy: KeyPolicy,
}

impl<'a> PublicMeta<'a> {
    /// The public facts of `record`, as bound into its AAD.
    pub(crate) fn of(record: &'a ShareRecord) -> Self {
        let share = &record.share;
        Self {
            engine: &share.engine,
            public_key: share.public_key.as_bytes(),
            index: share.index.get(),
            threshold: share.threshold,
            parties: share.parties,
            roster: record.roster.as_deref(),
            policy: record.policy,
        }
    }

    /// The share record these facts describe, once `secret` has been authenticated
    /// under them; the facts are still checked, never trusted blindly.
    pub(crate) fn into_record(
        self,
        path: &Path,
        party_id: &PartyId,
        key_id: &KeyId,
        version: u32,
        secret: Zeroizing<Vec<u8>>,
    ) -> Result<ShareRecord, VaultError> {
        let malformed = |what: &str| VaultError::Malformed(format!("{}: {what}", path.display()));
        let public_key =
            PublicKey::from_slice(self.public_key).map_err(|e| malformed(&e.to_string()))?;
        let index = PartyIndex::new(self.index).map_err(|e| malformed(&e.to_string()))?;
        Ok(ShareRecord {
            party_id: party_id.clone(),
            key_id: *key_id,
            version,
            share: KeyShare {
                engine: self.engine.to_owned(),
                public_key,
                index,
                threshold: self.threshold,
                parties: self.parties,
                secret,
            },
            roster: self.roster.map(<[Participant]>::to_vec),
            policy: self.policy,
        })
    }
}

/// Each field as an 8-byte big-endian length followed by its bytes.
pub(crate) fn share_aad(
    party_id: &PartyId,
    key_id: &KeyId,
    version: u32,
    meta: &PublicMeta<'_>,
) -> Vec<u8> {
    let key_id = key_id.to_string();
    let version = version.to_be_bytes();
    let counts = [meta.index, meta.threshold, meta.parties];
    let mut fields: Vec<&[u8]> = vec![
        SHARE_AAD_TAG,
        party_id.as_str().as_bytes(),
        key_id.as_bytes(),
        &version,
        meta.engine.as_bytes(),
        meta.public_key,
        &counts[0..1],
        &counts[1..2],
        &counts[2..3],
    ];
    // A share without a roster keeps the AAD it was sealed under.
    let roster = meta.roster.map(|roster| {
        let members: Vec<&[u8]> = roster
            .iter()
            .flat_map(|p| {
                [
                    p.party_id.as_str().as_bytes(),
                    p.identity.signing().as_slice(),
                    p.identity.encryption().as_slice(),
                ]
            })
            .collect();
        length_prefixed(&members)
    });
    if let Some(roster) = &roster {
        fields.push(ROSTER_AAD_TAG);
        fields.push(roster);
    }
    // Likewise a share of an `any-request` key: only the gate is bound, so it cannot
    // be removed from the file without the share failing to decrypt.
    if meta.policy == KeyPolicy::ApprovedOnly {
        fields.push(POLICY_AAD_TAG);
        fields.push(KeyPolicy::ApprovedOnly.as_str().as_bytes());
    }
    length_prefixed(&fields)
}

/// The on-disk form of `policy`: absent for `any-request`.
pub(crate) fn policy_entry(policy: KeyPolicy) -> Option<String> {
    (policy == KeyPolicy::ApprovedOnly).then(|| policy.as_str().to_owned())
}

/// The policy `entry` names (absent: `any-request`); checked, never trusted blindly
/// (it is authenticated only when the share is opened).
pub(crate) fn policy_of(entry: Option<&str>) -> Result<KeyPolicy, VaultError> {
    entry.map_or(Ok(KeyPolicy::AnyRequest), |policy| {
        policy
            .parse()
            .map_err(|err: String| VaultError::Malformed(format!("share policy: {err}")))
    })
}

/// Unambiguous concatenation: every field preceded by its length (u64, big-endian).
fn length_prefixed(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// Binds an identity secret to its party: length-prefixed tag and party id.
pub(crate) fn identity_aad(party_id: &PartyId) -> Vec<u8> {
    length_prefixed(&[IDENTITY_AAD_TAG, party_id.as_str().as_bytes()])
}

/// Where `record` goes under the vault directory `dir`: its key's directory
/// (created if missing) and its file name. Refuses version 0 and a version already
/// stored.
pub(crate) fn new_share_file(
    dir: &Path,
    record: &ShareRecord,
) -> Result<(PathBuf, String), VaultError> {
    if record.version == 0 {
        return Err(VaultError::Malformed("share versions start at 1".into()));
    }
    let key_dir = dir.join(record.key_id.to_string());
    create_dir(&key_dir)?;
    let name = share_name(&record.party_id, record.version);
    if key_dir.join(&name).exists() {
        return Err(already_stored(record));
    }
    Ok((key_dir, name))
}

/// The refusal to overwrite `record`'s version.
pub(crate) fn already_stored(record: &ShareRecord) -> VaultError {
    VaultError::AlreadyStored {
        key_id: record.key_id,
        version: record.version,
    }
}

pub(crate) fn share_name(party_id: &PartyId, version: u32) -> String {
    format!("{party_id}.v{version}{SHARE_SUFFIX}")
}

/// Parses `<party_id>.v<version>.share`; other names (temporary files) are `None`.
fn parse_share_name(name: &str) -> Option<(PartyId, u32)> {
    let (party, version) = name.strip_suffix(SHARE_SUFFIX)?.rsplit_once(".v")?;
    let parsed: u32 = version.parse().ok()?;
    if parsed.to_string() != version {
        return None;
    }
    Some((PartyId::parse(party).ok()?, parsed))
}

/// Deletes one share version's file and syncs the key directory;
/// [`VaultError::NotFound`] if it does not exist.
pub(crate) fn remove_share_file(
    key_dir: &Path,
    party_id: &PartyId,
    key_id: &KeyId,
    version: u32,
) -> Result<(), VaultError> {
    let path = key_dir.join(share_name(party_id, version));
    match fs::remove_file(&path) {
        Ok(()) => sync_dir(key_dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(VaultError::NotFound {
            party_id: party_id.clone(),
            key_id: *key_id,
        }),
        Err(e) => Err(VaultError::Io(format!("{}: {e}", path.display()))),
    }
}

/// All `(party, version)` share files in a key directory; none if it is missing.
pub(crate) fn share_files(key_dir: &Path) -> Result<Vec<(PartyId, u32)>, VaultError> {
    let entries = match fs::read_dir(key_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error)?;
        if let Some(parsed) = entry.file_name().to_str().and_then(parse_share_name) {
            files.push(parsed);
        }
    }
    Ok(files)
}

fn derive_key(
    passphrase: &[u8],
    salt: &[u8],
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let params = Params::new(m_cost_kib, t_cost, p_cost, Some(32))
        .map_err(|e| VaultError::Malformed(format!("argon2 parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, key.as_mut_slice())
        .map_err(|e| VaultError::Malformed(format!("argon2: {e}")))?;
    Ok(key)
}

fn cipher(key: &[u8; 32]) -> Result<Aes256Gcm, VaultError> {
    Aes256Gcm::new_from_slice(key).map_err(|_| VaultError::Io("invalid key length".into()))
}

pub(crate) fn seal(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Result<Sealed, VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill(&mut nonce[..]);
    // Room for the tag up front: the buffer never reallocates and leaves no copy
    // of the plaintext behind.
    let mut buffer = Zeroizing::new(Vec::with_capacity(plaintext.len() + 16));
    buffer.extend_from_slice(plaintext);
    cipher(key)?
        .encrypt_in_place(&Nonce::<Aes256Gcm>::from(nonce), aad, &mut *buffer)
        .map_err(|_| VaultError::Io("encryption failed".into()))?;
    Ok(Sealed {
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(buffer.as_slice()),
    })
}

/// Decrypts; [`VaultError::Tampered`] when authentication fails.
pub(crate) fn open_sealed(
    key: &[u8; 32],
    aad: &[u8],
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let nonce: [u8; NONCE_LEN] = decode_hex(&sealed.nonce, "nonce")?
        .try_into()
        .map_err(|_| VaultError::Malformed("nonce must be 12 bytes".into()))?;
    let mut buffer = Zeroizing::new(decode_hex(&sealed.ciphertext, "ciphertext")?);
    cipher(key)?
        .decrypt_in_place(&Nonce::<Aes256Gcm>::from(nonce), aad, &mut *buffer)
        .map_err(|_| VaultError::Tampered)?;
    Ok(buffer)
}

pub(crate) fn decode_hex(text: &str, what: &str) -> Result<Vec<u8>, VaultError> {
    hex::decode(text).map_err(|e| VaultError::Malformed(format!("{what}: {e}")))
}

pub(crate) fn io_error(error: io::Error) -> VaultError {
    VaultError::Io(error.to_string())
}

pub(crate) fn read_dir(dir: &Path) -> Result<fs::ReadDir, VaultError> {
    fs::read_dir(dir).map_err(|e| VaultError::Io(format!("{}: {e}", dir.display())))
}

/// Reads a whole file of bounded size; `None` if it does not exist.
pub(crate) fn read_limited(path: &Path) -> Result<Option<Vec<u8>>, VaultError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(VaultError::Io(format!("{}: {e}", path.display()))),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| VaultError::Io(format!("{}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(VaultError::Malformed(format!(
            "{}: larger than {MAX_FILE_BYTES} bytes",
            path.display()
        )));
    }
    Ok(Some(bytes))
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), VaultError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| VaultError::Io(format!("{}: {e}", dir.display())))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), VaultError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| VaultError::Io(format!("syncing {}: {e}", dir.display())))
}

/// Writes `dir/name` atomically and only if it does not exist yet: the bytes go to
/// a synced temporary file that is then hard-linked into place (linking never
/// replaces a file). Returns false if `name` already existed.
pub(crate) fn write_new(dir: &Path, name: &str, bytes: &[u8]) -> Result<bool, VaultError> {
    let mut suffix = [0u8; 8];
    rand::rng().fill(&mut suffix[..]);
    let temp = dir.join(format!(".{name}.tmp-{}", hex::encode(suffix)));
    let target = dir.join(name);
    let io = |path: &Path, e: io::Error| VaultError::Io(format!("{}: {e}", path.display()));

    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written {
        // Best effort: the temporary file is useless now.
        let _ = fs::remove_file(&temp);
        return Err(io(&temp, e));
    }
    let linked = fs::hard_link(&temp, &target);
    fs::remove_file(&temp).map_err(|e| io(&temp, e))?;
    match linked {
        Ok(()) => {
            sync_dir(dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io(&target, e)),
    }
}
