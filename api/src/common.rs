//! Validation limits, the shapes several resources share (thresholds, identities,
//! participants, signatures, session lifetimes) and the field parsers every request
//! body uses to name the field at fault.

use std::str::FromStr;
use std::time::Duration;

use mpc_events::{
    IdError, IdentityKey, KeyId, KeyPolicy, MessageHash, Participant, PartyId, SessionKind,
    SessionStatus, Signature, Threshold,
};
use serde::{Deserialize, Serialize};

use crate::DtoError;

/// Longest session lifetime a caller may ask for (one day).
pub const MAX_TTL_SECONDS: u64 = 86_400;
/// Longest free-text field (failure detail, close reason), in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;

/// Default lifetime of the sessions the account, workflow and data routes start
/// when `ttl_seconds` is not given (ten minutes).
pub const DEFAULT_SESSION_TTL_SECONDS: u64 = 600;

pub(crate) fn invalid(field: &'static str) -> impl FnOnce(IdError) -> DtoError {
    move |source| DtoError::Invalid { field, source }
}

pub(crate) fn unhex(field: &'static str, s: &str) -> Result<Vec<u8>, DtoError> {
    hex::decode(s).map_err(|_| DtoError::Hex { field })
}

pub(crate) fn party(field: &'static str, s: &str) -> Result<PartyId, DtoError> {
    PartyId::parse(s).map_err(invalid(field))
}

pub(crate) fn text(field: &'static str, s: String) -> Result<String, DtoError> {
    if s.len() > MAX_TEXT_BYTES {
        return Err(DtoError::TooLong { field });
    }
    Ok(s)
}

pub(crate) fn ttl(seconds: u64) -> Result<Duration, DtoError> {
    if seconds == 0 || seconds > MAX_TTL_SECONDS {
        return Err(DtoError::Ttl(seconds));
    }
    Ok(Duration::from_secs(seconds))
}

pub(crate) fn session_ttl(seconds: Option<u64>) -> Result<Duration, DtoError> {
    ttl(seconds.unwrap_or(DEFAULT_SESSION_TTL_SECONDS))
}

pub(crate) fn key_id(field: &'static str, s: &str) -> Result<KeyId, DtoError> {
    KeyId::from_str(s).map_err(invalid(field))
}

/// Exactly one of a message (signers see it and sign its SHA-256) and a 32-byte
/// pre-hash.
pub(crate) fn signing_input(
    message_hex: Option<String>,
    message_hash_hex: Option<String>,
) -> Result<SigningInput, DtoError> {
    match (message_hex, message_hash_hex) {
        (Some(m), None) => Ok(SigningInput::Message(unhex("message_hex", &m)?)),
        (None, Some(h)) => Ok(SigningInput::Prehash(
            MessageHash::from_slice(&unhex("message_hash_hex", &h)?)
                .map_err(invalid("message_hash_hex"))?,
        )),
        _ => Err(DtoError::Payload),
    }
}

/// What a signing session signs, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningInput {
    Message(Vec<u8>),
    Prehash(MessageHash),
}

/// `keygen` or `signing`.
pub(crate) fn kind_str(kind: SessionKind) -> String {
    kind.to_string()
}

/// Parses a status as the gateway writes it (`created`, `in_progress`, `completed`,
/// `failed`, `expired`).
pub fn parse_status(s: &str) -> Result<SessionStatus, DtoError> {
    Ok(match s {
        "created" => SessionStatus::Created,
        "in_progress" => SessionStatus::InProgress,
        "completed" => SessionStatus::Completed,
        "failed" => SessionStatus::Failed,
        "expired" => SessionStatus::Expired,
        other => {
            return Err(DtoError::UnknownValue {
                field: "status",
                value: other.to_owned(),
            });
        }
    })
}

/// Parses a key's signing policy (`any-request` or `approved-only`; absent:
/// `any-request`).
pub fn parse_policy(field: &'static str, s: Option<&str>) -> Result<KeyPolicy, DtoError> {
    s.map_or(Ok(KeyPolicy::AnyRequest), |s| {
        s.parse().map_err(|_| DtoError::UnknownValue {
            field,
            value: s.to_owned(),
        })
    })
}

