//! Account, uniqueness-claim and key-stream event payloads: JSON, version 1.
//!
//! Shapes follow the session payloads (bytes as lowercase hex, times RFC 3339 UTC
//! with milliseconds, participants as `{party_id, identity{signing, encryption}}`).
//! Fixtures of every type live in `fixtures/stored/account/`.
//! A recovery's kind is `{"kind":"device_lost","identity":{…}}` or
//! `{"kind":"share_rotation"}`.

use mpc_events::{
    AccountEvent, AccountId, AccountParties, ClaimEvent, Email, KeyEvent, Phone, RecoveryKind,
    SessionId, Username,
};
use serde::{Deserialize, Serialize};

use super::session::v1::{Identity, ParticipantV1, Time};
use crate::json::{from_json, to_json};
use crate::{Encoded, SchemaError};

/// Every account event type name, as stored.
pub const ACCOUNT_EVENT_TYPES: [&str; 11] = [
    "AccountOpened",
    "AccountKeygenRestarted",
    "AccountSuspended",
    "AccountLocked",
    "AccountRecoveryStarted",
    "AccountReactivated",
    "AccountUsed",
    "RecoveryRequested",
    "RecoveryInProgress",
    "RecoveryCompleted",
    "RecoveryFailed",
];

/// Every key-stream event type name, as stored.
pub const KEY_EVENT_TYPES: [&str; 1] = ["RefreshScheduled"];

