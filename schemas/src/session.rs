//! Session event payloads: JSON, one struct per event type and schema version.
//!
//! Stored events carry their type name and schema version next to the payload.
//! [`decode`] accepts every version ever written and returns the current domain
//! event; [`encode`] always writes each type's [`current_version`]. When a payload
//! changes shape, add a module for the new version, bump that type's version, map
//! older payloads up in [`decode`], and add `fixtures/session/<Type>.v<N>.json` next
//! to the older fixtures, which stay forever.
//!
//! Versions: `SessionCreated` v2 added the approval evidence of signing sessions
//! started by an approval workflow (v1 payloads decode with none); v3 added the
//! key's share generation (`epoch`; older payloads decode with 1) and refresh
//! sessions. `PartyCompleted` and `SessionCompleted` v2 added the `refreshed`
//! outcome. Every other type is at v1.

use std::collections::BTreeMap;

use mpc_events::{
    ApprovalEvidence, FailureReason, IdentityKey, IdentitySignature, KeyId, KeyRef, MessageHash,
    Participant, PartyId, PartyOutcome, PublicKey, RefreshDigest, RepairSpec, SessionEvent,
    SessionId, SessionSpec, Signature, SignedApproval, Threshold, Timestamp, TokenDigest,
    WorkflowId,
};
use serde::{Deserialize, Serialize};

use crate::{Encoded, SchemaError};

