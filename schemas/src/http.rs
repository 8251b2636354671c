//! The gateway's HTTP/JSON format: request and response bodies shared by the
//! gateway and its clients.
//!
//! Conventions: field names are `snake_case`; tagged unions carry a `"kind"` field;
//! bytes are lowercase hex (upper case is accepted on input); timestamps are
//! milliseconds since the Unix epoch (UTC); ids are their canonical strings (UUIDs for
//! sessions and keys, party ids as given). Every request body converts to domain
//! values through a `TryFrom`/`into_domain` that names the field at fault, so a bad
//! body is refused before anything reaches the coordinator. Errors are
//! [`ApiError`] bodies with a stable [`ApiError::code`].

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use mpc_events::{
    AccountParties, ApprovalEvidence, Decision, Email, FailureReason, IdError, IdentityKey,
    IdentitySignature, KeyId, KeyRef, MessageHash, Participant, PartyId, PartyOutcome, Phone,
    PublicKey, RecoveryKind, RefreshDigest, RepairSpec, SessionId, SessionKind, SessionSpec,
    SessionStatus, SessionView, ShareRole, Signature, SignedApproval, Threshold, Timestamp,
    Username, WorkflowId,
};
use serde::{Deserialize, Serialize};

/// Longest session lifetime a caller may ask for (one day).
pub const MAX_TTL_SECONDS: u64 = 86_400;
/// Longest free-text field (failure detail, close reason), in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;

/// Every error the gateway returns: a stable machine-readable `code` and a
/// human-readable `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Why a body could not become domain values. [`DtoError::code`] is the
/// [`ApiError::code`] the gateway answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtoError {
    #[error("{field}: {source}")]
    Invalid {
        field: &'static str,
        #[source]
        source: IdError,
    },
    #[error("{field}: not hex")]
    Hex { field: &'static str },
    #[error("{field}: unknown value {value:?}")]
    UnknownValue { field: &'static str, value: String },
    #[error("give exactly one of message_hex and message_hash_hex")]
    Payload,
    #[error("ttl_seconds must be between 1 and {MAX_TTL_SECONDS}, got {0}")]
    Ttl(u64),
    #[error("{field} is longer than {MAX_TEXT_BYTES} bytes")]
    TooLong { field: &'static str },
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0} is not allowed here")]
    Unexpected(&'static str),
    #[error("ttl_seconds must be between 1 and {MAX_WORKFLOW_TTL_SECONDS}, got {0}")]
    WorkflowTtl(u64),
    #[error("give exactly one of public_key_hex and key_id")]
    KeySource,
}

impl DtoError {
    /// The stable error code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { source, .. } => match source {
                IdError::PartyId(_) => "invalid_party_id",
                IdError::Threshold { .. } => "invalid_threshold",
                IdError::Uuid(_) => "invalid_id",
                IdError::Length { .. } => "invalid_length",
                IdError::PublicKeyPrefix => "invalid_public_key",
                IdError::RecoveryId(_) => "invalid_signature",
                IdError::Username(_) => "invalid_username",
                IdError::Email(_) => "invalid_email",
                IdError::Phone(_) => "invalid_phone",
            },
            Self::Hex { .. } => "invalid_hex",
            Self::UnknownValue { .. } => "invalid_value",
            Self::Payload => "invalid_payload",
            Self::Ttl(_) => "invalid_ttl",
            Self::TooLong { .. } => "text_too_long",
            Self::Missing(_) => "missing_field",
            Self::Unexpected(_) => "unexpected_field",
            Self::WorkflowTtl(_) => "invalid_ttl",
            Self::KeySource => "invalid_key_source",
        }
    }

    /// This error as a response body.
    pub fn to_api_error(&self) -> ApiError {
        ApiError::new(self.code(), self.to_string())
    }
}

fn invalid(field: &'static str) -> impl FnOnce(IdError) -> DtoError {
    move |source| DtoError::Invalid { field, source }
}

fn unhex(field: &'static str, s: &str) -> Result<Vec<u8>, DtoError> {
    hex::decode(s).map_err(|_| DtoError::Hex { field })
}

fn party(field: &'static str, s: &str) -> Result<PartyId, DtoError> {
    PartyId::parse(s).map_err(invalid(field))
}

fn text(field: &'static str, s: String) -> Result<String, DtoError> {
    if s.len() > MAX_TEXT_BYTES {
        return Err(DtoError::TooLong { field });
    }
    Ok(s)
}

fn ttl(seconds: u64) -> Result<Duration, DtoError> {
    if seconds == 0 || seconds > MAX_TTL_SECONDS {
        return Err(DtoError::Ttl(seconds));
    }
    Ok(Duration::from_secs(seconds))
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
    fn new(index: u8, p: &Participant) -> Self {
        Self {
            index,
            party_id: p.party_id.to_string(),
            identity: (&p.identity).into(),
        }
    }

    fn to_domain(&self) -> Result<(u8, Participant), DtoError> {
        Ok((
            self.index,
            Participant {
                party_id: party("participants.party_id", &self.party_id)?,
                identity: (&self.identity).try_into()?,
            },
        ))
    }
}

/// A completed threshold key. `parties` are the key holders in keygen order
/// (`index` = position + 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyDto {
    pub key_id: String,
    /// Compressed SEC1 secp256k1 point, 33 bytes.
    pub public_key_hex: String,
    pub threshold: ThresholdDto,
    pub parties: Vec<IndexedParticipantDto>,
    /// The generation of shares in use: 1 after keygen, one more per completed refresh.
    pub epoch: u32,
}

impl From<&KeyRef> for KeyDto {
    fn from(k: &KeyRef) -> Self {
        Self {
            key_id: k.key_id.to_string(),
            public_key_hex: hex::encode(k.public_key.as_bytes()),
            threshold: k.threshold.into(),
            parties: k
                .parties
                .iter()
                .zip(1u8..)
                .map(|(p, i)| IndexedParticipantDto::new(i, p))
                .collect(),
            epoch: k.epoch,
        }
    }
}

