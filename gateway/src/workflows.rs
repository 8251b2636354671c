//! Approval workflows (multi-person review before a key signs) and data-integrity
//! signing.
//!
//! Creating a workflow and starting its signing are the requester role's, reading
//! it any operator's. Posting a decision needs no bearer token: the decision's
//! Ed25519 signature by the approver's registered identity key is its credential,
//! and a signature that does not verify changes nothing. Verifying a data
//! signature is pure computation and open to anyone.

use actix_web::{HttpResponse, web};
use mpc_actors::workflow::Workflow;
use mpc_actors::{ApprovalServiceError, CommandMeta, NewSigning, NewWorkflow, SigningPayload};
use mpc_api::{
    ApiError, ApproverDto, CreateSessionResponse, CreateWorkflowRequest, CreateWorkflowResponse,
    DataSigningRequest, DecisionRequest, SessionTtlRequest, VerifyDataRequest, VerifyDataResponse,
    VerifyKey, WorkflowDto,
};
use mpc_events::{MessageHash, WorkflowId};
use sha2::{Digest, Sha256};

use crate::GatewayState;
use crate::error::GatewayError;
use crate::routes::{Result, created_dto, path_id, unknown_key};

fn workflow_dto(w: &Workflow) -> WorkflowDto {
    let created = &w.created;
    WorkflowDto {
        workflow_id: created.workflow_id.to_string(),
        key_id: created.key.key_id.to_string(),
        title: created.title.clone(),
        status: w.status.to_string(),
        payload_hex: hex::encode(&created.payload),
        payload_hash_hex: hex::encode(created.payload_hash.as_bytes()),
        threshold: created.key.threshold.t().into(),
        approvers: created
            .key
            .parties
            .iter()
            .map(|p| {
                let decided = w.decisions.iter().find(|d| d.approver == p.party_id);
                ApproverDto {
                    party_id: p.party_id.to_string(),
                    decision: decided.map_or_else(|| "none".to_owned(), |d| d.decision.to_string()),
                    decided_at: decided.map(|d| d.at.as_millis()),
                }
            })
            .collect(),
        approved_by: w.approvers.iter().map(ToString::to_string).collect(),
        signing_sessions: w.signing_sessions.iter().map(ToString::to_string).collect(),
        expires_at: created.expires_at.as_millis(),
        created_at: created.at.as_millis(),
        updated_at: w.updated_at.as_millis(),
    }
}

/// Create a workflow over a completed key: its holders approve or reject the
/// payload (requester).
#[utoipa::path(
    post, path = "/v1/workflows", tag = "workflows",
    request_body = CreateWorkflowRequest,
    responses(
        (status = 201, description = "created; what approvers sign over", body = CreateWorkflowResponse),
        (status = 400, description = "invalid request (title, payload, ttl)", body = ApiError),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 404, description = "unknown key", body = ApiError),
        (status = 409, description = "key not ready", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn create(
    state: web::Data<GatewayState>,
    body: web::Json<CreateWorkflowRequest>,
) -> Result<HttpResponse> {
    let request = body.into_inner().into_domain()?;
    let key_id = request.key_id;
    let id = state
        .approvals
        .create(
            NewWorkflow {
                key_id,
                title: request.title,
                payload: request.payload,
                ttl: request.ttl,
            },
            CommandMeta::new(),
        )
        .await
        .map_err(|e| match e {
            ApprovalServiceError::Coordinator(e) => unknown_key(e, key_id),
            other => other.into(),
        })?;
    let w = state.approvals.workflow(id).await?;
    Ok(HttpResponse::Created().json(CreateWorkflowResponse {
        workflow_id: id.to_string(),
        payload_hash_hex: hex::encode(w.created.payload_hash.as_bytes()),
        approvers: w
            .created
            .key
            .parties
            .iter()
            .map(|p| p.party_id.to_string())
            .collect(),
        threshold: w.created.key.threshold.t().into(),
        expires_at: w.created.expires_at.as_millis(),
    }))
}

/// A workflow: status, payload, approvers and their decisions, signing sessions
/// (any operator role).
#[utoipa::path(
    get, path = "/v1/workflows/{id}", tag = "workflows", operation_id = "get_workflow",
    params(("id" = uuid::Uuid, Path, description = "workflow id")),
    responses(
        (status = 200, description = "the workflow", body = WorkflowDto),
        (status = 400, description = "not a workflow id", body = ApiError),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 404, description = "unknown workflow", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn get(state: web::Data<GatewayState>, path: web::Path<String>) -> Result<HttpResponse> {
    let id = path_id::<WorkflowId>(&path, "a workflow id")?;
    let w = state.approvals.workflow(id).await?;
    Ok(HttpResponse::Ok().json(workflow_dto(&w)))
}

/// Record an approver's signed decision. No bearer token: the signature over
/// (workflow id, key id, group key, share generation, payload hash, decision) by the
/// approver's registered identity key is the credential.
#[utoipa::path(
    post, path = "/v1/workflows/{id}/decisions", tag = "workflows",
    params(("id" = uuid::Uuid, Path, description = "workflow id")),
    request_body = DecisionRequest,
    responses(
        (status = 200, description = "recorded; the workflow afterwards", body = WorkflowDto),
        (status = 400, description = "invalid request", body = ApiError),
        (status = 401, description = "`invalid_approval_signature`: the signature does not verify", body = ApiError),
        (status = 403, description = "`not_an_approver`", body = ApiError),
        (status = 404, description = "unknown workflow", body = ApiError),
        (status = 409, description = "`already_decided`, `workflow_not_pending` or `deadline_passed`", body = ApiError),
    )
)]
pub async fn decide(
    state: web::Data<GatewayState>,
    path: web::Path<String>,
    body: web::Json<DecisionRequest>,
) -> Result<HttpResponse> {
    let id = path_id::<WorkflowId>(&path, "a workflow id")?;
    let (approver, decision, signature) = body.into_inner().into_domain()?;
    let w = state
        .approvals
        .decide(id, approver, decision, signature, CommandMeta::new())
        .await?;
    Ok(HttpResponse::Ok().json(workflow_dto(&w)))
}

