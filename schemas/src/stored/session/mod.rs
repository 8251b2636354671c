//! Session event payloads: JSON, one struct per event type and schema version.
//!
//! Stored events carry their type name and schema version next to the payload.
//! [`decode`] accepts every version ever written and returns the current domain
//! event; [`encode`] always writes each type's [`current_version`]. When a payload
//! changes shape, add a module for the new version, bump that type's version, map
//! older payloads up in [`decode`], and add `fixtures/stored/session/<Type>.v<N>.json` next
//! to the older fixtures, which stay forever.
//!
//! Versions: `SessionCreated` v2 added the approval evidence of signing sessions
//! started by an approval workflow (v1 payloads decode with none); v3 added the
//! key's share generation (`epoch`; older payloads decode with 1) and refresh
//! sessions; v4 added a repair's authorizations (older repairs decode with none); v5
//! added a keygen's signing policy (older keygens decode as `any-request`); v6 added
//! a repair's signing policy (older repairs decode as `any-request`). `PartyCompleted` and `SessionCompleted` v2 added the `refreshed`
//! outcome. Every other type is at v1.

use std::collections::BTreeMap;

use mpc_events::{
    ApprovalEvidence, FailureReason, IdentityKey, IdentitySignature, KeyId, KeyPolicy, KeyRef,
    MessageHash, Participant, PartyId, PartyOutcome, PublicKey, RefreshDigest, RepairSpec,
    SessionEvent, SessionId, SessionSpec, Signature, SignedApproval, Threshold, Timestamp,
    TokenDigest, WorkflowId,
};
use serde::{Deserialize, Serialize};

use crate::json::{from_json, to_json, unhex};
use crate::{Encoded, SchemaError};

mod outcome_v2;
pub(crate) mod v1;
pub(crate) mod v2;
mod v3;
mod v4;
mod v5;
mod v6;

/// The schema version [`encode`] writes for `event_type`.
pub fn current_version(event_type: &str) -> u16 {
    match event_type {
        "SessionCreated" => 6,
        "PartyCompleted" | "SessionCompleted" => 2,
        _ => 1,
    }
}

/// Every session event type name, as stored.
pub const EVENT_TYPES: [&str; 7] = [
    "SessionCreated",
    "ParticipantJoined",
    "SessionStarted",
    "PartyCompleted",
    "SessionCompleted",
    "SessionFailed",
    "SessionExpired",
];

/// The session event types that end a session (completed, failed, expired).
pub const ENDING_EVENT_TYPES: [&str; 3] = ["SessionCompleted", "SessionFailed", "SessionExpired"];

/// Encodes a session event as its current-version JSON payload.
pub fn encode(event: &SessionEvent) -> Result<Encoded, SchemaError> {
    let payload = match event {
        SessionEvent::SessionCreated(c) => to_json(&v6::SessionCreated::from(c)),
        SessionEvent::ParticipantJoined { party_id, at } => to_json(&v1::ParticipantJoined {
            party_id: party_id.to_string(),
            at: v1::Time::from(*at),
        }),
        SessionEvent::SessionStarted { at } => to_json(&v1::At {
            at: v1::Time::from(*at),
        }),
        SessionEvent::PartyCompleted {
            party_id,
            outcome,
            at,
        } => to_json(&outcome_v2::PartyCompleted {
            party_id: party_id.to_string(),
            outcome: outcome_v2::Outcome::from(outcome),
            at: v1::Time::from(*at),
        }),
        SessionEvent::SessionCompleted { outcome, at } => to_json(&outcome_v2::SessionCompleted {
            outcome: outcome_v2::Outcome::from(outcome),
            at: v1::Time::from(*at),
        }),
        SessionEvent::SessionFailed { reason, at } => to_json(&v1::SessionFailed {
            reason: v1::Failure::from(reason),
            at: v1::Time::from(*at),
        }),
        SessionEvent::SessionExpired { at } => to_json(&v1::At {
            at: v1::Time::from(*at),
        }),
    }?;
    Ok(Encoded {
        event_type: event.type_name(),
        schema_version: current_version(event.type_name()),
        payload,
    })
}