impl TryFrom<&KeyDto> for KeyRef {
    type Error = DtoError;
    fn try_from(d: &KeyDto) -> Result<Self, DtoError> {
        let mut parties: Vec<(u8, Participant)> = d
            .parties
            .iter()
            .map(IndexedParticipantDto::to_domain)
            .collect::<Result<_, _>>()?;
        parties.sort_by_key(|(i, _)| *i);
        Ok(KeyRef {
            key_id: KeyId::from_str(&d.key_id).map_err(invalid("key.key_id"))?,
            public_key: PublicKey::from_slice(&unhex("key.public_key_hex", &d.public_key_hex)?)
                .map_err(invalid("key.public_key_hex"))?,
            threshold: d.threshold.try_into()?,
            parties: parties.into_iter().map(|(_, p)| p).collect(),
            epoch: d.epoch,
        })
    }
}

/// `POST /v1/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CreateSessionRequest {
    /// Distributed key generation among `participants`.
    Keygen {
        threshold: ThresholdDto,
        participants: Vec<ParticipantDto>,
        ttl_seconds: u64,
    },
    /// Signing with completed key `key_id` by `signers`. Exactly one of
    /// `message_hex` (the data; signers sign its SHA-256 and see the data) and
    /// `message_hash_hex` (a 32-byte pre-hash) is given.
    Signing {
        key_id: String,
        signers: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_hex: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_hash_hex: Option<String>,
        ttl_seconds: u64,
    },
}

/// What a signing session signs, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningInput {
    Message(Vec<u8>),
    Prehash(MessageHash),
}

/// A validated [`CreateSessionRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewSession {
    Keygen {
        threshold: Threshold,
        participants: Vec<Participant>,
        ttl: Duration,
    },
    Signing {
        key_id: KeyId,
        signers: Vec<PartyId>,
        input: SigningInput,
        ttl: Duration,
    },
}

impl TryFrom<CreateSessionRequest> for NewSession {
    type Error = DtoError;
    fn try_from(r: CreateSessionRequest) -> Result<Self, DtoError> {
        match r {
            CreateSessionRequest::Keygen {
                threshold,
                participants,
                ttl_seconds,
            } => Ok(Self::Keygen {
                threshold: threshold.try_into()?,
                participants: participants
                    .iter()
                    .map(Participant::try_from)
                    .collect::<Result<_, _>>()?,
                ttl: ttl(ttl_seconds)?,
            }),
            CreateSessionRequest::Signing {
                key_id,
                signers,
                message_hex,
                message_hash_hex,
                ttl_seconds,
            } => {
                let input = signing_input(message_hex, message_hash_hex)?;
                Ok(Self::Signing {
                    key_id: KeyId::from_str(&key_id).map_err(invalid("key_id"))?,
                    signers: signers
                        .iter()
                        .map(|s| party("signers", s))
                        .collect::<Result<_, _>>()?,
                    input,
                    ttl: ttl(ttl_seconds)?,
                })
            }
        }
    }
}

/// `201` answer to `POST /v1/sessions`: one join token per party (hand each only to
/// its party).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateSessionResponse {
    pub session_id: String,
    pub join_tokens: BTreeMap<String, String>,
    pub expires_at: i64,
}

/// `POST /v1/sessions/{id}/join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinRequest {
    pub party_id: String,
    pub token: String,
}

/// `keygen` or `signing`.
fn kind_str(kind: SessionKind) -> String {
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

/// What a party learns when it joins: everything it needs to run its part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionViewDto {
    pub session_id: String,
    /// `keygen`, `signing` or `refresh`.
    pub kind: String,
    pub threshold: ThresholdDto,
    /// Participants with their protocol index, in index order.
    pub participants: Vec<IndexedParticipantDto>,
    /// The key being used (signing and refresh sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyDto>,
    /// The 32-byte hash to sign (signing sessions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_hash_hex: Option<String>,
    /// The data itself, when the creator gave it (signing sessions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_hex: Option<String>,
    /// The approvals that allow this signature, when an approval workflow started
    /// the session; every signer verifies them itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalEvidenceDto>,
    /// The lost share a refresh session rebuilds first, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair: Option<RepairDto>,
    pub status: String,
    pub expires_at: i64,
}

/// The lost-share part of a refresh session: `helpers` rebuild `target`'s share for
/// the new device whose identity is `identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepairDto {
    pub target: String,
    pub identity: IdentityDto,
    pub helpers: Vec<String>,
}

impl From<&RepairSpec> for RepairDto {
    fn from(r: &RepairSpec) -> Self {
        Self {
            target: r.target.to_string(),
            identity: IdentityDto::from(&r.identity),
            helpers: r.helpers.iter().map(ToString::to_string).collect(),
        }
    }
}

