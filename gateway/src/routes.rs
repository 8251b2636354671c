//! The request handlers. Each one authenticates first, then validates its input
//! into domain values, and only then calls the coordinator or the transport: a
//! refused request changes nothing.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use mpc_actors::{
    CommandMeta, CoordinatorError, CreatedSession, KeyState, NewKeygen, NewRefresh, NewSigning,
    Session, SigningPayload,
};
use mpc_api::{
    ApiError, CloseRequest, CreateSessionRequest, CreateSessionResponse, InboxResponse,
    JoinRequest, JoinResponse, KeyDto, KeyStateDto, LastRefreshDto, NewSession, Report,
    ReportRequest, SessionStatusDto, SessionTtlRequest, SigningInput, parse_status,
};
use mpc_events::{KeyId, PartyId, Role, SessionError, SessionId};
use mpc_schemas::{Envelope, MAX_ENVELOPE_BYTES, Recipient};
use serde::Deserialize;
use tokio::time::{Instant, timeout};
use utoipa::IntoParams;

use crate::GatewayState;
use crate::auth::{ACCESS_AUDIENCE, JOIN_AUDIENCE};
use crate::error::GatewayError;
use crate::inboxes::Found;

/// Longest status long-poll.
pub const MAX_STATUS_WAIT: Duration = Duration::from_secs(60);
/// Longest inbox long-poll.
pub const MAX_INBOX_WAIT: Duration = Duration::from_secs(30);
/// Most envelopes in one inbox answer.
pub const MAX_INBOX_MESSAGES: usize = 256;
/// Envelope bytes after which an inbox answer stops growing (it always holds at
/// least one envelope when one is available).
pub const MAX_INBOX_BYTES: usize = 2 * MAX_ENVELOPE_BYTES;
/// How long `/ready` waits for the event store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) type Result<T> = std::result::Result<T, GatewayError>;

/// The id in a path segment; `what` names it in the `invalid_id` error.
pub(crate) fn path_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T> {
    raw.parse()
        .map_err(|_| GatewayError::bad_request("invalid_id", format!("not {what}: {raw:?}")))
}

fn status_dto(s: &Session) -> SessionStatusDto {
    SessionStatusDto::new(
        &s.view(),
        &s.joined,
        s.reports.iter().map(|(p, _)| p),
        s.outcome.as_ref(),
        s.failure.as_ref(),
    )
}

pub(crate) fn unknown_key(e: CoordinatorError, key_id: KeyId) -> GatewayError {
    match e {
        CoordinatorError::Session(SessionError::UnknownSession) => {
            GatewayError::not_found("unknown_key", format!("no key {key_id}"))
        }
        other => other.into(),
    }
}

