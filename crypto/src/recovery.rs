//! Recovery authorizations: how a key holder authorizes the repair of another
//! holder's lost share with its identity key, and how every holder checks that t
//! of them did before it helps.
//!
//! The signed bytes are [`mpc_schemas::stored::approval::recovery_transcript`]
//! (key, generation, target, new device identity) under a domain tag of its own, so
//! an authorization never passes for an approval decision or an envelope.

use ed25519_dalek::{Signer, VerifyingKey};
use mpc_events::{IdentityKey, IdentitySignature, KeyId, Participant, PartyId, RepairSpec};
use mpc_schemas::stored::approval::recovery_transcript;

use crate::PartyIdentity;

impl PartyIdentity {
    /// Authorizes rebuilding `target`'s share of key `key_id`, at share generation
    /// `epoch`, for the new device whose identity is `identity`.
    pub fn authorize_recovery(
        &self,
        key_id: KeyId,
        epoch: u32,
        target: &PartyId,
        identity: &IdentityKey,
    ) -> IdentitySignature {
        let transcript = recovery_transcript(key_id, epoch, target, identity);
        IdentitySignature::from_bytes(self.signing_key().sign(&transcript).to_bytes())
    }
}

/// Why a repair's authorizations do not allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryAuthError {
    #[error(
        "{got} authorizations by holders other than the target, the repair needs at least {needed}"
    )]
    TooFew { needed: usize, got: usize },
    #[error("holder {0} authorizes more than once")]
    Duplicate(PartyId),
    #[error("{0} is not a holder of the key")]
    NotAKeyHolder(PartyId),
    #[error("{0} is the repair's target and cannot authorize its own repair")]
    Target(PartyId),
    #[error(
        "the authorization of {0} does not verify for this key, generation, target and new identity"
    )]
    BadSignature(PartyId),
}

/// Checks that `repair` of key `key_id` at generation `epoch` carries
/// authorizations by at least `t` distinct `holders` other than the target, each
/// verifying (strict Ed25519) against that holder's identity key in `holders`.
/// Parties pass the roster they pinned; the coordinator passes the key's holders.
pub fn verify_recovery(
    holders: &[Participant],
    t: u8,
    key_id: KeyId,
    epoch: u32,
    repair: &RepairSpec,
) -> Result<(), RecoveryAuthError> {
    let transcript = recovery_transcript(key_id, epoch, &repair.target, &repair.identity);
    let mut seen: Vec<&PartyId> = Vec::with_capacity(repair.authorizations.len());
    for authorization in &repair.authorizations {
        let holder = &authorization.approver;
        if *holder == repair.target {
            return Err(RecoveryAuthError::Target(holder.clone()));
        }
        if seen.contains(&holder) {
            return Err(RecoveryAuthError::Duplicate(holder.clone()));
        }
        let pinned = holders
            .iter()
            .find(|p| p.party_id == *holder)
            .ok_or_else(|| RecoveryAuthError::NotAKeyHolder(holder.clone()))?;
        if !verifies(&pinned.identity, &transcript, &authorization.signature) {
            return Err(RecoveryAuthError::BadSignature(holder.clone()));
        }
        seen.push(holder);
    }
    let needed = usize::from(t);
    if seen.len() < needed {
        return Err(RecoveryAuthError::TooFew {
            needed,
            got: seen.len(),
        });
    }
    Ok(())
}