impl TryFrom<&RepairDto> for RepairSpec {
    type Error = DtoError;
    fn try_from(d: &RepairDto) -> Result<Self, DtoError> {
        Ok(Self {
            target: party("repair.target", &d.target)?,
            identity: (&d.identity).try_into()?,
            helpers: d
                .helpers
                .iter()
                .map(|h| party("repair.helpers", h))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// An approver's signed approval inside [`ApprovalEvidenceDto`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedApprovalDto {
    pub approver: String,
    /// Ed25519 signature (64 bytes) by the approver's identity key over the
    /// approval transcript (workflow id, payload hash, decision).
    pub signature_hex: String,
}

/// The approvals a workflow's signing session carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalEvidenceDto {
    pub workflow_id: String,
    pub payload_hash_hex: String,
    pub approvals: Vec<SignedApprovalDto>,
}

impl From<&ApprovalEvidence> for ApprovalEvidenceDto {
    fn from(e: &ApprovalEvidence) -> Self {
        Self {
            workflow_id: e.workflow_id.to_string(),
            payload_hash_hex: hex::encode(e.payload_hash.as_bytes()),
            approvals: e
                .approvals
                .iter()
                .map(|a| SignedApprovalDto {
                    approver: a.approver.to_string(),
                    signature_hex: hex::encode(a.signature.as_bytes()),
                })
                .collect(),
        }
    }
}

impl TryFrom<&ApprovalEvidenceDto> for ApprovalEvidence {
    type Error = DtoError;
    fn try_from(d: &ApprovalEvidenceDto) -> Result<Self, DtoError> {
        Ok(Self {
            workflow_id: d
                .workflow_id
                .parse::<WorkflowId>()
                .map_err(invalid("approval.workflow_id"))?,
            payload_hash: MessageHash::from_slice(&unhex(
                "approval.payload_hash_hex",
                &d.payload_hash_hex,
            )?)
            .map_err(invalid("approval.payload_hash_hex"))?,
            approvals: d
                .approvals
                .iter()
                .map(|a| {
                    Ok(SignedApproval {
                        approver: PartyId::parse(&a.approver)
                            .map_err(invalid("approval.approver"))?,
                        signature: IdentitySignature::from_slice(&unhex(
                            "approval.signature_hex",
                            &a.signature_hex,
                        )?)
                        .map_err(invalid("approval.signature_hex"))?,
                    })
                })
                .collect::<Result<_, DtoError>>()?,
        })
    }
}

impl From<&SessionView> for SessionViewDto {
    fn from(v: &SessionView) -> Self {
        let (key, message_hash_hex, message_hex, approval) = match &v.spec {
            SessionSpec::Keygen { .. } => (None, None, None, None),
            SessionSpec::Signing {
                key,
                message_hash,
                message,
                approval,
            } => (
                Some(KeyDto::from(key)),
                Some(hex::encode(message_hash.as_bytes())),
                message.as_ref().map(hex::encode),
                approval.as_ref().map(ApprovalEvidenceDto::from),
            ),
            SessionSpec::Refresh { key, .. } => (Some(KeyDto::from(key)), None, None, None),
        };
        let repair = match &v.spec {
            SessionSpec::Refresh {
                repair: Some(repair),
                ..
            } => Some(RepairDto::from(repair)),
            _ => None,
        };
        Self {
            session_id: v.session_id.to_string(),
            kind: kind_str(v.spec.kind()),
            threshold: v.spec.threshold().into(),
            participants: v
                .participants
                .iter()
                .map(|(i, p)| IndexedParticipantDto::new(*i, p))
                .collect(),
            key,
            message_hash_hex,
            message_hex,
            approval,
            repair,
            status: v.status.to_string(),
            expires_at: v.expires_at.as_millis(),
        }
    }
}

impl TryFrom<&SessionViewDto> for SessionView {
    type Error = DtoError;
    fn try_from(d: &SessionViewDto) -> Result<Self, DtoError> {
        let spec = match d.kind.as_str() {
            "keygen" => SessionSpec::Keygen {
                threshold: d.threshold.try_into()?,
            },
            "signing" => {
                let key = d.key.as_ref().ok_or(DtoError::Missing("key"))?;
                let hash = d
                    .message_hash_hex
                    .as_deref()
                    .ok_or(DtoError::Missing("message_hash_hex"))?;
                SessionSpec::Signing {
                    key: key.try_into()?,
                    message_hash: MessageHash::from_slice(&unhex("message_hash_hex", hash)?)
                        .map_err(invalid("message_hash_hex"))?,
                    message: d
                        .message_hex
                        .as_deref()
                        .map(|m| unhex("message_hex", m))
                        .transpose()?,
                    approval: d
                        .approval
                        .as_ref()
                        .map(ApprovalEvidence::try_from)
                        .transpose()?,
                }
            }
            "refresh" => SessionSpec::Refresh {
                key: d.key.as_ref().ok_or(DtoError::Missing("key"))?.try_into()?,
                repair: d.repair.as_ref().map(RepairSpec::try_from).transpose()?,
            },
            other => {
                return Err(DtoError::UnknownValue {
                    field: "kind",
                    value: other.to_owned(),
                });
            }
        };
        Ok(SessionView {
            session_id: SessionId::from_str(&d.session_id).map_err(invalid("session_id"))?,
            spec,
            participants: d
                .participants
                .iter()
                .map(IndexedParticipantDto::to_domain)
                .collect::<Result<_, _>>()?,
            status: parse_status(&d.status)?,
            expires_at: Timestamp::from_millis(d.expires_at),
        })
    }
}

/// Answer to a successful join. `access_token` authorises this party's later calls
/// (`Authorization: Bearer …`) on this session until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinResponse {
    pub session: SessionViewDto,
    pub access_token: String,
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

/// Why a session failed. `reason` is one of `public_key_mismatch`,
/// `invalid_signature`, `party_aborted`, `closed`; `parties` are the parties it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FailureDto {
    pub reason: String,
    pub message: String,
    pub parties: Vec<String>,
}

impl From<&FailureReason> for FailureDto {
    fn from(f: &FailureReason) -> Self {
        let names = |ps: &[PartyId]| ps.iter().map(ToString::to_string).collect();
        let (reason, parties) = match f {
            FailureReason::PublicKeyMismatch { disagreeing } => {
                ("public_key_mismatch", names(disagreeing))
            }
            FailureReason::InvalidSignature { reported_by } => {
                ("invalid_signature", vec![reported_by.to_string()])
            }
            FailureReason::PartyAborted { culprits, .. } => ("party_aborted", names(culprits)),
            FailureReason::Closed { .. } => ("closed", Vec::new()),
        };
        Self {
            reason: reason.to_owned(),
            message: f.to_string(),
            parties,
        }
    }
}

/// `GET /v1/sessions/{id}` and the answer to reports: where a session stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionStatusDto {
    pub session_id: String,
    pub kind: String,
    /// `created`, `in_progress`, `completed`, `failed` or `expired`.
    pub status: String,
    pub threshold: ThresholdDto,
    pub participants: Vec<IndexedParticipantDto>,
    /// Parties that have joined.
    pub joined: Vec<String>,
    /// Parties that have reported a result, in report order.
    pub reported: Vec<String>,
    /// The group public key, once a keygen session has completed (and for signing
    /// sessions, the key's public key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_hex: Option<String>,
    /// The signature, once a signing session has completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignatureDto>,
    /// The digest every holder reported, once a refresh session has completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_digest_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureDto>,
    pub expires_at: i64,
}

