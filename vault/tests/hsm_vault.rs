//! `Pkcs11Vault` against a real SoftHSM2 token: the vault contract, tampering
//! (ciphertext, wrapped data key, files moved to another party, key or version), PIN
//! and configuration errors, the KEK's non-extractability, and KEK rotation.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once, when the module is initialized, and PKCS#11
//! modules are initialized once per process; so every case runs inside one test, in
//! sequence, on tokens of its own in one temporary token directory that is removed at
//! the end. The module comes from `MPC_TEST_PKCS11_MODULE` (default
//! `/usr/lib/softhsm/libsofthsm2.so`); `bash scripts/ensure-softhsm.sh` installs it.

mod vault_contract;

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use mpc_events::KeyId;
use mpc_vault::{HsmError, Pkcs11Vault, ShareVault, VaultError};
use vault_contract::{assert_same, key_id, party, record};

const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const SO_PIN: &str = "so-pin-1234";
const PIN: &str = "user-pin-5678";

fn module() -> PathBuf {
    let module = std::env::var_os("MPC_TEST_PKCS11_MODULE")
        .map_or_else(|| PathBuf::from(DEFAULT_MODULE), PathBuf::from);
    assert!(
        module.is_file(),
        "PKCS#11 module {} not found: SoftHSM2 is required for these tests; run \
         `bash scripts/ensure-softhsm.sh` (or set MPC_TEST_PKCS11_MODULE)",
        module.display()
    );
    module
}

/// The SoftHSM2 module, configured to keep its tokens in `tokens`.
struct Hsm {
    module: PathBuf,
    context: Pkcs11,
}

impl Hsm {
    fn start(tokens: &Path) -> Self {
        let module = module();
        let conf = tokens.join("softhsm2.conf");
        let store = tokens.join("tokens");
        fs::create_dir(&store).unwrap();
        fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                store.display()
            ),
        )
        .unwrap();
        // SAFETY: this is the only test in this binary and it runs on one thread; no
        // other thread reads or writes the environment.
        unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
        let context = Pkcs11::new(&module).unwrap();
        match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => panic!("C_Initialize: {e}"),
        }
        Self { module, context }
    }

    fn slot(&self, label: &str) -> Slot {
        self.context
            .get_slots_with_initialized_token()
            .unwrap()
            .into_iter()
            .find(|slot| self.context.get_token_info(*slot).unwrap().label() == label)
            .unwrap_or_else(|| panic!("no token {label}"))
    }

    /// Initializes a new token on a free slot, with [`SO_PIN`] and user [`PIN`].
    fn token(&self, label: &str) -> String {
        let free = self
            .context
            .get_all_slots()
            .unwrap()
            .into_iter()
            .find(|slot| {
                !self
                    .context
                    .get_token_info(*slot)
                    .unwrap()
                    .token_initialized()
            })
            .expect("SoftHSM2 offers a free slot");
        self.context
            .init_token(free, &AuthPin::from(SO_PIN), label)
            .unwrap();
        let session = self.context.open_rw_session(self.slot(label)).unwrap();
        session
            .login(UserType::So, Some(&AuthPin::from(SO_PIN)))
            .unwrap();
        session.init_pin(&AuthPin::from(PIN)).unwrap();
        session.logout().unwrap();
        label.to_owned()
    }

    /// A user session on `token`, alongside the vault's.
    fn session(&self, token: &str) -> Session {
        let session = self.context.open_rw_session(self.slot(token)).unwrap();
        match session.login(UserType::User, Some(&AuthPin::from(PIN))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => panic!("login: {e}"),
        }
        session
    }

    fn vault(&self, token: &str, dir: &Path) -> Pkcs11Vault {
        Pkcs11Vault::open(&self.module, token, PIN, dir).unwrap()
    }
}

fn find_label(session: &Session, label: &str) -> usize {
    session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .unwrap()
        .len()
}

fn share_path(dir: &Path, key: &KeyId, who: &str, version: u32) -> PathBuf {
    dir.join(key.to_string())
        .join(format!("{who}.v{version}.share"))
}