fn verifies(signer: &IdentityKey, transcript: &[u8], signature: &IdentitySignature) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(signer.signing()) else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(signature.as_bytes());
    key.verify_strict(transcript, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use mpc_events::{KeyPolicy, SessionId, SignedApproval};

    use super::*;

    struct Fixture {
        identities: Vec<PartyIdentity>,
        holders: Vec<Participant>,
        key_id: KeyId,
        repair: RepairSpec,
    }

    /// A 2-of-3 key (device, server, recovery) whose device share is lost.
    fn fixture() -> Fixture {
        let identities: Vec<PartyIdentity> = (0..3).map(|_| PartyIdentity::generate()).collect();
        let holders: Vec<Participant> = ["device", "server", "recovery"]
            .iter()
            .zip(&identities)
            .map(|(name, id)| Participant {
                party_id: PartyId::parse(*name).unwrap(),
                identity: id.public(),
            })
            .collect();
        let repair = RepairSpec {
            target: holders[0].party_id.clone(),
            identity: PartyIdentity::generate().public(),
            helpers: vec![holders[1].party_id.clone(), holders[2].party_id.clone()],
            authorizations: Vec::new(),
            policy: KeyPolicy::AnyRequest,
        };
        Fixture {
            identities,
            holders,
            key_id: KeyId::of_keygen(SessionId::new()),
            repair,
        }
    }

    impl Fixture {
        fn authorization(&self, i: usize, epoch: u32) -> SignedApproval {
            SignedApproval {
                approver: self.holders[i].party_id.clone(),
                signature: self.identities[i].authorize_recovery(
                    self.key_id,
                    epoch,
                    &self.repair.target,
                    &self.repair.identity,
                ),
            }
        }
        fn authorized_by(&self, who: &[usize]) -> RepairSpec {
            RepairSpec {
                authorizations: who.iter().map(|i| self.authorization(*i, 1)).collect(),
                ..self.repair.clone()
            }
        }
        fn verify(&self, repair: &RepairSpec) -> Result<(), RecoveryAuthError> {
            verify_recovery(&self.holders, 2, self.key_id, 1, repair)
        }
    }

    #[test]
    fn t_holders_other_than_the_target_authorize_a_repair() {
        let f = fixture();
        assert_eq!(f.verify(&f.authorized_by(&[1, 2])), Ok(()));
        assert_eq!(f.verify(&f.authorized_by(&[2, 1])), Ok(()));
    }

    #[test]
    fn every_flaw_in_the_authorizations_is_named() {
        let f = fixture();
        let server = f.holders[1].party_id.clone();
        let recovery = f.holders[2].party_id.clone();
        assert_eq!(
            f.verify(&f.repair),
            Err(RecoveryAuthError::TooFew { needed: 2, got: 0 })
        );
        assert_eq!(
            f.verify(&f.authorized_by(&[1])),
            Err(RecoveryAuthError::TooFew { needed: 2, got: 1 })
        );
        assert_eq!(
            f.verify(&f.authorized_by(&[1, 1])),
            Err(RecoveryAuthError::Duplicate(server.clone()))
        );
        assert_eq!(
            f.verify(&f.authorized_by(&[0, 1])),
            Err(RecoveryAuthError::Target(f.holders[0].party_id.clone()))
        );
        let mut stranger = f.authorized_by(&[1, 2]);
        stranger.authorizations[1].approver = PartyId::parse("mallory").unwrap();
        assert_eq!(
            f.verify(&stranger),
            Err(RecoveryAuthError::NotAKeyHolder(
                PartyId::parse("mallory").unwrap()
            ))
        );
        let mut forged = f.authorized_by(&[1, 2]);
        forged.authorizations[1].signature = PartyIdentity::generate().authorize_recovery(
            f.key_id,
            1,
            &f.repair.target,
            &f.repair.identity,
        );
        assert_eq!(
            f.verify(&forged),
            Err(RecoveryAuthError::BadSignature(recovery.clone()))
        );
        let mut other_generation = f.authorized_by(&[1]);
        other_generation.authorizations.push(f.authorization(2, 2));
        assert_eq!(
            f.verify(&other_generation),
            Err(RecoveryAuthError::BadSignature(recovery))
        );
    }

    #[test]
    fn an_authorization_holds_only_for_its_key_target_and_new_identity() {
        let f = fixture();
        let authorized = f.authorized_by(&[1, 2]);
        let server = f.holders[1].party_id.clone();
        let other_device = RepairSpec {
            identity: PartyIdentity::generate().public(),
            ..authorized.clone()
        };
        assert_eq!(
            f.verify(&other_device),
            Err(RecoveryAuthError::BadSignature(server.clone()))
        );
        assert_eq!(
            verify_recovery(
                &f.holders,
                2,
                KeyId::of_keygen(SessionId::new()),
                1,
                &authorized
            ),
            Err(RecoveryAuthError::BadSignature(server.clone()))
        );
        let other_target = RepairSpec {
            target: f.holders[2].party_id.clone(),
            authorizations: vec![f.authorization(1, 1)],
            ..authorized
        };
        assert_eq!(
            verify_recovery(&f.holders, 1, f.key_id, 1, &other_target),
            Err(RecoveryAuthError::BadSignature(server))
        );
    }
}