impl SessionStatusDto {
    /// Builds the status from the session's view and what the coordinator recorded.
    pub fn new<'a>(
        view: &SessionView,
        joined: impl IntoIterator<Item = &'a PartyId>,
        reported: impl IntoIterator<Item = &'a PartyId>,
        outcome: Option<&PartyOutcome>,
        failure: Option<&FailureReason>,
    ) -> Self {
        let key_pk = view.spec.key().map(|key| key.public_key);
        let (public_key, signature) = match outcome {
            Some(PartyOutcome::PublicKey(pk)) => (Some(*pk), None),
            Some(PartyOutcome::Signature(s)) => (key_pk, Some(SignatureDto::from(s))),
            Some(PartyOutcome::Refreshed { .. }) | None => (key_pk, None),
        };
        let refresh_digest_hex = match outcome {
            Some(PartyOutcome::Refreshed { digest, .. }) => Some(hex::encode(digest.as_bytes())),
            _ => None,
        };
        Self {
            session_id: view.session_id.to_string(),
            kind: kind_str(view.spec.kind()),
            status: view.status.to_string(),
            threshold: view.spec.threshold().into(),
            participants: view
                .participants
                .iter()
                .map(|(i, p)| IndexedParticipantDto::new(*i, p))
                .collect(),
            joined: joined.into_iter().map(ToString::to_string).collect(),
            reported: reported.into_iter().map(ToString::to_string).collect(),
            public_key_hex: public_key.map(|pk| hex::encode(pk.as_bytes())),
            signature,
            refresh_digest_hex,
            failure: failure.map(FailureDto::from),
            expires_at: view.expires_at.as_millis(),
        }
    }

    /// The status as a domain value.
    pub fn status(&self) -> Result<SessionStatus, DtoError> {
        parse_status(&self.status)
    }
}

/// `POST /v1/sessions/{id}/report`: the calling party's result. The party is the
/// one named by the access token, never a field of the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReportRequest {
    /// Keygen finished with this group public key (33-byte compressed SEC1, hex).
    PublicKey { public_key_hex: String },
    /// Signing finished with this signature.
    Signature {
        r_hex: String,
        s_hex: String,
        recovery_id: u8,
    },
    /// A refresh finished: the key's public key and the refresh digest (32 bytes).
    Refreshed {
        public_key_hex: String,
        digest_hex: String,
    },
    /// The party's protocol run aborted, blaming `culprits`.
    Failure {
        culprits: Vec<String>,
        detail: String,
    },
}

/// A validated [`ReportRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Completion(PartyOutcome),
    Failure {
        culprits: Vec<PartyId>,
        detail: String,
    },
}

impl ReportRequest {
    /// The body reporting `outcome`.
    pub fn completion(outcome: &PartyOutcome) -> Self {
        match outcome {
            PartyOutcome::PublicKey(pk) => Self::PublicKey {
                public_key_hex: hex::encode(pk.as_bytes()),
            },
            PartyOutcome::Signature(s) => Self::Signature {
                r_hex: hex::encode(s.r()),
                s_hex: hex::encode(s.s()),
                recovery_id: s.recovery_id(),
            },
            PartyOutcome::Refreshed { public_key, digest } => Self::Refreshed {
                public_key_hex: hex::encode(public_key.as_bytes()),
                digest_hex: hex::encode(digest.as_bytes()),
            },
        }
    }

    /// The body reporting an aborted run.
    pub fn failure(culprits: &[PartyId], detail: impl Into<String>) -> Self {
        Self::Failure {
            culprits: culprits.iter().map(ToString::to_string).collect(),
            detail: detail.into(),
        }
    }
}

impl TryFrom<ReportRequest> for Report {
    type Error = DtoError;
    fn try_from(r: ReportRequest) -> Result<Self, DtoError> {
        Ok(match r {
            ReportRequest::PublicKey { public_key_hex } => {
                Self::Completion(PartyOutcome::PublicKey(
                    PublicKey::from_slice(&unhex("public_key_hex", &public_key_hex)?)
                        .map_err(invalid("public_key_hex"))?,
                ))
            }
            ReportRequest::Signature {
                r_hex,
                s_hex,
                recovery_id,
            } => Self::Completion(PartyOutcome::Signature(Signature::try_from(
                &SignatureDto {
                    r_hex,
                    s_hex,
                    recovery_id,
                },
            )?)),
            ReportRequest::Refreshed {
                public_key_hex,
                digest_hex,
            } => Self::Completion(PartyOutcome::Refreshed {
                public_key: PublicKey::from_slice(&unhex("public_key_hex", &public_key_hex)?)
                    .map_err(invalid("public_key_hex"))?,
                digest: RefreshDigest::from_slice(&unhex("digest_hex", &digest_hex)?)
                    .map_err(invalid("digest_hex"))?,
            }),
            ReportRequest::Failure { culprits, detail } => Self::Failure {
                culprits: culprits
                    .iter()
                    .map(|c| party("culprits", c))
                    .collect::<Result<_, _>>()?,
                detail: text("detail", detail)?,
            },
        })
    }
}

/// `POST /v1/sessions/{id}/close`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CloseRequest {
    pub reason: String,
}

impl CloseRequest {
    /// The reason, checked for length.
    pub fn into_reason(self) -> Result<String, DtoError> {
        text("reason", self.reason)
    }
}

/// `GET /v1/sessions/{id}/messages`: encoded envelopes (hex of
/// [`crate::Envelope::encode`]) addressed to the caller, in order, and the cursor to
/// pass as `after` next time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InboxResponse {
    pub messages: Vec<String>,
    pub cursor: u64,
}

/// Default lifetime of the sessions the account, workflow and data routes start
/// when `ttl_seconds` is not given (ten minutes).
pub const DEFAULT_SESSION_TTL_SECONDS: u64 = 600;
/// Default time approvers have to decide on a workflow (one day).
pub const DEFAULT_WORKFLOW_TTL_SECONDS: u64 = 86_400;
/// Longest time approvers may be given (thirty days).
pub const MAX_WORKFLOW_TTL_SECONDS: u64 = 30 * 86_400;

fn session_ttl(seconds: Option<u64>) -> Result<Duration, DtoError> {
    ttl(seconds.unwrap_or(DEFAULT_SESSION_TTL_SECONDS))
}

fn workflow_ttl(seconds: Option<u64>) -> Result<Duration, DtoError> {
    match seconds.unwrap_or(DEFAULT_WORKFLOW_TTL_SECONDS) {
        s @ 1..=MAX_WORKFLOW_TTL_SECONDS => Ok(Duration::from_secs(s)),
        s => Err(DtoError::WorkflowTtl(s)),
    }
}

fn key_id(field: &'static str, s: &str) -> Result<KeyId, DtoError> {
    KeyId::from_str(s).map_err(invalid(field))
}