fn read_value(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// Rewrites one JSON field of a vault file.
fn edit(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value = read_value(path);
    edit(&mut value);
    fs::write(path, serde_json::to_vec(&value).unwrap()).unwrap();
}

fn flip_hex(value: &mut serde_json::Value, field: &str, at: usize) {
    let mut bytes = hex::decode(value[field].as_str().unwrap()).unwrap();
    bytes[at] ^= 0x10;
    value[field] = hex::encode(bytes).into();
}

fn tampered<T: std::fmt::Debug>(result: Result<T, VaultError>) -> bool {
    matches!(result, Err(VaultError::Tampered))
}

/// One scenario, run on its own tokens and directory.
type Case = fn(&Hsm, &Path);

/// A change to a vault file's JSON.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn pkcs11_vault_against_softhsm2() {
    let root = tempfile::tempdir().unwrap();
    let hsm = Hsm::start(root.path());
    let cases: [(&str, Case); 6] = [
        ("meets the vault contract", meets_the_vault_contract),
        (
            "opens with the right PIN only; clear configuration errors",
            opens_with_the_right_pin_only,
        ),
        (
            "edited ciphertext, metadata or wrapped key is tampering",
            edited_files_are_tampering,
        ),
        (
            "files moved to another party, key or version are tampering",
            moved_files_are_tampering,
        ),
        (
            "the KEK is sensitive and never extractable",
            the_kek_is_never_extractable,
        ),
        (
            "KEK rotation re-wraps data keys and destroys the old KEK",
            kek_rotation_rewraps_every_data_key,
        ),
    ];
    for (number, (name, case)) in cases.into_iter().enumerate() {
        let dir = root.path().join(format!("case-{number}"));
        fs::create_dir(&dir).unwrap();
        let started = Instant::now();
        case(&hsm, &dir);
        eprintln!("ok: {name} ({:.2?})", started.elapsed());
    }
}

fn meets_the_vault_contract(hsm: &Hsm, dir: &Path) {
    let token = hsm.token("contract");
    let next = Cell::new(0);
    vault_contract::vault_contract(|| {
        next.set(next.get() + 1);
        Box::new(hsm.vault(&token, &dir.join(format!("vault-{}", next.get()))))
    });
}

fn opens_with_the_right_pin_only(hsm: &Hsm, dir: &Path) {
    let token = hsm.token("pin");
    let stored = record(&party("server"), key_id(), 1, 5);
    let kek = {
        let vault = hsm.vault(&token, dir);
        vault.put(&stored).unwrap();
        vault.kek_label()
    };
    // The vault's session is closed: nothing is logged in to this token now.
    match Pkcs11Vault::open(&hsm.module, &token, "not-the-pin", dir) {
        Err(error @ HsmError::WrongPin(_)) => {
            assert_eq!(error.to_string(), "wrong user PIN for token \"pin\"");
        }
        other => panic!("expected WrongPin, got {other:?}"),
    }
    let reopened = hsm.vault(&token, dir);
    assert_eq!(reopened.kek_label(), kek);
    assert_same(
        &reopened.get(&stored.party_id, &stored.key_id).unwrap(),
        &stored,
    );

    assert!(matches!(
        Pkcs11Vault::open(&hsm.module, "no-such-token", PIN, dir),
        Err(HsmError::TokenNotFound(label)) if label == "no-such-token"
    ));
    let missing = dir.join("no-such-module.so");
    match Pkcs11Vault::open(&missing, &token, PIN, dir) {
        Err(error @ HsmError::Module { .. }) => {
            assert!(error.to_string().contains("no-such-module.so"), "{error}");
        }
        other => panic!("expected a module error, got {other:?}"),
    }
    // A vault whose KEK is not in the token (another token's vault) is refused.
    let other = hsm.token("other");
    assert!(matches!(
        Pkcs11Vault::open(&hsm.module, &other, PIN, dir),
        Err(HsmError::KekMissing { kek: missing, .. }) if missing == kek
    ));
}

