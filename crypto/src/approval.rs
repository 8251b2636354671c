//! Approval signatures: how an approver signs its decision on a workflow with its
//! identity key, and how anyone (the workflow aggregate, the session aggregate and,
//! above all, every signing party) checks a set of approvals.
//!
//! The signed bytes are [`mpc_schemas::stored::approval::approval_transcript`]: a domain tag
//! of its own, so an approval can never pass for a protocol envelope or the other
//! way round.

use ed25519_dalek::{Signer, VerifyingKey};
use mpc_events::{
    ApprovalEvidence, Decision, IdentityKey, IdentitySignature, KeyRef, MessageHash, PartyId,
    WorkflowId,
};
use mpc_schemas::stored::approval::approval_transcript;
use sha2::{Digest, Sha256};

use crate::PartyIdentity;

impl PartyIdentity {
    /// Signs `decision` on workflow `workflow_id` over the payload with hash
    /// `payload_hash`, to be signed with `key` (its id, group key and generation).
    pub fn sign_decision(
        &self,
        workflow_id: WorkflowId,
        key: &KeyRef,
        payload_hash: &MessageHash,
        decision: Decision,
    ) -> IdentitySignature {
        let transcript = approval_transcript(workflow_id, key, payload_hash, decision);
        IdentitySignature::from_bytes(self.signing_key().sign(&transcript).to_bytes())
    }
}

/// Whether `signature` is `approver`'s signature of `decision` on the workflow
/// over `key` (its id, group key and generation).
pub fn verify_decision(
    approver: &IdentityKey,
    workflow_id: WorkflowId,
    key: &KeyRef,
    payload_hash: &MessageHash,
    decision: Decision,
    signature: &IdentitySignature,
) -> bool {
    let Ok(verifying) = VerifyingKey::from_bytes(approver.signing()) else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(signature.as_bytes());
    verifying
        .verify_strict(
            &approval_transcript(workflow_id, key, payload_hash, decision),
            &signature,
        )
        .is_ok()
}

/// Why a set of approvals does not allow a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("the data to sign is missing; approved payloads are signed as data, not as a hash")]
    MissingPayload,
    #[error("the data to sign does not hash to the approved payload hash")]
    PayloadMismatch,
    #[error("{got} approvals, the key needs exactly {needed}")]
    Count { needed: usize, got: usize },
    #[error("approver {0} appears more than once")]
    DuplicateApprover(PartyId),
    #[error("approver {0} is not a holder of the key")]
    NotAKeyHolder(PartyId),
    #[error("the approval of {0} does not verify")]
    BadSignature(PartyId),
    #[error("the signers are not exactly the approvers")]
    SignersNotApprovers,
}