/// Decodes a stored payload of any known version into the current domain event.
pub fn decode(
    event_type: &str,
    schema_version: u16,
    payload: &[u8],
) -> Result<SessionEvent, SchemaError> {
    let known = (1..=current_version(event_type)).contains(&schema_version);
    if !known {
        return Err(SchemaError::UnknownVersion {
            what: format!("{event_type} event"),
            version: schema_version,
        });
    }
    Ok(match event_type {
        "SessionCreated" if schema_version == 1 => {
            SessionEvent::SessionCreated(from_json::<v1::SessionCreated>(payload)?.try_into()?)
        }
        "SessionCreated" if schema_version == 2 => {
            SessionEvent::SessionCreated(from_json::<v2::SessionCreated>(payload)?.try_into()?)
        }
        "SessionCreated" if schema_version == 3 => {
            SessionEvent::SessionCreated(from_json::<v3::SessionCreated>(payload)?.try_into()?)
        }
        "SessionCreated" if schema_version == 4 => {
            SessionEvent::SessionCreated(from_json::<v4::SessionCreated>(payload)?.try_into()?)
        }
        "SessionCreated" if schema_version == 5 => {
            SessionEvent::SessionCreated(from_json::<v5::SessionCreated>(payload)?.try_into()?)
        }
        "SessionCreated" => {
            SessionEvent::SessionCreated(from_json::<v6::SessionCreated>(payload)?.try_into()?)
        }
        "PartyCompleted" if schema_version == 2 => {
            let e: outcome_v2::PartyCompleted = from_json(payload)?;
            SessionEvent::PartyCompleted {
                party_id: PartyId::parse(e.party_id)?,
                outcome: e.outcome.try_into()?,
                at: e.at.into(),
            }
        }
        "SessionCompleted" if schema_version == 2 => {
            let e: outcome_v2::SessionCompleted = from_json(payload)?;
            SessionEvent::SessionCompleted {
                outcome: e.outcome.try_into()?,
                at: e.at.into(),
            }
        }
        "ParticipantJoined" => {
            let e: v1::ParticipantJoined = from_json(payload)?;
            SessionEvent::ParticipantJoined {
                party_id: PartyId::parse(e.party_id)?,
                at: e.at.into(),
            }
        }
        "SessionStarted" => SessionEvent::SessionStarted {
            at: from_json::<v1::At>(payload)?.at.into(),
        },
        "PartyCompleted" => {
            let e: v1::PartyCompleted = from_json(payload)?;
            SessionEvent::PartyCompleted {
                party_id: PartyId::parse(e.party_id)?,
                outcome: e.outcome.try_into()?,
                at: e.at.into(),
            }
        }
        "SessionCompleted" => {
            let e: v1::SessionCompleted = from_json(payload)?;
            SessionEvent::SessionCompleted {
                outcome: e.outcome.try_into()?,
                at: e.at.into(),
            }
        }
        "SessionFailed" => {
            let e: v1::SessionFailed = from_json(payload)?;
            SessionEvent::SessionFailed {
                reason: e.reason.try_into()?,
                at: e.at.into(),
            }
        }
        "SessionExpired" => SessionEvent::SessionExpired {
            at: from_json::<v1::At>(payload)?.at.into(),
        },
        other => return Err(SchemaError::UnknownType(other.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::stored::fixtures;

    fn fixture_dir() -> PathBuf {
        fixtures::dir("session")
    }

    #[test]
    fn every_fixture_decodes_and_current_ones_reencode_to_the_same_json() {
        let all = fixtures::read("session");
        assert!(all.len() >= EVENT_TYPES.len());
        for (ty, version, bytes) in all {
            let event = decode(&ty, version, &bytes)
                .unwrap_or_else(|e| panic!("fixture {ty}.v{version}: {e}"));
            assert_eq!(event.type_name(), ty);
            let encoded = encode(&event).unwrap();
            assert_eq!(encoded.schema_version, current_version(&ty));
            let again = decode(&ty, encoded.schema_version, &encoded.payload).unwrap();
            assert_eq!(again, event, "{ty}.v{version} changes when upcast");
            if version == current_version(&ty) {
                let again: serde_json::Value = serde_json::from_slice(&encoded.payload).unwrap();
                let fixture: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(again, fixture, "{ty}.v{version} does not round-trip");
            }
        }
    }

    #[test]
    fn every_event_type_has_a_fixture_of_the_current_version() {
        let all = fixtures::read("session");
        for ty in EVENT_TYPES {
            let current = current_version(ty);
            assert!(
                all.iter().any(|(t, v, _)| t == ty && *v == current),
                "no fixture for {ty} v{current}"
            );
        }
    }

    #[test]
    fn v1_signing_sessions_decode_without_approval_evidence() {
        let bytes = std::fs::read(fixture_dir().join("SessionCreated.v1.signing.json")).unwrap();
        let SessionEvent::SessionCreated(c) = decode("SessionCreated", 1, &bytes).unwrap() else {
            panic!("not a SessionCreated");
        };
        assert!(matches!(
            c.spec,
            SessionSpec::Signing { approval: None, .. }
        ));
        let v2 =
            std::fs::read(fixture_dir().join("SessionCreated.v2.signing_approval.json")).unwrap();
        let SessionEvent::SessionCreated(c) = decode("SessionCreated", 2, &v2).unwrap() else {
            panic!("not a SessionCreated");
        };
        let SessionSpec::Signing {
            approval: Some(evidence),
            ..
        } = c.spec
        else {
            panic!("approval evidence lost");
        };
        assert_eq!(evidence.approvals.len(), 2);
        // v1 readers never see the v2 field: a v2 payload is not a valid v1 payload.
        assert!(decode("SessionCreated", 1, &v2).is_err());
    }

    #[test]
    fn keys_before_v3_are_their_first_share_generation_and_refresh_specs_need_v3() {
        for version in [1, 2] {
            let bytes = std::fs::read(
                fixture_dir().join(format!("SessionCreated.v{version}.signing.json")),
            )
            .unwrap();
            let SessionEvent::SessionCreated(c) =
                decode("SessionCreated", version, &bytes).unwrap()
            else {
                panic!("not a SessionCreated");
            };
            assert_eq!(c.spec.key().map(|k| k.epoch), Some(1));
        }
        let v3 =
            std::fs::read(fixture_dir().join("SessionCreated.v3.refresh_repair.json")).unwrap();
        let SessionEvent::SessionCreated(c) = decode("SessionCreated", 3, &v3).unwrap() else {
            panic!("not a SessionCreated");
        };
        let SessionSpec::Refresh {
            repair: Some(repair),
            ..
        } = &c.spec
        else {
            panic!("repair lost");
        };
        assert_eq!(repair.helpers.len(), 2);
        assert_eq!(c.participants[0].identity, repair.identity);
        assert!(decode("SessionCreated", 2, &v3).is_err());
        let refreshed =
            std::fs::read(fixture_dir().join("PartyCompleted.v2.refreshed.json")).unwrap();
        assert!(decode("PartyCompleted", 1, &refreshed).is_err());
        assert!(matches!(
            decode("PartyCompleted", 2, &refreshed).unwrap(),
            SessionEvent::PartyCompleted {
                outcome: PartyOutcome::Refreshed { .. },
                ..
            }
        ));
    }

    #[test]
    fn repairs_decode_with_the_authorizations_and_policy_their_version_carries() {
        let repair_of = |version: u16| {
            let bytes = std::fs::read(
                fixture_dir().join(format!("SessionCreated.v{version}.refresh_repair.json")),
            )
            .unwrap();
            let SessionEvent::SessionCreated(c) =
                decode("SessionCreated", version, &bytes).unwrap()
            else {
                panic!("not a SessionCreated");
            };
            let SessionSpec::Refresh {
                repair: Some(repair),
                ..
            } = c.spec
            else {
                panic!("repair lost");
            };
            (bytes, repair)
        };
        let (_, v3) = repair_of(3);
        assert!(v3.authorizations.is_empty());
        let (v4_bytes, v4) = repair_of(4);
        let approvers: Vec<&str> = v4
            .authorizations
            .iter()
            .map(|a| a.approver.as_str())
            .collect();
        assert_eq!(approvers, ["server", "recovery"]);
        assert_eq!(v4.authorizations[1].signature.as_bytes(), &[0x99; 64]);
        assert!(decode("SessionCreated", 3, &v4_bytes).is_err());
        for version in [3, 4, 5] {
            assert_eq!(repair_of(version).1.policy, KeyPolicy::AnyRequest);
        }
        let (v6_bytes, v6) = repair_of(6);
        assert_eq!(v6.policy, KeyPolicy::ApprovedOnly);
        assert!(decode("SessionCreated", 5, &v6_bytes).is_err());
    }

    #[test]
    fn unknown_types_versions_and_bad_payloads_are_errors() {
        let ok = br#"{"at":"2026-11-23T10:00:00Z"}"#;
        assert!(decode("SessionStarted", 1, ok).is_ok());
        assert!(matches!(
            decode("SessionStarted", 9, ok),
            Err(SchemaError::UnknownVersion { version: 9, .. })
        ));
        assert!(matches!(
            decode("Nope", 1, ok),
            Err(SchemaError::UnknownType(_))
        ));
        assert!(decode("SessionStarted", 1, b"{").is_err());
        assert!(decode("SessionStarted", 1, br#"{"at":"x"}"#).is_err());
        assert!(
            decode(
                "SessionStarted",
                1,
                br#"{"at":"2026-11-23T10:00:00Z","x":1}"#
            )
            .is_err()
        );
        assert!(
            decode(
                "ParticipantJoined",
                1,
                br#"{"party_id":"bad id","at":"2026-11-23T10:00:00Z"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn timestamps_keep_millisecond_precision() {
        let at = Timestamp::from_millis(1_795_000_000_123);
        let e = SessionEvent::SessionExpired { at };
        let enc = encode(&e).unwrap();
        assert_eq!(
            decode(enc.event_type, enc.schema_version, &enc.payload).unwrap(),
            e
        );
    }
}
