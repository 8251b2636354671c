//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` attributes
//! and the DTOs' schemas, served at `/openapi.json`.

use mpc_api::{
    AccountAction, AccountDto, AccountSigningRequest, AccountStatusRequest, ApiError,
    ApprovalEvidenceDto, ApproverDto, CloseRequest, CreateSessionRequest, CreateSessionResponse,
    CreateWorkflowRequest, CreateWorkflowResponse, DataSigningRequest, DecisionDto,
    DecisionRequest, FailureDto, IdentityDto, InboxResponse, IndexedParticipantDto, JoinRequest,
    JoinResponse, KeyDto, KeyStateDto, KeyStatusDto, LastRefreshDto, OpenAccountRequest,
    OpenAccountResponse, ParticipantDto, RecoveriesDto, RecoveryDto, RecoveryRequest, RepairDto,
    ReportRequest, SessionStatusDto, SessionTtlRequest, SessionViewDto, SignatureDto,
    SignedApprovalDto, ThresholdDto, VerifyDataRequest, VerifyDataResponse, VerifySignatureDto,
    WorkflowDto,
};
use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::{accounts, routes, workflows};

/// The gateway's API description.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "MPC gateway", description = "Threshold-signing sessions and their message inboxes; accounts, approval workflows and data-integrity signing."),
    paths(
        routes::create_session,
        routes::join,
        routes::status,
        routes::report,
        routes::close,
        routes::post_message,
        routes::inbox,
        routes::key,
        routes::refresh_key,
        accounts::open,
        accounts::get,
        accounts::change_status,
        accounts::restart_keygen,
        accounts::sign,
        accounts::recover,
        accounts::recoveries,
        workflows::create,
        workflows::get,
        workflows::decide,
        workflows::start_signing,
        workflows::sign_data,
        workflows::verify_data,
        routes::health,
        routes::ready,
        crate::metrics::render,
    ),
    components(schemas(
        ApiError, CloseRequest, CreateSessionRequest, CreateSessionResponse, FailureDto,
        IdentityDto, IndexedParticipantDto, InboxResponse, JoinRequest, JoinResponse, KeyDto,
        ParticipantDto, ReportRequest, SessionStatusDto, SessionViewDto, SignatureDto,
        ThresholdDto, AccountAction, AccountDto, AccountSigningRequest, AccountStatusRequest,
        ApprovalEvidenceDto, ApproverDto, CreateWorkflowRequest, CreateWorkflowResponse,
        DataSigningRequest, DecisionDto, DecisionRequest, KeyStatusDto, OpenAccountRequest,
        OpenAccountResponse, SessionTtlRequest, SignedApprovalDto, VerifyDataRequest,
        VerifyDataResponse, VerifySignatureDto, WorkflowDto, KeyStateDto, LastRefreshDto,
        RecoveryRequest, RecoveryDto, RecoveriesDto, RepairDto,
    )),
    modifiers(&BearerSchemes)
)]
pub struct ApiDoc;

/// `admin`: the operator's bearer token; `party`: an access token from a join.
struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "party",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

impl ApiDoc {
    /// The document as pretty JSON, as `/openapi.json` serves it (for clients and
    /// validators: `mpc openapi`).
    pub fn pretty_json() -> String {
        serde_json::to_string_pretty(&<Self as utoipa::OpenApi>::openapi())
            .unwrap_or_else(|e| panic!("the OpenAPI document is plain data: {e}"))
    }
}
