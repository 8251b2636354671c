//! Which recorded events become domain events, and how: one function per stream
//! category.

use mpc_events::{
    AccountEvent, FailureReason, KeyId, Participant, PartyId, PartyOutcome, SessionCreated,
    SessionEvent, SessionSpec, ShareRole, WorkflowEvent, stream,
};
use mpc_schemas::DomainEvent;
use mpc_schemas::domain::{
    AccountCreated, DomainData, FailureCode, KeyGenerated, KeyRefreshed, SessionFailed,
    SignatureProduced, WorkflowDecided,
};
use mpc_schemas::stored::{account, approval, session};
use mpc_store::{EventStore, RecordedEvent};

use crate::OutboxError;

/// The domain event `event` stands for, if it is one that external consumers see.
///
/// Selection is by stream category and event type before anything is decoded; a
/// selected event that cannot be decoded or mapped is an error, never skipped. The
/// store is read for context: a session's terminal event is mapped with the facts of
/// its stream's `SessionCreated`.
pub async fn domain_event(
    store: &dyn EventStore,
    event: &RecordedEvent,
) -> Result<Option<DomainEvent>, OutboxError> {
    let data = match event.stream.category() {
        stream::SESSION => session_data(store, event).await?,
        stream::ACCOUNT => account_data(event)?,
        stream::APPROVAL => workflow_data(store, event).await?,
        _ => None,
    };
    Ok(data.map(|data| DomainEvent {
        event_id: event.event_id,
        position: event.position,
        occurred_at: event.occurred_at,
        correlation_id: event.correlation_id,
        data,
    }))
}

/// `key.generated`, `key.refreshed`, `signature.produced` and `session.failed`, from
/// a session's `SessionCompleted`, `SessionFailed` and `SessionExpired`.
async fn session_data(
    store: &dyn EventStore,
    event: &RecordedEvent,
) -> Result<Option<DomainData>, OutboxError> {
    if !session::ENDING_EVENT_TYPES.contains(&event.event_type.as_str()) {
        return Ok(None);
    }
    let decoded = session::decode(&event.event_type, event.schema_version, &event.payload)
        .map_err(|e| invalid(event, e))?;
    let created = session_created(store, event).await?;
    let data = match (decoded, &created.spec) {
        (
            SessionEvent::SessionCompleted {
                outcome: PartyOutcome::PublicKey(public_key),
                ..
            },
            SessionSpec::Keygen { threshold, policy },
        ) => DomainData::KeyGenerated(KeyGenerated {
            key_id: KeyId::of_keygen(created.session_id),
            public_key,
            threshold: *threshold,
            parties: party_ids(&created.participants),
            policy: *policy,
        }),
        (
            SessionEvent::SessionCompleted {
                outcome: PartyOutcome::Signature(signature),
                ..
            },
            SessionSpec::Signing {
                key, message_hash, ..
            },
        ) => DomainData::SignatureProduced(SignatureProduced {
            session_id: created.session_id,
            key_id: key.key_id,
            public_key: key.public_key,
            message_hash: *message_hash,
            signature,
            signers: party_ids(&created.participants),
        }),
        (
            SessionEvent::SessionCompleted {
                outcome: PartyOutcome::Refreshed { public_key, .. },
                ..
            },
            SessionSpec::Refresh { key, repair },
        ) => DomainData::KeyRefreshed(KeyRefreshed {
            key_id: key.key_id,
            session_id: created.session_id,
            public_key,
            epoch: key.refreshed(repair.as_deref()).epoch,
            repaired: repair.as_ref().map(|r| r.target.clone()),
        }),
        (SessionEvent::SessionCompleted { .. }, spec) => {
            return Err(invalid(
                event,
                format!(
                    "a {} session completed with the other kind's outcome",
                    spec.kind()
                ),
            ));
        }
        (SessionEvent::SessionFailed { reason, .. }, spec) => {
            let (reason, detail, culprits) = match reason {
                FailureReason::PublicKeyMismatch { disagreeing } => {
                    (FailureCode::PublicKeyMismatch, None, disagreeing)
                }
                FailureReason::InvalidSignature { reported_by } => {
                    (FailureCode::InvalidSignature, None, vec![reported_by])
                }
                FailureReason::PartyAborted {
                    culprits, detail, ..
                } => (FailureCode::PartyAborted, Some(detail), culprits),
                FailureReason::Closed { reason } => (FailureCode::Closed, Some(reason), vec![]),
            };
            DomainData::SessionFailed(SessionFailed {
                session_id: created.session_id,
                kind: spec.kind(),
                reason,
                detail,
                culprits,
            })
        }
        (SessionEvent::SessionExpired { .. }, spec) => DomainData::SessionFailed(SessionFailed {
            session_id: created.session_id,
            kind: spec.kind(),
            reason: FailureCode::Expired,
            detail: None,
            culprits: vec![],
        }),
        (other, _) => {
            return Err(invalid(event, format!("decoded as {}", other.type_name())));
        }
    };
    Ok(Some(data))
}

