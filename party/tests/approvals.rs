//! A signing party checks a session's approvals itself, before it touches its share
//! or sends anything: these tests play a coordinator that skipped the checks (or
//! lies) and hand the node the session view it would then see.

use std::sync::Arc;

use async_trait::async_trait;
use mpc_crypto::EvidenceError;
use mpc_engine::Dkls23Engine;
use mpc_events::{
    ApprovalEvidence, Decision, KeyId, KeyRef, MessageHash, Participant, PartyId, PartyOutcome,
    PublicKey, SessionId, SessionSpec, SessionStatus, SessionView, SignedApproval, Threshold,
    Timestamp, WorkflowId,
};
use mpc_party::{
    CoordinatorClient, CoordinatorError, PartyError, PartyIdentity, PartyNode, SigningPolicy,
};
use mpc_transport::InProcessTransport;
use mpc_vault::FileVault;
use sha2::{Digest, Sha256};

const PAYLOAD: &[u8] = b"move 40 BTC to the exchange";

/// A coordinator that answers every join with one prepared view and accepts
/// nothing else: the node must refuse before it gets further.
struct Lying(SessionView);

#[async_trait]
impl CoordinatorClient for Lying {
    async fn join(
        &self,
        _: SessionId,
        _: &PartyId,
        _: &str,
    ) -> Result<SessionView, CoordinatorError> {
        Ok(self.0.clone())
    }
    async fn wait_started(&self, _: SessionId) -> Result<SessionStatus, CoordinatorError> {
        Err(CoordinatorError::Refused(
            "the node went past its approval check".into(),
        ))
    }
    async fn wait_finished(&self, _: SessionId) -> Result<SessionStatus, CoordinatorError> {
        Err(CoordinatorError::Refused(
            "the node went past its approval check".into(),
        ))
    }
    async fn report_completion(
        &self,
        _: SessionId,
        _: &PartyId,
        _: PartyOutcome,
    ) -> Result<(), CoordinatorError> {
        Err(CoordinatorError::Refused(
            "the node went past its approval check".into(),
        ))
    }
    async fn report_failure(
        &self,
        _: SessionId,
        _: &PartyId,
        _: Vec<PartyId>,
        _: String,
    ) -> Result<(), CoordinatorError> {
        Err(CoordinatorError::Refused(
            "the node went past its approval check".into(),
        ))
    }
}

/// Five approvers of a 3-of-5 key; this test's node is approver 1.
struct Review {
    identities: Vec<PartyIdentity>,
    key: KeyRef,
    workflow: WorkflowId,
    hash: MessageHash,
}

fn review() -> Review {
    let identities: Vec<PartyIdentity> = (0..5).map(|_| PartyIdentity::generate()).collect();
    let mut pk = [7u8; 33];
    pk[0] = 2;
    Review {
        key: KeyRef {
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
        },
        identities,
        workflow: WorkflowId::new(),
        hash: MessageHash::from_bytes(Sha256::digest(PAYLOAD).into()),
    }
}

impl Review {
    fn approval(&self, by: usize, signed_by: usize) -> SignedApproval {
        SignedApproval {
            approver: self.key.parties[by].party_id.clone(),
            signature: self.identities[signed_by].sign_decision(
                self.workflow,
                &self.hash,
                Decision::Approve,
            ),
        }
    }

    /// The view of a signing session among `signers` carrying `approvals`.
    fn view(&self, signers: &[usize], approvals: Option<Vec<SignedApproval>>) -> SessionView {
        SessionView {
            session_id: SessionId::new(),
            spec: SessionSpec::Signing {
                key: self.key.clone(),
                message_hash: self.hash,
                message: Some(PAYLOAD.to_vec()),
                approval: approvals.map(|approvals| ApprovalEvidence {
                    workflow_id: self.workflow,
                    payload_hash: self.hash,
                    approvals,
                }),
            },
            participants: signers
                .iter()
                .map(|i| (u8::try_from(i + 1).unwrap(), self.key.parties[*i].clone()))
                .collect(),
            status: SessionStatus::Created,
            expires_at: Timestamp::from_millis(i64::MAX),
        }
    }

