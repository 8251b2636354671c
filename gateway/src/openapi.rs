//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` attributes
//! and the DTOs' schemas, served at `/openapi.json`.

use mpc_schemas::http::{
    ApiError, CloseRequest, CreateSessionRequest, CreateSessionResponse, FailureDto, IdentityDto,
    InboxResponse, IndexedParticipantDto, JoinRequest, JoinResponse, KeyDto, ParticipantDto,
    ReportRequest, SessionStatusDto, SessionViewDto, SignatureDto, ThresholdDto,
};
use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::routes;

/// The gateway's API description.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "MPC gateway", description = "Threshold-signing sessions and their message inboxes."),
    paths(
        routes::create_session,
        routes::join,
        routes::status,
        routes::report,
        routes::close,
        routes::post_message,
        routes::inbox,
        routes::key,
        routes::health,
        routes::ready,
    ),
    components(schemas(
        ApiError, CloseRequest, CreateSessionRequest, CreateSessionResponse, FailureDto,
        IdentityDto, IndexedParticipantDto, InboxResponse, JoinRequest, JoinResponse, KeyDto,
        ParticipantDto, ReportRequest, SessionStatusDto, SessionViewDto, SignatureDto,
        ThresholdDto,
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
