//! The HSM share vault: envelope encryption under a key that never leaves a PKCS#11
//! token.
//!
//! [`Pkcs11Vault`] keeps one AES-256 key-encryption key (KEK) in the token: generated
//! there, stored on the token, sensitive and never extractable. Every share (and
//! identity secret) gets a fresh random 256-bit data key; the share is encrypted with
//! it in software with AES-256-GCM, under the same associated data as the
//! [`FileVault`](crate::FileVault) (party id, key id and version taken from the file's
//! path, plus the public metadata), and the data key is wrapped by the KEK inside the
//! token with `CKM_AES_KEY_WRAP_PAD` (RFC 5649, authenticated). Data keys are zeroized
//! after use; the token holds only KEKs.
//!
//! The directory layout mirrors the file vault: `vault.json` names the current KEK,
//! each share version lives at `<key_id>/<party_id>.v<version>.share` and each
//! identity at `identity/<party_id>.identity`. A share or identity file holds the
//! public metadata, the nonce and ciphertext, the label of the KEK that wrapped its
//! data key and the wrapped data key. Shares and identities are created only once
//! (never replaced); a file edited, or moved to another party, key or version, does
//! not decrypt ([`VaultError::Tampered`]). Retiring a share version deletes its file,
//! and with it the only copy of its wrapped data key.
//!
//! [`Pkcs11Vault::rotate_kek`] generates a new KEK and re-wraps every data key inside
//! the token (unwrap under the old KEK into a sensitive session object, wrap under the
//! new one), so neither data keys nor shares appear in plaintext outside the token
//! during rotation and share ciphertexts stay byte-for-byte unchanged; the old KEKs are
//! destroyed once every data key is re-wrapped. Rotation must run while no other
//! process writes to the vault directory.
//!
//! PKCS#11 login state belongs to the process and token: while another session of this
//! process is logged in to the token, opening a vault on it does not check the PIN
//! again.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use mpc_events::{KeyId, PartyId};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::file::{
    IDENTITY_DIR, IDENTITY_SUFFIX, PublicMeta, RosterEntry, Sealed, already_stored, create_dir,
    decode_hex, identity_aad, io_error, new_share_file, open_sealed, policy_entry, policy_of,
    read_dir, read_limited, remove_share_file, roster_entries, roster_of, seal, share_aad,
    share_files, share_name, sync_dir, write_new,
};
use crate::port::{ShareMeta, ShareRecord, ShareVault, VaultError};

const VAULT_FILE: &str = "vault.json";
const VAULT_FORMAT: &str = "mpc-pkcs11-vault";
const VAULT_VERSION: u32 = 1;
const FILE_FORMAT: u32 = 1;
const KEK_LABEL_PREFIX: &str = "mpc-kek-";
const KEK_ID_LEN: usize = 16;
const DATA_KEY_LEN: usize = 32;

/// Why a [`Pkcs11Vault`] could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error("cannot load the PKCS#11 module {path}: {reason}")]
    Module { path: PathBuf, reason: String },
    #[error("the PKCS#11 module has no initialized token labelled {0:?}")]
    TokenNotFound(String),
    #[error("the PKCS#11 module has more than one token labelled {0:?}")]
    TokenAmbiguous(String),
    #[error("wrong user PIN for token {0:?}")]
    WrongPin(String),
    #[error("the user PIN of token {0:?} is locked")]
    PinLocked(String),
    #[error("the vault's key-encryption key {kek} is not in token {token:?} (wrong token?)")]
    KekMissing { kek: String, token: String },
    #[error("PKCS#11 {operation}: {error}")]
    Pkcs11 {
        operation: &'static str,
        error: String,
    },
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// `vault.json`: which KEK wraps new data keys.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VaultFile {
    format: String,
    version: u32,
    /// Label of the current KEK in the token.
    kek: String,
}

/// On-disk form of one share version. Party, key and version come from the path and
/// are authenticated as associated data.
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
    /// Hex, 12 bytes.
    nonce: String,
    /// Hex, AES-256-GCM ciphertext followed by the 16-byte tag.
    ciphertext: String,
    /// Label of the KEK that wrapped `wrapped_key`.
    kek: String,
    /// Hex, the data key wrapped with `CKM_AES_KEY_WRAP_PAD`.
    wrapped_key: String,
}