/// Checks that `evidence` allows signing `message` with `key` by `signers`: the
/// message is the approved payload, there are exactly t approvals by distinct key
/// holders, each verifies against that holder's identity key as registered with
/// the key, and the signers are exactly the approvers.
pub fn verify_evidence(
    evidence: &ApprovalEvidence,
    key: &KeyRef,
    message: Option<&[u8]>,
    signers: &[PartyId],
) -> Result<(), EvidenceError> {
    let message = message.ok_or(EvidenceError::MissingPayload)?;
    if Sha256::digest(message).as_slice() != evidence.payload_hash.as_bytes() {
        return Err(EvidenceError::PayloadMismatch);
    }
    let needed = usize::from(key.threshold.t());
    if evidence.approvals.len() != needed {
        return Err(EvidenceError::Count {
            needed,
            got: evidence.approvals.len(),
        });
    }
    let mut seen: Vec<&PartyId> = Vec::with_capacity(needed);
    for approval in &evidence.approvals {
        if seen.contains(&&approval.approver) {
            return Err(EvidenceError::DuplicateApprover(approval.approver.clone()));
        }
        seen.push(&approval.approver);
        let holder = key
            .parties
            .iter()
            .find(|p| p.party_id == approval.approver)
            .ok_or_else(|| EvidenceError::NotAKeyHolder(approval.approver.clone()))?;
        if !verify_decision(
            &holder.identity,
            evidence.workflow_id,
            key,
            &evidence.payload_hash,
            Decision::Approve,
            &approval.signature,
        ) {
            return Err(EvidenceError::BadSignature(approval.approver.clone()));
        }
    }
    let same_set = signers.len() == seen.len() && signers.iter().all(|s| seen.contains(&s));
    if !same_set {
        return Err(EvidenceError::SignersNotApprovers);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use mpc_events::{KeyId, Participant, PublicKey, SessionId, SignedApproval, Threshold};

    use super::*;

    struct Fixture {
        identities: Vec<PartyIdentity>,
        key: KeyRef,
        workflow: WorkflowId,
        payload: Vec<u8>,
        hash: MessageHash,
    }

    fn fixture() -> Fixture {
        let identities: Vec<PartyIdentity> = (0..5).map(|_| PartyIdentity::generate()).collect();
        let mut pk = [3u8; 33];
        pk[0] = 2;
        let key = KeyRef {
            key_id: KeyId::of_keygen(SessionId::new()),
            public_key: PublicKey::from_slice(&pk).unwrap(),
            threshold: Threshold::new(3, 5).unwrap(),
            parties: identities
                .iter()
                .enumerate()
                .map(|(i, id)| Participant {
                    party_id: PartyId::parse(format!("approver-{}", i + 1)).unwrap(),
                    identity: id.public(),
                })
                .collect(),
            epoch: 1,
        };
        let payload = b"pay 100 to bob".to_vec();
        let hash = MessageHash::from_bytes(Sha256::digest(&payload).into());
        Fixture {
            identities,
            key,
            workflow: WorkflowId::new(),
            payload,
            hash,
        }
    }

    impl Fixture {
        fn approval(&self, i: usize) -> SignedApproval {
            SignedApproval {
                approver: self.key.parties[i].party_id.clone(),
                signature: self.identities[i].sign_decision(
                    self.workflow,
                    &self.key,
                    &self.hash,
                    Decision::Approve,
                ),
            }
        }
        fn evidence(&self, who: &[usize]) -> ApprovalEvidence {
            ApprovalEvidence {
                workflow_id: self.workflow,
                payload_hash: self.hash,
                approvals: who.iter().map(|i| self.approval(*i)).collect(),
            }
        }
        fn signers(&self, who: &[usize]) -> Vec<PartyId> {
            who.iter()
                .map(|i| self.key.parties[*i].party_id.clone())
                .collect()
        }
    }

    #[test]
    fn a_decision_verifies_only_for_its_own_workflow_payload_decision_and_key() {
        let f = fixture();
        let sig = f.identities[0].sign_decision(f.workflow, &f.key, &f.hash, Decision::Approve);
        let me = f.identities[0].public();
        assert!(verify_decision(
            &me,
            f.workflow,
            &f.key,
            &f.hash,
            Decision::Approve,
            &sig
        ));
        assert!(!verify_decision(
            &me,
            f.workflow,
            &f.key,
            &f.hash,
            Decision::Reject,
            &sig
        ));
        assert!(!verify_decision(
            &me,
            WorkflowId::new(),
            &f.key,
            &f.hash,
            Decision::Approve,
            &sig
        ));
        let other_hash = MessageHash::from_bytes([0; 32]);
        assert!(!verify_decision(
            &me,
            f.workflow,
            &f.key,
            &other_hash,
            Decision::Approve,
            &sig
        ));
        let someone_else = f.identities[1].public();
        assert!(!verify_decision(
            &someone_else,
            f.workflow,
            &f.key,
            &f.hash,
            Decision::Approve,
            &sig
        ));
    }

    #[test]
    fn a_decision_verifies_only_for_the_key_and_generation_it_was_signed_for() {
        let f = fixture();
        let sig = f.identities[0].sign_decision(f.workflow, &f.key, &f.hash, Decision::Approve);
        let me = f.identities[0].public();
        let other_key = KeyRef {
            key_id: KeyId::of_keygen(SessionId::new()),
            ..f.key.clone()
        };
        let refreshed = KeyRef {
            epoch: 2,
            ..f.key.clone()
        };
        for key in [&f.key, &other_key, &refreshed] {
            let verified = verify_decision(&me, f.workflow, key, &f.hash, Decision::Approve, &sig);
            assert_eq!(verified, std::ptr::eq(key, &f.key));
        }
        let evidence = f.evidence(&[0, 1, 2]);
        assert_eq!(
            verify_evidence(
                &evidence,
                &other_key,
                Some(&f.payload),
                &f.signers(&[0, 1, 2])
            ),
            Err(EvidenceError::BadSignature(
                f.key.parties[0].party_id.clone()
            ))
        );
    }

    #[test]
    fn t_valid_approvals_by_the_signers_allow_signing() {
        let f = fixture();
        let e = f.evidence(&[0, 2, 4]);
        assert_eq!(
            verify_evidence(&e, &f.key, Some(&f.payload), &f.signers(&[4, 0, 2])),
            Ok(())
        );
    }

    #[test]
    fn every_flaw_in_the_evidence_is_named() {
        let f = fixture();
        let signers = f.signers(&[0, 1, 2]);
        let e = f.evidence(&[0, 1, 2]);
        assert_eq!(
            verify_evidence(&e, &f.key, None, &signers),
            Err(EvidenceError::MissingPayload)
        );
        assert_eq!(
            verify_evidence(&e, &f.key, Some(b"pay 999 to eve"), &signers),
            Err(EvidenceError::PayloadMismatch)
        );
        assert_eq!(
            verify_evidence(
                &f.evidence(&[0, 1]),
                &f.key,
                Some(&f.payload),
                &signers[..2]
            ),
            Err(EvidenceError::Count { needed: 3, got: 2 })
        );
        assert_eq!(
            verify_evidence(&f.evidence(&[0, 1, 1]), &f.key, Some(&f.payload), &signers),
            Err(EvidenceError::DuplicateApprover(signers[1].clone()))
        );
        let mut forged = f.evidence(&[0, 1, 2]);
        forged.approvals[2].signature =
            f.identities[3].sign_decision(f.workflow, &f.key, &f.hash, Decision::Approve);
        assert_eq!(
            verify_evidence(&forged, &f.key, Some(&f.payload), &signers),
            Err(EvidenceError::BadSignature(signers[2].clone()))
        );
        let mut stranger = f.evidence(&[0, 1, 2]);
        stranger.approvals[2].approver = PartyId::parse("mallory").unwrap();
        assert_eq!(
            verify_evidence(&stranger, &f.key, Some(&f.payload), &signers),
            Err(EvidenceError::NotAKeyHolder(
                PartyId::parse("mallory").unwrap()
            ))
        );
        assert_eq!(
            verify_evidence(&e, &f.key, Some(&f.payload), &f.signers(&[0, 1, 3])),
            Err(EvidenceError::SignersNotApprovers)
        );
        let mut rejection = f.evidence(&[0, 1, 2]);
        rejection.approvals[0].signature =
            f.identities[0].sign_decision(f.workflow, &f.key, &f.hash, Decision::Reject);
        assert_eq!(
            verify_evidence(&rejection, &f.key, Some(&f.payload), &signers),
            Err(EvidenceError::BadSignature(signers[0].clone()))
        );
    }
}