/// Create a keygen or signing session (key-manager for a keygen, requester for a signing).
#[utoipa::path(
    post, path = "/v1/sessions", tag = "sessions",
    request_body = CreateSessionRequest,
    responses(
        (status = 201, description = "created; one join token per party", body = CreateSessionResponse),
        (status = 400, description = "invalid request", body = ApiError),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 404, description = "unknown key", body = ApiError),
        (status = 409, description = "key not ready, or the key signs only approved payloads (approval_required)", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn create_session(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    body: web::Json<CreateSessionRequest>,
) -> Result<HttpResponse> {
    let created = match NewSession::try_from(body.into_inner())? {
        NewSession::Keygen {
            threshold,
            participants,
            ttl,
            policy,
        } => {
            crate::auth::operator(&req, &[Role::KeyManager])?;
            let request = NewKeygen {
                threshold,
                participants,
                ttl,
                policy,
            };
            state
                .coordinator
                .create_keygen(request, CommandMeta::new())
                .await?
        }
        NewSession::Signing {
            key_id,
            signers,
            input,
            ttl,
        } => {
            crate::auth::operator(&req, &[Role::Requester])?;
            let request = NewSigning {
                key_id,
                signers,
                payload: signing_payload(input),
                ttl,
            };
            state
                .coordinator
                .create_signing(request, CommandMeta::new())
                .await
                .map_err(|e| unknown_key(e, key_id))?
        }
    };
    Ok(HttpResponse::Created().json(created_dto(&created)))
}

/// What a validated request asks to sign, as the coordinator takes it.
pub(crate) fn signing_payload(input: SigningInput) -> SigningPayload {
    match input {
        SigningInput::Message(m) => SigningPayload::Message(m),
        SigningInput::Prehash(h) => SigningPayload::Prehash(h),
    }
}

/// The answer naming a new session and its join tokens.
pub(crate) fn created_dto(created: &CreatedSession) -> CreateSessionResponse {
    CreateSessionResponse {
        session_id: created.session_id.to_string(),
        join_tokens: created
            .join_tokens
            .iter()
            .map(|(p, t)| (p.to_string(), t.expose().to_owned()))
            .collect(),
        expires_at: created.expires_at.as_millis(),
    }
}

/// Join a session with a join token; answers with the session and an access token.
#[utoipa::path(
    post, path = "/v1/sessions/{id}/join", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "session id")),
    request_body = JoinRequest,
    responses(
        (status = 200, description = "joined", body = JoinResponse),
        (status = 400, description = "invalid request", body = ApiError),
        (status = 401, description = "invalid or expired token", body = ApiError),
        (status = 403, description = "token for another party or session, or already used", body = ApiError),
        (status = 404, description = "unknown session", body = ApiError),
        (status = 409, description = "session no longer joinable", body = ApiError),
    )
)]
pub async fn join(
    state: web::Data<GatewayState>,
    path: web::Path<String>,
    body: web::Json<JoinRequest>,
) -> Result<HttpResponse> {
    let session = path_id::<SessionId>(&path, "a session id")?;
    let party = PartyId::parse(&body.party_id)
        .map_err(|e| GatewayError::bad_request("invalid_party_id", e.to_string()))?;
    let claims = state.auth.verify(&body.token, JOIN_AUDIENCE)?;
    if claims.sub != party.as_str() {
        return Err(GatewayError::forbidden(
            "token_mismatch",
            "join token is for another party",
        ));
    }
    if claims.sid != session.to_string() {
        return Err(GatewayError::forbidden(
            "token_mismatch",
            "join token is for another session",
        ));
    }
    let view = state
        .coordinator
        .join(session, &party, &body.token, CommandMeta::new())
        .await?;
    let access = state
        .auth
        .sign(ACCESS_AUDIENCE, session, &party, view.expires_at);
    Ok(HttpResponse::Ok().json(JoinResponse {
        session: (&view).into(),
        access_token: access.to_string(),
    }))
}

/// Long-poll parameters of the status call.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// Wait while the session is in this status (e.g. `created`).
    pub wait_until_not: Option<String>,
    /// How long to wait at most, in milliseconds (capped at 60 000; default 30 000).
    pub timeout_ms: Option<u64>,
}

/// A session's status (an operator or a participant's access token); optionally waits
/// for it to leave a status.
#[utoipa::path(
    get, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "session id"), StatusQuery),
    responses(
        (status = 200, description = "status", body = SessionStatusDto),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 403, description = "token for another session", body = ApiError),
        (status = 404, description = "unknown session", body = ApiError),
    ),
    security(("operator" = []), ("party" = []))
)]
pub async fn status(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<StatusQuery>,
) -> Result<HttpResponse> {
    let session = path_id::<SessionId>(&path, "a session id")?;
    crate::auth::operator_or_party(&req, session)?;
    let current = match &query.wait_until_not {
        None => state.coordinator.session(session).await?,
        Some(raw) => {
            let leave = parse_status(raw)?;
            let wait =
                Duration::from_millis(query.timeout_ms.unwrap_or(30_000)).min(MAX_STATUS_WAIT);
            let waited = timeout(
                wait,
                state.coordinator.wait_for(session, |s| s.status != leave),
            )
            .await;
            match waited {
                Ok(found) => found?,
                Err(_) => state.coordinator.session(session).await?,
            }
        }
    };
    Ok(HttpResponse::Ok().json(status_dto(&current)))
}