/// Exactly one of a message (signers see it and sign its SHA-256) and a 32-byte
/// pre-hash.
fn signing_input(
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

/// `POST /v1/accounts`: a user's account and the three parties of its 2-of-3 key
/// (each given like a session participant: party id and identity keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenAccountRequest {
    pub username: String,
    /// Compared case-insensitively for uniqueness.
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub device: ParticipantDto,
    pub server: ParticipantDto,
    pub recovery: ParticipantDto,
    /// Lifetime of the keygen session (default 600, at most 86 400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

/// A validated [`OpenAccountRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountOpening {
    pub username: Username,
    pub email: Email,
    pub phone: Option<Phone>,
    pub parties: AccountParties,
    pub keygen_ttl: Duration,
}

fn role_participant(role: ShareRole, d: &ParticipantDto) -> Result<Participant, DtoError> {
    let (party_field, identity_field) = match role {
        ShareRole::Device => ("device.party_id", "device.identity"),
        ShareRole::Server => ("server.party_id", "server.identity"),
        ShareRole::Recovery => ("recovery.party_id", "recovery.identity"),
    };
    Ok(Participant {
        party_id: party(party_field, &d.party_id)?,
        identity: IdentityKey::try_from(&d.identity).map_err(|e| match e {
            DtoError::Invalid { source, .. } => DtoError::Invalid {
                field: identity_field,
                source,
            },
            DtoError::Hex { .. } => DtoError::Hex {
                field: identity_field,
            },
            other => other,
        })?,
    })
}

impl OpenAccountRequest {
    /// Validates every field, naming the first one at fault.
    pub fn into_domain(self) -> Result<AccountOpening, DtoError> {
        Ok(AccountOpening {
            username: Username::parse(&self.username).map_err(invalid("username"))?,
            email: Email::parse(&self.email).map_err(invalid("email"))?,
            phone: self
                .phone
                .as_deref()
                .map(Phone::parse)
                .transpose()
                .map_err(invalid("phone"))?,
            parties: AccountParties {
                device: role_participant(ShareRole::Device, &self.device)?,
                server: role_participant(ShareRole::Server, &self.server)?,
                recovery: role_participant(ShareRole::Recovery, &self.recovery)?,
            },
            keygen_ttl: session_ttl(self.ttl_seconds)?,
        })
    }
}

/// `201` answer to `POST /v1/accounts`: the account and its keygen session (hand
/// each join token only to its party).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenAccountResponse {
    pub account_id: String,
    pub keygen: CreateSessionResponse,
}

/// Where an account's key stands: `pending` (keygen running or not yet started),
/// `completed` (the public key is known) or `failed` (keygen failed or expired;
/// restart it with `POST /v1/accounts/{id}/keygen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeyStatusDto {
    Pending,
    Completed,
    Failed,
}

/// `GET /v1/accounts/{id}`: an account, where its shares are (role → party id;
/// never share content) and its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountDto {
    pub account_id: String,
    pub username: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// `active`, `suspended`, `locked` or `recovering`.
    pub status: String,
    /// Share-location map: `device`, `server`, `recovery` → party id.
    pub shares: BTreeMap<String, String>,
    pub keygen_session_id: String,
    pub key_status: KeyStatusDto,
    /// The key's id, once keygen completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Compressed SEC1 public key, once keygen completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_hex: Option<String>,
    /// The key's share generation in use (1 after keygen, one more per completed
    /// refresh), once keygen completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_epoch: Option<u32>,
    /// The recovery session still requested or in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_recovery: Option<RecoveryDto>,
    pub opened_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
    pub updated_at: i64,
}

/// `POST /v1/accounts/{id}/recoveries`: start a recovery session of the account, a
/// refresh session of its key. `device_lost` (the account must be `recovering`):
/// server and recovery rebuild the device share for the new device whose public
/// identity is `device_identity` (what `mpc party identity` prints), then every
/// share is refreshed. `share_rotation` (the account must be `active`): every share
/// is refreshed. `ttl_seconds` is the session's lifetime (default 600, at most
/// 86 400).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RecoveryRequest {
    DeviceLost {
        device_identity: IdentityDto,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_seconds: Option<u64>,
    },
    ShareRotation {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_seconds: Option<u64>,
    },
}

impl RecoveryRequest {
    /// The recovery asked for and its session's lifetime.
    pub fn into_domain(self) -> Result<(RecoveryKind, Duration), DtoError> {
        Ok(match self {
            Self::DeviceLost {
                device_identity,
                ttl_seconds,
            } => (
                RecoveryKind::DeviceLost {
                    identity: (&device_identity).try_into()?,
                },
                session_ttl(ttl_seconds)?,
            ),
            Self::ShareRotation { ttl_seconds } => {
                (RecoveryKind::ShareRotation, session_ttl(ttl_seconds)?)
            }
        })
    }
}

/// One recovery session of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryDto {
    /// The refresh session that carries it out.
    pub session_id: String,
    /// `device_lost` or `share_rotation`.
    pub kind: String,
    /// `requested`, `in_progress`, `completed` or `failed`.
    pub status: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The new device's public identity, for `device_lost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_device_identity: Option<IdentityDto>,
    pub requested_at: i64,
    pub updated_at: i64,
}

/// `GET /v1/accounts/{id}/recoveries`: every recovery session of the account,
/// oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveriesDto {
    pub recoveries: Vec<RecoveryDto>,
}

/// The latest refresh session of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LastRefreshDto {
    pub session_id: String,
    /// The session's status (`created`, `in_progress`, `completed`, `failed`,
    /// `expired`); absent when the session was recorded but never created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl LastRefreshDto {
    /// Whether the refresh may still run: its session exists and has not ended.
    pub fn is_running(&self) -> Result<bool, DtoError> {
        match &self.status {
            Some(status) => Ok(!parse_status(status)?.is_terminal()),
            None => Ok(false),
        }
    }
}

/// `GET /v1/keys/{key_id}`: a completed key, when its current share generation
/// came to be and its latest refresh session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyStateDto {
    #[serde(flatten)]
    pub key: KeyDto,
    /// When the current generation of shares came to be (keygen or the latest
    /// completed refresh), in milliseconds.
    pub generation_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh: Option<LastRefreshDto>,
}

/// An operator's status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccountAction {
    Suspend,
    Lock,
    StartRecovery,
    Reactivate,
}

