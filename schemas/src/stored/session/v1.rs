//! Version 1 payloads. Bytes are lowercase hex; times are RFC 3339 UTC. The time,
//! participant and key shapes are shared with the account and workflow payloads.

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
                policy: KeyPolicy::AnyRequest,
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
            Outcome::PublicKey { public_key } => {
                PartyOutcome::PublicKey(PublicKey::from_slice(&unhex("public_key", &public_key)?)?)
            }
            Outcome::Signature { r, s, recovery_id } => PartyOutcome::Signature(Signature::new(
                &unhex("r", &r)?,
                &unhex("s", &s)?,
                recovery_id,
            )?),
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