/// On-disk form of an identity secret; the party comes from the path.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    format: u32,
    nonce: String,
    ciphertext: String,
    kek: String,
    wrapped_key: String,
}

/// What a vault file says about its data key.
trait WrappedDataKey: Serialize + for<'de> Deserialize<'de> {
    fn kek(&self) -> &str;
    fn wrapped_key(&self) -> &str;
    fn rewrapped(self, kek: String, wrapped_key: String) -> Self;
}

impl WrappedDataKey for ShareFile {
    fn kek(&self) -> &str {
        &self.kek
    }
    fn wrapped_key(&self) -> &str {
        &self.wrapped_key
    }
    fn rewrapped(self, kek: String, wrapped_key: String) -> Self {
        Self {
            kek,
            wrapped_key,
            ..self
        }
    }
}

impl WrappedDataKey for IdentityFile {
    fn kek(&self) -> &str {
        &self.kek
    }
    fn wrapped_key(&self) -> &str {
        &self.wrapped_key
    }
    fn rewrapped(self, kek: String, wrapped_key: String) -> Self {
        Self {
            kek,
            wrapped_key,
            ..self
        }
    }
}

/// The session and the current KEK, used under one lock.
struct State {
    session: Session,
    kek: String,
}

/// A share vault whose key-encryption key lives in a PKCS#11 token; see the module
/// docs.
pub struct Pkcs11Vault {
    dir: PathBuf,
    token: String,
    state: Mutex<State>,
}

impl fmt::Debug for Pkcs11Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Vault")
            .field("dir", &self.dir)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// One initialized context per module path for the whole process: PKCS#11 modules
/// are initialized once and stay initialized.
fn context(module: &Path) -> Result<Pkcs11, HsmError> {
    static CONTEXTS: OnceLock<Mutex<BTreeMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut contexts = CONTEXTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(context) = contexts.get(module) {
        return Ok(context.clone());
    }
    let failed = |reason: String| HsmError::Module {
        path: module.to_path_buf(),
        reason,
    };
    if !module.is_file() {
        return Err(failed("no such file".into()));
    }
    let context = Pkcs11::new(module).map_err(|e| failed(e.to_string()))?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(failed(format!("C_Initialize: {e}"))),
    }
    contexts.insert(module.to_path_buf(), context.clone());
    Ok(context)
}

fn pkcs11(operation: &'static str) -> impl FnOnce(CkError) -> HsmError {
    move |e| HsmError::Pkcs11 {
        operation,
        error: e.to_string(),
    }
}

/// HSM failures inside vault operations.
fn hsm(operation: &'static str) -> impl FnOnce(CkError) -> VaultError {
    move |e| VaultError::Io(format!("PKCS#11 {operation}: {e}"))
}

fn find_slot(context: &Pkcs11, token: &str) -> Result<Slot, HsmError> {
    let mut found = None;
    for slot in context
        .get_slots_with_initialized_token()
        .map_err(pkcs11("C_GetSlotList"))?
    {
        let info = context
            .get_token_info(slot)
            .map_err(pkcs11("C_GetTokenInfo"))?;
        if info.label().trim_end() == token {
            if found.is_some() {
                return Err(HsmError::TokenAmbiguous(token.to_owned()));
            }
            found = Some(slot);
        }
    }
    found.ok_or_else(|| HsmError::TokenNotFound(token.to_owned()))
}

impl Pkcs11Vault {
    /// Opens the vault in `dir` (created with a new KEK in the token if `dir` holds no
    /// vault yet), logging in to the token labelled `token_label` of the PKCS#11
    /// module at `module_path` as its user.
    pub fn open(
        module_path: impl AsRef<Path>,
        token_label: &str,
        pin: &str,
        dir: impl AsRef<Path>,
    ) -> Result<Self, HsmError> {
        let dir = dir.as_ref().to_path_buf();
        let context = context(module_path.as_ref())?;
        let slot = find_slot(&context, token_label)?;
        let session = context
            .open_rw_session(slot)
            .map_err(pkcs11("C_OpenSession"))?;
        match session.login(UserType::User, Some(&AuthPin::from(pin))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
                return Err(HsmError::WrongPin(token_label.to_owned()));
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                return Err(HsmError::PinLocked(token_label.to_owned()));
            }
            Err(e) => return Err(pkcs11("C_Login")(e)),
        }

