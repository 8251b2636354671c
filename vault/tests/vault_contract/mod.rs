//! The share-vault contract: behaviour every [`ShareVault`] adapter must show.
//!
//! An adapter's tests call [`vault_contract`] with a factory of fresh, empty
//! vaults (include this module with `#[path = ".../vault_contract/mod.rs"] mod
//! vault_contract;` from another crate). Tampering checks depend on how an
//! adapter stores shares and live with the adapter's own tests.

use mpc_engine::{KeyShare, PartyIndex};
use mpc_events::{IdentityKey, KeyId, KeyPolicy, Participant, PartyId, PublicKey, SessionId};
use mpc_vault::{ShareRecord, ShareVault, VaultError};
use zeroize::Zeroizing;

pub fn party(name: &str) -> PartyId {
    PartyId::parse(name).unwrap()
}

pub fn key_id() -> KeyId {
    KeyId::of_keygen(SessionId::new())
}

/// A share with recognisable content; the vault never interprets it. Odd fills
/// make shares of `approved-only` keys.
pub fn record(party_id: &PartyId, key_id: KeyId, version: u32, fill: u8) -> ShareRecord {
    let mut public_key = [fill; 33];
    public_key[0] = 0x02 | (fill & 1);
    ShareRecord {
        party_id: party_id.clone(),
        key_id,
        version,
        share: KeyShare {
            engine: "test-engine".into(),
            public_key: PublicKey::from_slice(&public_key).unwrap(),
            index: PartyIndex::new(1 + fill % 3).unwrap(),
            threshold: 2,
            parties: 3,
            secret: Zeroizing::new(vec![fill; 100 + usize::from(fill)]),
        },
        roster: Some(roster(fill)),
        policy: if fill % 2 == 1 {
            KeyPolicy::ApprovedOnly
        } else {
            KeyPolicy::AnyRequest
        },
    }
}

/// Three recognisable holders.
pub fn roster(fill: u8) -> Vec<Participant> {
    ["device", "server", "recovery"]
        .iter()
        .zip(0u8..)
        .map(|(name, i)| Participant {
            party_id: party(name),
            identity: IdentityKey::new(&[fill ^ i; 32], &[fill.wrapping_add(i); 32]).unwrap(),
        })
        .collect()
}

pub fn assert_same(got: &ShareRecord, want: &ShareRecord) {
    assert_eq!(got.party_id, want.party_id);
    assert_eq!(got.key_id, want.key_id);
    assert_eq!(got.version, want.version);
    let (g, w) = (&got.share, &want.share);
    assert_eq!(g.engine, w.engine);
    assert_eq!(g.public_key, w.public_key);
    assert_eq!(g.index, w.index);
    assert_eq!((g.threshold, g.parties), (w.threshold, w.parties));
    assert_eq!(g.secret.as_slice(), w.secret.as_slice());
    assert_eq!(got.roster, want.roster);
    assert_eq!(got.policy, want.policy);
}

/// Runs every contract check, each on a fresh vault from `make`.
pub fn vault_contract(make: impl Fn() -> Box<dyn ShareVault>) {
    a_stored_share_comes_back_unchanged(make());
    an_existing_version_is_never_overwritten(make());
    get_returns_the_newest_version(make());
    shares_are_kept_apart_by_party_and_key(make());
    a_missing_share_is_not_found(make());
    list_shows_the_newest_version_of_each_share(make());
    an_identity_is_stored_once_and_kept_per_party(make());
    every_stored_version_can_be_read(make());
    a_retired_version_is_gone(make());
    retiring_the_newest_version_falls_back_to_the_previous(make());
    a_share_stored_without_a_roster_comes_back_without_one(make());
}

fn a_stored_share_comes_back_unchanged(vault: Box<dyn ShareVault>) {
    let stored = record(&party("device"), key_id(), 1, 7);
    let meta = vault.put(&stored).unwrap();
    assert_eq!(meta.party_id, stored.party_id);
    assert_eq!(meta.key_id, stored.key_id);
    assert_eq!(meta.version, 1);
    assert_eq!(meta.engine, stored.share.engine);
    assert_eq!(meta.public_key, stored.share.public_key);
    assert_same(
        &vault.get(&stored.party_id, &stored.key_id).unwrap(),
        &stored,
    );
}

fn an_existing_version_is_never_overwritten(vault: Box<dyn ShareVault>) {
    let first = record(&party("server"), key_id(), 1, 1);
    vault.put(&first).unwrap();
    let second = record(&first.party_id, first.key_id, 1, 2);
    assert!(matches!(
        vault.put(&second),
        Err(VaultError::AlreadyStored { version: 1, .. })
    ));
    assert_same(&vault.get(&first.party_id, &first.key_id).unwrap(), &first);
}

fn get_returns_the_newest_version(vault: Box<dyn ShareVault>) {
    let who = party("recovery");
    let key = key_id();
    // Stored out of order: the highest version wins, not the latest write.
    let v2 = record(&who, key, 2, 2);
    let v10 = record(&who, key, 10, 10);
    let v1 = record(&who, key, 1, 1);
    for stored in [&v2, &v10, &v1] {
        vault.put(stored).unwrap();
    }
    assert_same(&vault.get(&who, &key).unwrap(), &v10);
}