/// `t`-of-`n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThresholdDto {
    pub t: u16,
    pub n: u16,
}

impl From<Threshold> for ThresholdDto {
    fn from(t: Threshold) -> Self {
        Self {
            t: t.t().into(),
            n: t.n().into(),
        }
    }
}

impl TryFrom<ThresholdDto> for Threshold {
    type Error = DtoError;
    fn try_from(t: ThresholdDto) -> Result<Self, DtoError> {
        Threshold::new(t.t, t.n).map_err(invalid("threshold"))
    }
}

/// A party's public identity keys, 32 bytes each as hex: Ed25519 `signing`, X25519
/// `encryption`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentityDto {
    pub signing: String,
    pub encryption: String,
}

impl From<&IdentityKey> for IdentityDto {
    fn from(k: &IdentityKey) -> Self {
        Self {
            signing: hex::encode(k.signing()),
            encryption: hex::encode(k.encryption()),
        }
    }
}

impl TryFrom<&IdentityDto> for IdentityKey {
    type Error = DtoError;
    fn try_from(d: &IdentityDto) -> Result<Self, DtoError> {
        let signing = unhex("identity.signing", &d.signing)?;
        let encryption = unhex("identity.encryption", &d.encryption)?;
        IdentityKey::new(&signing, &encryption).map_err(invalid("identity"))
    }
}

/// A party invited to a keygen session, with the identity it registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParticipantDto {
    pub party_id: String,
    pub identity: IdentityDto,
}

impl From<&Participant> for ParticipantDto {
    fn from(p: &Participant) -> Self {
        Self {
            party_id: p.party_id.to_string(),
            identity: (&p.identity).into(),
        }
    }
}

impl TryFrom<&ParticipantDto> for Participant {
    type Error = DtoError;
    fn try_from(d: &ParticipantDto) -> Result<Self, DtoError> {
        Ok(Participant {
            party_id: party("participants.party_id", &d.party_id)?,
            identity: (&d.identity).try_into()?,
        })
    }
}

/// A participant with its 1-based protocol index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IndexedParticipantDto {
    pub index: u8,
    pub party_id: String,
    pub identity: IdentityDto,
}

impl IndexedParticipantDto {
    pub(crate) fn new(index: u8, p: &Participant) -> Self {
        Self {
            index,
            party_id: p.party_id.to_string(),
            identity: (&p.identity).into(),
        }
    }

    pub(crate) fn to_domain(&self) -> Result<(u8, Participant), DtoError> {
        Ok((
            self.index,
            Participant {
                party_id: party("participants.party_id", &self.party_id)?,
                identity: (&self.identity).try_into()?,
            },
        ))
    }
}

/// An ECDSA signature: `r` and `s` as 32-byte hex, recovery id 0 or 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignatureDto {
    pub r_hex: String,
    pub s_hex: String,
    pub recovery_id: u8,
}

impl From<&Signature> for SignatureDto {
    fn from(s: &Signature) -> Self {
        Self {
            r_hex: hex::encode(s.r()),
            s_hex: hex::encode(s.s()),
            recovery_id: s.recovery_id(),
        }
    }
}

impl TryFrom<&SignatureDto> for Signature {
    type Error = DtoError;
    fn try_from(d: &SignatureDto) -> Result<Self, DtoError> {
        Signature::new(
            &unhex("r_hex", &d.r_hex)?,
            &unhex("s_hex", &d.s_hex)?,
            d.recovery_id,
        )
        .map_err(invalid("signature"))
    }
}

/// Body of the routes that only start a session (`POST /v1/accounts/{id}/keygen`,
/// `POST /v1/workflows/{id}/signing`): its lifetime (default 600, at most 86 400);
/// send `{}` for the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionTtlRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

impl SessionTtlRequest {
    pub fn into_ttl(self) -> Result<Duration, DtoError> {
        session_ttl(self.ttl_seconds)
    }
}
