//! Version 3 of `SessionCreated`: keys carry their share generation (`epoch`) and
//! a `refresh` spec exists (with an optional `repair`). Everything else is as in v2.
//! The payload is generic over the repair's shape, which v4 extends, and over the
//! keygen's, which v5 extends.

use super::v1::{
    Identity, ParticipantV1, ThresholdV1, Time, participants_from_v1, threshold_v1, tokens_from_v1,
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
#[serde(deny_unknown_fields)]
pub struct Keygen {
    pub threshold: ThresholdV1,
}

/// The keygen part of a spec in one version's shape.
pub trait KeygenPayload: Sized {
    fn of(threshold: &Threshold, policy: KeyPolicy) -> Self;
    fn into_domain(self) -> Result<(Threshold, KeyPolicy), SchemaError>;
}

/// Before v5 every key signed any request.
impl KeygenPayload for Keygen {
    fn of(threshold: &Threshold, _: KeyPolicy) -> Self {
        Self {
            threshold: threshold_v1(threshold),
        }
    }
    fn into_domain(self) -> Result<(Threshold, KeyPolicy), SchemaError> {
        Ok((
            Threshold::new(self.threshold.t, self.threshold.n)?,
            KeyPolicy::AnyRequest,
        ))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Spec<R = Repair, G = Keygen> {
    Keygen(G),
    Signing {
        key: Key,
        message_hash: String,
        message: Option<String>,
        approval: Option<Approval>,
    },
    Refresh {
        key: Key,
        repair: Option<R>,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionCreated<R = Repair, G = Keygen> {
    pub session_id: String,
    pub spec: Spec<R, G>,
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

impl TryFrom<Repair> for RepairSpec {
    type Error = SchemaError;
    fn try_from(r: Repair) -> Result<Self, SchemaError> {
        Ok(Self {
            target: PartyId::parse(r.target)?,
            identity: r.identity.try_into()?,
            helpers: v1::parse_names(r.helpers)?,
            authorizations: Vec::new(),
            policy: KeyPolicy::AnyRequest,
        })
    }
}

impl<R: for<'a> From<&'a RepairSpec>, G: KeygenPayload> From<&mpc_events::SessionCreated>
    for SessionCreated<R, G>
{
    fn from(c: &mpc_events::SessionCreated) -> Self {
        let spec = match &c.spec {
            SessionSpec::Keygen { threshold, policy } => Spec::Keygen(G::of(threshold, *policy)),
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
                repair: repair.as_deref().map(R::from),
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

impl<R, G: KeygenPayload> TryFrom<SessionCreated<R, G>> for mpc_events::SessionCreated
where
    RepairSpec: TryFrom<R, Error = SchemaError>,
{
    type Error = SchemaError;
    fn try_from(c: SessionCreated<R, G>) -> Result<Self, SchemaError> {
        let spec = match c.spec {
            Spec::Keygen(keygen) => {
                let (threshold, policy) = keygen.into_domain()?;
                SessionSpec::Keygen { threshold, policy }
            }
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
                repair: repair.map(RepairSpec::try_from).transpose()?.map(Box::new),
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