/// The schema version [`encode`] writes for `event_type`.
pub fn current_version(event_type: &str) -> u16 {
    match event_type {
        "SessionCreated" => 3,
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
        SessionEvent::SessionCreated(c) => to_json(&v3::SessionCreated::from(c)),
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
        "SessionCreated" => {
            SessionEvent::SessionCreated(from_json::<v3::SessionCreated>(payload)?.try_into()?)
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

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, SchemaError> {
    serde_json::to_vec(value).map_err(|e| SchemaError::Encode(e.to_string()))
}

pub(crate) fn from_json<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, SchemaError> {
    serde_json::from_slice(payload).map_err(|e| SchemaError::Decode(e.to_string()))
}

pub(crate) fn unhex(field: &str, s: &str) -> Result<Vec<u8>, SchemaError> {
    hex::decode(s).map_err(|e| SchemaError::Decode(format!("{field}: {e}")))
}

/// Version 1 payloads. Bytes are lowercase hex; times are RFC 3339 UTC. The time,
/// participant and key shapes are shared with the account and workflow payloads.
pub(crate) mod v1 {
    use super::*;

    /// RFC 3339 in UTC; written with exactly three fractional digits
    /// (`2026-11-23T10:00:00.000Z`) so that encoding is stable, read in any RFC 3339 form.
    #[derive(Debug, Clone, Copy)]
    pub struct Time(time::OffsetDateTime);

    const WRITE_FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );

    impl Serialize for Time {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let utc = self.0.to_offset(time::UtcOffset::UTC);
            let text = utc
                .format(WRITE_FORMAT)
                .map_err(serde::ser::Error::custom)?;
            s.serialize_str(&text)
        }
    }

    impl<'de> Deserialize<'de> for Time {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
                .map(Self)
                .map_err(serde::de::Error::custom)
        }
    }

    impl From<Timestamp> for Time {
        fn from(t: Timestamp) -> Self {
            let nanos = i128::from(t.as_millis()) * 1_000_000;
            Self(
                time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            )
        }
    }

    impl From<Time> for Timestamp {
        fn from(t: Time) -> Self {
            let millis = t.0.unix_timestamp_nanos() / 1_000_000;
            Timestamp::from_millis(i64::try_from(millis).unwrap_or(i64::MAX))
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct At {
        pub at: Time,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ThresholdV1 {
        pub t: u16,
        pub n: u16,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Identity {
        pub signing: String,
        pub encryption: String,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ParticipantV1 {
        pub party_id: String,
        pub identity: Identity,
    }

    impl From<&IdentityKey> for Identity {
        fn from(identity: &IdentityKey) -> Self {
            Self {
                signing: hex::encode(identity.signing()),
                encryption: hex::encode(identity.encryption()),
            }
        }
    }

    impl TryFrom<Identity> for IdentityKey {
        type Error = SchemaError;
        fn try_from(identity: Identity) -> Result<Self, SchemaError> {
            Ok(IdentityKey::new(
                &unhex("identity.signing", &identity.signing)?,
                &unhex("identity.encryption", &identity.encryption)?,
            )?)
        }
    }

    impl From<&Participant> for ParticipantV1 {
        fn from(p: &Participant) -> Self {
            Self {
                party_id: p.party_id.to_string(),
                identity: Identity::from(&p.identity),
            }
        }
    }

    impl TryFrom<ParticipantV1> for Participant {
        type Error = SchemaError;
        fn try_from(p: ParticipantV1) -> Result<Self, SchemaError> {
            Ok(Participant {
                party_id: PartyId::parse(p.party_id)?,
                identity: p.identity.try_into()?,
            })
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Key {
        pub key_id: String,
        pub public_key: String,
        pub threshold: ThresholdV1,
        pub parties: Vec<ParticipantV1>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    pub enum Spec {
        Keygen {
            threshold: ThresholdV1,
        },
        Signing {
            key: Key,
            message_hash: String,
            message: Option<String>,
        },
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SessionCreated {
        pub session_id: String,
        pub spec: Spec,
        pub participants: Vec<ParticipantV1>,
        pub join_tokens: BTreeMap<String, String>,
        pub join_expires_at: Time,
        pub expires_at: Time,
        pub at: Time,
    }

    pub fn threshold_v1(t: &Threshold) -> ThresholdV1 {
        ThresholdV1 {
            t: u16::from(t.t()),
            n: u16::from(t.n()),
        }
    }

    /// The v1 key shape, still written in workflow payloads, which name a key and
    /// its holders but not a share generation.
    pub fn key_v1(key: &KeyRef) -> Key {
        Key {
            key_id: key.key_id.to_string(),
            public_key: hex::encode(key.public_key.as_bytes()),
            threshold: threshold_v1(&key.threshold),
            parties: key.parties.iter().map(ParticipantV1::from).collect(),
        }
    }

    /// A v1 key; its share generation reads as the first.
    pub fn key_from_v1(key: Key) -> Result<KeyRef, SchemaError> {
        Ok(KeyRef {
            key_id: key.key_id.parse::<KeyId>()?,
            public_key: PublicKey::from_slice(&unhex("key.public_key", &key.public_key)?)?,
            threshold: Threshold::new(key.threshold.t, key.threshold.n)?,
            parties: key
                .parties
                .into_iter()
                .map(Participant::try_from)
                .collect::<Result<_, _>>()?,
            epoch: 1,
        })
    }

    pub fn participants_from_v1(
        participants: Vec<ParticipantV1>,
    ) -> Result<Vec<Participant>, SchemaError> {
        participants
            .into_iter()
            .map(Participant::try_from)
            .collect()
    }

    pub fn tokens_from_v1(
        tokens: BTreeMap<String, String>,
    ) -> Result<BTreeMap<PartyId, TokenDigest>, SchemaError> {
        tokens
            .into_iter()
            .map(|(p, d)| {
                Ok((
                    PartyId::parse(p)?,
                    TokenDigest::from_slice(&unhex("join_tokens", &d)?)?,
                ))
            })
            .collect()
    }

    impl TryFrom<SessionCreated> for mpc_events::SessionCreated {
        type Error = SchemaError;
        fn try_from(c: SessionCreated) -> Result<Self, SchemaError> {
            let spec = match c.spec {
                Spec::Keygen { threshold } => SessionSpec::Keygen {
                    threshold: Threshold::new(threshold.t, threshold.n)?,
                },
                Spec::Signing {
                    key,
                    message_hash,
                    message,
                } => SessionSpec::Signing {
                    key: key_from_v1(key)?,
                    message_hash: MessageHash::from_slice(&unhex("message_hash", &message_hash)?)?,
                    message: message.map(|m| unhex("message", &m)).transpose()?,
                    approval: None,
                },
            };
            Ok(Self {
                session_id: c.session_id.parse::<SessionId>()?,
                spec,
                participants: participants_from_v1(c.participants)?,
                join_tokens: tokens_from_v1(c.join_tokens)?,
                join_expires_at: c.join_expires_at.into(),
                expires_at: c.expires_at.into(),
                at: c.at.into(),
            })
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ParticipantJoined {
        pub party_id: String,
        pub at: Time,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    pub enum Outcome {
        PublicKey {
            public_key: String,
        },
        Signature {
            r: String,
            s: String,
            recovery_id: u8,
        },
    }

    impl TryFrom<Outcome> for PartyOutcome {
        type Error = SchemaError;
        fn try_from(o: Outcome) -> Result<Self, SchemaError> {
            Ok(match o {
                Outcome::PublicKey { public_key } => PartyOutcome::PublicKey(
                    PublicKey::from_slice(&unhex("public_key", &public_key)?)?,
                ),
                Outcome::Signature { r, s, recovery_id } => PartyOutcome::Signature(
                    Signature::new(&unhex("r", &r)?, &unhex("s", &s)?, recovery_id)?,
                ),
            })
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PartyCompleted {
        pub party_id: String,
        pub outcome: Outcome,
        pub at: Time,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SessionCompleted {
        pub outcome: Outcome,
        pub at: Time,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    pub enum Failure {
        PublicKeyMismatch {
            disagreeing: Vec<String>,
        },
        InvalidSignature {
            reported_by: String,
        },
        PartyAborted {
            reported_by: String,
            culprits: Vec<String>,
            detail: String,
        },
        Closed {
            reason: String,
        },
    }

    pub fn names(ps: &[PartyId]) -> Vec<String> {
        ps.iter().map(PartyId::to_string).collect()
    }

    pub fn parse_names(ps: Vec<String>) -> Result<Vec<PartyId>, SchemaError> {
        ps.into_iter()
            .map(|p| PartyId::parse(p).map_err(SchemaError::from))
            .collect()
    }

    impl From<&FailureReason> for Failure {
        fn from(r: &FailureReason) -> Self {
            match r {
                FailureReason::PublicKeyMismatch { disagreeing } => Failure::PublicKeyMismatch {
                    disagreeing: names(disagreeing),
                },
                FailureReason::InvalidSignature { reported_by } => Failure::InvalidSignature {
                    reported_by: reported_by.to_string(),
                },
                FailureReason::PartyAborted {
                    reported_by,
                    culprits,
                    detail,
                } => Failure::PartyAborted {
                    reported_by: reported_by.to_string(),
                    culprits: names(culprits),
                    detail: detail.clone(),
                },
                FailureReason::Closed { reason } => Failure::Closed {
                    reason: reason.clone(),
                },
            }
        }
    }

    impl TryFrom<Failure> for FailureReason {
        type Error = SchemaError;
        fn try_from(f: Failure) -> Result<Self, SchemaError> {
            Ok(match f {
                Failure::PublicKeyMismatch { disagreeing } => FailureReason::PublicKeyMismatch {
                    disagreeing: parse_names(disagreeing)?,
                },
                Failure::InvalidSignature { reported_by } => FailureReason::InvalidSignature {
                    reported_by: PartyId::parse(reported_by)?,
                },
                Failure::PartyAborted {
                    reported_by,
                    culprits,
                    detail,
                } => FailureReason::PartyAborted {
                    reported_by: PartyId::parse(reported_by)?,
                    culprits: parse_names(culprits)?,
                    detail,
                },
                Failure::Closed { reason } => FailureReason::Closed { reason },
            })
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SessionFailed {
        pub reason: Failure,
        pub at: Time,
    }
}

/// Version 2 of `SessionCreated`: signing specs carry the approval evidence of a
/// workflow (`null` when there is none). Everything else is as in v1.
pub(crate) mod v2 {
    use super::v1::{
        Key, ParticipantV1, ThresholdV1, Time, key_from_v1, participants_from_v1, tokens_from_v1,
    };
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Approval {
        pub workflow_id: String,
        pub payload_hash: String,
        pub approvals: Vec<ApprovalSignature>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct ApprovalSignature {
        pub approver: String,
        pub signature: String,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    pub enum Spec {
        Keygen {
            threshold: ThresholdV1,
        },
        Signing {
            key: Key,
            message_hash: String,
            message: Option<String>,
            approval: Option<Approval>,
        },
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SessionCreated {
        pub session_id: String,
        pub spec: Spec,
        pub participants: Vec<ParticipantV1>,
        pub join_tokens: BTreeMap<String, String>,
        pub join_expires_at: Time,
        pub expires_at: Time,
        pub at: Time,
    }

    impl From<&ApprovalEvidence> for Approval {
        fn from(e: &ApprovalEvidence) -> Self {
            Self {
                workflow_id: e.workflow_id.to_string(),
                payload_hash: hex::encode(e.payload_hash.as_bytes()),
                approvals: e
                    .approvals
                    .iter()
                    .map(|a| ApprovalSignature {
                        approver: a.approver.to_string(),
                        signature: hex::encode(a.signature.as_bytes()),
                    })
                    .collect(),
            }
        }
    }

    impl TryFrom<Approval> for ApprovalEvidence {
        type Error = SchemaError;
        fn try_from(a: Approval) -> Result<Self, SchemaError> {
            Ok(Self {
                workflow_id: a.workflow_id.parse::<WorkflowId>()?,
                payload_hash: MessageHash::from_slice(&unhex(
                    "approval.payload_hash",
                    &a.payload_hash,
                )?)?,
                approvals: a
                    .approvals
                    .into_iter()
                    .map(|s| {
                        Ok(SignedApproval {
                            approver: PartyId::parse(s.approver)?,
                            signature: IdentitySignature::from_slice(&unhex(
                                "approval.signature",
                                &s.signature,
                            )?)?,
                        })
                    })
                    .collect::<Result<_, SchemaError>>()?,
            })
        }
    }

    impl TryFrom<SessionCreated> for mpc_events::SessionCreated {
        type Error = SchemaError;
        fn try_from(c: SessionCreated) -> Result<Self, SchemaError> {
            let spec = match c.spec {
                Spec::Keygen { threshold } => SessionSpec::Keygen {
                    threshold: Threshold::new(threshold.t, threshold.n)?,
                },
                Spec::Signing {
                    key,
                    message_hash,
                    message,
                    approval,
                } => SessionSpec::Signing {
                    key: key_from_v1(key)?,
                    message_hash: MessageHash::from_slice(&unhex("message_hash", &message_hash)?)?,
                    message: message.map(|m| unhex("message", &m)).transpose()?,
                    approval: approval.map(ApprovalEvidence::try_from).transpose()?,
                },
            };
            Ok(Self {
                session_id: c.session_id.parse::<SessionId>()?,
                spec,
                participants: participants_from_v1(c.participants)?,
                join_tokens: tokens_from_v1(c.join_tokens)?,
                join_expires_at: c.join_expires_at.into(),
                expires_at: c.expires_at.into(),
                at: c.at.into(),
            })
        }
    }
}

/// Version 3 of `SessionCreated`: keys carry their share generation (`epoch`) and
/// a `refresh` spec exists (with an optional `repair`). Everything else is as in v2.
mod v3 {
    use super::v1::{
        Identity, ParticipantV1, ThresholdV1, Time, participants_from_v1, threshold_v1,
        tokens_from_v1,
    };
    use super::v2::Approval;
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Key {
        pub key_id: String,
        pub public_key: String,
        pub threshold: ThresholdV1,
        pub parties: Vec<ParticipantV1>,
        pub epoch: u32,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Repair {
        pub target: String,
        pub identity: Identity,
        pub helpers: Vec<String>,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    pub enum Spec {
        Keygen {
            threshold: ThresholdV1,
        },
        Signing {
            key: Key,
            message_hash: String,
            message: Option<String>,
            approval: Option<Approval>,
        },
        Refresh {
            key: Key,
            repair: Option<Repair>,
        },
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SessionCreated {
        pub session_id: String,
        pub spec: Spec,
        pub participants: Vec<ParticipantV1>,
        pub join_tokens: BTreeMap<String, String>,
        pub join_expires_at: Time,
        pub expires_at: Time,
        pub at: Time,
    }

    impl From<&KeyRef> for Key {
        fn from(key: &KeyRef) -> Self {
            Self {
                key_id: key.key_id.to_string(),
                public_key: hex::encode(key.public_key.as_bytes()),
                threshold: threshold_v1(&key.threshold),
                parties: key.parties.iter().map(ParticipantV1::from).collect(),
                epoch: key.epoch,
            }
        }
    }

    impl TryFrom<Key> for KeyRef {
        type Error = SchemaError;
        fn try_from(key: Key) -> Result<Self, SchemaError> {
            Ok(KeyRef {
                key_id: key.key_id.parse::<KeyId>()?,
                public_key: PublicKey::from_slice(&unhex("key.public_key", &key.public_key)?)?,
                threshold: Threshold::new(key.threshold.t, key.threshold.n)?,
                parties: participants_from_v1(key.parties)?,
                epoch: key.epoch,
            })
        }
    }

    impl From<&RepairSpec> for Repair {
        fn from(r: &RepairSpec) -> Self {
            Self {
                target: r.target.to_string(),
                identity: Identity::from(&r.identity),
                helpers: v1::names(&r.helpers),
            }
        }
    }

    impl TryFrom<Repair> for RepairSpec {
        type Error = SchemaError;
        fn try_from(r: Repair) -> Result<Self, SchemaError> {
            Ok(Self {
                target: PartyId::parse(r.target)?,
                identity: r.identity.try_into()?,
                helpers: v1::parse_names(r.helpers)?,
            })
        }
    }

    impl From<&mpc_events::SessionCreated> for SessionCreated {
        fn from(c: &mpc_events::SessionCreated) -> Self {
            let spec = match &c.spec {
                SessionSpec::Keygen { threshold } => Spec::Keygen {
                    threshold: threshold_v1(threshold),
                },
                SessionSpec::Signing {
                    key,
                    message_hash,
                    message,
                    approval,
                } => Spec::Signing {
                    key: Key::from(key),
                    message_hash: hex::encode(message_hash.as_bytes()),
                    message: message.as_ref().map(hex::encode),
                    approval: approval.as_ref().map(Approval::from),
                },
                SessionSpec::Refresh { key, repair } => Spec::Refresh {
                    key: Key::from(key),
                    repair: repair.as_ref().map(Repair::from),
                },
            };
            Self {
                session_id: c.session_id.to_string(),
                spec,
                participants: c.participants.iter().map(ParticipantV1::from).collect(),
                join_tokens: c
                    .join_tokens
                    .iter()
                    .map(|(p, d)| (p.to_string(), hex::encode(d.as_bytes())))
                    .collect(),
                join_expires_at: c.join_expires_at.into(),
                expires_at: c.expires_at.into(),
                at: c.at.into(),
            }
        }
    }

    impl TryFrom<SessionCreated> for mpc_events::SessionCreated {
        type Error = SchemaError;
        fn try_from(c: SessionCreated) -> Result<Self, SchemaError> {
            let spec = match c.spec {
                Spec::Keygen { threshold } => SessionSpec::Keygen {
                    threshold: Threshold::new(threshold.t, threshold.n)?,
                },
                Spec::Signing {
                    key,
                    message_hash,
                    message,
                    approval,
                } => SessionSpec::Signing {
                    key: key.try_into()?,
                    message_hash: MessageHash::from_slice(&unhex("message_hash", &message_hash)?)?,
                    message: message.map(|m| unhex("message", &m)).transpose()?,
                    approval: approval.map(ApprovalEvidence::try_from).transpose()?,
                },
                Spec::Refresh { key, repair } => SessionSpec::Refresh {
                    key: key.try_into()?,
                    repair: repair.map(RepairSpec::try_from).transpose()?,
                },
            };
            Ok(Self {
                session_id: c.session_id.parse::<SessionId>()?,
                spec,
                participants: participants_from_v1(c.participants)?,
                join_tokens: tokens_from_v1(c.join_tokens)?,
                join_expires_at: c.join_expires_at.into(),
                expires_at: c.expires_at.into(),
                at: c.at.into(),
            })
        }
    }
}

/// Version 2 of `PartyCompleted` and `SessionCompleted`: the outcome may also be
/// `refreshed` (group key and refresh digest). Everything else is as in v1.
mod outcome_v2 {
    use super::v1::Time;
    use super::*;

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
    pub enum Outcome {
        PublicKey {
            public_key: String,
        },
        Signature {
            r: String,
            s: String,
            recovery_id: u8,
        },
        Refreshed {
            public_key: String,
            digest: String,
        },
    }

    impl From<&PartyOutcome> for Outcome {
        fn from(o: &PartyOutcome) -> Self {
            match o {
                PartyOutcome::PublicKey(pk) => Outcome::PublicKey {
                    public_key: hex::encode(pk.as_bytes()),
                },
                PartyOutcome::Signature(sig) => Outcome::Signature {
                    r: hex::encode(sig.r()),
                    s: hex::encode(sig.s()),
                    recovery_id: sig.recovery_id(),
                },
                PartyOutcome::Refreshed { public_key, digest } => Outcome::Refreshed {
                    public_key: hex::encode(public_key.as_bytes()),
                    digest: hex::encode(digest.as_bytes()),
                },
            }
        }
    }

    impl TryFrom<Outcome> for PartyOutcome {
        type Error = SchemaError;
        fn try_from(o: Outcome) -> Result<Self, SchemaError> {
            Ok(match o {
                Outcome::PublicKey { public_key } => {
                    v1::Outcome::PublicKey { public_key }.try_into()?
                }
                Outcome::Signature { r, s, recovery_id } => {
                    v1::Outcome::Signature { r, s, recovery_id }.try_into()?
                }
                Outcome::Refreshed { public_key, digest } => PartyOutcome::Refreshed {
                    public_key: PublicKey::from_slice(&unhex("public_key", &public_key)?)?,
                    digest: RefreshDigest::from_slice(&unhex("digest", &digest)?)?,
                },
            })
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct PartyCompleted {
        pub party_id: String,
        pub outcome: Outcome,
        pub at: Time,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SessionCompleted {
        pub outcome: Outcome,
        pub at: Time,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn fixture_dir() -> &'static Path {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/session"))
    }

    fn fixtures() -> Vec<(String, u16, Vec<u8>)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(fixture_dir()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            // <Type>.v<N>[.<variant>].json
            let mut parts = name.trim_end_matches(".json").split('.');
            let ty = parts.next().unwrap().to_owned();
            let version = parts
                .next()
                .unwrap()
                .trim_start_matches('v')
                .parse()
                .unwrap();
            out.push((ty, version, std::fs::read(&path).unwrap()));
        }
        out
    }

    #[test]
    fn every_fixture_decodes_and_current_ones_reencode_to_the_same_json() {
        let all = fixtures();
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
        let all = fixtures();
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
