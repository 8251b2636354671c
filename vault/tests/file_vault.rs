//! `FileVault`: the vault contract, plus what only a file vault can get wrong
//! (passphrases, edited or moved files, permissions), and a real DKLs23 share
//! surviving a round trip through it.

mod vault_contract;

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};

use mpc_events::{KeyPolicy, MessageHash};
use mpc_vault::{FileVault, ShareVault, VaultError};
use vault_contract::{assert_same, key_id, party, record};

const PASSPHRASE: &[u8] = b"correct horse battery staple";

#[test]
fn file_vault_meets_the_vault_contract() {
    let root = tempfile::tempdir().unwrap();
    let next = Cell::new(0);
    vault_contract::vault_contract(|| {
        next.set(next.get() + 1);
        let dir = root.path().join(format!("vault-{}", next.get()));
        Box::new(FileVault::create(dir, PASSPHRASE).unwrap())
    });
}

fn share_path(dir: &Path, key: &mpc_events::KeyId, who: &str, version: u32) -> PathBuf {
    dir.join(key.to_string())
        .join(format!("{who}.v{version}.share"))
}

#[test]
fn shares_survive_reopening_with_the_right_passphrase_only() {
    let dir = tempfile::tempdir().unwrap();
    let stored = record(&party("device"), key_id(), 1, 5);
    FileVault::create(dir.path(), PASSPHRASE)
        .unwrap()
        .put(&stored)
        .unwrap();

    let reopened = FileVault::open(dir.path(), PASSPHRASE).unwrap();
    assert_same(
        &reopened.get(&stored.party_id, &stored.key_id).unwrap(),
        &stored,
    );

    assert!(matches!(
        FileVault::open(dir.path(), b"wrong horse"),
        Err(VaultError::WrongPassphrase)
    ));
    assert!(FileVault::create(dir.path(), PASSPHRASE).is_err());
}

/// Rewrites one JSON field of a share file.
fn edit_share(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    edit(&mut value);
    fs::write(path, serde_json::to_vec(&value).unwrap()).unwrap();
}

#[test]
fn a_flipped_ciphertext_bit_or_edited_metadata_is_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let vault = FileVault::create(dir.path(), PASSPHRASE).unwrap();
    let stored = record(&party("device"), key_id(), 1, 5);
    vault.put(&stored).unwrap();
    let path = share_path(dir.path(), &stored.key_id, "device", 1);
    let original = fs::read(&path).unwrap();

    edit_share(&path, |v| {
        let mut bytes = hex::decode(v["ciphertext"].as_str().unwrap()).unwrap();
        bytes[3] ^= 0x04;
        v["ciphertext"] = hex::encode(bytes).into();
    });
    assert!(matches!(
        vault.get(&stored.party_id, &stored.key_id),
        Err(VaultError::Tampered)
    ));

    for (field, value) in [
        ("index", serde_json::json!(1)),
        ("threshold", serde_json::json!(3)),
        ("engine", serde_json::json!("other")),
        ("roster", serde_json::json!(null)),
        ("roster", serde_json::json!([])),
        ("policy", serde_json::json!(null)),
        ("policy", serde_json::json!("any-request")),
    ] {
        fs::write(&path, &original).unwrap();
        edit_share(&path, |v| v[field] = value);
        assert!(
            matches!(
                vault.get(&stored.party_id, &stored.key_id),
                Err(VaultError::Tampered)
            ),
            "edited {field} accepted"
        );
    }
    // A pinned holder's identity swapped for the coordinator's choice.
    fs::write(&path, &original).unwrap();
    edit_share(&path, |v| {
        v["roster"][1]["signing"] = hex::encode([0x42u8; 32]).into()
    });
    assert!(matches!(
        vault.get(&stored.party_id, &stored.key_id),
        Err(VaultError::Tampered)
    ));
    fs::write(&path, &original).unwrap();
    assert_same(
        &vault.get(&stored.party_id, &stored.key_id).unwrap(),
        &stored,
    );
}