/// Report the calling party's result; the party is the access token's.
#[utoipa::path(
    post, path = "/v1/sessions/{id}/report", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "session id")),
    request_body = ReportRequest,
    responses(
        (status = 200, description = "recorded (or, repeated word for word, recorded before); the session's status afterwards", body = SessionStatusDto),
        (status = 400, description = "invalid report", body = ApiError),
        (status = 401, description = "no or bad access token", body = ApiError),
        (status = 403, description = "token for another session", body = ApiError),
        (status = 409, description = "session not in progress, or another outcome already reported", body = ApiError),
        (status = 503, description = "event store unavailable; retry", body = ApiError),
    ),
    security(("party" = []))
)]
pub async fn report(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ReportRequest>,
) -> Result<HttpResponse> {
    let session = path_id::<SessionId>(&path, "a session id")?;
    let party = crate::auth::party(&req, session)?;
    match Report::try_from(body.into_inner())? {
        Report::Completion(outcome) => {
            state
                .coordinator
                .report_completion(session, &party, outcome, CommandMeta::new())
                .await?;
        }
        Report::Failure { culprits, detail } => {
            state
                .coordinator
                .report_failure(session, &party, culprits, detail, CommandMeta::new())
                .await?;
        }
    }
    let current = state.coordinator.session(session).await?;
    Ok(HttpResponse::Ok().json(status_dto(&current)))
}

/// End an unfinished session as failed and free its message log (key-manager or requester).
#[utoipa::path(
    post, path = "/v1/sessions/{id}/close", tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "session id")),
    request_body = CloseRequest,
    responses(
        (status = 200, description = "closed", body = SessionStatusDto),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 404, description = "unknown session", body = ApiError),
        (status = 409, description = "session already ended", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn close(
    state: web::Data<GatewayState>,
    path: web::Path<String>,
    body: web::Json<CloseRequest>,
) -> Result<HttpResponse> {
    let session = path_id::<SessionId>(&path, "a session id")?;
    let reason = body.into_inner().into_reason()?;
    state
        .coordinator
        .close(session, reason, CommandMeta::new())
        .await?;
    state.inboxes.forget(session);
    if let Err(e) = state.transport.close_session(session).await {
        tracing::warn!(%session, error = %e, "closed session's message log could not be freed");
    }
    let current = state.coordinator.session(session).await?;
    Ok(HttpResponse::Ok().json(status_dto(&current)))
}

fn too_large() -> GatewayError {
    GatewayError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("an envelope is at most {MAX_ENVELOPE_BYTES} bytes"),
    )
}

async fn read_envelope(req: &HttpRequest, mut payload: web::Payload) -> Result<Vec<u8>> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_ENVELOPE_BYTES) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| GatewayError::bad_request("bad_body", e.to_string()))?;
        if body.len() + chunk.len() > MAX_ENVELOPE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Post one protocol envelope (raw bytes of `Envelope::encode`) as the calling
/// party.
#[utoipa::path(
    post, path = "/v1/sessions/{id}/messages", tag = "messages",
    params(("id" = uuid::Uuid, Path, description = "session id")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "an encoded envelope; its session and sender must be the caller's"),
    responses(
        (status = 202, description = "accepted for delivery"),
        (status = 400, description = "not an envelope, wrong session or unknown recipient", body = ApiError),
        (status = 401, description = "no or bad access token", body = ApiError),
        (status = 403, description = "sender is not the caller", body = ApiError),
        (status = 409, description = "session has ended", body = ApiError),
        (status = 413, description = "envelope too large, or the session's byte budget is spent", body = ApiError),
        (status = 429, description = "the caller sent the most envelopes one sender may in a session", body = ApiError),
    ),
    security(("party" = []))
)]
pub async fn post_message(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let session = path_id::<SessionId>(&path, "a session id")?;
    let party = crate::auth::party(&req, session)?;
    let bytes = read_envelope(&req, payload).await?;
    let envelope = Envelope::decode(&bytes)
        .map_err(|e| GatewayError::bad_request("invalid_envelope", e.to_string()))?;
    if envelope.session_id != session {
        return Err(GatewayError::bad_request(
            "session_mismatch",
            "envelope belongs to another session",
        ));
    }
    if envelope.sender != party {
        return Err(GatewayError::forbidden(
            "sender_mismatch",
            "envelope's sender is not the caller",
        ));
    }
    let current = state.coordinator.session(session).await?;
    if current.status.is_terminal() {
        return Err(GatewayError::conflict(
            "session_ended",
            format!("session is {}", current.status),
        ));
    }
    if let Recipient::Party(to) = &envelope.recipient
        && !current
            .created
            .participants
            .iter()
            .any(|p| &p.party_id == to)
    {
        return Err(GatewayError::bad_request(
            "unknown_recipient",
            format!("{to} is not a participant of this session"),
        ));
    }
    state.transport.publish(&envelope).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Inbox parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// The `cursor` of the previous answer (0, the default, reads from the start).
    pub after: Option<u64>,
    /// How long to wait for a first envelope, in milliseconds (capped at 30 000;
    /// default 0: answer at once).
    pub wait_ms: Option<u64>,
}