/// `POST /v1/accounts/{id}/status`. `reason` (1 to 500 characters) is required for
/// every action but `reactivate`, which takes none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountStatusRequest {
    pub action: AccountAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A validated [`AccountStatusRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountStatusChange {
    Suspend(String),
    Lock(String),
    StartRecovery(String),
    Reactivate,
}

impl AccountStatusRequest {
    pub fn into_domain(self) -> Result<AccountStatusChange, DtoError> {
        let reason = || {
            self.reason
                .clone()
                .ok_or(DtoError::Missing("reason"))
                .and_then(|r| text("reason", r))
        };
        Ok(match self.action {
            AccountAction::Suspend => AccountStatusChange::Suspend(reason()?),
            AccountAction::Lock => AccountStatusChange::Lock(reason()?),
            AccountAction::StartRecovery => AccountStatusChange::StartRecovery(reason()?),
            AccountAction::Reactivate => match self.reason {
                None => AccountStatusChange::Reactivate,
                Some(_) => return Err(DtoError::Unexpected("reason")),
            },
        })
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

/// `POST /v1/accounts/{id}/signatures`: sign with the account's key (device and
/// server sign). Exactly one of `message_hex` and `message_hash_hex`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountSigningRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_hash_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

impl AccountSigningRequest {
    pub fn into_domain(self) -> Result<(SigningInput, Duration), DtoError> {
        Ok((
            signing_input(self.message_hex, self.message_hash_hex)?,
            session_ttl(self.ttl_seconds)?,
        ))
    }
}

/// `POST /v1/workflows`: ask the holders of completed key `key_id` to review
/// `payload_hex` before it is signed. Approvers have `ttl_seconds` to decide
/// (default 86 400, at most 2 592 000).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateWorkflowRequest {
    pub key_id: String,
    /// 1 to 200 characters.
    pub title: String,
    /// 1 to 65 536 bytes.
    pub payload_hex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

/// A validated [`CreateWorkflowRequest`] (title and payload size are checked by the
/// workflow itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowRequest {
    pub key_id: KeyId,
    pub title: String,
    pub payload: Vec<u8>,
    pub ttl: Duration,
}

impl CreateWorkflowRequest {
    pub fn into_domain(self) -> Result<WorkflowRequest, DtoError> {
        Ok(WorkflowRequest {
            key_id: key_id("key_id", &self.key_id)?,
            title: self.title,
            payload: unhex("payload_hex", &self.payload_hex)?,
            ttl: workflow_ttl(self.ttl_seconds)?,
        })
    }
}

/// `201` answer to `POST /v1/workflows`: what each approver signs over
/// (`workflow_id`, `payload_hash_hex`, decision), who may approve and how many
/// approvals are needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateWorkflowResponse {
    pub workflow_id: String,
    pub payload_hash_hex: String,
    pub approvers: Vec<String>,
    /// Approvals needed (the key's `t`).
    pub threshold: u16,
    pub expires_at: i64,
}

/// An approver's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DecisionDto {
    Approve,
    Reject,
}

impl From<DecisionDto> for Decision {
    fn from(d: DecisionDto) -> Self {
        match d {
            DecisionDto::Approve => Decision::Approve,
            DecisionDto::Reject => Decision::Reject,
        }
    }
}

impl From<Decision> for DecisionDto {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Approve => DecisionDto::Approve,
            Decision::Reject => DecisionDto::Reject,
        }
    }
}

/// One approver of a workflow and what it decided (`none` while undecided).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApproverDto {
    pub party_id: String,
    /// `approve`, `reject` or `none`.
    pub decision: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<i64>,
}

/// `GET /v1/workflows/{id}` and the answer to decisions: a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkflowDto {
    pub workflow_id: String,
    pub key_id: String,
    pub title: String,
    /// `pending`, `approved`, `signing`, `rejected` or `expired`.
    pub status: String,
    pub payload_hex: String,
    pub payload_hash_hex: String,
    /// Approvals needed (the key's `t`).
    pub threshold: u16,
    /// Every key holder, in key order.
    pub approvers: Vec<ApproverDto>,
    /// The approvers whose approvals made the workflow approved: the signers.
    pub approved_by: Vec<String>,
    /// Signing sessions started for this workflow, oldest first.
    pub signing_sessions: Vec<String>,
    pub expires_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// `POST /v1/workflows/{id}/decisions`: an approver's decision and its Ed25519
/// signature (64 bytes, hex) by the identity key it registered with the key, over
/// the approval transcript of (workflow id, payload hash, decision). The signature
/// is the credential: no bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionRequest {
    pub approver: String,
    pub decision: DecisionDto,
    pub signature_hex: String,
}

impl DecisionRequest {
    pub fn into_domain(self) -> Result<(PartyId, Decision, IdentitySignature), DtoError> {
        Ok((
            party("approver", &self.approver)?,
            self.decision.into(),
            IdentitySignature::from_slice(&unhex("signature_hex", &self.signature_hex)?)
                .map_err(invalid("signature_hex"))?,
        ))
    }
}

/// `POST /v1/data/signatures`: sign a document or record with completed key
/// `key_id` by `signers`. The data (hex) is what signers see; they sign its
/// SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataSigningRequest {
    pub key_id: String,
    pub signers: Vec<String>,
    pub data_hex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

/// A validated [`DataSigningRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSigning {
    pub key_id: KeyId,
    pub signers: Vec<PartyId>,
    pub data: Vec<u8>,
    pub ttl: Duration,
}

impl DataSigningRequest {
    pub fn into_domain(self) -> Result<DataSigning, DtoError> {
        Ok(DataSigning {
            key_id: key_id("key_id", &self.key_id)?,
            signers: self
                .signers
                .iter()
                .map(|s| party("signers", s))
                .collect::<Result<_, _>>()?,
            data: unhex("data_hex", &self.data_hex)?,
            ttl: session_ttl(self.ttl_seconds)?,
        })
    }
}

/// An ECDSA signature to verify: `r` and `s` as 32-byte hex, and the recovery id
/// when known (without it, either is accepted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifySignatureDto {
    pub r_hex: String,
    pub s_hex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_id: Option<u8>,
}

/// `POST /v1/data/verify`: does `signature` sign the SHA-256 of `data_hex` under
/// a public key? Exactly one of `public_key_hex` (33-byte compressed SEC1) and
/// `key_id` (a completed key) names the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyDataRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub data_hex: String,
    pub signature: VerifySignatureDto,
}

/// Which key a verification is against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyKey {
    PublicKey(PublicKey),
    KeyId(KeyId),
}

