//! The approval-workflow projection against a real event store, fed with encoded
//! workflow and session events.

use std::collections::BTreeMap;
use std::ops::Deref;

use mpc_events::{
    Decision, FailureReason, IdentityKey, IdentitySignature, KeyId, KeyRef, MessageHash,
    Participant, PartyId, PartyOutcome, PublicKey, SessionCreated, SessionEvent, SessionId,
    SessionSpec, Threshold, TokenDigest, WorkflowCreated, WorkflowEvent, WorkflowId,
};
use mpc_projections::on_every_backend;
use mpc_projections::testing::samples::{at, signature};
use mpc_projections::testing::{ProjectionFixture, TestBackend};
use mpc_projections::{
    ApproverRow, ProjectionRunner, WorkflowRow, WorkflowState, WorkflowsProjection, replay,
};

struct Fixture(ProjectionFixture<WorkflowsProjection>);

impl Deref for Fixture {
    type Target = ProjectionFixture<WorkflowsProjection>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Fixture {
    async fn new(backend: TestBackend) -> Self {
        Self(ProjectionFixture::new(backend, WorkflowsProjection::new).await)
    }

    fn workflows(&self) -> &WorkflowsProjection {
        self.runner.projection()
    }

    async fn row(&self, id: WorkflowId) -> WorkflowRow {
        self.workflows()
            .get(id)
            .await
            .unwrap()
            .expect("workflow row")
    }
}

fn party(n: u8) -> PartyId {
    PartyId::parse(format!("approver-{n}")).unwrap()
}

/// The five holders of a 3-of-5 key, `approver-1` … `approver-5`.
fn holders() -> Vec<Participant> {
    (1..=5)
        .map(|n| Participant {
            party_id: party(n),
            identity: IdentityKey::new(&[n; 32], &[n + 10; 32]).unwrap(),
        })
        .collect()
}

fn group_key() -> PublicKey {
    let mut bytes = [0x5a; 33];
    bytes[0] = 0x03;
    PublicKey::from_slice(&bytes).unwrap()
}

fn key() -> KeyRef {
    KeyRef {
        key_id: KeyId::of_keygen(SessionId::new()),
        public_key: group_key(),
        threshold: Threshold::new(3, 5).unwrap(),
        parties: holders(),
        epoch: 1,
    }
}

fn created(id: WorkflowId, key: &KeyRef, ms: i64) -> WorkflowEvent {
    WorkflowEvent::WorkflowCreated(WorkflowCreated {
        workflow_id: id,
        title: "Treasury transfer #42".to_owned(),
        key: key.clone(),
        payload: b"transfer 10 BTC to cold storage".to_vec(),
        payload_hash: MessageHash::from_bytes([0x42; 32]),
        expires_at: at(ms + 86_400_000),
        at: at(ms),
    })
}

fn decided(n: u8, decision: Decision, ms: i64) -> WorkflowEvent {
    WorkflowEvent::DecisionRecorded {
        approver: party(n),
        decision,
        signature: IdentitySignature::from_bytes([n; 64]),
        at: at(ms),
    }
}

fn approved(ms: i64) -> WorkflowEvent {
    WorkflowEvent::WorkflowApproved {
        approvers: vec![party(1), party(2), party(3)],
        at: at(ms),
    }
}

fn signing_requested(session: SessionId, ms: i64) -> WorkflowEvent {
    WorkflowEvent::SigningRequested {
        session_id: session,
        at: at(ms),
    }
}

fn signing_created(id: SessionId, key: &KeyRef, ms: i64) -> SessionEvent {
    let signers = key.parties[..3].to_vec();
    let join_tokens: BTreeMap<_, _> = signers
        .iter()
        .map(|p| (p.party_id.clone(), TokenDigest::from_bytes([9; 32])))
        .collect();
    SessionEvent::SessionCreated(SessionCreated {
        session_id: id,
        spec: SessionSpec::Signing {
            key: key.clone(),
            message_hash: MessageHash::from_bytes([0x42; 32]),
            message: None,
            approval: None,
        },
        participants: signers,
        join_tokens,
        join_expires_at: at(ms + 60_000),
        expires_at: at(ms + 600_000),
        at: at(ms),
    })
}

fn signed(ms: i64) -> SessionEvent {
    SessionEvent::SessionCompleted {
        outcome: PartyOutcome::Signature(signature()),
        at: at(ms),
    }
}

/// A workflow approved by approvers 1 to 3 (4 rejected first).
fn approved_history(id: WorkflowId, key: &KeyRef, ms: i64) -> Vec<WorkflowEvent> {
    vec![
        created(id, key, ms),
        decided(4, Decision::Reject, ms + 1),
        decided(1, Decision::Approve, ms + 2),
        decided(2, Decision::Approve, ms + 3),
        decided(3, Decision::Approve, ms + 4),
        approved(ms + 4),
    ]
}

async fn a_created_workflow_lists_every_key_holder_undecided(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let id = WorkflowId::new();
    let key = key();
    let position = f.workflow(id, &[created(id, &key, 0)]).await;
    assert_eq!(f.runner.catch_up().await.unwrap(), position);

    assert_eq!(
        f.row(id).await,
        WorkflowRow {
            workflow_id: id,
            title: "Treasury transfer #42".to_owned(),
            key_id: key.key_id,
            payload_hash_hex: "42".repeat(32),
            threshold_t: 3,
            approvers_n: 5,
            status: WorkflowState::Pending,
            approvals: 0,
            rejections: 0,
            signing_session_id: None,
            signature_r_hex: None,
            signature_s_hex: None,
            recovery_id: None,
            expires_at: at(86_400_000),
            created_at: at(0),
            updated_at: at(0),
            last_position: position,
        }
    );
    let approvers = f.workflows().approvers(id).await.unwrap();
    assert_eq!(
        approvers,
        (1..=5)
            .map(|n| ApproverRow {
                workflow_id: id,
                party_id: party(n),
                decision: None,
                decided_at: None,
                signature_hex: None,
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(f.workflows().get(WorkflowId::new()).await.unwrap(), None);
    assert!(
        f.workflows()
            .approvers(WorkflowId::new())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn an_approved_workflow_is_signed_by_its_signing_session(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let id = WorkflowId::new();
    let key = key();
    let history = approved_history(id, &key, 0);
    f.workflow(id, &history[..3]).await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!(
        (row.status, row.approvals, row.rejections),
        (WorkflowState::Pending, 1, 1)
    );
    let approvers = f.workflows().approvers(id).await.unwrap();
    assert_eq!(approvers[0].decision, Some(Decision::Approve));
    assert_eq!(approvers[0].decided_at, Some(at(2)));
    assert_eq!(approvers[0].signature_hex, Some("01".repeat(64)));
    assert_eq!(approvers[3].decision, Some(Decision::Reject));
    assert_eq!(approvers[1].decision, None);

    f.workflow(id, &history[3..]).await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!(
        (row.status, row.approvals, row.rejections),
        (WorkflowState::Approved, 3, 1)
    );

    let session = SessionId::new();
    f.workflow(id, &[signing_requested(session, 5)]).await;
    f.session(session, &[signing_created(session, &key, 6)])
        .await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!(row.status, WorkflowState::Signing);
    assert_eq!(row.signing_session_id, Some(session));

    // Another session completing with a signature changes nothing.
    let unrelated = SessionId::new();
    f.session(unrelated, &[signing_created(unrelated, &key, 7), signed(8)])
        .await;
    f.runner.catch_up().await.unwrap();
    assert_eq!(f.row(id).await, row);

    let position = f.session(session, &[signed(9)]).await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!(row.status, WorkflowState::Signed);
    assert_eq!(row.signature_r_hex, Some("ab".repeat(32)));
    assert_eq!(row.signature_s_hex, Some("cd".repeat(32)));
    assert_eq!(row.recovery_id, Some(1));
    assert_eq!((row.updated_at, row.last_position), (at(9), position));
}

async fn a_failed_signing_session_can_be_followed_by_another(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let id = WorkflowId::new();
    let key = key();
    let first = SessionId::new();
    f.workflow(id, &approved_history(id, &key, 0)).await;
    f.workflow(id, &[signing_requested(first, 5)]).await;
    f.session(
        first,
        &[
            signing_created(first, &key, 6),
            SessionEvent::SessionFailed {
                reason: FailureReason::InvalidSignature {
                    reported_by: party(2),
                },
                at: at(7),
            },
        ],
    )
    .await;
    f.runner.catch_up().await.unwrap();
    assert_eq!(f.row(id).await.status, WorkflowState::SigningFailed);

    let second = SessionId::new();
    f.workflow(id, &[signing_requested(second, 8)]).await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!(row.status, WorkflowState::Signing);
    assert_eq!(row.signing_session_id, Some(second));

    f.session(
        second,
        &[
            signing_created(second, &key, 9),
            SessionEvent::SessionExpired { at: at(600_009) },
        ],
    )
    .await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!(row.status, WorkflowState::SigningFailed);
    assert_eq!(row.signature_r_hex, None);
}

async fn workflows_are_rejected_or_expired(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let key = key();
    let rejected = WorkflowId::new();
    f.workflow(
        rejected,
        &[
            created(rejected, &key, 0),
            decided(1, Decision::Reject, 1),
            decided(2, Decision::Approve, 2),
            decided(3, Decision::Reject, 3),
            decided(5, Decision::Reject, 4),
            WorkflowEvent::WorkflowRejected {
                rejected_by: vec![party(1), party(3), party(5)],
                at: at(4),
            },
        ],
    )
    .await;
    let expired = WorkflowId::new();
    f.workflow(
        expired,
        &[
            created(expired, &key, 10),
            decided(4, Decision::Approve, 11),
            WorkflowEvent::WorkflowExpired { at: at(86_400_010) },
        ],
    )
    .await;
    f.runner.catch_up().await.unwrap();

    let row = f.row(rejected).await;
    assert_eq!(
        (row.status, row.approvals, row.rejections),
        (WorkflowState::Rejected, 1, 3)
    );
    assert_eq!(row.updated_at, at(4));
    let row = f.row(expired).await;
    assert_eq!(
        (row.status, row.approvals, row.rejections),
        (WorkflowState::Expired, 1, 0)
    );
    assert_eq!(row.updated_at, at(86_400_010));
    let decisions: Vec<_> = f
        .workflows()
        .approvers(rejected)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.decision)
        .collect();
    assert_eq!(
        decisions,
        [
            Some(Decision::Reject),
            Some(Decision::Approve),
            Some(Decision::Reject),
            None,
            Some(Decision::Reject)
        ]
    );
}

async fn redelivery_is_idempotent_and_a_rebuild_equals_the_live_model(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let key = key();
    let (signed_id, pending_id) = (WorkflowId::new(), WorkflowId::new());
    let session = SessionId::new();
    f.workflow(signed_id, &approved_history(signed_id, &key, 0))
        .await;
    f.runner.catch_up().await.unwrap();
    f.workflow(
        pending_id,
        &[
            created(pending_id, &key, 20),
            decided(2, Decision::Approve, 21),
        ],
    )
    .await;
    f.workflow(signed_id, &[signing_requested(session, 30)])
        .await;
    let head = f
        .session(session, &[signing_created(session, &key, 31), signed(32)])
        .await;
    assert_eq!(f.runner.catch_up().await.unwrap(), head);
    let live = f.workflows().list(10).await.unwrap();
    assert_eq!(
        live.iter()
            .map(|r| (r.workflow_id, r.status))
            .collect::<Vec<_>>(),
        [
            (pending_id, WorkflowState::Pending),
            (signed_id, WorkflowState::Signed)
        ],
        "newest first"
    );
    let approvers = f.workflows().approvers(signed_id).await.unwrap();

    // The same batch again, through this runner and a second one starting from the
    // stored checkpoint: nothing is applied twice.
    assert_eq!(f.runner.catch_up().await.unwrap(), head);
    let other_pool = f.db.other_pool().await;
    let other = ProjectionRunner::new(
        f.store.clone(),
        other_pool.clone(),
        WorkflowsProjection::new(other_pool),
    )
    .await
    .unwrap();
    assert_eq!(other.catch_up().await.unwrap(), head);
    assert_eq!(f.workflows().list(10).await.unwrap(), live);
    assert_eq!(f.workflows().approvers(signed_id).await.unwrap(), approvers);

    let compared = replay(f.store.clone(), &f.db.models()).await.unwrap();
    let model = compared
        .iter()
        .find(|c| c.model == WorkflowsProjection::NAME)
        .expect("replay compares the workflows");
    assert!(model.matches(), "{model:?}");
    assert_eq!((model.live_rows, model.checkpoint), (2, head));

    // Damage the model so that a rebuild which does not reset and replay shows up.
    f.db.exec("UPDATE approval_workflows SET approvals = 99, status = 'expired'")
        .await;
    f.db.exec("UPDATE workflow_approvers SET decision = NULL")
        .await;
    assert_ne!(f.workflows().list(10).await.unwrap(), live);
    assert_eq!(f.runner.rebuild().await.unwrap(), head);
    assert_eq!(f.workflows().list(10).await.unwrap(), live);
    assert_eq!(f.workflows().approvers(signed_id).await.unwrap(), approvers);
    assert_eq!(f.workflows().list(1).await.unwrap(), live[..1]);
}

on_every_backend!(
    a_created_workflow_lists_every_key_holder_undecided,
    an_approved_workflow_is_signed_by_its_signing_session,
    a_failed_signing_session_can_be_followed_by_another,
    workflows_are_rejected_or_expired,
    redelivery_is_idempotent_and_a_rebuild_equals_the_live_model,
);
