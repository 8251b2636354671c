//! `/v1/operators`: the operators' API keys. The `admin` role adds and revokes
//! them; auditors may list them. A new key is answered once and never stored: the
//! registry ([`mpc_actors::Operators`]) keeps its SHA-256 digest, name and role.

use actix_web::{HttpResponse, web};
use mpc_actors::CommandMeta;
use mpc_actors::operator::Credential;
use mpc_api::{ApiError, CreateOperatorRequest, CreatedOperatorDto, OperatorDto, OperatorsDto};
use mpc_events::{CredentialId, CredentialName};

use crate::GatewayState;
use crate::auth::ApiKey;
use crate::routes::{Result, path_id};

fn operator_dto(c: &Credential) -> OperatorDto {
    OperatorDto {
        credential_id: c.id.to_string(),
        name: c.name.to_string(),
        role: c.role.into(),
        created_at: c.created_at.as_millis(),
        revoked_at: c.revoked_at.map(|t| t.as_millis()),
    }
}

/// Add an API key with a role; the key is in this answer only (admin).
#[utoipa::path(
    post, path = "/v1/operators", tag = "operators",
    request_body = CreateOperatorRequest,
    responses(
        (status = 201, description = "added; the key is shown only here", body = CreatedOperatorDto),
        (status = 400, description = "invalid name or role", body = ApiError),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 403, description = "not the admin role", body = ApiError),
        (status = 409, description = "an active key has this name (name_taken)", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn add(
    state: web::Data<GatewayState>,
    body: web::Json<CreateOperatorRequest>,
) -> Result<HttpResponse> {
    let body = body.into_inner();
    let name = CredentialName::parse(body.name)?;
    let key = ApiKey::generate(CredentialId::new())?;
    let credential = state
        .operators
        .add(
            key.id,
            name,
            body.role.into(),
            key.digest(),
            CommandMeta::new(),
        )
        .await?;
    tracing::info!(credential = %credential.id, role = %credential.role, "API key added");
    Ok(HttpResponse::Created().json(CreatedOperatorDto {
        operator: operator_dto(&credential),
        api_key: key.expose().to_owned(),
    }))
}

/// Every API key, active and revoked, oldest first: ids, names, roles, never keys
/// (admin or auditor).
#[utoipa::path(
    get, path = "/v1/operators", tag = "operators",
    responses(
        (status = 200, description = "the credentials", body = OperatorsDto),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 403, description = "not the admin or auditor role", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn list(state: web::Data<GatewayState>) -> Result<HttpResponse> {
    let registry = state.operators.current().await?;
    let mut operators: Vec<&Credential> = registry.credentials.values().collect();
    operators.sort_by_key(|c| (c.created_at, c.id));
    Ok(HttpResponse::Ok().json(OperatorsDto {
        operators: operators.into_iter().map(operator_dto).collect(),
    }))
}

/// Revoke an API key for good: it never authenticates again, on any replica
/// (admin).
#[utoipa::path(
    delete, path = "/v1/operators/{id}", tag = "operators",
    params(("id" = uuid::Uuid, Path, description = "credential id")),
    responses(
        (status = 200, description = "revoked", body = OperatorDto),
        (status = 400, description = "invalid id", body = ApiError),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 403, description = "not the admin role", body = ApiError),
        (status = 404, description = "unknown credential", body = ApiError),
        (status = 409, description = "already revoked", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn revoke(
    state: web::Data<GatewayState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let id = path_id::<CredentialId>(&path, "a credential id")?;
    let credential = state.operators.revoke(id, CommandMeta::new()).await?;
    tracing::info!(credential = %credential.id, "API key revoked");
    Ok(HttpResponse::Ok().json(operator_dto(&credential)))
}