fn edited_files_are_tampering(hsm: &Hsm, dir: &Path) {
    let token = hsm.token("tamper");
    let vault = hsm.vault(&token, dir);
    let stored = record(&party("device"), key_id(), 1, 5);
    let neighbour = record(&party("server"), stored.key_id, 1, 6);
    vault.put(&stored).unwrap();
    vault.put(&neighbour).unwrap();
    let path = share_path(dir, &stored.key_id, "device", 1);
    let original = fs::read(&path).unwrap();
    let neighbour_wrapped =
        read_value(&share_path(dir, &stored.key_id, "server", 1))["wrapped_key"]
            .as_str()
            .unwrap()
            .to_owned();

    let edits: [(&str, Edit); 10] = [
        ("ciphertext", Box::new(|v| flip_hex(v, "ciphertext", 3))),
        ("nonce", Box::new(|v| flip_hex(v, "nonce", 0))),
        ("wrapped key", Box::new(|v| flip_hex(v, "wrapped_key", 9))),
        (
            "wrapped key of another share",
            Box::new(move |v| v["wrapped_key"] = neighbour_wrapped.clone().into()),
        ),
        ("index", Box::new(|v| v["index"] = 1.into())),
        ("threshold", Box::new(|v| v["threshold"] = 3.into())),
        ("engine", Box::new(|v| v["engine"] = "other".into())),
        (
            "roster dropped",
            Box::new(|v| v["roster"] = serde_json::Value::Null),
        ),
        (
            "approved-only gate dropped",
            Box::new(|v| v["policy"] = serde_json::Value::Null),
        ),
        (
            "roster holder's key",
            Box::new(|v| v["roster"][1]["signing"] = hex::encode([0x42u8; 32]).into()),
        ),
    ];
    for (what, change) in edits {
        fs::write(&path, &original).unwrap();
        edit(&path, change);
        let got = vault.get(&stored.party_id, &stored.key_id);
        assert!(
            matches!(got, Err(VaultError::Tampered)),
            "edited {what}: {got:?}"
        );
    }
    fs::write(&path, &original).unwrap();
    assert_same(
        &vault.get(&stored.party_id, &stored.key_id).unwrap(),
        &stored,
    );
    assert_same(
        &vault.get(&neighbour.party_id, &neighbour.key_id).unwrap(),
        &neighbour,
    );

    for garbage in [&b""[..], b"{", b"{\"format\":1}", &[0xff; 64]] {
        fs::write(&path, garbage).unwrap();
        assert!(matches!(
            vault.get(&stored.party_id, &stored.key_id),
            Err(VaultError::Malformed(_))
        ));
    }
}

fn moved_files_are_tampering(hsm: &Hsm, dir: &Path) {
    let token = hsm.token("moved");
    let vault = hsm.vault(&token, dir);
    let key = key_id();
    let stored = record(&party("device"), key, 1, 5);
    vault.put(&stored).unwrap();
    let path = share_path(dir, &key, "device", 1);

    fs::copy(&path, share_path(dir, &key, "server", 1)).unwrap();
    assert!(tampered(vault.get(&party("server"), &key)));

    let other_version = share_path(dir, &key, "device", 2);
    fs::copy(&path, &other_version).unwrap();
    assert!(tampered(vault.get(&party("device"), &key)));
    fs::remove_file(&other_version).unwrap();

    let other_key = key_id();
    fs::create_dir(dir.join(other_key.to_string())).unwrap();
    fs::copy(&path, share_path(dir, &other_key, "device", 1)).unwrap();
    assert!(tampered(vault.get(&party("device"), &other_key)));

    assert_same(&vault.get(&party("device"), &key).unwrap(), &stored);

    vault.put_identity(&party("device"), &[3u8; 64]).unwrap();
    let identities = dir.join("identity");
    fs::copy(
        identities.join("device.identity"),
        identities.join("server.identity"),
    )
    .unwrap();
    assert!(tampered(vault.get_identity(&party("server"))));
    assert_eq!(
        vault
            .get_identity(&party("device"))
            .unwrap()
            .unwrap()
            .as_slice(),
        &[3u8; 64]
    );
}

fn the_kek_is_never_extractable(hsm: &Hsm, dir: &Path) {
    let token = hsm.token("extract");
    let vault = hsm.vault(&token, dir);
    let session = hsm.session(&token);
    let [kek] = session
        .find_objects(&[Attribute::Label(vault.kek_label().into_bytes())])
        .unwrap()[..]
    else {
        panic!("expected exactly one KEK");
    };
    let attributes = session
        .get_attributes(
            kek,
            &[
                AttributeType::Value,
                AttributeType::Token,
                AttributeType::Sensitive,
                AttributeType::AlwaysSensitive,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
                AttributeType::ValueLen,
                AttributeType::KeyType,
            ],
        )
        .unwrap();
    assert!(
        !attributes.iter().any(|a| matches!(a, Attribute::Value(_))),
        "the KEK's value was readable"
    );
    for expected in [
        Attribute::Token(true),
        Attribute::Sensitive(true),
        Attribute::AlwaysSensitive(true),
        Attribute::Extractable(false),
        Attribute::NeverExtractable(true),
        Attribute::ValueLen(32.into()),
        Attribute::KeyType(KeyType::AES),
    ] {
        assert!(attributes.contains(&expected), "missing {expected:?}");
    }
    // Reading CKA_VALUE directly is refused by the token.
    assert!(matches!(
        session
            .get_attribute_info(kek, &[AttributeType::Value])
            .unwrap()[..],
        [AttributeInfo::Sensitive]
    ));
    // Nor can it be wrapped out under another key, or made extractable.
    let wrapping = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::ValueLen(32.into()),
                Attribute::Token(false),
                Attribute::Wrap(true),
            ],
        )
        .unwrap();
    assert!(matches!(
        session.wrap_key(&Mechanism::AesKeyWrapPad, wrapping, kek),
        Err(CkError::Pkcs11(RvError::KeyUnextractable, _))
    ));
    assert!(
        session
            .update_attributes(kek, &[Attribute::Extractable(true)])
            .is_err()
    );
    session.destroy_object(wrapping).unwrap();
    // The token holds the KEK and nothing else: data keys never stay in it.
    vault
        .put(&record(&party("device"), key_id(), 1, 1))
        .unwrap();
    assert_eq!(
        session
            .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
            .unwrap(),
        vec![kek]
    );
}

