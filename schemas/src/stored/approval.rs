//! Approval-workflow event payloads (JSON, version 1) and the transcript an
//! approver signs.
//!
//! Fixtures of every type live in `fixtures/stored/approval/`.

use mpc_events::{
    Decision, IdentityKey, IdentitySignature, KeyId, KeyRef, MessageHash, PartyId, SessionId,
    WorkflowCreated, WorkflowEvent, WorkflowId,
};
use serde::{Deserialize, Serialize};

use super::session::v1::{Key, Time, key_from_v1, key_v1, names, parse_names};
use crate::json::{from_json, to_json, unhex};
use crate::{Encoded, SchemaError};

/// Every workflow event type name, as stored.
pub const WORKFLOW_EVENT_TYPES: [&str; 6] = [
    "WorkflowCreated",
    "DecisionRecorded",
    "WorkflowApproved",
    "WorkflowRejected",
    "WorkflowExpired",
    "SigningRequested",
];

/// Domain tag of the approval transcript; a different tag (and so a different
/// first field) from every other message an identity key signs. Version 2 binds
/// the key; a v1 decision (workflow, payload hash, decision only) verifies nowhere.
const APPROVAL_DOMAIN: &[u8] = b"mpc-platform/approval-decision/v2";

/// Domain tag of the recovery transcript.
const RECOVERY_DOMAIN: &[u8] = b"mpc-platform/recovery-authorization/v1";

/// The bytes an approver signs with its identity key: a domain tag, the workflow id,
/// the key (id, group public key, share generation), the payload hash and the
/// decision, each length-prefixed (u64 big-endian), so no two different decisions
/// share a transcript and an approval for one key never verifies for another, nor
/// for the same key after a refresh.
pub fn approval_transcript(
    workflow_id: WorkflowId,
    key: &KeyRef,
    payload_hash: &MessageHash,
    decision: Decision,
) -> Vec<u8> {
    let decision = decision.to_string();
    let workflow = workflow_id.as_uuid();
    let key_id = key.key_id.keygen_session().as_uuid();
    length_prefixed(&[
        APPROVAL_DOMAIN,
        workflow.as_bytes(),
        key_id.as_bytes(),
        key.public_key.as_bytes(),
        &key.epoch.to_be_bytes(),
        payload_hash.as_bytes(),
        decision.as_bytes(),
    ])
}

/// The bytes a key holder signs with its identity key to authorize a repair: a
/// domain tag, the key id, the share generation the repair starts from, the target
/// holder and the new device's identity keys (signing, encryption), each
/// length-prefixed. The generation makes an authorization single-use: once the
/// repair completes, the key is at the next generation and the signature no longer
/// matches any repair of it.
pub fn recovery_transcript(
    key_id: KeyId,
    epoch: u32,
    target: &PartyId,
    identity: &IdentityKey,
) -> Vec<u8> {
    let key = key_id.keygen_session().as_uuid();
    length_prefixed(&[
        RECOVERY_DOMAIN,
        key.as_bytes(),
        &epoch.to_be_bytes(),
        target.as_str().as_bytes(),
        identity.signing(),
        identity.encryption(),
    ])
}