/// The calling party's envelopes after `after`, oldest first.
#[utoipa::path(
    get, path = "/v1/sessions/{id}/messages", tag = "messages",
    params(("id" = uuid::Uuid, Path, description = "session id"), InboxQuery),
    responses(
        (status = 200, description = "envelopes (hex) and the next cursor", body = InboxResponse),
        (status = 401, description = "no or bad access token", body = ApiError),
        (status = 403, description = "token for another session", body = ApiError),
        (status = 410, description = "session's message log is closed", body = ApiError),
    ),
    security(("party" = []))
)]
pub async fn inbox(
    state: web::Data<GatewayState>,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<InboxQuery>,
) -> Result<HttpResponse> {
    let session = path_id::<SessionId>(&path, "a session id")?;
    let party = crate::auth::party(&req, session)?;
    let after = query.after.unwrap_or(0);
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0)).min(MAX_INBOX_WAIT);
    let deadline = Instant::now() + wait;
    let reader = state.inboxes.reader(session, &party);
    let mut reader = reader.lock().await;
    let found = reader
        .first_after(&*state.transport, session, &party, after, deadline)
        .await?;
    let Found::Envelope(first) = found else {
        if matches!(found, Found::Ended) {
            state.inboxes.forget(session);
        }
        return Ok(HttpResponse::Ok().json(InboxResponse {
            messages: Vec::new(),
            cursor: after,
        }));
    };
    let mut messages = Vec::new();
    let mut bytes = 0;
    let mut next = Some(first);
    while let Some(envelope) = next.take() {
        let encoded = envelope
            .encode()
            .map_err(|e| GatewayError::bad_request("invalid_envelope", e.to_string()))?;
        bytes += encoded.len();
        messages.push(hex::encode(encoded));
        if messages.len() < MAX_INBOX_MESSAGES
            && bytes < MAX_INBOX_BYTES
            && let Some(item) = reader.ready()
        {
            next = Some(item?);
        }
    }
    Ok(HttpResponse::Ok().json(InboxResponse {
        messages,
        cursor: reader.position(),
    }))
}

/// A key id in a path segment.
fn path_key_id(raw: &str) -> Result<KeyId> {
    raw.parse()
        .map_err(|_| GatewayError::bad_request("invalid_id", format!("not a key id: {raw:?}")))
}

fn key_state_dto(state: &KeyState) -> KeyStateDto {
    KeyStateDto {
        key: KeyDto::from(&state.key),
        generation_at: state.generation_at.as_millis(),
        policy: state.policy.as_str().to_owned(),
        last_refresh: state
            .last_refresh
            .map(|(session_id, status)| LastRefreshDto {
                session_id: session_id.to_string(),
                status: status.map(|s| s.to_string()),
            }),
    }
}