    async fn sign_as_approver_1(&self, view: SessionView, policy: SigningPolicy) -> PartyError {
        let dir = tempfile::tempdir().unwrap();
        let vault = FileVault::create(dir.path().join("vault"), b"test passphrase").unwrap();
        let me = PartyIdentity::from_secret_bytes(&self.identities[0].to_secret_bytes()).unwrap();
        let node = PartyNode::new(
            self.key.parties[0].party_id.clone(),
            me,
            Arc::new(Dkls23Engine),
            Arc::new(vault),
            Arc::new(InProcessTransport::new()),
            Arc::new(Lying(view.clone())),
        )
        .with_policy(policy);
        node.sign(view.session_id, "token").await.unwrap_err()
    }
}

#[tokio::test]
async fn an_approved_only_party_refuses_a_session_without_approvals() {
    let r = review();
    let err = r
        .sign_as_approver_1(r.view(&[0, 1, 2], None), SigningPolicy::ApprovedOnly)
        .await;
    assert!(matches!(err, PartyError::ApprovalRequired(_)), "{err}");
}

#[tokio::test]
async fn a_forged_approval_is_refused_whatever_the_policy() {
    let r = review();
    // Approver 3's approval, signed by approver 2's key.
    let approvals = vec![r.approval(0, 0), r.approval(1, 1), r.approval(2, 1)];
    for policy in [SigningPolicy::AnyRequest, SigningPolicy::ApprovedOnly] {
        let err = r
            .sign_as_approver_1(r.view(&[0, 1, 2], Some(approvals.clone())), policy)
            .await;
        assert!(
            matches!(&err, PartyError::Approvals(EvidenceError::BadSignature(p)) if p.as_str() == "approver-3"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn fewer_than_t_or_duplicate_approvals_are_refused() {
    let r = review();
    let err = r
        .sign_as_approver_1(
            r.view(&[0, 1], Some(vec![r.approval(0, 0), r.approval(1, 1)])),
            SigningPolicy::ApprovedOnly,
        )
        .await;
    assert!(
        matches!(
            err,
            PartyError::Approvals(EvidenceError::Count { needed: 3, got: 2 })
        ),
        "{err}"
    );
    let err = r
        .sign_as_approver_1(
            r.view(
                &[0, 1, 2],
                Some(vec![r.approval(0, 0), r.approval(1, 1), r.approval(1, 1)]),
            ),
            SigningPolicy::ApprovedOnly,
        )
        .await;
    assert!(
        matches!(
            err,
            PartyError::Approvals(EvidenceError::DuplicateApprover(_))
        ),
        "{err}"
    );
}

#[tokio::test]
async fn valid_approvals_by_other_parties_than_the_signers_are_refused() {
    let r = review();
    // Approvers 1, 4 and 5 approved, but the session asks 1, 2 and 3 to sign.
    let approvals = vec![r.approval(0, 0), r.approval(3, 3), r.approval(4, 4)];
    let err = r
        .sign_as_approver_1(
            r.view(&[0, 1, 2], Some(approvals)),
            SigningPolicy::ApprovedOnly,
        )
        .await;
    assert!(
        matches!(
            err,
            PartyError::Approvals(EvidenceError::SignersNotApprovers)
        ),
        "{err}"
    );
}

#[tokio::test]
async fn t_valid_approvals_by_the_signers_pass_the_check() {
    let r = review();
    let approvals = vec![r.approval(0, 0), r.approval(1, 1), r.approval(2, 2)];
    // The check passes; the node then looks for its share, which this test's empty
    // vault does not hold: that is the first step after the approvals.
    let err = r
        .sign_as_approver_1(
            r.view(&[0, 1, 2], Some(approvals)),
            SigningPolicy::ApprovedOnly,
        )
        .await;
    assert!(matches!(err, PartyError::Vault(_)), "{err}");
}