fn shares_are_kept_apart_by_party_and_key(vault: Box<dyn ShareVault>) {
    let (a, b) = (party("approver-1"), party("approver-2"));
    let (k1, k2) = (key_id(), key_id());
    let records = [
        record(&a, k1, 1, 11),
        record(&b, k1, 1, 12),
        record(&a, k2, 1, 13),
    ];
    for stored in &records {
        vault.put(stored).unwrap();
    }
    for stored in &records {
        assert_same(
            &vault.get(&stored.party_id, &stored.key_id).unwrap(),
            stored,
        );
    }
    assert!(matches!(
        vault.get(&b, &k2),
        Err(VaultError::NotFound { .. })
    ));
}

fn a_missing_share_is_not_found(vault: Box<dyn ShareVault>) {
    let (who, key) = (party("nobody"), key_id());
    match vault.get(&who, &key) {
        Err(VaultError::NotFound { party_id, key_id }) => {
            assert_eq!((party_id, key_id), (who, key));
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(vault.list().unwrap().is_empty());
}

fn list_shows_the_newest_version_of_each_share(vault: Box<dyn ShareVault>) {
    let (a, b) = (party("device"), party("server"));
    let key = key_id();
    for stored in [
        record(&a, key, 1, 1),
        record(&a, key, 2, 2),
        record(&b, key, 1, 3),
    ] {
        vault.put(&stored).unwrap();
    }
    let mut listed: Vec<(PartyId, u32)> = vault
        .list()
        .unwrap()
        .into_iter()
        .map(|meta| {
            assert_eq!(meta.key_id, key);
            (meta.party_id, meta.version)
        })
        .collect();
    listed.sort();
    assert_eq!(listed, vec![(a, 2), (b, 1)]);
}

fn an_identity_is_stored_once_and_kept_per_party(vault: Box<dyn ShareVault>) {
    let device = party("device");
    assert!(vault.get_identity(&device).unwrap().is_none());
    vault.put_identity(&device, &[9u8; 64]).unwrap();
    assert_eq!(
        vault.get_identity(&device).unwrap().unwrap().as_slice(),
        &[9u8; 64]
    );
    assert!(matches!(
        vault.put_identity(&device, &[1u8; 64]),
        Err(VaultError::IdentityExists(p)) if p == device
    ));
    assert_eq!(
        vault.get_identity(&device).unwrap().unwrap().as_slice(),
        &[9u8; 64],
        "an identity was replaced"
    );
    assert!(vault.get_identity(&party("server")).unwrap().is_none());
}

fn every_stored_version_can_be_read(vault: Box<dyn ShareVault>) {
    let who = party("device");
    let key = key_id();
    let versions = [record(&who, key, 1, 1), record(&who, key, 2, 2)];
    for stored in &versions {
        vault.put(stored).unwrap();
    }
    for stored in &versions {
        assert_same(
            &vault.get_version(&who, &key, stored.version).unwrap(),
            stored,
        );
    }
    for (who, key, version) in [
        (&who, key, 3),
        (&who, key, 0),
        (&party("server"), key, 1),
        (&who, key_id(), 1),
    ] {
        assert!(
            matches!(
                vault.get_version(who, &key, version),
                Err(VaultError::NotFound { .. })
            ),
            "{who} {key} v{version} found"
        );
    }
}

fn a_retired_version_is_gone(vault: Box<dyn ShareVault>) {
    let (who, other) = (party("server"), party("device"));
    let key = key_id();
    let (v1, v2, others) = (
        record(&who, key, 1, 1),
        record(&who, key, 2, 2),
        record(&other, key, 1, 3),
    );
    for stored in [&v1, &v2, &others] {
        vault.put(stored).unwrap();
    }
    vault.retire(&who, &key, 1).unwrap();
    assert!(matches!(
        vault.get_version(&who, &key, 1),
        Err(VaultError::NotFound { .. })
    ));
    assert_same(&vault.get(&who, &key).unwrap(), &v2);
    assert_same(&vault.get_version(&who, &key, 2).unwrap(), &v2);
    assert_same(&vault.get(&other, &key).unwrap(), &others);
    // Retiring twice, or a version never stored, is NotFound and changes nothing.
    for (who, key, version) in [(&who, key, 1), (&who, key, 7), (&other, key_id(), 1)] {
        assert!(
            matches!(
                vault.retire(who, &key, version),
                Err(VaultError::NotFound { .. })
            ),
            "retired {who} {key} v{version}"
        );
    }
    assert_same(&vault.get(&who, &key).unwrap(), &v2);
    assert_same(&vault.get(&other, &key).unwrap(), &others);
}

fn retiring_the_newest_version_falls_back_to_the_previous(vault: Box<dyn ShareVault>) {
    let who = party("recovery");
    let key = key_id();
    let (v1, v2) = (record(&who, key, 1, 1), record(&who, key, 2, 2));
    vault.put(&v1).unwrap();
    vault.put(&v2).unwrap();
    vault.retire(&who, &key, 2).unwrap();
    assert_same(&vault.get(&who, &key).unwrap(), &v1);
    let listed: Vec<(PartyId, u32)> = vault
        .list()
        .unwrap()
        .into_iter()
        .map(|meta| (meta.party_id, meta.version))
        .collect();
    assert_eq!(listed, vec![(who.clone(), 1)]);
    vault.retire(&who, &key, 1).unwrap();
    assert!(matches!(
        vault.get(&who, &key),
        Err(VaultError::NotFound { .. })
    ));
    assert!(vault.list().unwrap().is_empty());
}

fn a_share_stored_without_a_roster_comes_back_without_one(vault: Box<dyn ShareVault>) {
    let mut stored = record(&party("device"), key_id(), 1, 4);
    stored.roster = None;
    vault.put(&stored).unwrap();
    let got = vault.get(&stored.party_id, &stored.key_id).unwrap();
    assert_same(&got, &stored);
    assert!(got.roster.is_none());
}