fn kek_rotation_rewraps_every_data_key(hsm: &Hsm, dir: &Path) {
    let token = hsm.token("rotate");
    let vault = hsm.vault(&token, dir);
    let session = hsm.session(&token);
    let (k1, k2) = (key_id(), key_id());
    let records = [
        record(&party("device"), k1, 1, 1),
        record(&party("device"), k1, 2, 2),
        record(&party("server"), k1, 1, 3),
        record(&party("device"), k2, 1, 4),
    ];
    for stored in &records {
        vault.put(stored).unwrap();
    }
    vault.put_identity(&party("device"), &[7u8; 64]).unwrap();
    let paths: Vec<PathBuf> = records
        .iter()
        .map(|r| share_path(dir, &r.key_id, r.party_id.as_str(), r.version))
        .chain([dir.join("identity").join("device.identity")])
        .collect();
    let before: Vec<serde_json::Value> = paths.iter().map(|p| read_value(p)).collect();

    let old_kek = vault.kek_label();
    let new_kek = vault.rotate_kek().unwrap();
    assert_ne!(new_kek, old_kek);
    assert_eq!(vault.kek_label(), new_kek);
    assert_eq!(find_label(&session, &old_kek), 0, "the old KEK survived");
    assert_eq!(find_label(&session, &new_kek), 1);

    for (path, before) in paths.iter().zip(&before) {
        let mut after = read_value(path);
        assert_eq!(after["kek"], new_kek.as_str());
        assert_ne!(after["wrapped_key"], before["wrapped_key"]);
        // Only the KEK label and the wrapped data key changed; the share ciphertext,
        // its nonce and metadata are untouched.
        after["kek"] = before["kek"].clone();
        after["wrapped_key"] = before["wrapped_key"].clone();
        assert_eq!(&after, before, "{} changed", path.display());
    }
    let check = |vault: &Pkcs11Vault| {
        assert_same(&vault.get(&party("device"), &k1).unwrap(), &records[1]);
        assert_same(&vault.get(&party("server"), &k1).unwrap(), &records[2]);
        assert_same(&vault.get(&party("device"), &k2).unwrap(), &records[3]);
        assert_eq!(
            vault
                .get_identity(&party("device"))
                .unwrap()
                .unwrap()
                .as_slice(),
            &[7u8; 64]
        );
    };
    check(&vault);
    assert_eq!(vault.list().unwrap().len(), 3);
    // Older versions were re-wrapped too: moving v2 away exposes v1, which decrypts.
    let v2 = share_path(dir, &k1, "device", 2);
    let parked = dir.join("parked-v2");
    fs::rename(&v2, &parked).unwrap();
    assert_same(&vault.get(&party("device"), &k1).unwrap(), &records[0]);
    fs::rename(&parked, &v2).unwrap();

    // New shares use the new KEK; a reopened vault finds it; rotating again works.
    let later = record(&party("server"), k2, 1, 9);
    vault.put(&later).unwrap();
    assert_eq!(
        read_value(&share_path(dir, &k2, "server", 1))["kek"],
        new_kek.as_str()
    );
    drop(vault);
    let reopened = hsm.vault(&token, dir);
    assert_eq!(reopened.kek_label(), new_kek);
    check(&reopened);
    let newest = reopened.rotate_kek().unwrap();
    assert_eq!(find_label(&session, &new_kek), 0);
    assert_eq!(find_label(&session, &newest), 1);
    check(&reopened);
    assert_same(&reopened.get(&party("server"), &k2).unwrap(), &later);
}
