//! The pinned roster: who holds a key, as this party verified it itself.
//!
//! At keygen every party derives the same execution id from the participants'
//! indices, party ids and identity keys, so a run succeeds only if all of them saw
//! the same participants: that list is what a party pins with its share. Every later
//! session on the key (signing, refresh, repair) is checked against the pinned
//! roster before anything is sent, and approvals are verified against the pinned
//! identity keys only. The coordinator's `KeyRef` is a claim to check, never the
//! source of identity keys.
//!
//! Before a key exists there is no roster: a party that was given its peers'
//! identity keys out of band ([`Peers`], e.g. an app shipping its server's key)
//! checks a keygen's participants, and a new device a repair's holders, against
//! them before it sends anything.

use std::collections::BTreeMap;

use mpc_events::{IdentityKey, KeyId, KeyRef, Participant, PartyId, RepairSpec, SessionView};

/// The identity keys a party was given for its peers, out of band, by party id.
/// Empty: no such pins (the keygen's participants are taken as invited).
pub type Peers = BTreeMap<PartyId, IdentityKey>;

/// Why a session does not match the roster this party pinned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    /// The session's key lists other holders, or other identity keys, than the
    /// roster this party pinned.
    #[error("the session lists other holders or identity keys for key {0} than this party pinned")]
    KeyParties(KeyId),
    /// A participant is not the pinned holder at its index, or presents another
    /// identity key than the pinned one (a repair's target presents the new one).
    #[error(
        "participant {0} is not the holder this party pinned at its index, or presents another identity key"
    )]
    Participant(PartyId),
    /// The share was stored before rosters were pinned: the party cannot tell
    /// genuine holders from substitutes for this key.
    #[error(
        "the share of key {0} was stored before this party pinned rosters, so it cannot check \
         approvals or repairs for it; generate a new key to use approval-gated signing or repair"
    )]
    Missing(KeyId),
    /// A participant this party was given no identity key for, or another one than
    /// it was given (its `peers`).
    #[error(
        "participant {0} is not one of this party's pinned peers, or presents another identity \
         key than the one this party was given for it"
    )]
    NotAPeer(PartyId),
}

/// Checks `others` (every participant but this party) against the identity keys
/// this party was given for them. With no pins every participant passes; with pins,
/// each must be pinned under its party id with the identity key it presents.
pub fn check_peers<'a>(
    peers: &Peers,
    others: impl IntoIterator<Item = &'a Participant>,
) -> Result<(), RosterError> {
    if peers.is_empty() {
        return Ok(());
    }
    for p in others {
        if peers.get(&p.party_id) != Some(&p.identity) {
            return Err(RosterError::NotAPeer(p.party_id.clone()));
        }
    }
    Ok(())
}

/// The roster a keygen run pins: its participants in index order. Indices must be
/// 1, 2, …, n with no gap (holder `i` at position `i - 1`).
pub fn pin(view: &SessionView) -> Result<Vec<Participant>, RosterError> {
    view.participants
        .iter()
        .zip(1u8..)
        .map(|((index, p), expected)| {
            if *index == expected {
                Ok(p.clone())
            } else {
                Err(RosterError::Participant(p.party_id.clone()))
            }
        })
        .collect()
}

/// Checks a session on `key` against `roster`: the key's holders are exactly the
/// pinned ones, and each participant is the pinned holder at its index with its
/// pinned identity key (a repair's target with the repair's new identity instead).
pub fn check(
    roster: &[Participant],
    key: &KeyRef,
    view: &SessionView,
    repair: Option<&RepairSpec>,
) -> Result<(), RosterError> {
    if key.parties != roster {
        return Err(RosterError::KeyParties(key.key_id));
    }
    for (index, p) in &view.participants {
        let pinned = usize::from(*index)
            .checked_sub(1)
            .and_then(|position| roster.get(position))
            .filter(|pinned| pinned.party_id == p.party_id)
            .ok_or_else(|| RosterError::Participant(p.party_id.clone()))?;
        let expected = match repair {
            Some(repair) if repair.target == p.party_id => &repair.identity,
            _ => &pinned.identity,
        };
        if p.identity != *expected {
            return Err(RosterError::Participant(p.party_id.clone()));
        }
    }
    Ok(())
}

