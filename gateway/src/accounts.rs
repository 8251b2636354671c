//! Accounts: open one (and its 2-of-3 keygen among device, server and recovery),
//! read it, change its status, restart a failed keygen, sign with its key, and
//! start and list its recovery sessions. Each route names the operator roles it
//! admits (`crate::roles`).

use actix_web::{HttpResponse, web};
use mpc_actors::account::{Account, Recovery};
use mpc_actors::{CommandMeta, CoordinatorError, NewAccount, StatusChange};
use mpc_api::{
    AccountDto, AccountSigningRequest, AccountStatusChange, AccountStatusRequest, ApiError,
    CreateSessionResponse, KeyStatusDto, OpenAccountRequest, OpenAccountResponse, RecoveriesDto,
    RecoveryDto, RecoveryRequest, SessionTtlRequest,
};
use mpc_events::{AccountId, KeyId, RecoveryKind, SessionError, SessionStatus, ShareRole};

use crate::GatewayState;
use crate::routes::{Result, created_dto, path_id, signing_payload};

/// The account as the API shows it: status, share locations and where its key
/// stands.
async fn account_dto(state: &GatewayState, account: &Account) -> Result<AccountDto> {
    let keygen = account.keygen_session;
    let key_status = match state.coordinator.session(keygen).await {
        Ok(s) if s.status == SessionStatus::Completed => KeyStatusDto::Completed,
        Ok(s) if matches!(s.status, SessionStatus::Failed | SessionStatus::Expired) => {
            KeyStatusDto::Failed
        }
        Ok(_) => KeyStatusDto::Pending,
        Err(CoordinatorError::Session(SessionError::UnknownSession)) => KeyStatusDto::Failed,
        Err(e) => return Err(e.into()),
    };
    let key = match key_status {
        KeyStatusDto::Completed => Some(state.coordinator.key(KeyId::of_keygen(keygen)).await?),
        KeyStatusDto::Pending | KeyStatusDto::Failed => None,
    };
    Ok(AccountDto {
        account_id: account.account_id.to_string(),
        username: account.username.as_str().to_owned(),
        email: account.email.as_str().to_owned(),
        phone: account.phone.as_ref().map(|p| p.as_str().to_owned()),
        status: account.status.to_string(),
        shares: ShareRole::ALL
            .iter()
            .map(|r| (r.to_string(), account.parties.get(*r).party_id.to_string()))
            .collect(),
        share_identities: ShareRole::ALL
            .iter()
            .map(|r| (r.to_string(), (&account.parties.get(*r).identity).into()))
            .collect(),
        keygen_session_id: keygen.to_string(),
        key_status,
        key_id: key.as_ref().map(|k| k.key_id.to_string()),
        public_key_hex: key.as_ref().map(|k| hex::encode(k.public_key.as_bytes())),
        key_epoch: key.as_ref().map(|k| k.epoch),
        open_recovery: account.open_recovery().map(recovery_dto),
        opened_at: account.opened_at.as_millis(),
        last_used_at: account.last_used_at.map(|t| t.as_millis()),
        updated_at: account.updated_at.as_millis(),
    })
}

/// One recovery session as the API shows it.
fn recovery_dto(r: &Recovery) -> RecoveryDto {
    RecoveryDto {
        session_id: r.session_id.to_string(),
        kind: r.kind.name().to_owned(),
        status: r.status.to_string(),
        failure: r.failure.clone(),
        new_device_identity: match &r.kind {
            RecoveryKind::DeviceLost { identity } => Some(identity.into()),
            RecoveryKind::ShareRotation => None,
        },
        requested_at: r.requested_at.as_millis(),
        updated_at: r.updated_at.as_millis(),
    }
}

