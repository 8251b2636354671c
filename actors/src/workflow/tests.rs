//! Given/when/then tests of the approval-workflow aggregate.

use mpc_crypto::PartyIdentity;
use mpc_events::{KeyId, KeyRef, MessageHash, Participant, PublicKey, Threshold, WorkflowId};

use super::*;
use crate::testing::given;

const T0: i64 = 1_795_000_000_000;
const DAY: i64 = 86_400_000;
const PAYLOAD: &[u8] = b"transfer 250 BTC to cold storage";

fn at(offset: i64) -> Timestamp {
    Timestamp::from_millis(T0 + offset)
}

/// A 3-of-5 review: five approvers with their identities.
struct Review {
    identities: Vec<PartyIdentity>,
    key: KeyRef,
    id: WorkflowId,
}

fn review(t: u16, n: u16) -> Review {
    let identities: Vec<PartyIdentity> = (0..n).map(|_| PartyIdentity::generate()).collect();
    let mut pk = [5u8; 33];
    pk[0] = 3;
    let key = KeyRef {
        key_id: KeyId::of_keygen(SessionId::new()),
        public_key: PublicKey::from_slice(&pk).unwrap(),
        threshold: Threshold::new(t, n).unwrap(),
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
    Review {
        identities,
        key,
        id: WorkflowId::from_uuid(uuid::Uuid::from_u128(7)),
    }
}

fn hash(payload: &[u8]) -> MessageHash {
    MessageHash::from_bytes(Sha256::digest(payload).into())
}

impl Review {
    fn created(&self) -> WorkflowEvent {
        WorkflowEvent::WorkflowCreated(WorkflowCreated {
            workflow_id: self.id,
            title: "Quarterly treasury move".into(),
            key: self.key.clone(),
            payload: PAYLOAD.to_vec(),
            payload_hash: hash(PAYLOAD),
            expires_at: at(DAY),
            at: at(0),
        })
    }

    fn create(&self) -> WorkflowCommand {
        let WorkflowEvent::WorkflowCreated(c) = self.created() else {
            unreachable!()
        };
        WorkflowCommand::Create {
            workflow_id: c.workflow_id,
            title: c.title,
            key: c.key,
            payload: c.payload,
            payload_hash: c.payload_hash,
            expires_at: c.expires_at,
            now: c.at,
        }
    }

    fn approver(&self, i: usize) -> PartyId {
        self.key.parties[i].party_id.clone()
    }

    fn signature(&self, i: usize, decision: Decision) -> IdentitySignature {
        self.identities[i].sign_decision(self.id, &self.key, &hash(PAYLOAD), decision)
    }

    fn decide(&self, i: usize, decision: Decision, offset: i64) -> WorkflowCommand {
        WorkflowCommand::Decide {
            approver: self.approver(i),
            decision,
            signature: self.signature(i, decision),
            now: at(offset),
        }
    }

    fn recorded(&self, i: usize, decision: Decision, offset: i64) -> WorkflowEvent {
        WorkflowEvent::DecisionRecorded {
            approver: self.approver(i),
            decision,
            signature: self.signature(i, decision),
            at: at(offset),
        }
    }
}

#[test]
fn creating_a_workflow_records_the_payload_and_its_key() {
    let r = review(3, 5);
    given::<WorkflowAggregate>([])
        .when(r.create())
        .then([r.created()]);
}

#[test]
fn a_workflow_needs_a_title_a_payload_its_hash_and_a_future_deadline() {
    let r = review(3, 5);
    let with = |f: &dyn Fn(&mut WorkflowCommand)| {
        let mut c = r.create();
        f(&mut c);
        c
    };
    let cases: Vec<(WorkflowCommand, WorkflowError)> = vec![
        (
            with(&|c| {
                if let WorkflowCommand::Create { title, .. } = c {
                    *title = "  ".into();
                }
            }),
            WorkflowError::InvalidTitle,
        ),
        (
            with(&|c| {
                if let WorkflowCommand::Create { payload, .. } = c {
                    payload.clear();
                }
            }),
            WorkflowError::PayloadSize(0),
        ),
        (
            with(&|c| {
                if let WorkflowCommand::Create { payload, .. } = c {
                    *payload = b"transfer 9999 BTC to mallory".to_vec();
                }
            }),
            WorkflowError::PayloadHashMismatch,
        ),
        (
            with(&|c| {
                if let WorkflowCommand::Create { expires_at, .. } = c {
                    *expires_at = at(0);
                }
            }),
            WorkflowError::InvalidDeadline,
        ),
    ];
    for (command, error) in cases {
        given::<WorkflowAggregate>([]).when(command).then_err(error);
    }
    given::<WorkflowAggregate>([r.created()])
        .when(r.create())
        .then_err(WorkflowError::AlreadyExists);
}

#[test]
fn approvals_below_t_are_recorded_without_approving() {
    let r = review(3, 5);
    given::<WorkflowAggregate>([r.created(), r.recorded(0, Decision::Approve, 1)])
        .when(r.decide(2, Decision::Approve, 2))
        .then([r.recorded(2, Decision::Approve, 2)]);
}

#[test]
fn the_t_th_approval_approves_the_workflow_naming_the_approvers() {
    let r = review(3, 5);
    given::<WorkflowAggregate>([
        r.created(),
        r.recorded(0, Decision::Approve, 1),
        r.recorded(1, Decision::Reject, 2),
        r.recorded(3, Decision::Approve, 3),
    ])
    .when(r.decide(4, Decision::Approve, 4))
    .then([
        r.recorded(4, Decision::Approve, 4),
        WorkflowEvent::WorkflowApproved {
            approvers: vec![r.approver(0), r.approver(3), r.approver(4)],
            at: at(4),
        },
    ]);
}

#[test]
fn an_approver_decides_only_once() {
    let r = review(3, 5);
    given::<WorkflowAggregate>([r.created(), r.recorded(0, Decision::Approve, 1)])
        .when(r.decide(0, Decision::Approve, 2))
        .then_err(WorkflowError::AlreadyDecided(r.approver(0)));
    given::<WorkflowAggregate>([r.created(), r.recorded(0, Decision::Approve, 1)])
        .when(r.decide(0, Decision::Reject, 2))
        .then_err(WorkflowError::AlreadyDecided(r.approver(0)));
}

#[test]
fn someone_outside_the_key_cannot_approve() {
    let r = review(3, 5);
    let mallory = PartyIdentity::generate();
    given::<WorkflowAggregate>([r.created()])
        .when(WorkflowCommand::Decide {
            approver: PartyId::parse("mallory").unwrap(),
            decision: Decision::Approve,
            signature: mallory.sign_decision(r.id, &r.key, &hash(PAYLOAD), Decision::Approve),
            now: at(1),
        })
        .then_err(WorkflowError::NotAnApprover(
            PartyId::parse("mallory").unwrap(),
        ));
}

#[test]
fn approvals_signed_for_another_payload_workflow_decision_or_by_another_key_are_refused() {
    let r = review(3, 5);
    let other_key = KeyRef {
        key_id: KeyId::of_keygen(SessionId::new()),
        ..r.key.clone()
    };
    let refreshed = KeyRef {
        epoch: r.key.epoch + 1,
        ..r.key.clone()
    };
    let forged = [
        r.identities[0].sign_decision(r.id, &r.key, &hash(b"another payload"), Decision::Approve),
        r.identities[0].sign_decision(WorkflowId::new(), &r.key, &hash(PAYLOAD), Decision::Approve),
        r.identities[0].sign_decision(r.id, &r.key, &hash(PAYLOAD), Decision::Reject),
        r.identities[1].sign_decision(r.id, &r.key, &hash(PAYLOAD), Decision::Approve),
        r.identities[0].sign_decision(r.id, &other_key, &hash(PAYLOAD), Decision::Approve),
        r.identities[0].sign_decision(r.id, &refreshed, &hash(PAYLOAD), Decision::Approve),
    ];
    for signature in forged {
        given::<WorkflowAggregate>([r.created()])
            .when(WorkflowCommand::Decide {
                approver: r.approver(0),
                decision: Decision::Approve,
                signature,
                now: at(1),
            })
            .then_err(WorkflowError::BadApprovalSignature(r.approver(0)));
    }
}

#[test]
fn enough_rejections_to_make_t_impossible_reject_the_workflow() {
    // 3-of-5: the third rejection leaves only two possible approvals.
    let r = review(3, 5);
    given::<WorkflowAggregate>([
        r.created(),
        r.recorded(0, Decision::Reject, 1),
        r.recorded(1, Decision::Approve, 2),
        r.recorded(2, Decision::Reject, 3),
    ])
    .when(r.decide(3, Decision::Reject, 4))
    .then([
        r.recorded(3, Decision::Reject, 4),
        WorkflowEvent::WorkflowRejected {
            rejected_by: vec![r.approver(0), r.approver(2), r.approver(3)],
            at: at(4),
        },
    ]);
    // 4-of-7: three rejections still leave four possible approvals.
    let r = review(4, 7);
    given::<WorkflowAggregate>([
        r.created(),
        r.recorded(0, Decision::Reject, 1),
        r.recorded(1, Decision::Reject, 2),
    ])
    .when(r.decide(2, Decision::Reject, 3))
    .then([r.recorded(2, Decision::Reject, 3)]);
}

#[test]
fn a_decided_workflow_takes_no_more_decisions() {
    let r = review(3, 5);
    let rejected = WorkflowEvent::WorkflowRejected {
        rejected_by: vec![r.approver(0), r.approver(1), r.approver(2)],
        at: at(3),
    };
    given::<WorkflowAggregate>([r.created(), rejected])
        .when(r.decide(3, Decision::Approve, 4))
        .then_err(WorkflowError::NotPending(WorkflowStatus::Rejected));
}

#[test]
fn decisions_after_the_deadline_are_refused_and_the_deadline_expires_the_workflow() {
    let r = review(3, 5);
    given::<WorkflowAggregate>([r.created()])
        .when(r.decide(0, Decision::Approve, DAY))
        .then_err(WorkflowError::DeadlinePassed);
    given::<WorkflowAggregate>([r.created()])
        .when(WorkflowCommand::Expire { now: at(DAY - 1) })
        .then_err(WorkflowError::NotYetExpired(T0 + DAY));
    given::<WorkflowAggregate>([r.created()])
        .when(WorkflowCommand::Expire { now: at(DAY) })
        .then([WorkflowEvent::WorkflowExpired { at: at(DAY) }]);
    let state = WorkflowAggregate::deadline(&evolve(WorkflowState::default(), &r.created()));
    assert_eq!(state, Some(at(DAY)));
}

fn approved(r: &Review) -> Vec<WorkflowEvent> {
    vec![
        r.created(),
        r.recorded(0, Decision::Approve, 1),
        r.recorded(1, Decision::Approve, 2),
        r.recorded(2, Decision::Approve, 3),
        WorkflowEvent::WorkflowApproved {
            approvers: vec![r.approver(0), r.approver(1), r.approver(2)],
            at: at(3),
        },
    ]
}

#[test]
fn an_approved_workflow_does_not_expire_and_names_its_signing_session() {
    let r = review(3, 5);
    let state = approved(&r).iter().fold(WorkflowState::default(), evolve);
    assert_eq!(WorkflowAggregate::deadline(&state), None);
    let session = SessionId::new();
    given::<WorkflowAggregate>(approved(&r))
        .when(WorkflowCommand::RequestSigning {
            session_id: session,
            now: at(4),
        })
        .then([WorkflowEvent::SigningRequested {
            session_id: session,
            at: at(4),
        }]);
    let mut events = approved(&r);
    events.push(WorkflowEvent::SigningRequested {
        session_id: session,
        at: at(4),
    });
    given::<WorkflowAggregate>(events)
        .when(WorkflowCommand::RequestSigning {
            session_id: session,
            now: at(5),
        })
        .then_err(WorkflowError::SessionAlreadyRecorded(session));
}

#[test]
fn an_approved_workflow_authorizes_exactly_one_signing_session() {
    let r = review(3, 5);
    let first = SessionId::new();
    let mut events = approved(&r);
    events.push(WorkflowEvent::SigningRequested {
        session_id: first,
        at: at(4),
    });
    given::<WorkflowAggregate>(events)
        .when(WorkflowCommand::RequestSigning {
            session_id: SessionId::new(),
            now: at(5),
        })
        .then_err(WorkflowError::ApprovalsUsed(first));
}

#[test]
fn fewer_than_t_approvals_never_allow_signing() {
    let r = review(3, 5);
    given::<WorkflowAggregate>([
        r.created(),
        r.recorded(0, Decision::Approve, 1),
        r.recorded(1, Decision::Approve, 2),
    ])
    .when(WorkflowCommand::RequestSigning {
        session_id: SessionId::new(),
        now: at(3),
    })
    .then_err(WorkflowError::NotApproved(WorkflowStatus::Pending));
}

#[test]
fn the_evidence_of_an_approved_workflow_verifies_for_its_approvers() {
    let r = review(3, 5);
    let state = approved(&r).iter().fold(WorkflowState::default(), evolve);
    let evidence = state.0.unwrap().evidence().unwrap();
    let signers = vec![r.approver(0), r.approver(1), r.approver(2)];
    assert_eq!(
        mpc_crypto::verify_evidence(&evidence, &r.key, Some(PAYLOAD), &signers),
        Ok(())
    );
}
