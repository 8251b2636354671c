//! Operator-registry event payloads (`operators-registry`): JSON, version 1.
//!
//! A credential's key is never stored, only its SHA-256 digest as lowercase hex.
//! Fixtures of every type live in `fixtures/stored/operator/`.

use mpc_events::{CredentialId, CredentialName, OperatorEvent, Role};
use serde::{Deserialize, Serialize};

use super::session::v1::Time;
use crate::json::{from_json, to_json, unhex};
use crate::{DecodeError, Encoded, SchemaError};

/// Every operator-registry event type name, as stored.
pub const OPERATOR_EVENT_TYPES: [&str; 2] = ["CredentialAdded", "CredentialRevoked"];

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Added {
    credential_id: String,
    name: String,
    role: String,
    key_sha256: String,
    at: Time,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Revoked {
    credential_id: String,
    at: Time,
}

/// Encodes an operator-registry event as its v1 JSON payload.
pub fn encode_operator(event: &OperatorEvent) -> Result<Encoded, SchemaError> {
    let payload = match event {
        OperatorEvent::CredentialAdded {
            id,
            name,
            role,
            digest,
            at,
        } => to_json(&Added {
            credential_id: id.to_string(),
            name: name.to_string(),
            role: role.to_string(),
            key_sha256: hex::encode(digest),
            at: (*at).into(),
        })?,
        OperatorEvent::CredentialRevoked { id, at } => to_json(&Revoked {
            credential_id: id.to_string(),
            at: (*at).into(),
        })?,
    };
    Ok(Encoded {
        event_type: event.type_name(),
        schema_version: 1,
        payload,
    })
}

/// Decodes a stored operator-registry event payload.
pub fn decode_operator(
    event_type: &str,
    schema_version: u16,
    payload: &[u8],
) -> Result<OperatorEvent, SchemaError> {
    if schema_version != 1 {
        return Err(SchemaError::UnknownVersion {
            what: format!("{event_type} event"),
            version: schema_version,
        });
    }
    Ok(match event_type {
        "CredentialAdded" => {
            let e: Added = from_json(payload)?;
            let digest = unhex("key_sha256", &e.key_sha256)?
                .try_into()
                .map_err(|_| DecodeError::Schema {
                    found: e.key_sha256.clone(),
                    expected: "64 hex digits",
                })?;
            OperatorEvent::CredentialAdded {
                id: e.credential_id.parse::<CredentialId>()?,
                name: CredentialName::parse(e.name.clone()).map_err(|_| DecodeError::Schema {
                    found: e.name,
                    expected: "a credential name",
                })?,
                role: e.role.parse::<Role>().map_err(|_| DecodeError::Schema {
                    found: e.role,
                    expected: "admin, key-manager, requester or auditor",
                })?,
                digest,
                at: e.at.into(),
            }
        }
        "CredentialRevoked" => {
            let e: Revoked = from_json(payload)?;
            OperatorEvent::CredentialRevoked {
                id: e.credential_id.parse::<CredentialId>()?,
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
    fn every_operator_fixture_round_trips_and_every_type_has_one() {
        let all = fixtures::read("operator");
        for ty in OPERATOR_EVENT_TYPES {
            assert!(
                all.iter().any(|(t, v, _)| t == ty && *v == 1),
                "no fixture for {ty}"
            );
        }
        for (ty, version, bytes) in all {
            let event = decode_operator(&ty, version, &bytes)
                .unwrap_or_else(|e| panic!("fixture {ty}.v{version}: {e}"));
            assert_eq!(event.type_name(), ty);
            let encoded = encode_operator(&event).unwrap();
            let again: serde_json::Value = serde_json::from_slice(&encoded.payload).unwrap();
            let fixture: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(again, fixture, "{ty}.v{version} does not round-trip");
        }
    }

    #[test]
    fn bad_operator_payloads_are_errors() {
        let added = |role: &str, digest: &str, name: &str| {
            format!(
                r#"{{"credential_id":"019ab5a0-0000-7000-8000-0000000000d1","name":"{name}","role":"{role}","key_sha256":"{digest}","at":"2026-12-08T10:00:00.000Z"}}"#
            )
        };
        let digest = "ab".repeat(32);
        assert!(
            decode_operator(
                "CredentialAdded",
                1,
                added("auditor", &digest, "ci").as_bytes()
            )
            .is_ok()
        );
        assert!(
            decode_operator(
                "CredentialAdded",
                1,
                added("root", &digest, "ci").as_bytes()
            )
            .is_err()
        );
        assert!(
            decode_operator(
                "CredentialAdded",
                1,
                added("auditor", "abcd", "ci").as_bytes()
            )
            .is_err()
        );
        assert!(
            decode_operator(
                "CredentialAdded",
                1,
                added("auditor", &digest, "").as_bytes()
            )
            .is_err()
        );
        assert!(
            decode_operator(
                "CredentialAdded",
                2,
                added("auditor", &digest, "ci").as_bytes()
            )
            .is_err()
        );
        assert!(
            decode_operator(
                "CredentialRevoked",
                1,
                br#"{"credential_id":"x","at":"2026-12-08T10:00:00.000Z"}"#
            )
            .is_err()
        );
        assert!(decode_operator("CredentialDeleted", 1, b"{}").is_err());
    }
}