/// A completed key, when its current share generation came to be and its latest
/// refresh session (any operator role).
#[utoipa::path(
    get, path = "/v1/keys/{key_id}", tag = "keys",
    params(("key_id" = uuid::Uuid, Path, description = "key id (its keygen session's id)")),
    responses(
        (status = 200, description = "the key", body = KeyStateDto),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 404, description = "unknown key", body = ApiError),
        (status = 409, description = "keygen has not completed", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn key(state: web::Data<GatewayState>, path: web::Path<String>) -> Result<HttpResponse> {
    let key_id = path_key_id(&path)?;
    let key = state
        .coordinator
        .key_state(key_id)
        .await
        .map_err(|e| unknown_key(e, key_id))?;
    Ok(HttpResponse::Ok().json(key_state_dto(&key)))
}

/// Rotate every share of a completed key (a refresh session among all its
/// holders; the group key stays). Answers with the session and one join token per
/// holder (key-manager).
#[utoipa::path(
    post, path = "/v1/keys/{key_id}/refresh", tag = "keys",
    params(("key_id" = uuid::Uuid, Path, description = "key id (its keygen session's id)")),
    request_body = SessionTtlRequest,
    responses(
        (status = 201, description = "the refresh session; one join token per key holder", body = CreateSessionResponse),
        (status = 400, description = "invalid key id or ttl", body = ApiError),
        (status = 401, description = "no or bad credentials", body = ApiError),
        (status = 404, description = "unknown key", body = ApiError),
        (status = 409, description = "`key_not_ready` or `refresh_running`", body = ApiError),
    ),
    security(("operator" = []))
)]
pub async fn refresh_key(
    state: web::Data<GatewayState>,
    path: web::Path<String>,
    body: web::Json<SessionTtlRequest>,
) -> Result<HttpResponse> {
    let key_id = path_key_id(&path)?;
    let ttl = body.into_inner().into_ttl()?;
    let request = NewRefresh {
        key_id,
        repair: None,
        ttl,
    };
    let created = state
        .coordinator
        .create_refresh(request, CommandMeta::new())
        .await
        .map_err(|e| unknown_key(e, key_id))?;
    Ok(HttpResponse::Created().json(created_dto(&created)))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "alive")))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the event store answers.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "ready"),
        (status = 503, description = "event store unavailable", body = ApiError),
    ))]
pub async fn ready(state: web::Data<GatewayState>) -> HttpResponse {
    match timeout(READY_TIMEOUT, state.store.head()).await {
        Ok(Ok(head)) => {
            HttpResponse::Ok().json(serde_json::json!({"status": "ready", "head": head}))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "event store not ready");
            not_ready()
        }
        Err(_) => not_ready(),
    }
}

fn not_ready() -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(ApiError::new(
        "not_ready",
        "the event store does not answer",
    ))
}

/// This API's OpenAPI 3.1 document.
pub async fn openapi(state: web::Data<GatewayState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi.clone())
}

/// Any other path or method: 405 with `Allow` for a path the API serves with other
/// methods, else 404.
pub async fn not_found(state: web::Data<GatewayState>, req: HttpRequest) -> HttpResponse {
    let allowed = state.methods.allowed(req.path());
    if allowed.is_empty() {
        return HttpResponse::NotFound().json(ApiError::new(
            "not_found",
            format!("no route for {} {}", req.method(), req.path()),
        ));
    }
    let allow = allowed.join(", ");
    HttpResponse::MethodNotAllowed()
        .insert_header((actix_web::http::header::ALLOW, allow.clone()))
        .json(ApiError::new(
            "method_not_allowed",
            format!("{} takes {allow}, not {}", req.path(), req.method()),
        ))
}

/// Which methods each documented path takes: the OpenAPI document is the one list
/// of routes (`ops.rs` checks it names every one), so a 405's `Allow` cannot drift
/// from what is served.
pub struct Methods(Vec<(actix_web::dev::ResourceDef, Vec<&'static str>)>);

impl Methods {
    pub fn of(document: &utoipa::openapi::OpenApi) -> Self {
        Self(
            document
                .paths
                .paths
                .iter()
                .map(|(path, item)| {
                    let methods = [
                        ("GET", item.get.is_some()),
                        ("POST", item.post.is_some()),
                        ("PUT", item.put.is_some()),
                        ("PATCH", item.patch.is_some()),
                        ("DELETE", item.delete.is_some()),
                    ]
                    .into_iter()
                    .filter_map(|(method, served)| served.then_some(method))
                    .collect();
                    (actix_web::dev::ResourceDef::new(path.as_str()), methods)
                })
                .collect(),
        )
    }

    /// The methods `path` is served with; empty if it is not a route.
    pub fn allowed(&self, path: &str) -> Vec<&'static str> {
        self.0
            .iter()
            .filter(|(route, _)| route.is_match(path))
            .flat_map(|(_, methods)| methods.iter().copied())
            .collect()
    }
}
