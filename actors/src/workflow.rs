//! The approval-workflow aggregate: multi-person review as pure functions.
//!
//! pending → approved (t approvals) → signing (a signing session is named), or
//! pending → rejected (more than n − t rejections) | expired (deadline). Every
//! decision must carry a valid signature by the approver's identity key, as
//! registered with the key, over (workflow id, key id, group key, share generation,
//! payload hash, decision). An approved workflow names exactly one signing session.

use mpc_events::{
    ApprovalEvidence, Decision, IdentitySignature, MAX_PAYLOAD_BYTES, PartyId, SessionId,
    SignedApproval, Timestamp, WorkflowCommand, WorkflowCreated, WorkflowError, WorkflowEvent,
    WorkflowStatus, stream,
};
use mpc_schemas::{Encoded, SchemaError};
use sha2::{Digest, Sha256};

use crate::aggregate::Aggregate;

/// Longest workflow title, in characters.
const MAX_TITLE_CHARS: usize = 200;

/// One recorded decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedDecision {
    pub approver: PartyId,
    pub decision: Decision,
    pub signature: IdentitySignature,
    pub at: Timestamp,
}

/// A workflow as its stream records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    pub created: WorkflowCreated,
    pub status: WorkflowStatus,
    /// Decisions in the order they were recorded.
    pub decisions: Vec<RecordedDecision>,
    /// The t approvers whose approvals made the workflow approved.
    pub approvers: Vec<PartyId>,
    /// Signing sessions named for this workflow, oldest first.
    pub signing_sessions: Vec<SessionId>,
    pub updated_at: Timestamp,
}

impl Workflow {
    /// Approvals needed: the key's threshold t.
    pub fn needed(&self) -> usize {
        usize::from(self.created.key.threshold.t())
    }

    fn count(&self, decision: Decision) -> usize {
        self.decisions
            .iter()
            .filter(|d| d.decision == decision)
            .count()
    }

    /// The approvals a signing session carries, once the workflow is approved.
    pub fn evidence(&self) -> Option<ApprovalEvidence> {
        if self.approvers.is_empty() {
            return None;
        }
        let approvals = self
            .approvers
            .iter()
            .filter_map(|a| {
                self.decisions
                    .iter()
                    .find(|d| &d.approver == a && d.decision == Decision::Approve)
                    .map(|d| SignedApproval {
                        approver: a.clone(),
                        signature: d.signature,
                    })
            })
            .collect();
        Some(ApprovalEvidence {
            workflow_id: self.created.workflow_id,
            payload_hash: self.created.payload_hash,
            approvals,
        })
    }
}

/// The folded state of one workflow stream; `None` until it is created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkflowState(pub Option<Workflow>);

/// Marker type implementing [`Aggregate`] for approval workflows.
pub struct WorkflowAggregate;

impl Aggregate for WorkflowAggregate {
    type State = WorkflowState;
    type Command = WorkflowCommand;
    type Event = WorkflowEvent;
    type Error = WorkflowError;
    const CATEGORY: &'static str = stream::APPROVAL;

    fn decide(
        state: &WorkflowState,
        command: WorkflowCommand,
    ) -> Result<Vec<WorkflowEvent>, WorkflowError> {
        decide(state, command)
    }

    fn evolve(state: WorkflowState, event: &WorkflowEvent) -> WorkflowState {
        evolve(state, event)
    }

    fn deadline(state: &WorkflowState) -> Option<Timestamp> {
        state
            .0
            .as_ref()
            .filter(|w| w.status == WorkflowStatus::Pending)
            .map(|w| w.created.expires_at)
    }

    fn deadline_command(now: Timestamp) -> Option<WorkflowCommand> {
        Some(WorkflowCommand::Expire { now })
    }

    fn encode(event: &WorkflowEvent) -> Result<Encoded, SchemaError> {
        mpc_schemas::stored::approval::encode_workflow(event)
    }

    fn decode(
        event_type: &str,
        version: u16,
        payload: &[u8],
    ) -> Result<WorkflowEvent, SchemaError> {
        mpc_schemas::stored::approval::decode_workflow(event_type, version, payload)
    }

    fn occurred_at(event: &WorkflowEvent) -> Timestamp {
        event.at()
    }
}

