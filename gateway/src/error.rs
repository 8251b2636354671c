//! Every refusal as an HTTP status and a JSON [`ApiError`] with a stable code.
//!
//! Statuses: 400 for invalid values, 401 for missing or bad credentials (for a
//! workflow decision, a signature that does not verify:
//! `invalid_approval_signature`), 403 for a credential that does not entitle the
//! caller (`not_an_approver`; `role_forbidden`: the operator's role may not make
//! the call), 404 for unknown sessions, keys, accounts and
//! workflows, 409 for taken values (`username_taken`, `email_taken`) and for
//! requests the current state refuses (`invalid_transition`, `already_decided`,
//! `workflow_not_approved`, ...). 503 when the event store cannot be reached
//! (`store_unavailable`) or the service is stopping (`unavailable`): retrying may
//! succeed. 429 `rate_limited`, with `Retry-After`, over a credential's rate. 500 only for our own faults.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use mpc_actors::{AccountServiceError, ActorError, ApprovalServiceError, CoordinatorError};
use mpc_api::{ApiError, DtoError};
use mpc_events::{AccountError, ClaimError, IdError, OperatorError, SessionError, WorkflowError};
use mpc_store::StoreError;
use mpc_transport::TransportError;

/// A refused or failed request: status, stable code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for `Retry-After` (429 `rate_limited`).
    pub retry_after: Option<u64>,
}

impl GatewayError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Over the caller's rate: 429 `rate_limited`, `Retry-After` the whole seconds
    /// until it may call again (at least 1).
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self {
            retry_after: Some(seconds.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many calls with this credential; retry later",
            )
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// A fault on our side; the details go to the log, not to the caller.
    fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the gateway's log",
        )
    }

    /// The event store cannot be reached: a retry may succeed (parties retry their
    /// reports on 503).
    fn unavailable(detail: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %detail, "request failed: event store unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the event store is unavailable; retry",
        )
    }

    pub fn body(&self) -> ApiError {
        ApiError::new(self.code, self.message.clone())
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ResponseError for GatewayError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            response.insert_header((actix_web::http::header::RETRY_AFTER, seconds));
        }
        response.json(self.body())
    }
}

impl From<DtoError> for GatewayError {
    fn from(e: DtoError) -> Self {
        Self::bad_request(e.code(), e.to_string())
    }
}

fn id_error(e: IdError) -> GatewayError {
    DtoError::Invalid {
        field: "request",
        source: e,
    }
    .into()
}

impl From<SessionError> for GatewayError {
    fn from(e: SessionError) -> Self {
        let message = e.to_string();
        use SessionError as E;
        match e {
            E::Invalid(id) => id_error(id),
            E::AlreadyExists => Self::conflict("already_exists", message),
            E::UnknownSession => Self::not_found("unknown_session", message),
            E::ParticipantCount { .. } => Self::bad_request("participant_count", message),
            E::DuplicateParty(_) => Self::bad_request("duplicate_party", message),
            E::UnknownParty(_) => Self::forbidden("unknown_party", message),
            E::NotAKeyHolder(_) => Self::bad_request("not_a_key_holder", message),
            E::IdentityMismatch(_) => Self::bad_request("identity_mismatch", message),
            E::InvalidDeadline => Self::bad_request("invalid_deadline", message),
            E::MessageHashMismatch => Self::bad_request("message_hash_mismatch", message),
            E::InvalidToken => Self::unauthorized("invalid_token", message),
            E::TokenExpired => Self::unauthorized("token_expired", message),
            E::AlreadyJoined(_) => Self::forbidden("already_joined", message),
            E::NotJoinable(_) => Self::conflict("not_joinable", message),
            E::NotInProgress(_) => Self::conflict("not_in_progress", message),
            E::AlreadyReported(_) => Self::conflict("already_reported", message),
            E::WrongOutcome { .. } => Self::bad_request("wrong_outcome", message),
            E::InvalidPublicKey => Self::bad_request("invalid_public_key", message),
            E::Terminal(_) => Self::conflict("session_ended", message),
            E::DeadlinePassed => Self::conflict("deadline_passed", message),
            E::InvalidApprovalEvidence(_) => {
                Self::bad_request("invalid_approval_evidence", message)
            }
            E::TooFewHelpers { .. } => Self::bad_request("too_few_helpers", message),
            E::TargetIsHelper(_) => Self::bad_request("target_is_helper", message),
            E::RepairIdentityNotNew => Self::bad_request("identity_not_new", message),
            E::RepairNotAuthorized(_) => Self::bad_request("recovery_not_authorized", message),
            E::JoinTokensMismatch | E::NotYetExpired(_) => Self::internal(&message),
        }
    }
}

impl From<CoordinatorError> for GatewayError {
    fn from(e: CoordinatorError) -> Self {
        match e {
            CoordinatorError::Session(e) => e.into(),
            CoordinatorError::KeyNotReady(_) => Self::conflict("key_not_ready", e.to_string()),
            CoordinatorError::ApprovalRequired(_) => {
                Self::conflict("approval_required", e.to_string())
            }
            CoordinatorError::RefreshRunning(..) | CoordinatorError::Key(_) => {
                Self::conflict("refresh_running", e.to_string())
            }
            CoordinatorError::Stopped => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            CoordinatorError::Store(StoreError::Backend(_)) => Self::unavailable(&e),
            CoordinatorError::Store(_) | CoordinatorError::Schema(_) => Self::internal(&e),
        }
    }
}

