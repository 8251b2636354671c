//! `/v1/workflows`: approval workflows, approvers' decisions and their status.

use std::time::Duration;

use mpc_events::{Decision, IdentitySignature, KeyId, PartyId};
use serde::{Deserialize, Serialize};

use crate::DtoError;
use crate::common::{invalid, key_id, party, unhex};

/// Default time approvers have to decide on a workflow (one day).
pub const DEFAULT_WORKFLOW_TTL_SECONDS: u64 = 86_400;
/// Longest time approvers may be given (thirty days).
pub const MAX_WORKFLOW_TTL_SECONDS: u64 = 30 * 86_400;

fn workflow_ttl(seconds: Option<u64>) -> Result<Duration, DtoError> {
    match seconds.unwrap_or(DEFAULT_WORKFLOW_TTL_SECONDS) {
        s @ 1..=MAX_WORKFLOW_TTL_SECONDS => Ok(Duration::from_secs(s)),
        s => Err(DtoError::WorkflowTtl(s)),
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
/// the approval transcript (v2) of (workflow id, key id, group public key, share
/// generation, payload hash, decision). The signature is the credential: no bearer
/// token.
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