        create_dir(&dir)?;
        let kek = match read_vault_file(&dir)? {
            Some(file) => file.kek,
            None => {
                let kek = generate_kek(&session)?;
                let file = VaultFile {
                    format: VAULT_FORMAT.to_owned(),
                    version: VAULT_VERSION,
                    kek: kek.clone(),
                };
                if write_new(&dir, VAULT_FILE, &to_json(&file)?)? {
                    kek
                } else {
                    // Another process created the vault first: use its KEK.
                    destroy_kek(&session, &kek)?;
                    read_vault_file(&dir)?
                        .ok_or_else(|| VaultError::Io(format!("{VAULT_FILE} disappeared")))?
                        .kek
                }
            }
        };
        if find_kek(&session, &kek)?.is_none() {
            return Err(HsmError::KekMissing {
                kek,
                token: token_label.to_owned(),
            });
        }
        Ok(Self {
            dir,
            token: token_label.to_owned(),
            state: Mutex::new(State { session, kek }),
        })
    }

    /// Label of the KEK that wraps new data keys.
    pub fn kek_label(&self) -> String {
        self.lock().kek.clone()
    }

    /// Generates a new KEK in the token, re-wraps every stored data key with it inside
    /// the token (share ciphertexts are not touched), then destroys the KEKs it
    /// replaced. Returns the new KEK's label. On failure, every file still names the
    /// KEK that wraps its data key and no KEK in use has been destroyed.
    pub fn rotate_kek(&self) -> Result<String, VaultError> {
        let mut state = self.lock();
        let new_kek = generate_kek(&state.session)?;
        let new_handle = require_kek(&state.session, &new_kek)?;
        let mut retired = BTreeSet::from([state.kek.clone()]);
        for path in self.wrapped_files()? {
            let old = if path.extension().is_some_and(|e| e == "identity") {
                rewrap_file::<IdentityFile>(&state.session, &path, &new_kek, new_handle)?
            } else {
                rewrap_file::<ShareFile>(&state.session, &path, &new_kek, new_handle)?
            };
            retired.insert(old);
        }
        let file = VaultFile {
            format: VAULT_FORMAT.to_owned(),
            version: VAULT_VERSION,
            kek: new_kek.clone(),
        };
        replace_file(&self.dir, VAULT_FILE, &to_json(&file)?)?;
        state.kek = new_kek.clone();
        retired.remove(&new_kek);
        for label in retired {
            destroy_kek(&state.session, &label)?;
        }
        Ok(new_kek)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn key_dir(&self, key_id: &KeyId) -> PathBuf {
        self.dir.join(key_id.to_string())
    }

    /// Every share version and identity file in the vault.
    fn wrapped_files(&self) -> Result<Vec<PathBuf>, VaultError> {
        let mut paths = Vec::new();
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
            for (party, version) in share_files(&entry.path())? {
                paths.push(self.key_dir(&key_id).join(share_name(&party, version)));
            }
        }
        let identities = self.dir.join(IDENTITY_DIR);
        if identities.is_dir() {
            for entry in read_dir(&identities)? {
                let entry = entry.map_err(io_error)?;
                let name = entry.file_name();
                let is_identity = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(IDENTITY_SUFFIX))
                    .is_some_and(|party| PartyId::parse(party).is_ok());
                if is_identity {
                    paths.push(entry.path());
                }
            }
        }
        Ok(paths)
    }

    /// Wraps a fresh data key under the current KEK and seals `plaintext` with it.
    fn seal_new(
        &self,
        state: &State,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(Sealed, String), VaultError> {
        let mut data_key = Zeroizing::new([0u8; DATA_KEY_LEN]);
        rand::rng().fill(&mut data_key[..]);
        let kek = require_kek(&state.session, &state.kek)?;
        let wrapped = wrap_data_key(&state.session, kek, &data_key)?;
        let sealed = seal(&data_key, aad, plaintext)?;
        Ok((sealed, hex::encode(wrapped)))
    }

    /// Unwraps a file's data key and opens its ciphertext.
    fn open_file(
        &self,
        state: &State,
        file: &impl WrappedDataKey,
        sealed: &Sealed,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let data_key = unwrap_data_key(&state.session, file.kek(), file.wrapped_key())?;
        open_sealed(&data_key, aad, sealed)
    }

    fn read_share(
        &self,
        state: &State,
        party_id: &PartyId,
        key_id: &KeyId,
        version: u32,
    ) -> Result<ShareRecord, VaultError> {
        let path = self.key_dir(key_id).join(share_name(party_id, version));
        let file: ShareFile = read_json(&path)?.ok_or_else(|| VaultError::NotFound {
            party_id: party_id.clone(),
            key_id: *key_id,
        })?;
        check_format(&path, file.format)?;
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
        let sealed = Sealed {
            nonce: file.nonce.clone(),
            ciphertext: file.ciphertext.clone(),
        };
        let secret = self.open_file(state, &file, &sealed, &aad)?;
        meta.into_record(&path, party_id, key_id, version, secret)
    }
}