/// Every claim event type name, as stored.
pub const CLAIM_EVENT_TYPES: [&str; 2] = ["ValueClaimed", "ValueReleased"];

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Parties {
    device: ParticipantV1,
    server: ParticipantV1,
    recovery: ParticipantV1,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Opened {
    account_id: String,
    username: String,
    email: String,
    phone: Option<String>,
    parties: Parties,
    keygen_session: String,
    at: Time,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keygen {
    keygen_session: String,
    at: Time,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: String,
    at: Time,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct At {
    at: Time,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Used {
    signing_session: String,
    at: Time,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Kind {
    DeviceLost { identity: Identity },
    ShareRotation,
}

impl From<&RecoveryKind> for Kind {
    fn from(kind: &RecoveryKind) -> Self {
        match kind {
            RecoveryKind::DeviceLost { identity } => Kind::DeviceLost {
                identity: Identity::from(identity),
            },
            RecoveryKind::ShareRotation => Kind::ShareRotation,
        }
    }
}

impl TryFrom<Kind> for RecoveryKind {
    type Error = SchemaError;
    fn try_from(kind: Kind) -> Result<Self, SchemaError> {
        Ok(match kind {
            Kind::DeviceLost { identity } => RecoveryKind::DeviceLost {
                identity: identity.try_into()?,
            },
            Kind::ShareRotation => RecoveryKind::ShareRotation,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoveryRequested {
    session_id: String,
    kind: Kind,
    at: Time,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoverySession {
    session_id: String,
    at: Time,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoveryFailed {
    session_id: String,
    reason: String,
    at: Time,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Owner {
    owner: String,
    at: Time,
}

fn check_version(what: &str, version: u16) -> Result<(), SchemaError> {
    if version == 1 {
        Ok(())
    } else {
        Err(SchemaError::UnknownVersion {
            what: format!("{what} event"),
            version,
        })
    }
}

/// Encodes an account event as its v1 JSON payload.
pub fn encode_account(event: &AccountEvent) -> Result<Encoded, SchemaError> {
    let payload = match event {
        AccountEvent::AccountOpened {
            account_id,
            username,
            email,
            phone,
            parties,
            keygen_session,
            at,
        } => to_json(&Opened {
            account_id: account_id.to_string(),
            username: username.to_string(),
            email: email.to_string(),
            phone: phone.as_ref().map(Phone::to_string),
            parties: Parties {
                device: ParticipantV1::from(&parties.device),
                server: ParticipantV1::from(&parties.server),
                recovery: ParticipantV1::from(&parties.recovery),
            },
            keygen_session: keygen_session.to_string(),
            at: (*at).into(),
        }),
        AccountEvent::AccountKeygenRestarted { keygen_session, at } => to_json(&Keygen {
            keygen_session: keygen_session.to_string(),
            at: (*at).into(),
        }),
        AccountEvent::AccountSuspended { reason, at }
        | AccountEvent::AccountLocked { reason, at }
        | AccountEvent::AccountRecoveryStarted { reason, at } => to_json(&Reason {
            reason: reason.clone(),
            at: (*at).into(),
        }),
        AccountEvent::AccountReactivated { at } => to_json(&At { at: (*at).into() }),
        AccountEvent::AccountUsed {
            signing_session,
            at,
        } => to_json(&Used {
            signing_session: signing_session.to_string(),
            at: (*at).into(),
        }),
        AccountEvent::RecoveryRequested {
            session_id,
            kind,
            at,
        } => to_json(&RecoveryRequested {
            session_id: session_id.to_string(),
            kind: Kind::from(kind),
            at: (*at).into(),
        }),
        AccountEvent::RecoveryInProgress { session_id, at }
        | AccountEvent::RecoveryCompleted { session_id, at } => to_json(&RecoverySession {
            session_id: session_id.to_string(),
            at: (*at).into(),
        }),
        AccountEvent::RecoveryFailed {
            session_id,
            reason,
            at,
        } => to_json(&RecoveryFailed {
            session_id: session_id.to_string(),
            reason: reason.clone(),
            at: (*at).into(),
        }),
    }?;
    Ok(Encoded {
        event_type: event.type_name(),
        schema_version: 1,
        payload,
    })
}

/// Decodes a stored account event payload.
pub fn decode_account(
    event_type: &str,
    schema_version: u16,
    payload: &[u8],
) -> Result<AccountEvent, SchemaError> {
    check_version(event_type, schema_version)?;
    Ok(match event_type {
        "AccountOpened" => {
            let e: Opened = from_json(payload)?;
            AccountEvent::AccountOpened {
                account_id: e.account_id.parse::<AccountId>()?,
                username: Username::parse(&e.username)?,
                email: Email::parse(&e.email)?,
                phone: e.phone.as_deref().map(Phone::parse).transpose()?,
                parties: AccountParties {
                    device: e.parties.device.try_into()?,
                    server: e.parties.server.try_into()?,
                    recovery: e.parties.recovery.try_into()?,
                },
                keygen_session: e.keygen_session.parse::<SessionId>()?,
                at: e.at.into(),
            }
        }
        "AccountKeygenRestarted" => {
            let e: Keygen = from_json(payload)?;
            AccountEvent::AccountKeygenRestarted {
                keygen_session: e.keygen_session.parse::<SessionId>()?,
                at: e.at.into(),
            }
        }
        "AccountSuspended" => {
            let e: Reason = from_json(payload)?;
            AccountEvent::AccountSuspended {
                reason: e.reason,
                at: e.at.into(),
            }
        }
        "AccountLocked" => {
            let e: Reason = from_json(payload)?;
            AccountEvent::AccountLocked {
                reason: e.reason,
                at: e.at.into(),
            }
        }
        "AccountRecoveryStarted" => {
            let e: Reason = from_json(payload)?;
            AccountEvent::AccountRecoveryStarted {
                reason: e.reason,
                at: e.at.into(),
            }
        }
        "AccountReactivated" => AccountEvent::AccountReactivated {
            at: from_json::<At>(payload)?.at.into(),
        },
        "AccountUsed" => {
            let e: Used = from_json(payload)?;
            AccountEvent::AccountUsed {
                signing_session: e.signing_session.parse::<SessionId>()?,
                at: e.at.into(),
            }
        }
        "RecoveryRequested" => {
            let e: RecoveryRequested = from_json(payload)?;
            AccountEvent::RecoveryRequested {
                session_id: e.session_id.parse::<SessionId>()?,
                kind: e.kind.try_into()?,
                at: e.at.into(),
            }
        }
        "RecoveryInProgress" => {
            let e: RecoverySession = from_json(payload)?;
            AccountEvent::RecoveryInProgress {
                session_id: e.session_id.parse::<SessionId>()?,
                at: e.at.into(),
            }
        }
        "RecoveryCompleted" => {
            let e: RecoverySession = from_json(payload)?;
            AccountEvent::RecoveryCompleted {
                session_id: e.session_id.parse::<SessionId>()?,
                at: e.at.into(),
            }
        }
        "RecoveryFailed" => {
            let e: RecoveryFailed = from_json(payload)?;
            AccountEvent::RecoveryFailed {
                session_id: e.session_id.parse::<SessionId>()?,
                reason: e.reason,
                at: e.at.into(),
            }
        }
        other => return Err(SchemaError::UnknownType(other.to_owned())),
    })
}

/// Encodes a key-stream event as its v1 JSON payload.
pub fn encode_key(event: &KeyEvent) -> Result<Encoded, SchemaError> {
    let KeyEvent::RefreshScheduled { session_id, at } = event;
    Ok(Encoded {
        event_type: event.type_name(),
        schema_version: 1,
        payload: to_json(&RecoverySession {
            session_id: session_id.to_string(),
            at: (*at).into(),
        })?,
    })
}

/// Decodes a stored key-stream event payload.
pub fn decode_key(
    event_type: &str,
    schema_version: u16,
    payload: &[u8],
) -> Result<KeyEvent, SchemaError> {
    check_version(event_type, schema_version)?;
    match event_type {
        "RefreshScheduled" => {
            let e: RecoverySession = from_json(payload)?;
            Ok(KeyEvent::RefreshScheduled {
                session_id: e.session_id.parse::<SessionId>()?,
                at: e.at.into(),
            })
        }
        other => Err(SchemaError::UnknownType(other.to_owned())),
    }
}

/// Encodes a claim event as its v1 JSON payload.
pub fn encode_claim(event: &ClaimEvent) -> Result<Encoded, SchemaError> {
    let (ClaimEvent::ValueClaimed { owner, at } | ClaimEvent::ValueReleased { owner, at }) = event;
    Ok(Encoded {
        event_type: event.type_name(),
        schema_version: 1,
        payload: to_json(&Owner {
            owner: owner.to_string(),
            at: (*at).into(),
        })?,
    })
}

/// Decodes a stored claim event payload.
pub fn decode_claim(
    event_type: &str,
    schema_version: u16,
    payload: &[u8],
) -> Result<ClaimEvent, SchemaError> {
    check_version(event_type, schema_version)?;
    let e: Owner = from_json(payload)?;
    let owner = e.owner.parse::<AccountId>()?;
    let at = e.at.into();
    Ok(match event_type {
        "ValueClaimed" => ClaimEvent::ValueClaimed { owner, at },
        "ValueReleased" => ClaimEvent::ValueReleased { owner, at },
        other => return Err(SchemaError::UnknownType(other.to_owned())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored::fixtures;

    #[test]
    fn every_account_fixture_round_trips_and_every_type_has_one() {
        let all = fixtures::read("account");
        for ty in ACCOUNT_EVENT_TYPES
            .iter()
            .chain(&CLAIM_EVENT_TYPES)
            .chain(&KEY_EVENT_TYPES)
        {
            assert!(
                all.iter().any(|(t, v, _)| t == ty && *v == 1),
                "no fixture for {ty}"
            );
        }
        for (ty, version, bytes) in all {
            let encoded = if CLAIM_EVENT_TYPES.contains(&ty.as_str()) {
                encode_claim(&decode_claim(&ty, version, &bytes).unwrap()).unwrap()
            } else if KEY_EVENT_TYPES.contains(&ty.as_str()) {
                encode_key(&decode_key(&ty, version, &bytes).unwrap()).unwrap()
            } else {
                let event = decode_account(&ty, version, &bytes)
                    .unwrap_or_else(|e| panic!("fixture {ty}.v{version}: {e}"));
                assert_eq!(event.type_name(), ty);
                encode_account(&event).unwrap()
            };
            let again: serde_json::Value = serde_json::from_slice(&encoded.payload).unwrap();
            let fixture: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(again, fixture, "{ty}.v{version} does not round-trip");
        }
    }

    #[test]
    fn bad_account_payloads_are_errors() {
        let at = r#""at":"2026-11-23T10:00:00.000Z""#;
        assert!(decode_account("AccountReactivated", 2, format!("{{{at}}}").as_bytes()).is_err());
        assert!(decode_account("Nope", 1, format!("{{{at}}}").as_bytes()).is_err());
        let bad_name = format!(r#"{{"signing_session":"not-a-uuid",{at}}}"#);
        assert!(decode_account("AccountUsed", 1, bad_name.as_bytes()).is_err());
        assert!(decode_claim("ValueClaimed", 1, br#"{"owner":"x"}"#).is_err());
    }
}
