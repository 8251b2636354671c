//! Version 2 of `SessionCreated`: signing specs carry the approval evidence of a
//! workflow (`null` when there is none). Everything else is as in v1.

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

impl From<&SignedApproval> for ApprovalSignature {
    fn from(a: &SignedApproval) -> Self {
        Self {
            approver: a.approver.to_string(),
            signature: hex::encode(a.signature.as_bytes()),
        }
    }
}

impl TryFrom<ApprovalSignature> for SignedApproval {
    type Error = SchemaError;
    fn try_from(s: ApprovalSignature) -> Result<Self, SchemaError> {
        Ok(Self {
            approver: PartyId::parse(s.approver)?,
            signature: IdentitySignature::from_slice(&unhex("approval.signature", &s.signature)?)?,
        })
    }
}

impl From<&ApprovalEvidence> for Approval {
    fn from(e: &ApprovalEvidence) -> Self {
        Self {
            workflow_id: e.workflow_id.to_string(),
            payload_hash: hex::encode(e.payload_hash.as_bytes()),
            approvals: e.approvals.iter().map(ApprovalSignature::from).collect(),
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
                .map(SignedApproval::try_from)
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
                policy: KeyPolicy::AnyRequest,
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