/// The events `command` causes, or why it is refused. Pure.
pub fn decide(
    state: &WorkflowState,
    command: WorkflowCommand,
) -> Result<Vec<WorkflowEvent>, WorkflowError> {
    let Some(w) = &state.0 else {
        return match command {
            WorkflowCommand::Create {
                workflow_id,
                title,
                key,
                payload,
                payload_hash,
                expires_at,
                now,
            } => {
                let title = title.trim().to_owned();
                if !(1..=MAX_TITLE_CHARS).contains(&title.chars().count()) {
                    return Err(WorkflowError::InvalidTitle);
                }
                if !(1..=MAX_PAYLOAD_BYTES).contains(&payload.len()) {
                    return Err(WorkflowError::PayloadSize(payload.len()));
                }
                if Sha256::digest(&payload).as_slice() != payload_hash.as_bytes() {
                    return Err(WorkflowError::PayloadHashMismatch);
                }
                if expires_at <= now {
                    return Err(WorkflowError::InvalidDeadline);
                }
                Ok(vec![WorkflowEvent::WorkflowCreated(WorkflowCreated {
                    workflow_id,
                    title,
                    key,
                    payload,
                    payload_hash,
                    expires_at,
                    at: now,
                })])
            }
            _ => Err(WorkflowError::UnknownWorkflow),
        };
    };
    match command {
        WorkflowCommand::Create { .. } => Err(WorkflowError::AlreadyExists),
        WorkflowCommand::Decide {
            approver,
            decision,
            signature,
            now,
        } => decide_one(w, approver, decision, signature, now),
        WorkflowCommand::RequestSigning { session_id, now } => {
            if !matches!(w.status, WorkflowStatus::Approved | WorkflowStatus::Signing) {
                return Err(WorkflowError::NotApproved(w.status));
            }
            match w.signing_sessions.first() {
                Some(used) if *used == session_id => {
                    return Err(WorkflowError::SessionAlreadyRecorded(session_id));
                }
                Some(used) => return Err(WorkflowError::ApprovalsUsed(*used)),
                None => {}
            }
            Ok(vec![WorkflowEvent::SigningRequested {
                session_id,
                at: now,
            }])
        }
        WorkflowCommand::Expire { now } => {
            if w.status != WorkflowStatus::Pending {
                return Err(WorkflowError::NotPending(w.status));
            }
            if now < w.created.expires_at {
                return Err(WorkflowError::NotYetExpired(
                    w.created.expires_at.as_millis(),
                ));
            }
            Ok(vec![WorkflowEvent::WorkflowExpired { at: now }])
        }
    }
}

fn decide_one(
    w: &Workflow,
    approver: PartyId,
    decision: Decision,
    signature: IdentitySignature,
    now: Timestamp,
) -> Result<Vec<WorkflowEvent>, WorkflowError> {
    if w.status != WorkflowStatus::Pending {
        return Err(WorkflowError::NotPending(w.status));
    }
    if now >= w.created.expires_at {
        return Err(WorkflowError::DeadlinePassed);
    }
    let holder = w
        .created
        .key
        .parties
        .iter()
        .find(|p| p.party_id == approver)
        .ok_or_else(|| WorkflowError::NotAnApprover(approver.clone()))?;
    if w.decisions.iter().any(|d| d.approver == approver) {
        return Err(WorkflowError::AlreadyDecided(approver));
    }
    let valid = mpc_crypto::verify_decision(
        &holder.identity,
        w.created.workflow_id,
        &w.created.key,
        &w.created.payload_hash,
        decision,
        &signature,
    );
    if !valid {
        return Err(WorkflowError::BadApprovalSignature(approver));
    }
    let mut events = vec![WorkflowEvent::DecisionRecorded {
        approver: approver.clone(),
        decision,
        signature,
        at: now,
    }];
    let n = w.created.key.parties.len();
    let needed = w.needed();
    match decision {
        Decision::Approve if w.count(Decision::Approve) + 1 == needed => {
            let approvers = w
                .decisions
                .iter()
                .filter(|d| d.decision == Decision::Approve)
                .map(|d| d.approver.clone())
                .chain([approver])
                .collect();
            events.push(WorkflowEvent::WorkflowApproved { approvers, at: now });
        }
        Decision::Reject if w.count(Decision::Reject) + 1 > n - needed => {
            let rejected_by = w
                .decisions
                .iter()
                .filter(|d| d.decision == Decision::Reject)
                .map(|d| d.approver.clone())
                .chain([approver])
                .collect();
            events.push(WorkflowEvent::WorkflowRejected {
                rejected_by,
                at: now,
            });
        }
        _ => {}
    }
    Ok(events)
}

/// Folds one event into the state. Total.
pub fn evolve(state: WorkflowState, event: &WorkflowEvent) -> WorkflowState {
    let WorkflowState(current) = state;
    let next = match (current, event) {
        (None, WorkflowEvent::WorkflowCreated(created)) => Some(Workflow {
            created: created.clone(),
            status: WorkflowStatus::Pending,
            decisions: Vec::new(),
            approvers: Vec::new(),
            signing_sessions: Vec::new(),
            updated_at: created.at,
        }),
        (Some(mut w), e) => {
            w.updated_at = e.at();
            match e {
                WorkflowEvent::WorkflowCreated(_) => {}
                WorkflowEvent::DecisionRecorded {
                    approver,
                    decision,
                    signature,
                    at,
                } => w.decisions.push(RecordedDecision {
                    approver: approver.clone(),
                    decision: *decision,
                    signature: *signature,
                    at: *at,
                }),
                WorkflowEvent::WorkflowApproved { approvers, .. } => {
                    w.status = WorkflowStatus::Approved;
                    w.approvers = approvers.clone();
                }
                WorkflowEvent::WorkflowRejected { .. } => w.status = WorkflowStatus::Rejected,
                WorkflowEvent::WorkflowExpired { .. } => w.status = WorkflowStatus::Expired,
                WorkflowEvent::SigningRequested { session_id, .. } => {
                    w.status = WorkflowStatus::Signing;
                    w.signing_sessions.push(*session_id);
                }
            }
            Some(w)
        }
        (None, _) => None,
    };
    WorkflowState(next)
}

#[cfg(test)]
mod tests;