fn length_prefixed(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fields.iter().map(|f| 8 + f.len()).sum());
    for field in fields {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Created {
    workflow_id: String,
    title: String,
    key: Key,
    payload: String,
    payload_hash: String,
    expires_at: Time,
    at: Time,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum DecisionV1 {
    Approve,
    Reject,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decided {
    approver: String,
    decision: DecisionV1,
    signature: String,
    at: Time,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Approved {
    approvers: Vec<String>,
    at: Time,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rejected {
    rejected_by: Vec<String>,
    at: Time,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct At {
    at: Time,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Requested {
    session_id: String,
    at: Time,
}

/// Encodes a workflow event as its v1 JSON payload.
pub fn encode_workflow(event: &WorkflowEvent) -> Result<Encoded, SchemaError> {
    let payload = match event {
        WorkflowEvent::WorkflowCreated(c) => to_json(&Created {
            workflow_id: c.workflow_id.to_string(),
            title: c.title.clone(),
            key: key_v1(&c.key),
            payload: hex::encode(&c.payload),
            payload_hash: hex::encode(c.payload_hash.as_bytes()),
            expires_at: c.expires_at.into(),
            at: c.at.into(),
        }),
        WorkflowEvent::DecisionRecorded {
            approver,
            decision,
            signature,
            at,
        } => to_json(&Decided {
            approver: approver.to_string(),
            decision: match decision {
                Decision::Approve => DecisionV1::Approve,
                Decision::Reject => DecisionV1::Reject,
            },
            signature: hex::encode(signature.as_bytes()),
            at: (*at).into(),
        }),
        WorkflowEvent::WorkflowApproved { approvers, at } => to_json(&Approved {
            approvers: names(approvers),
            at: (*at).into(),
        }),
        WorkflowEvent::WorkflowRejected { rejected_by, at } => to_json(&Rejected {
            rejected_by: names(rejected_by),
            at: (*at).into(),
        }),
        WorkflowEvent::WorkflowExpired { at } => to_json(&At { at: (*at).into() }),
        WorkflowEvent::SigningRequested { session_id, at } => to_json(&Requested {
            session_id: session_id.to_string(),
            at: (*at).into(),
        }),
    }?;
    Ok(Encoded {
        event_type: event.type_name(),
        schema_version: 1,
        payload,
    })
}

/// Decodes a stored workflow event payload.
pub fn decode_workflow(
    event_type: &str,
    schema_version: u16,
    payload: &[u8],
) -> Result<WorkflowEvent, SchemaError> {
    if schema_version != 1 {
        return Err(SchemaError::UnknownVersion {
            what: format!("{event_type} event"),
            version: schema_version,
        });
    }
    Ok(match event_type {
        "WorkflowCreated" => {
            let e: Created = from_json(payload)?;
            WorkflowEvent::WorkflowCreated(WorkflowCreated {
                workflow_id: e.workflow_id.parse::<WorkflowId>()?,
                title: e.title,
                key: key_from_v1(e.key)?,
                payload: unhex("payload", &e.payload)?,
                payload_hash: MessageHash::from_slice(&unhex("payload_hash", &e.payload_hash)?)?,
                expires_at: e.expires_at.into(),
                at: e.at.into(),
            })
        }
        "DecisionRecorded" => {
            let e: Decided = from_json(payload)?;
            WorkflowEvent::DecisionRecorded {
                approver: PartyId::parse(e.approver)?,
                decision: match e.decision {
                    DecisionV1::Approve => Decision::Approve,
                    DecisionV1::Reject => Decision::Reject,
                },
                signature: IdentitySignature::from_slice(&unhex("signature", &e.signature)?)?,
                at: e.at.into(),
            }
        }
        "WorkflowApproved" => {
            let e: Approved = from_json(payload)?;
            WorkflowEvent::WorkflowApproved {
                approvers: parse_names(e.approvers)?,
                at: e.at.into(),
            }
        }
        "WorkflowRejected" => {
            let e: Rejected = from_json(payload)?;
            WorkflowEvent::WorkflowRejected {
                rejected_by: parse_names(e.rejected_by)?,
                at: e.at.into(),
            }
        }
        "WorkflowExpired" => WorkflowEvent::WorkflowExpired {
            at: from_json::<At>(payload)?.at.into(),
        },
        "SigningRequested" => {
            let e: Requested = from_json(payload)?;
            WorkflowEvent::SigningRequested {
                session_id: e.session_id.parse::<SessionId>()?,
                at: e.at.into(),
            }
        }
        other => return Err(SchemaError::UnknownType(other.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored::fixtures;

    #[test]
    fn every_workflow_fixture_round_trips_and_every_type_has_one() {
        let all = fixtures::read("approval");
        for ty in WORKFLOW_EVENT_TYPES {
            assert!(
                all.iter().any(|(t, v, _)| t == ty && *v == 1),
                "no fixture for {ty}"
            );
        }
        for (ty, version, bytes) in all {
            let event = decode_workflow(&ty, version, &bytes)
                .unwrap_or_else(|e| panic!("fixture {ty}.v{version}: {e}"));
            assert_eq!(event.type_name(), ty);
            let encoded = encode_workflow(&event).unwrap();
            let again: serde_json::Value = serde_json::from_slice(&encoded.payload).unwrap();
            let fixture: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(again, fixture, "{ty}.v{version} does not round-trip");
        }
    }

    #[test]
    fn transcripts_differ_in_every_field_and_are_length_prefixed() {
        let w = WorkflowId::new();
        let h = MessageHash::from_bytes([1; 32]);
        let mut pk = [7u8; 33];
        pk[0] = 2;
        let key = KeyRef {
            key_id: KeyId::of_keygen(SessionId::new()),
            public_key: mpc_events::PublicKey::from_slice(&pk).unwrap(),
            threshold: mpc_events::Threshold::new(2, 3).unwrap(),
            parties: Vec::new(),
            epoch: 1,
        };
        let base = approval_transcript(w, &key, &h, Decision::Approve);
        assert_ne!(base, approval_transcript(w, &key, &h, Decision::Reject));
        assert_ne!(
            base,
            approval_transcript(WorkflowId::new(), &key, &h, Decision::Approve)
        );
        let other_hash = MessageHash::from_bytes([2; 32]);
        assert_ne!(
            base,
            approval_transcript(w, &key, &other_hash, Decision::Approve)
        );
        let other_key = KeyRef {
            key_id: KeyId::of_keygen(SessionId::new()),
            ..key.clone()
        };
        let mut other_pk = pk;
        other_pk[0] = 3;
        let other_group_key = KeyRef {
            public_key: mpc_events::PublicKey::from_slice(&other_pk).unwrap(),
            ..key.clone()
        };
        let refreshed = KeyRef {
            epoch: 2,
            ..key.clone()
        };
        for other in [other_key, other_group_key, refreshed] {
            assert_ne!(base, approval_transcript(w, &other, &h, Decision::Approve));
        }
        assert_eq!(&base[..8], &(APPROVAL_DOMAIN.len() as u64).to_be_bytes());
        assert_eq!(
            base.len(),
            7 * 8 + APPROVAL_DOMAIN.len() + 16 + 16 + 33 + 4 + 32 + "approve".len()
        );
    }

    #[test]
    fn bad_decisions_are_errors() {
        let sig = "ab".repeat(64);
        let ok = format!(
            r#"{{"approver":"approver-1","decision":"approve","signature":"{sig}","at":"2026-11-23T10:00:00.000Z"}}"#
        );
        assert!(decode_workflow("DecisionRecorded", 1, ok.as_bytes()).is_ok());
        let maybe = ok.replace("\"approve\"", "\"maybe\"");
        assert!(decode_workflow("DecisionRecorded", 1, maybe.as_bytes()).is_err());
        let short = ok.replace(&sig, "abcd");
        assert!(decode_workflow("DecisionRecorded", 1, short.as_bytes()).is_err());
        assert!(decode_workflow("DecisionRecorded", 3, ok.as_bytes()).is_err());
    }
}
