//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` attributes
//! and the DTOs' schemas, served at `/openapi.json`.

use mpc_api::{
    AccountAction, AccountDto, AccountSigningRequest, AccountStatusRequest, ApiError,
    ApprovalEvidenceDto, ApproverDto, CloseRequest, CreateOperatorRequest, CreateSessionRequest,
    CreateSessionResponse, CreateWorkflowRequest, CreateWorkflowResponse, CreatedOperatorDto,
    DataSigningRequest, DecisionDto, DecisionRequest, FailureDto, IdentityDto, InboxResponse,
    IndexedParticipantDto, JoinRequest, JoinResponse, KeyDto, KeyStateDto, KeyStatusDto,
    LastRefreshDto, OpenAccountRequest, OpenAccountResponse, OperatorDto, OperatorsDto,
    ParticipantDto, RecoveriesDto, RecoveryDto, RecoveryRequest, RepairDto, ReportRequest, RoleDto,
    SessionStatusDto, SessionTtlRequest, SessionViewDto, SignatureDto, SignedApprovalDto,
    ThresholdDto, VerifyDataRequest, VerifyDataResponse, VerifySignatureDto, WorkflowDto,
};
use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::{accounts, operators, routes, workflows};

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
        operators::add,
        operators::list,
        operators::revoke,
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
        RecoveryRequest, RecoveryDto, RecoveriesDto, RepairDto, RoleDto, CreateOperatorRequest,
        CreatedOperatorDto, OperatorDto, OperatorsDto,
    )),
    modifiers(&BearerSchemes, &OperatorResponses)
)]
pub struct ApiDoc;

/// `operator`: an operator's bearer credential (an API key, or the bootstrap admin
/// token); `party`: an access token from a join.
struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "operator",
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

/// Every route an operator may call can also answer 403 `role_forbidden` (the
/// credential's role may not make the call) and 429 `rate_limited` (over the
/// credential's rate, with `Retry-After`): added from [`crate::roles::ROUTES`], so
/// no route can forget them.
struct OperatorResponses;

impl Modify for OperatorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use actix_web::http::Method;
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

        use crate::roles::{Access, ROUTES};

        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ApiError")))
                        .build(),
                )
                .build()
        };
        for (method, path, access) in ROUTES {
            if !matches!(access, Access::Operators(_) | Access::OperatorsOrParty(_)) {
                continue;
            }
            let Some(item) = openapi.paths.paths.get_mut(*path) else {
                continue;
            };
            let operation = match *method {
                Method::GET => item.get.as_mut(),
                Method::POST => item.post.as_mut(),
                Method::DELETE => item.delete.as_mut(),
                _ => None,
            };
            let Some(operation) = operation else { continue };
            let responses = &mut operation.responses.responses;
            responses.entry("403".into()).or_insert_with(|| {
                error("the credential may not make this call (role_forbidden)").into()
            });
            responses.insert(
                "429".into(),
                error("over the credential's rate (rate_limited); see Retry-After").into(),
            );
        }
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