impl ShareVault for Pkcs11Vault {
    fn put(&self, record: &ShareRecord) -> Result<ShareMeta, VaultError> {
        let share = &record.share;
        let (key_dir, name) = new_share_file(&self.dir, record)?;
        let meta = PublicMeta::of(record);
        let aad = share_aad(&record.party_id, &record.key_id, record.version, &meta);
        let state = self.lock();
        let (sealed, wrapped_key) = self.seal_new(&state, &aad, &share.secret)?;
        let file = ShareFile {
            format: FILE_FORMAT,
            engine: share.engine.clone(),
            public_key: hex::encode(share.public_key.as_bytes()),
            index: share.index.get(),
            threshold: share.threshold,
            parties: share.parties,
            roster: record.roster.as_deref().map(roster_entries),
            policy: policy_entry(record.policy),
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
            kek: state.kek.clone(),
            wrapped_key,
        };
        if !write_new(&key_dir, &name, &to_json(&file)?)? {
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

    fn get(&self, party_id: &PartyId, key_id: &KeyId) -> Result<ShareRecord, VaultError> {
        let version = share_files(&self.key_dir(key_id))?
            .into_iter()
            .filter(|(party, _)| party == party_id)
            .map(|(_, version)| version)
            .max()
            .ok_or_else(|| VaultError::NotFound {
                party_id: party_id.clone(),
                key_id: *key_id,
            })?;
        self.read_share(&self.lock(), party_id, key_id, version)
    }

    fn list(&self) -> Result<Vec<ShareMeta>, VaultError> {
        let state = self.lock();
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
                let record = self.read_share(&state, &party_id, &key_id, version)?;
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
        self.read_share(&self.lock(), party_id, key_id, version)
    }

    /// The token holds no per-share object (only KEKs): a version's data key exists
    /// only wrapped, in the version's file, and is deleted with it. Holds the token
    /// lock so a concurrent KEK rotation in this process does not rewrite the file.
    fn retire(&self, party_id: &PartyId, key_id: &KeyId, version: u32) -> Result<(), VaultError> {
        let _state = self.lock();
        remove_share_file(&self.key_dir(key_id), party_id, key_id, version)
    }

    fn put_identity(&self, party_id: &PartyId, secret: &[u8]) -> Result<(), VaultError> {
        let dir = self.dir.join(IDENTITY_DIR);
        create_dir(&dir)?;
        let name = format!("{party_id}{IDENTITY_SUFFIX}");
        if dir.join(&name).exists() {
            return Err(VaultError::IdentityExists(party_id.clone()));
        }
        let state = self.lock();
        let (sealed, wrapped_key) = self.seal_new(&state, &identity_aad(party_id), secret)?;
        let file = IdentityFile {
            format: FILE_FORMAT,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
            kek: state.kek.clone(),
            wrapped_key,
        };
        if !write_new(&dir, &name, &to_json(&file)?)? {
            return Err(VaultError::IdentityExists(party_id.clone()));
        }
        sync_dir(&self.dir)
    }

    fn get_identity(&self, party_id: &PartyId) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        let path = self
            .dir
            .join(IDENTITY_DIR)
            .join(format!("{party_id}{IDENTITY_SUFFIX}"));
        let Some(file) = read_json::<IdentityFile>(&path)? else {
            return Ok(None);
        };
        check_format(&path, file.format)?;
        let sealed = Sealed {
            nonce: file.nonce.clone(),
            ciphertext: file.ciphertext.clone(),
        };
        self.open_file(&self.lock(), &file, &sealed, &identity_aad(party_id))
            .map(Some)
    }
}

// ---------------------------------------------------------------------------
// Token operations
// ---------------------------------------------------------------------------

/// Generates a new token-resident, sensitive, non-extractable AES-256 KEK that can
/// only wrap and unwrap; returns its label.
fn generate_kek(session: &Session) -> Result<String, VaultError> {
    let mut id = [0u8; KEK_ID_LEN];
    rand::rng().fill(&mut id[..]);
    let label = format!("{KEK_LABEL_PREFIX}{}", hex::encode(id));
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Modifiable(false),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    session
        .generate_key(&Mechanism::AesKeyGen, &template)
        .map_err(hsm("C_GenerateKey (KEK)"))?;
    Ok(label)
}

/// The KEK labelled `label`, if the token holds exactly one.
fn find_kek(session: &Session, label: &str) -> Result<Option<ObjectHandle>, VaultError> {
    if !is_kek_label(label) {
        return Err(VaultError::Malformed(format!(
            "{label:?} is not a key-encryption key label"
        )));
    }
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Token(true),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(hsm("C_FindObjects"))?;
    match found.as_slice() {
        [] => Ok(None),
        [handle] => Ok(Some(*handle)),
        _ => Err(VaultError::Io(format!(
            "the token holds more than one key labelled {label}"
        ))),
    }
}

fn require_kek(session: &Session, label: &str) -> Result<ObjectHandle, VaultError> {
    find_kek(session, label)?.ok_or_else(|| {
        VaultError::Io(format!(
            "key-encryption key {label} is not in the token (wrong token, or destroyed)"
        ))
    })
}

fn destroy_kek(session: &Session, label: &str) -> Result<(), VaultError> {
    if let Some(handle) = find_kek(session, label)? {
        session
            .destroy_object(handle)
            .map_err(hsm("C_DestroyObject (KEK)"))?;
    }
    Ok(())
}

fn is_kek_label(label: &str) -> bool {
    label
        .strip_prefix(KEK_LABEL_PREFIX)
        .is_some_and(|id| id.len() == 2 * KEK_ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Template for a data key unwrapped into a session object.
fn data_key_template(sensitive: bool) -> [Attribute; 7] {
    [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(sensitive),
        Attribute::Extractable(true),
        Attribute::Encrypt(false),
    ]
}

/// Imports `data_key` as a short-lived session object and wraps it with `kek`.
fn wrap_data_key(
    session: &Session,
    kek: ObjectHandle,
    data_key: &[u8; DATA_KEY_LEN],
) -> Result<Vec<u8>, VaultError> {
    let mut template = data_key_template(true).to_vec();
    template.push(Attribute::Value(data_key.to_vec()));
    let imported = session.create_object(&template);
    for attribute in &mut template {
        if let Attribute::Value(value) = attribute {
            value.zeroize();
        }
    }
    let handle = imported.map_err(hsm("C_CreateObject (data key)"))?;
    let wrapped = session.wrap_key(&Mechanism::AesKeyWrapPad, kek, handle);
    destroy_session_key(session, handle)?;
    wrapped.map_err(hsm("C_WrapKey"))
}

/// Unwraps a data key under the KEK labelled `kek` and reads it out of the token.
fn unwrap_data_key(
    session: &Session,
    kek: &str,
    wrapped_hex: &str,
) -> Result<Zeroizing<[u8; DATA_KEY_LEN]>, VaultError> {
    let kek = require_kek(session, kek)?;
    let wrapped = decode_hex(wrapped_hex, "wrapped key")?;
    let handle = unwrap(session, kek, &wrapped, false)?;
    let attributes = session.get_attributes(handle, &[AttributeType::Value]);
    destroy_session_key(session, handle)?;
    let mut data_key = Zeroizing::new([0u8; DATA_KEY_LEN]);
    let mut found = false;
    for attribute in attributes.map_err(hsm("C_GetAttributeValue (data key)"))? {
        if let Attribute::Value(mut value) = attribute {
            if value.len() == DATA_KEY_LEN {
                data_key.copy_from_slice(&value);
                found = true;
            }
            value.zeroize();
        }
    }
    if !found {
        return Err(VaultError::Tampered);
    }
    Ok(data_key)
}

/// Unwraps into a session object; authentication failures are tampering. SoftHSM2
/// reports a failed RFC 5649 integrity check as `CKR_GENERAL_ERROR`, so that code
/// counts as tampering too when the session is otherwise healthy.
fn unwrap(
    session: &Session,
    kek: ObjectHandle,
    wrapped: &[u8],
    sensitive: bool,
) -> Result<ObjectHandle, VaultError> {
    session
        .unwrap_key(
            &Mechanism::AesKeyWrapPad,
            kek,
            wrapped,
            &data_key_template(sensitive),
        )
        .map_err(|e| match e {
            CkError::Pkcs11(
                RvError::WrappedKeyInvalid
                | RvError::WrappedKeyLenRange
                | RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::DataInvalid
                | RvError::DataLenRange,
                _,
            ) => VaultError::Tampered,
            CkError::Pkcs11(RvError::GeneralError, _) if session.get_session_info().is_ok() => {
                VaultError::Tampered
            }
            other => hsm("C_UnwrapKey")(other),
        })
}

fn destroy_session_key(session: &Session, handle: ObjectHandle) -> Result<(), VaultError> {
    session
        .destroy_object(handle)
        .map_err(hsm("C_DestroyObject (data key)"))
}

/// Re-wraps one file's data key under `new_kek` inside the token and replaces the
/// file with only its KEK label and wrapped key changed. Returns the old KEK label.
fn rewrap_file<F: WrappedDataKey>(
    session: &Session,
    path: &Path,
    new_kek: &str,
    new_handle: ObjectHandle,
) -> Result<String, VaultError> {
    let file: F = read_json(path)?
        .ok_or_else(|| VaultError::Io(format!("{} disappeared", path.display())))?;
    let old_kek = file.kek().to_owned();
    if old_kek == new_kek {
        return Ok(old_kek);
    }
    let old_handle = require_kek(session, &old_kek)?;
    let wrapped = decode_hex(file.wrapped_key(), "wrapped key")?;
    let handle = unwrap(session, old_handle, &wrapped, true)?;
    let rewrapped = session.wrap_key(&Mechanism::AesKeyWrapPad, new_handle, handle);
    destroy_session_key(session, handle)?;
    let rewrapped = rewrapped.map_err(hsm("C_WrapKey"))?;
    let file = file.rewrapped(new_kek.to_owned(), hex::encode(rewrapped));
    let dir = path
        .parent()
        .ok_or_else(|| VaultError::Io(format!("{} has no directory", path.display())))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| VaultError::Io(format!("{} has no file name", path.display())))?;
    replace_file(dir, name, &to_json(&file)?)?;
    Ok(old_kek)
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, VaultError> {
    serde_json::to_vec_pretty(value).map_err(|e| VaultError::Io(format!("encoding: {e}")))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, VaultError> {
    let Some(bytes) = read_limited(path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| VaultError::Malformed(format!("{}: {e}", path.display())))
}

fn read_vault_file(dir: &Path) -> Result<Option<VaultFile>, VaultError> {
    let path = dir.join(VAULT_FILE);
    let Some(file) = read_json::<VaultFile>(&path)? else {
        return Ok(None);
    };
    if file.format != VAULT_FORMAT || file.version != VAULT_VERSION {
        return Err(VaultError::Malformed(format!(
            "{}: unsupported format {:?} version {} (not a PKCS#11 vault?)",
            path.display(),
            file.format,
            file.version
        )));
    }
    Ok(Some(file))
}

fn check_format(path: &Path, format: u32) -> Result<(), VaultError> {
    if format == FILE_FORMAT {
        Ok(())
    } else {
        Err(VaultError::Malformed(format!(
            "{}: unsupported format {format}",
            path.display()
        )))
    }
}

/// Atomically replaces `dir/name`: a synced temporary file renamed over it, then the
/// directory synced.
fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), VaultError> {
    let mut suffix = [0u8; 8];
    rand::rng().fill(&mut suffix[..]);
    let temp = dir.join(format!(".{name}.tmp-{}", hex::encode(suffix)));
    let io = |path: &Path, e: io::Error| VaultError::Io(format!("{}: {e}", path.display()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&temp, dir.join(name))) {
        // Best effort: the temporary file is useless now.
        let _ = fs::remove_file(&temp);
        return Err(io(&temp, e));
    }
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kek_labels_are_recognised() {
        assert!(is_kek_label("mpc-kek-00112233445566778899aabbccddeeff"));
        assert!(!is_kek_label("mpc-kek-0011"));
        assert!(!is_kek_label("other-00112233445566778899aabbccddeeff"));
        assert!(!is_kek_label("mpc-kek-00112233445566778899aabbccddeefg"));
    }
}