/// The roster after a refresh with `repair` completed: the same holders, the
/// repaired one under its new identity.
pub fn refreshed(roster: &[Participant], repair: Option<&RepairSpec>) -> Vec<Participant> {
    roster
        .iter()
        .map(|holder| match repair {
            Some(repair) if repair.target == holder.party_id => Participant {
                party_id: holder.party_id.clone(),
                identity: repair.identity,
            },
            _ => holder.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use mpc_events::{
        IdentityKey, KeyPolicy, PublicKey, SessionId, SessionSpec, SessionStatus, Threshold,
        Timestamp,
    };

    use super::*;

    fn holder(name: &str, fill: u8) -> Participant {
        Participant {
            party_id: PartyId::parse(name).unwrap(),
            identity: IdentityKey::new(&[fill; 32], &[fill ^ 0xff; 32]).unwrap(),
        }
    }

    fn roster() -> Vec<Participant> {
        vec![
            holder("device", 1),
            holder("server", 2),
            holder("recovery", 3),
        ]
    }

    fn key(parties: Vec<Participant>) -> KeyRef {
        let mut pk = [9u8; 33];
        pk[0] = 2;
        KeyRef {
            key_id: KeyId::of_keygen(SessionId::new()),
            public_key: PublicKey::from_slice(&pk).unwrap(),
            threshold: Threshold::new(2, 3).unwrap(),
            parties,
            epoch: 1,
        }
    }

    fn view(key: &KeyRef, participants: Vec<(u8, Participant)>) -> SessionView {
        SessionView {
            session_id: SessionId::new(),
            spec: SessionSpec::Refresh {
                key: key.clone(),
                repair: None,
            },
            participants,
            status: SessionStatus::Created,
            expires_at: Timestamp::from_millis(0),
        }
    }

    #[test]
    fn given_the_pinned_holders_when_checked_then_the_session_passes() {
        let r = roster();
        let k = key(r.clone());
        let v = view(&k, vec![(1, r[0].clone()), (3, r[2].clone())]);
        assert_eq!(check(&r, &k, &v, None), Ok(()));
    }

    #[test]
    fn given_a_substituted_identity_in_the_key_when_checked_then_refused() {
        let r = roster();
        let mut parties = r.clone();
        parties[1].identity = holder("server", 0x42).identity;
        let k = key(parties.clone());
        let v = view(&k, vec![(1, r[0].clone()), (2, parties[1].clone())]);
        assert_eq!(
            check(&r, &k, &v, None),
            Err(RosterError::KeyParties(k.key_id))
        );
    }

    #[test]
    fn given_a_participant_with_another_key_or_index_when_checked_then_refused() {
        let r = roster();
        let k = key(r.clone());
        let impostor = holder("server", 0x42);
        let v = view(&k, vec![(1, r[0].clone()), (2, impostor)]);
        assert_eq!(
            check(&r, &k, &v, None),
            Err(RosterError::Participant(r[1].party_id.clone()))
        );
        let v = view(&k, vec![(1, r[0].clone()), (3, r[1].clone())]);
        assert_eq!(
            check(&r, &k, &v, None),
            Err(RosterError::Participant(r[1].party_id.clone()))
        );
        let v = view(&k, vec![(0, r[0].clone())]);
        assert_eq!(
            check(&r, &k, &v, None),
            Err(RosterError::Participant(r[0].party_id.clone()))
        );
    }

    #[test]
    fn given_a_repair_when_checked_and_refreshed_then_only_the_target_changes_identity() {
        let r = roster();
        let k = key(r.clone());
        let new_device = holder("device", 0x77);
        let repair = RepairSpec {
            target: r[0].party_id.clone(),
            identity: new_device.identity,
            helpers: vec![r[1].party_id.clone(), r[2].party_id.clone()],
            authorizations: Vec::new(),
            policy: KeyPolicy::AnyRequest,
        };
        let v = view(
            &k,
            vec![
                (1, new_device.clone()),
                (2, r[1].clone()),
                (3, r[2].clone()),
            ],
        );
        assert_eq!(check(&r, &k, &v, Some(&repair)), Ok(()));
        assert_eq!(
            check(&r, &k, &v, None),
            Err(RosterError::Participant(r[0].party_id.clone()))
        );
        let next = refreshed(&r, Some(&repair));
        assert_eq!(next, vec![new_device, r[1].clone(), r[2].clone()]);
        assert_eq!(refreshed(&r, None), r);
    }

    #[test]
    fn given_keygen_participants_with_a_gap_when_pinned_then_refused() {
        let r = roster();
        let k = key(r.clone());
        let v = view(
            &k,
            vec![(1, r[0].clone()), (2, r[1].clone()), (3, r[2].clone())],
        );
        assert_eq!(pin(&v), Ok(r.clone()));
        let v = view(&k, vec![(1, r[0].clone()), (3, r[2].clone())]);
        assert_eq!(
            pin(&v),
            Err(RosterError::Participant(r[2].party_id.clone()))
        );
    }

    #[test]
    fn given_pinned_peers_when_a_participant_is_missing_or_substituted_then_it_is_named() {
        let r = roster();
        let peers: Peers = r[1..]
            .iter()
            .map(|p| (p.party_id.clone(), p.identity))
            .collect();
        assert_eq!(check_peers(&peers, &r[1..]), Ok(()));
        assert_eq!(check_peers(&Peers::new(), [&holder("stranger", 9)]), Ok(()));
        let substituted = holder("server", 7);
        assert_eq!(
            check_peers(&peers, [&r[2], &substituted]),
            Err(RosterError::NotAPeer(substituted.party_id.clone()))
        );
        let stranger = holder("stranger", 3);
        assert_eq!(
            check_peers(&peers, [&r[1], &stranger]),
            Err(RosterError::NotAPeer(stranger.party_id.clone()))
        );
    }
}