/// `account.created`, from `AccountOpened`.
fn account_data(event: &RecordedEvent) -> Result<Option<DomainData>, OutboxError> {
    if event.event_type != "AccountOpened" {
        return Ok(None);
    }
    let decoded = account::decode_account(&event.event_type, event.schema_version, &event.payload)
        .map_err(|e| invalid(event, e))?;
    let AccountEvent::AccountOpened {
        account_id,
        username,
        parties,
        keygen_session,
        ..
    } = decoded
    else {
        return Err(invalid(
            event,
            format!("decoded as {}", decoded.type_name()),
        ));
    };
    Ok(Some(DomainData::AccountCreated(AccountCreated {
        account_id,
        username,
        keygen_session,
        shares: ShareRole::ALL
            .iter()
            .map(|role| (*role, parties.get(*role).party_id.clone()))
            .collect(),
    })))
}

/// `workflow.approved` and `workflow.rejected`, from `WorkflowApproved` and
/// `WorkflowRejected`, with the key and payload hash of the stream's
/// `WorkflowCreated`.
async fn workflow_data(
    store: &dyn EventStore,
    event: &RecordedEvent,
) -> Result<Option<DomainData>, OutboxError> {
    if !matches!(
        event.event_type.as_str(),
        "WorkflowApproved" | "WorkflowRejected"
    ) {
        return Ok(None);
    }
    let decoded =
        approval::decode_workflow(&event.event_type, event.schema_version, &event.payload)
            .map_err(|e| invalid(event, e))?;
    let (approved, deciders) = match decoded {
        WorkflowEvent::WorkflowApproved { approvers, .. } => (true, approvers),
        WorkflowEvent::WorkflowRejected { rejected_by, .. } => (false, rejected_by),
        other => return Err(invalid(event, format!("decoded as {}", other.type_name()))),
    };
    let first = stream_start(store, event).await?;
    let created =
        match approval::decode_workflow(&first.event_type, first.schema_version, &first.payload) {
            Ok(WorkflowEvent::WorkflowCreated(created)) => created,
            Ok(other) => {
                return Err(invalid(
                    event,
                    format!(
                        "stream {} starts with {}, not WorkflowCreated",
                        event.stream,
                        other.type_name()
                    ),
                ));
            }
            Err(e) => return Err(invalid(event, format!("its WorkflowCreated: {e}"))),
        };
    Ok(Some(DomainData::WorkflowDecided(WorkflowDecided {
        workflow_id: created.workflow_id,
        key_id: created.key.key_id,
        payload_hash: created.payload_hash,
        approved,
        deciders,
    })))
}

/// The first event of `event`'s stream, which must be its `SessionCreated`.
async fn session_created(
    store: &dyn EventStore,
    event: &RecordedEvent,
) -> Result<SessionCreated, OutboxError> {
    let first = stream_start(store, event).await?;
    match session::decode(&first.event_type, first.schema_version, &first.payload) {
        Ok(SessionEvent::SessionCreated(created)) => Ok(created),
        Ok(other) => Err(invalid(
            event,
            format!(
                "stream {} starts with {}, not SessionCreated",
                event.stream,
                other.type_name()
            ),
        )),
        Err(e) => Err(invalid(event, format!("its SessionCreated: {e}"))),
    }
}

/// The first event of `event`'s stream, which holds the context its later events
/// are mapped with.
async fn stream_start(
    store: &dyn EventStore,
    event: &RecordedEvent,
) -> Result<RecordedEvent, OutboxError> {
    store
        .read_stream(&event.stream, 1)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| invalid(event, format!("stream {} is empty", event.stream)))
}

fn party_ids(participants: &[Participant]) -> Vec<PartyId> {
    participants.iter().map(|p| p.party_id.clone()).collect()
}

fn invalid(event: &RecordedEvent, detail: impl ToString) -> OutboxError {
    OutboxError::Map {
        event_id: event.event_id,
        position: event.position,
        detail: detail.to_string(),
    }
}