impl From<TransportError> for GatewayError {
    fn from(e: TransportError) -> Self {
        let message = e.to_string();
        match e {
            TransportError::TooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
            }
            TransportError::SessionClosed(_) => {
                Self::new(StatusCode::GONE, "session_closed", message)
            }
            TransportError::SessionBytes { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "session_budget_exceeded",
                message,
            ),
            TransportError::SenderEnvelopes { .. } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_envelopes", message)
            }
            TransportError::Encoding(_) => Self::bad_request("invalid_envelope", message),
            TransportError::Backend(_) => Self::internal(&message),
        }
    }
}

impl From<AccountError> for GatewayError {
    fn from(e: AccountError) -> Self {
        let message = e.to_string();
        use AccountError as E;
        match e {
            E::Invalid(id) => id_error(id),
            E::AlreadyExists => Self::conflict("already_exists", message),
            E::UnknownAccount => Self::not_found("unknown_account", message),
            E::UsernameTaken(_) => Self::conflict("username_taken", message),
            E::EmailTaken(_) => Self::conflict("email_taken", message),
            E::PartiesNotDistinct => Self::bad_request("parties_not_distinct", message),
            E::NotActive(_) => Self::conflict("account_not_active", message),
            E::AlreadyInStatus(_) => Self::conflict("already_in_status", message),
            E::InvalidTransition { .. } => Self::conflict("invalid_transition", message),
            E::InvalidReason => Self::bad_request("invalid_reason", message),
            E::SessionAlreadyRecorded(_) => Self::conflict("session_already_recorded", message),
            E::NotRecovering(_) => Self::conflict("account_not_recovering", message),
            E::RecoveryOpen(_) => Self::conflict("recovery_open", message),
            E::NoOpenRecovery(_) => Self::conflict("no_open_recovery", message),
            E::DeviceIdentityNotNew => Self::bad_request("identity_not_new", message),
        }
    }
}

impl From<AccountServiceError> for GatewayError {
    fn from(e: AccountServiceError) -> Self {
        use AccountServiceError as E;
        match e {
            E::Account(e) => e.into(),
            E::Claim(ClaimError::Taken) => Self::conflict("taken", e.to_string()),
            E::Claim(ClaimError::NotOwner) => Self::conflict("not_owner", e.to_string()),
            E::Coordinator(e) => e.into(),
            E::KeygenNotFailed(_) => Self::conflict("keygen_not_failed", e.to_string()),
            E::Stopped => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            E::Store(_) | E::Schema(_) => Self::internal(&e),
        }
    }
}

impl From<WorkflowError> for GatewayError {
    fn from(e: WorkflowError) -> Self {
        let message = e.to_string();
        use WorkflowError as E;
        match e {
            E::Invalid(id) => id_error(id),
            E::AlreadyExists => Self::conflict("already_exists", message),
            E::UnknownWorkflow => Self::not_found("unknown_workflow", message),
            E::InvalidTitle => Self::bad_request("invalid_title", message),
            E::PayloadSize(_) => Self::bad_request("invalid_payload_size", message),
            E::PayloadHashMismatch => Self::bad_request("payload_hash_mismatch", message),
            E::InvalidDeadline => Self::bad_request("invalid_deadline", message),
            E::NotAnApprover(_) => Self::forbidden("not_an_approver", message),
            E::AlreadyDecided(_) => Self::conflict("already_decided", message),
            E::BadApprovalSignature(_) => Self::unauthorized("invalid_approval_signature", message),
            E::NotPending(_) => Self::conflict("workflow_not_pending", message),
            E::NotApproved(_) => Self::conflict("workflow_not_approved", message),
            E::SessionAlreadyRecorded(_) => Self::conflict("session_already_recorded", message),
            E::ApprovalsUsed(_) => Self::conflict("approvals_used", message),
            E::KeyRefreshed { .. } => Self::conflict("key_refreshed", message),
            E::DeadlinePassed => Self::conflict("deadline_passed", message),
            E::NotYetExpired(_) => Self::conflict("not_yet_expired", message),
        }
    }
}

impl From<ApprovalServiceError> for GatewayError {
    fn from(e: ApprovalServiceError) -> Self {
        use ApprovalServiceError as E;
        match e {
            E::Workflow(e) => e.into(),
            E::Coordinator(e) => e.into(),
            E::Stopped => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            E::Store(_) | E::Schema(_) => Self::internal(&e),
        }
    }
}

impl From<OperatorError> for GatewayError {
    fn from(e: OperatorError) -> Self {
        let message = e.to_string();
        use OperatorError as E;
        match e {
            E::InvalidName => Self::bad_request("invalid_name", message),
            E::NameTaken(_) => Self::conflict("name_taken", message),
            E::UnknownCredential(_) => Self::not_found("unknown_credential", message),
            E::AlreadyRevoked(_) => Self::conflict("already_revoked", message),
            E::DuplicateId(_) | E::DuplicateKey => Self::internal(&message),
        }
    }
}

impl From<ActorError<OperatorError>> for GatewayError {
    fn from(e: ActorError<OperatorError>) -> Self {
        match e {
            ActorError::Domain(e) => e.into(),
            ActorError::Store(StoreError::Backend(_)) => Self::unavailable(&e),
            ActorError::Stopped => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            ActorError::Store(_) | ActorError::Schema(_) => Self::internal(&e),
        }
    }
}
