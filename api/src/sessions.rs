//! `/v1/sessions`: creating, joining, reporting on, closing and reading sessions,
//! and the session view a party receives when it joins.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use mpc_events::{
    ApprovalEvidence, FailureReason, IdentitySignature, KeyId, KeyPolicy, MessageHash, Participant,
    PartyId, PartyOutcome, PublicKey, RefreshDigest, RepairSpec, SessionId, SessionSpec,
    SessionStatus, SessionView, Signature, SignedApproval, Threshold, Timestamp, WorkflowId,
};
use serde::{Deserialize, Serialize};

use crate::common::{invalid, kind_str, parse_policy, party, signing_input, text, ttl, unhex};
use crate::{
    DtoError, IdentityDto, IndexedParticipantDto, KeyDto, ParticipantDto, SignatureDto,
    SigningInput, ThresholdDto, parse_status,
};

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
        /// Which signing sessions of the new key its holders join: `any-request`
        /// (the default) or `approved-only` (only sessions carrying t approvals of
        /// an approval workflow). Every holder pins it with its share; it cannot be
        /// changed later.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        policy: Option<String>,
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

/// A validated [`CreateSessionRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewSession {
    Keygen {
        threshold: Threshold,
        participants: Vec<Participant>,
        ttl: Duration,
        policy: KeyPolicy,
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
                policy,
            } => Ok(Self::Keygen {
                policy: parse_policy("policy", policy.as_deref())?,
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

/// What a party learns when it joins: everything it needs to run its part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionViewDto {
    pub session_id: String,
    /// `keygen`, `signing` or `refresh`.
    pub kind: String,
    pub threshold: ThresholdDto,
    /// The new key's signing policy (keygen sessions only): `any-request` or
    /// `approved-only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
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
    /// The holders' signed authorizations of the repair (recovery transcript).
    pub authorizations: Vec<SignedApprovalDto>,
    /// The key's signing policy (`any-request` when absent): every holder refuses
    /// a repair naming another policy than the one it pinned at keygen, and the new
    /// device pins it with its rebuilt share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

impl From<&RepairSpec> for RepairDto {
    fn from(r: &RepairSpec) -> Self {
        Self {
            target: r.target.to_string(),
            identity: IdentityDto::from(&r.identity),
            helpers: r.helpers.iter().map(ToString::to_string).collect(),
            authorizations: r
                .authorizations
                .iter()
                .map(SignedApprovalDto::from)
                .collect(),
            policy: Some(r.policy.as_str().to_owned()),
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
            authorizations: d
                .authorizations
                .iter()
                .map(|a| {
                    a.to_domain(
                        "repair.authorizations.approver",
                        "repair.authorizations.signature_hex",
                    )
                })
                .collect::<Result<_, _>>()?,
            policy: parse_policy("repair.policy", d.policy.as_deref())?,
        })
    }
}

/// An approver's signed approval inside [`ApprovalEvidenceDto`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedApprovalDto {
    pub approver: String,
    /// Ed25519 signature (64 bytes) by the approver's identity key over the
    /// approval transcript (workflow id, payload hash, decision), or for a
    /// repair's authorization over the recovery transcript (key id, generation,
    /// target, new identity).
    pub signature_hex: String,
}

impl From<&SignedApproval> for SignedApprovalDto {
    fn from(a: &SignedApproval) -> Self {
        Self {
            approver: a.approver.to_string(),
            signature_hex: hex::encode(a.signature.as_bytes()),
        }
    }
}

impl SignedApprovalDto {
    /// The domain approval; errors name `approver_field` or `signature_field`.
    pub fn to_domain(
        &self,
        approver_field: &'static str,
        signature_field: &'static str,
    ) -> Result<SignedApproval, DtoError> {
        Ok(SignedApproval {
            approver: party(approver_field, &self.approver)?,
            signature: IdentitySignature::from_slice(&unhex(signature_field, &self.signature_hex)?)
                .map_err(invalid(signature_field))?,
        })
    }
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
            approvals: e.approvals.iter().map(SignedApprovalDto::from).collect(),
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
                .map(|a| a.to_domain("approval.approver", "approval.signature_hex"))
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
        let policy = match &v.spec {
            SessionSpec::Keygen { policy, .. } => Some(policy.as_str().to_owned()),
            _ => None,
        };
        let repair = match &v.spec {
            SessionSpec::Refresh {
                repair: Some(repair),
                ..
            } => Some(RepairDto::from(&**repair)),
            _ => None,
        };
        Self {
            session_id: v.session_id.to_string(),
            kind: kind_str(v.spec.kind()),
            threshold: v.spec.threshold().into(),
            policy,
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
                policy: parse_policy("policy", d.policy.as_deref())?,
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
                repair: d
                    .repair
                    .as_ref()
                    .map(RepairSpec::try_from)
                    .transpose()?
                    .map(Box::new),
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
/// `mpc_schemas::Envelope::encode`) addressed to the caller, in order, and the cursor to
/// pass as `after` next time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InboxResponse {
    pub messages: Vec<String>,
    pub cursor: u64,
}

#[cfg(test)]
mod tests {
    use mpc_events::{IdentityKey, KeyRef};

    use super::*;
    use crate::test_support::identity;

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

    #[test]
    fn keygen_request_parses_from_its_documented_json() {
        let r: CreateSessionRequest = serde_json::from_value(keygen_json()).unwrap();
        let NewSession::Keygen {
            threshold,
            participants,
            ttl,
            policy,
        } = NewSession::try_from(r).unwrap()
        else {
            panic!("not keygen");
        };
        assert_eq!(threshold, Threshold::new(2, 3).unwrap());
        assert_eq!(participants.len(), 3);
        assert_eq!(ttl, Duration::from_secs(60));
        assert_eq!(policy, KeyPolicy::AnyRequest);
    }

    #[test]
    fn a_keygen_names_its_policy_and_an_unknown_one_is_refused() {
        let policy = |value: &str| {
            let mut j = keygen_json();
            j["policy"] = value.into();
            let r: CreateSessionRequest = serde_json::from_value(j).unwrap();
            NewSession::try_from(r).map(|s| match s {
                NewSession::Keygen { policy, .. } => policy,
                NewSession::Signing { .. } => panic!("not keygen"),
            })
        };
        assert_eq!(policy("approved-only").unwrap(), KeyPolicy::ApprovedOnly);
        assert_eq!(policy("any-request").unwrap(), KeyPolicy::AnyRequest);
        assert_eq!(policy("approve-all").unwrap_err().code(), "invalid_value");
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
                repair: Some(Box::new(RepairSpec {
                    target: participants[0].party_id.clone(),
                    identity: IdentityKey::new(&[77; 32], &[78; 32]).unwrap(),
                    helpers: vec![
                        participants[1].party_id.clone(),
                        participants[2].party_id.clone(),
                    ],
                    authorizations: vec![SignedApproval {
                        approver: participants[1].party_id.clone(),
                        signature: IdentitySignature::from_bytes([5; 64]),
                    }],
                    policy: KeyPolicy::ApprovedOnly,
                })),
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
        let keygen = SessionView {
            spec: SessionSpec::Keygen {
                threshold: Threshold::new(2, 3).unwrap(),
                policy: KeyPolicy::ApprovedOnly,
            },
            ..view
        };
        let dto = SessionViewDto::from(&keygen);
        assert_eq!(dto.policy.as_deref(), Some("approved-only"));
        let back: SessionViewDto =
            serde_json::from_str(&serde_json::to_string(&dto).unwrap()).unwrap();
        assert_eq!(SessionView::try_from(&back).unwrap(), keygen);
    }
}