/// A validated [`VerifyDataRequest`]: the key, the data and the candidate
/// signatures (one per recovery id when none was given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataVerification {
    pub key: VerifyKey,
    pub data: Vec<u8>,
    pub signatures: Vec<Signature>,
}

impl VerifyDataRequest {
    pub fn into_domain(self) -> Result<DataVerification, DtoError> {
        let key = match (self.public_key_hex, self.key_id) {
            (Some(pk), None) => VerifyKey::PublicKey(
                PublicKey::from_slice(&unhex("public_key_hex", &pk)?)
                    .map_err(invalid("public_key_hex"))?,
            ),
            (None, Some(id)) => VerifyKey::KeyId(key_id("key_id", &id)?),
            _ => return Err(DtoError::KeySource),
        };
        let r = unhex("signature.r_hex", &self.signature.r_hex)?;
        let s = unhex("signature.s_hex", &self.signature.s_hex)?;
        let recovery_ids = match self.signature.recovery_id {
            Some(id) => vec![id],
            None => vec![0, 1],
        };
        Ok(DataVerification {
            key,
            data: unhex("data_hex", &self.data_hex)?,
            signatures: recovery_ids
                .into_iter()
                .map(|id| Signature::new(&r, &s, id).map_err(invalid("signature")))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Answer to `POST /v1/data/verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyDataResponse {
    pub valid: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(i: u8) -> IdentityDto {
        IdentityDto {
            signing: hex::encode([i; 32]),
            encryption: hex::encode([i + 50; 32]),
        }
    }

    fn keygen_json() -> serde_json::Value {
        serde_json::json!({
            "kind": "keygen",
            "threshold": {"t": 2, "n": 3},
            "participants": [
                {"party_id": "device", "identity": identity(1)},
                {"party_id": "server", "identity": identity(2)},
                {"party_id": "recovery", "identity": identity(3)},
            ],
            "ttl_seconds": 60,
        })
    }

    fn account_json() -> serde_json::Value {
        serde_json::json!({
            "username": "alice",
            "email": "Alice@Example.com",
            "device": {"party_id": "device", "identity": identity(1)},
            "server": {"party_id": "server", "identity": identity(2)},
            "recovery": {"party_id": "recovery", "identity": identity(3)},
        })
    }

    #[test]
    fn account_request_names_the_field_at_fault() {
        let r: OpenAccountRequest = serde_json::from_value(account_json()).unwrap();
        let opening = r.into_domain().unwrap();
        assert_eq!(opening.email.as_str(), "alice@example.com");
        assert_eq!(
            opening.keygen_ttl,
            Duration::from_secs(DEFAULT_SESSION_TTL_SECONDS)
        );

        let mut j = account_json();
        j["recovery"]["identity"]["signing"] = "zz".into();
        let r: OpenAccountRequest = serde_json::from_value(j).unwrap();
        assert_eq!(
            r.into_domain().unwrap_err(),
            DtoError::Hex {
                field: "recovery.identity"
            }
        );

        let mut j = account_json();
        j["server"]["party_id"] = "has space".into();
        let r: OpenAccountRequest = serde_json::from_value(j).unwrap();
        let e = r.into_domain().unwrap_err();
        assert_eq!(e.code(), "invalid_party_id");
        assert!(e.to_string().starts_with("server.party_id"), "{e}");
    }

    #[test]
    fn verification_without_recovery_id_tries_both() {
        let r: VerifyDataRequest = serde_json::from_value(serde_json::json!({
            "public_key_hex": format!("02{}", hex::encode([7u8; 32])),
            "data_hex": "00",
            "signature": {"r_hex": hex::encode([1u8; 32]), "s_hex": hex::encode([2u8; 32])},
        }))
        .unwrap();
        let v = r.into_domain().unwrap();
        let ids: Vec<u8> = v.signatures.iter().map(Signature::recovery_id).collect();
        assert_eq!(ids, [0, 1]);
    }

    #[test]
    fn keygen_request_parses_from_its_documented_json() {
        let r: CreateSessionRequest = serde_json::from_value(keygen_json()).unwrap();
        let NewSession::Keygen {
            threshold,
            participants,
            ttl,
        } = NewSession::try_from(r).unwrap()
        else {
            panic!("not keygen");
        };
        assert_eq!(threshold, Threshold::new(2, 3).unwrap());
        assert_eq!(participants.len(), 3);
        assert_eq!(ttl, Duration::from_secs(60));
    }

    #[test]
    fn bad_values_are_refused_with_stable_codes() {
        let mut j = keygen_json();
        j["threshold"]["t"] = 1.into();
        let r: CreateSessionRequest = serde_json::from_value(j).unwrap();
        assert_eq!(
            NewSession::try_from(r).unwrap_err().code(),
            "invalid_threshold"
        );

        let mut j = keygen_json();
        j["participants"][0]["party_id"] = "has space".into();
        let r: CreateSessionRequest = serde_json::from_value(j).unwrap();
        assert_eq!(
            NewSession::try_from(r).unwrap_err().code(),
            "invalid_party_id"
        );

        let mut j = keygen_json();
        j["participants"][0]["identity"]["signing"] = "zz".into();
        let r: CreateSessionRequest = serde_json::from_value(j).unwrap();
        assert_eq!(NewSession::try_from(r).unwrap_err().code(), "invalid_hex");

        let mut j = keygen_json();
        j["ttl_seconds"] = 0.into();
        let r: CreateSessionRequest = serde_json::from_value(j).unwrap();
        assert_eq!(NewSession::try_from(r).unwrap_err().code(), "invalid_ttl");
    }

    #[test]
    fn signing_request_needs_exactly_one_payload() {
        let key_id = SessionId::new().to_string();
        let both = CreateSessionRequest::Signing {
            key_id: key_id.clone(),
            signers: vec!["device".into(), "server".into()],
            message_hex: Some("00".into()),
            message_hash_hex: Some(hex::encode([0u8; 32])),
            ttl_seconds: 60,
        };
        assert_eq!(NewSession::try_from(both).unwrap_err(), DtoError::Payload);
        let neither = CreateSessionRequest::Signing {
            key_id: key_id.clone(),
            signers: vec!["device".into()],
            message_hex: None,
            message_hash_hex: None,
            ttl_seconds: 60,
        };
        assert_eq!(
            NewSession::try_from(neither).unwrap_err(),
            DtoError::Payload
        );
        let short_hash = CreateSessionRequest::Signing {
            key_id,
            signers: vec!["device".into()],
            message_hex: None,
            message_hash_hex: Some("00".into()),
            ttl_seconds: 60,
        };
        assert_eq!(
            NewSession::try_from(short_hash).unwrap_err().code(),
            "invalid_length"
        );
    }

    #[test]
    fn report_bodies_are_tagged_by_kind_and_round_trip() {
        let sig = Signature::new(&[1; 32], &[2; 32], 1).unwrap();
        let body = ReportRequest::completion(&PartyOutcome::Signature(sig));
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["kind"], "signature");
        assert_eq!(json["r_hex"], hex::encode([1u8; 32]));
        let back: ReportRequest = serde_json::from_value(json).unwrap();
        assert_eq!(
            Report::try_from(back).unwrap(),
            Report::Completion(PartyOutcome::Signature(sig))
        );
        let failure = ReportRequest::failure(&[PartyId::parse("server").unwrap()], "abort");
        assert_eq!(serde_json::to_value(&failure).unwrap()["kind"], "failure");
    }

    #[test]
    fn session_view_round_trips_through_its_dto() {
        let participants: Vec<Participant> = ["device", "server", "recovery"]
            .iter()
            .zip(1u8..)
            .map(|(n, i)| Participant {
                party_id: PartyId::parse(*n).unwrap(),
                identity: IdentityKey::new(&[i; 32], &[i + 50; 32]).unwrap(),
            })
            .collect();
        let mut pk = [9u8; 33];
        pk[0] = 2;
        let key = KeyRef {
            key_id: KeyId::of_keygen(SessionId::new()),
            public_key: PublicKey::from_slice(&pk).unwrap(),
            threshold: Threshold::new(2, 3).unwrap(),
            parties: participants.clone(),
            epoch: 2,
        };
        let refresh = SessionView {
            session_id: SessionId::new(),
            spec: SessionSpec::Refresh {
                key: key.clone(),
                repair: Some(RepairSpec {
                    target: participants[0].party_id.clone(),
                    identity: IdentityKey::new(&[77; 32], &[78; 32]).unwrap(),
                    helpers: vec![
                        participants[1].party_id.clone(),
                        participants[2].party_id.clone(),
                    ],
                }),
            },
            participants: participants
                .iter()
                .cloned()
                .zip(1..)
                .map(|(p, i)| (i, p))
                .collect(),
            status: SessionStatus::Created,
            expires_at: Timestamp::from_millis(1_700_000_000_000),
        };
        let json = serde_json::to_string(&SessionViewDto::from(&refresh)).unwrap();
        let back: SessionViewDto = serde_json::from_str(&json).unwrap();
        assert_eq!(back.kind, "refresh");
        assert_eq!(SessionView::try_from(&back).unwrap(), refresh);
        let view = SessionView {
            session_id: SessionId::new(),
            spec: SessionSpec::Signing {
                key,
                message_hash: MessageHash::from_bytes([7; 32]),
                message: Some(b"pay".to_vec()),
                approval: Some(ApprovalEvidence {
                    workflow_id: WorkflowId::new(),
                    payload_hash: MessageHash::from_bytes([7; 32]),
                    approvals: vec![SignedApproval {
                        approver: participants[0].party_id.clone(),
                        signature: IdentitySignature::from_bytes([5; 64]),
                    }],
                }),
            },
            participants: vec![(1, participants[0].clone()), (3, participants[2].clone())],
            status: SessionStatus::InProgress,
            expires_at: Timestamp::from_millis(1_700_000_000_000),
        };
        let dto = SessionViewDto::from(&view);
        let json = serde_json::to_string(&dto).unwrap();
        let back: SessionViewDto = serde_json::from_str(&json).unwrap();
        assert_eq!(SessionView::try_from(&back).unwrap(), view);
        assert_eq!(dto.status, "in_progress");
        assert_eq!(dto.message_hex.as_deref(), Some("706179"));
    }

    #[test]
    fn recovery_requests_convert_or_name_the_field_at_fault() {
        let parse = |v: serde_json::Value| serde_json::from_value::<RecoveryRequest>(v);
        let (kind, ttl) = parse(serde_json::json!({"kind": "share_rotation"}))
            .unwrap()
            .into_domain()
            .unwrap();
        assert_eq!(kind, RecoveryKind::ShareRotation);
        assert_eq!(ttl, Duration::from_secs(DEFAULT_SESSION_TTL_SECONDS));
        let (kind, ttl) = parse(serde_json::json!({
            "kind": "device_lost",
            "device_identity": identity(9),
            "ttl_seconds": 60,
        }))
        .unwrap()
        .into_domain()
        .unwrap();
        assert_eq!(
            kind,
            RecoveryKind::DeviceLost {
                identity: (&identity(9)).try_into().unwrap()
            }
        );
        assert_eq!(ttl, Duration::from_secs(60));
        assert!(parse(serde_json::json!({"kind": "explode"})).is_err());
        assert!(parse(serde_json::json!({"kind": "device_lost"})).is_err());
        assert!(
            parse(serde_json::json!({"kind": "share_rotation", "device_identity": identity(9)}))
                .is_err()
        );
        let bad_hex = parse(serde_json::json!({
            "kind": "device_lost",
            "device_identity": {"signing": "zz", "encryption": "00"},
        }))
        .unwrap()
        .into_domain()
        .unwrap_err();
        assert_eq!(bad_hex.code(), "invalid_hex");
        let ttl = parse(serde_json::json!({"kind": "share_rotation", "ttl_seconds": 0}))
            .unwrap()
            .into_domain()
            .unwrap_err();
        assert_eq!(ttl.code(), "invalid_ttl");
    }

    #[test]
    fn a_last_refresh_runs_until_its_session_ends() {
        let last = |status: Option<&str>| LastRefreshDto {
            session_id: SessionId::new().to_string(),
            status: status.map(str::to_owned),
        };
        assert!(last(Some("created")).is_running().unwrap());
        assert!(last(Some("in_progress")).is_running().unwrap());
        assert!(!last(Some("completed")).is_running().unwrap());
        assert!(!last(Some("expired")).is_running().unwrap());
        assert!(!last(None).is_running().unwrap());
        assert!(last(Some("exploded")).is_running().is_err());
    }
}