#[test]
fn a_share_file_moved_to_another_party_key_or_version_is_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let vault = FileVault::create(dir.path(), PASSPHRASE).unwrap();
    let key = key_id();
    let stored = record(&party("device"), key, 1, 5);
    vault.put(&stored).unwrap();
    let path = share_path(dir.path(), &key, "device", 1);

    let other_party = share_path(dir.path(), &key, "server", 1);
    fs::copy(&path, &other_party).unwrap();
    assert!(matches!(
        vault.get(&party("server"), &key),
        Err(VaultError::Tampered)
    ));

    let other_version = share_path(dir.path(), &key, "device", 2);
    fs::copy(&path, &other_version).unwrap();
    assert!(matches!(
        vault.get(&party("device"), &key),
        Err(VaultError::Tampered)
    ));
    fs::remove_file(&other_version).unwrap();

    let other_key = key_id();
    fs::create_dir(dir.path().join(other_key.to_string())).unwrap();
    fs::copy(&path, share_path(dir.path(), &other_key, "device", 1)).unwrap();
    assert!(matches!(
        vault.get(&party("device"), &other_key),
        Err(VaultError::Tampered)
    ));

    // The original still reads.
    assert_same(&vault.get(&party("device"), &key).unwrap(), &stored);
}

#[test]
fn malformed_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let vault = FileVault::create(dir.path(), PASSPHRASE).unwrap();
    let stored = record(&party("device"), key_id(), 1, 5);
    vault.put(&stored).unwrap();
    let path = share_path(dir.path(), &stored.key_id, "device", 1);
    for garbage in [&b""[..], b"{", b"[1,2,3]", b"{\"format\":1}", &[0xff; 64]] {
        fs::write(&path, garbage).unwrap();
        assert!(matches!(
            vault.get(&stored.party_id, &stored.key_id),
            Err(VaultError::Malformed(_))
        ));
    }
    fs::write(dir.path().join("vault.json"), b"{\"format\":").unwrap();
    assert!(matches!(
        FileVault::open(dir.path(), PASSPHRASE),
        Err(VaultError::Malformed(_))
    ));
}

#[cfg(unix)]
#[test]
fn vault_files_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let vault = FileVault::create(dir.path(), PASSPHRASE).unwrap();
    let stored = record(&party("device"), key_id(), 1, 5);
    vault.put(&stored).unwrap();
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir.path().join("vault.json")), 0o600);
    assert_eq!(
        mode(&share_path(dir.path(), &stored.key_id, "device", 1)),
        0o600
    );
    assert_eq!(mode(&dir.path().join(stored.key_id.to_string())), 0o700);
    // No temporary files are left behind.
    let names: Vec<String> = fs::read_dir(dir.path().join(stored.key_id.to_string()))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["device.v1.share".to_owned()]);
}

#[test]
fn a_dkls_share_signs_after_a_round_trip_through_the_vault() {
    let shares = mpc_engine::testing::keygen(2, 2);
    let dir = tempfile::tempdir().unwrap();
    let vault = FileVault::create(dir.path(), PASSPHRASE).unwrap();
    let key = key_id();
    for (share, who) in shares.into_iter().zip(["device", "server"]) {
        vault
            .put(&mpc_vault::ShareRecord {
                party_id: party(who),
                key_id: key,
                version: 1,
                share,
                roster: None,
                policy: KeyPolicy::AnyRequest,
            })
            .unwrap();
    }
    let vault = FileVault::open(dir.path(), PASSPHRASE).unwrap();
    let restored: Vec<_> = ["device", "server"]
        .iter()
        .map(|who| vault.get(&party(who), &key).unwrap().share)
        .collect();
    let hash = MessageHash::from_bytes([0x5a; 32]);
    let signature = mpc_engine::testing::sign(&restored, &[1, 2], hash);
    assert!(mpc_crypto::verify_signature(
        &restored[0].public_key,
        &hash,
        &signature
    ));
}

#[test]
fn an_identity_file_moved_to_another_party_is_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let vault = FileVault::create(dir.path(), PASSPHRASE).unwrap();
    let device = party("device");
    let server = party("server");
    vault.put_identity(&device, &[3u8; 64]).unwrap();
    let identities = dir.path().join("identity");
    std::fs::copy(
        identities.join("device.identity"),
        identities.join("server.identity"),
    )
    .unwrap();
    assert!(matches!(
        vault.get_identity(&server),
        Err(VaultError::Tampered)
    ));
    let reopened = FileVault::open(dir.path(), PASSPHRASE).unwrap();
    assert_eq!(
        reopened.get_identity(&device).unwrap().unwrap().as_slice(),
        &[3u8; 64]
    );
}