/// Open an account and start its 2-of-3 keygen (key-manager).
#[utoipa::path(
    post, path = "/v1/accounts", tag = "accounts",
    request_body = OpenAccountRequest,
    responses(
        (status = 201, description = "opened; the keygen session's join tokens, one per party", body = OpenAccountResponse),
        (status = 400, description = "invalid request (username, email, phone, parties, ttl)", body = ApiError),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 409, description = "`username_taken` or `email_taken`", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn open(
    state: web::Data<GatewayState>,
    body: web::Json<OpenAccountRequest>,
) -> Result<HttpResponse> {
    let opening = body.into_inner().into_domain()?;
    let opened = state
        .accounts
        .open(
            NewAccount {
                username: opening.username,
                email: opening.email,
                phone: opening.phone,
                parties: opening.parties,
                keygen_ttl: opening.keygen_ttl,
            },
            CommandMeta::new(),
        )
        .await?;
    Ok(HttpResponse::Created().json(OpenAccountResponse {
        account_id: opened.account_id.to_string(),
        keygen: created_dto(&opened.keygen),
    }))
}

/// An account: status, share-location map (role → party id) and key (any operator role).
#[utoipa::path(
    get, path = "/v1/accounts/{id}", tag = "accounts", operation_id = "get_account",
    params(("id" = uuid::Uuid, Path, description = "account id")),
    responses(
        (status = 200, description = "the account", body = AccountDto),
        (status = 400, description = "not an account id", body = ApiError),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 404, description = "unknown account", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn get(state: web::Data<GatewayState>, path: web::Path<String>) -> Result<HttpResponse> {
    let id = path_id::<AccountId>(&path, "an account id")?;
    let account = state.accounts.account(id).await?;
    Ok(HttpResponse::Ok().json(account_dto(&state, &account).await?))
}

/// Suspend, lock, start recovery of or reactivate an account (key-manager).
#[utoipa::path(
    post, path = "/v1/accounts/{id}/status", tag = "accounts",
    params(("id" = uuid::Uuid, Path, description = "account id")),
    request_body = AccountStatusRequest,
    responses(
        (status = 200, description = "changed; the account afterwards", body = AccountDto),
        (status = 400, description = "invalid action or reason", body = ApiError),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 404, description = "unknown account", body = ApiError),
        (status = 409, description = "`invalid_transition` or `already_in_status`", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn change_status(
    state: web::Data<GatewayState>,
    path: web::Path<String>,
    body: web::Json<AccountStatusRequest>,
) -> Result<HttpResponse> {
    let id = path_id::<AccountId>(&path, "an account id")?;
    let change = match body.into_inner().into_domain()? {
        AccountStatusChange::Suspend(r) => StatusChange::Suspend(r),
        AccountStatusChange::Lock(r) => StatusChange::Lock(r),
        AccountStatusChange::StartRecovery(r) => StatusChange::StartRecovery(r),
        AccountStatusChange::Reactivate => StatusChange::Reactivate,
    };
    let account = state
        .accounts
        .change_status(id, change, CommandMeta::new())
        .await?;
    Ok(HttpResponse::Ok().json(account_dto(&state, &account).await?))
}

/// Replace the account's failed or expired keygen session with a new one (key-manager).
#[utoipa::path(
    post, path = "/v1/accounts/{id}/keygen", tag = "accounts",
    params(("id" = uuid::Uuid, Path, description = "account id")),
    request_body = SessionTtlRequest,
    responses(
        (status = 201, description = "the new keygen session", body = CreateSessionResponse),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 404, description = "unknown account", body = ApiError),
        (status = 409, description = "`keygen_not_failed`: the current keygen has not failed", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn restart_keygen(
    state: web::Data<GatewayState>,
    path: web::Path<String>,
    body: web::Json<SessionTtlRequest>,
) -> Result<HttpResponse> {
    let id = path_id::<AccountId>(&path, "an account id")?;
    let ttl = body.into_inner().into_ttl()?;
    let created = state
        .accounts
        .restart_keygen(id, ttl, CommandMeta::new())
        .await?;
    Ok(HttpResponse::Created().json(created_dto(&created)))
}

/// Start a signing session with the account's key between its device and server
/// parties (requester).
#[utoipa::path(
    post, path = "/v1/accounts/{id}/signatures", tag = "accounts",
    params(("id" = uuid::Uuid, Path, description = "account id")),
    request_body = AccountSigningRequest,
    responses(
        (status = 201, description = "the signing session; join tokens for device and server", body = CreateSessionResponse),
        (status = 400, description = "invalid request", body = ApiError),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 404, description = "unknown account", body = ApiError),
        (status = 409, description = "`account_not_active` or `key_not_ready`", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn sign(
    state: web::Data<GatewayState>,
    path: web::Path<String>,
    body: web::Json<AccountSigningRequest>,
) -> Result<HttpResponse> {
    let id = path_id::<AccountId>(&path, "an account id")?;
    let (input, ttl) = body.into_inner().into_domain()?;
    let created = state
        .accounts
        .sign(id, signing_payload(input), ttl, CommandMeta::new())
        .await?;
    Ok(HttpResponse::Created().json(created_dto(&created)))
}

/// Start a recovery session of the account: `device_lost` rebuilds the device share
/// for a new device (the account must be recovering), `share_rotation` refreshes
/// every share (the account must be active). Answers with the refresh session and
/// its join tokens (device, server, recovery); the account then follows the
/// session (in progress, completed or failed) on its own (key-manager).
#[utoipa::path(
    post, path = "/v1/accounts/{id}/recoveries", tag = "accounts",
    params(("id" = uuid::Uuid, Path, description = "account id")),
    request_body = RecoveryRequest,
    responses(
        (status = 201, description = "the recovery's refresh session; join tokens for device, server and recovery", body = CreateSessionResponse),
        (status = 400, description = "invalid request (kind, identity, authorizations, ttl), `identity_not_new` or `recovery_not_authorized`", body = ApiError),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 404, description = "unknown account", body = ApiError),
        (status = 409, description = "`account_not_recovering`, `account_not_active`, `recovery_open`, `key_not_ready` or `refresh_running`", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn recover(
    state: web::Data<GatewayState>,
    path: web::Path<String>,
    body: web::Json<RecoveryRequest>,
) -> Result<HttpResponse> {
    let id = path_id::<AccountId>(&path, "an account id")?;
    let (kind, authorizations, ttl) = body.into_inner().into_domain()?;
    // A recovery whose follower stopped (a restarted gateway, say) ends here.
    state
        .accounts
        .settle_recovery(id, CommandMeta::new())
        .await?;
    let created = state
        .accounts
        .recover(id, kind, authorizations, ttl, CommandMeta::new())
        .await?;
    let accounts = state.accounts.clone();
    tokio::spawn(async move {
        if let Err(e) = accounts.follow_recovery(id, CommandMeta::new()).await {
            tracing::warn!(account = %id, error = %e, "could not follow a recovery");
        }
    });
    Ok(HttpResponse::Created().json(created_dto(&created)))
}

/// The account's recovery sessions, oldest first, brought up to date with their
/// refresh sessions first (any operator role).
#[utoipa::path(
    get, path = "/v1/accounts/{id}/recoveries", tag = "accounts",
    params(("id" = uuid::Uuid, Path, description = "account id")),
    responses(
        (status = 200, description = "the recovery sessions", body = RecoveriesDto),
        (status = 400, description = "not an account id", body = ApiError),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 404, description = "unknown account", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn recoveries(
    state: web::Data<GatewayState>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let id = path_id::<AccountId>(&path, "an account id")?;
    let account = state
        .accounts
        .settle_recovery(id, CommandMeta::new())
        .await?;
    Ok(HttpResponse::Ok().json(RecoveriesDto {
        recoveries: account.recoveries.iter().map(recovery_dto).collect(),
    }))
}