/// Start the signing session of an approved workflow among the approvers whose
/// approvals it carries (requester).
#[utoipa::path(
    post, path = "/v1/workflows/{id}/signing", tag = "workflows",
    params(("id" = uuid::Uuid, Path, description = "workflow id")),
    request_body = SessionTtlRequest,
    responses(
        (status = 201, description = "the signing session; join tokens for the approvers", body = CreateSessionResponse),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 404, description = "unknown workflow", body = ApiError),
        (status = 409, description = "`workflow_not_approved`, `approvals_used` (approvals are single-use: one signing session per workflow) or `key_refreshed` (the key moved to another share generation since the approvals)", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn start_signing(
    state: web::Data<GatewayState>,
    path: web::Path<String>,
    body: web::Json<SessionTtlRequest>,
) -> Result<HttpResponse> {
    let id = path_id::<WorkflowId>(&path, "a workflow id")?;
    let ttl = body.into_inner().into_ttl()?;
    let created = state
        .approvals
        .start_signing(id, ttl, CommandMeta::new())
        .await?;
    Ok(HttpResponse::Created().json(created_dto(&created)))
}

/// Sign a document or record with a completed key: a signing session whose
/// signers see the data and sign its SHA-256 (requester).
#[utoipa::path(
    post, path = "/v1/data/signatures", tag = "data",
    request_body = DataSigningRequest,
    responses(
        (status = 201, description = "the signing session; one join token per signer", body = CreateSessionResponse),
        (status = 400, description = "invalid request", body = ApiError),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 404, description = "unknown key", body = ApiError),
        (status = 409, description = "key not ready", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn sign_data(
    state: web::Data<GatewayState>,
    body: web::Json<DataSigningRequest>,
) -> Result<HttpResponse> {
    let request = body.into_inner().into_domain()?;
    let key_id = request.key_id;
    let created = state
        .coordinator
        .create_signing(
            NewSigning {
                key_id,
                signers: request.signers,
                payload: SigningPayload::Message(request.data),
                ttl: request.ttl,
            },
            CommandMeta::new(),
        )
        .await
        .map_err(|e| unknown_key(e, key_id))?;
    Ok(HttpResponse::Created().json(created_dto(&created)))
}

/// Verify an ECDSA signature over the SHA-256 of some data, under a public key or
/// a completed key. Open to anyone; a signature that does not match is
/// `{"valid": false}`, only malformed input is refused.
#[utoipa::path(
    post, path = "/v1/data/verify", tag = "data",
    request_body = VerifyDataRequest,
    responses(
        (status = 200, description = "whether the signature is valid", body = VerifyDataResponse),
        (status = 400, description = "malformed key, data or signature (`invalid_hex`, `invalid_length`, `invalid_public_key`, `invalid_signature`, `invalid_key_source`)", body = ApiError),
        (status = 404, description = "unknown key", body = ApiError),
        (status = 409, description = "key not ready", body = ApiError),
    )
)]
pub async fn verify_data(
    state: web::Data<GatewayState>,
    body: web::Json<VerifyDataRequest>,
) -> Result<HttpResponse> {
    let request = body.into_inner().into_domain()?;
    let public_key = match request.key {
        VerifyKey::PublicKey(pk) => pk,
        VerifyKey::KeyId(key_id) => {
            state
                .coordinator
                .key(key_id)
                .await
                .map_err(|e| unknown_key(e, key_id))?
                .public_key
        }
    };
    if !mpc_crypto::is_on_curve(&public_key) {
        return Err(GatewayError::bad_request(
            "invalid_public_key",
            "public_key_hex is not a point on secp256k1",
        ));
    }
    let hash = MessageHash::from_bytes(Sha256::digest(&request.data).into());
    let valid = request
        .signatures
        .iter()
        .any(|s| mpc_crypto::verify_signature(&public_key, &hash, s));
    Ok(HttpResponse::Ok().json(VerifyDataResponse { valid }))
}
