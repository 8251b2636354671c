//! `/v1/operators`: the operators' API keys and their roles. Adding and revoking is
//! the `admin` role's; auditors may list. A key is shown once, in
//! [`CreatedOperatorDto`]; the coordinator keeps only its SHA-256 digest.

use mpc_events::Role;
use serde::{Deserialize, Serialize};

/// What a credential may do (see `docs/adr/0011-operator-credentials.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum RoleDto {
    /// Credentials, and every other operator route.
    Admin,
    /// Keygen, refresh, accounts and recovery requests.
    KeyManager,
    /// Signing requests and approval workflows.
    Requester,
    /// Read-only.
    Auditor,
}

impl From<RoleDto> for Role {
    fn from(r: RoleDto) -> Self {
        match r {
            RoleDto::Admin => Role::Admin,
            RoleDto::KeyManager => Role::KeyManager,
            RoleDto::Requester => Role::Requester,
            RoleDto::Auditor => Role::Auditor,
        }
    }
}

impl From<Role> for RoleDto {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => RoleDto::Admin,
            Role::KeyManager => RoleDto::KeyManager,
            Role::Requester => RoleDto::Requester,
            Role::Auditor => RoleDto::Auditor,
        }
    }
}

/// Add an API key: a display name (1–64 characters, unique among active keys) and
/// its role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateOperatorRequest {
    pub name: String,
    pub role: RoleDto,
}

/// A credential as the registry keeps it (never the key, nor its digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorDto {
    pub credential_id: String,
    pub name: String,
    pub role: RoleDto,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Milliseconds since the Unix epoch; absent while the key is active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

/// A new credential and its key, shown only in this answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedOperatorDto {
    pub operator: OperatorDto,
    /// The bearer token: `mpc_<credential id, 32 hex>_<secret, 64 hex>`.
    pub api_key: String,
}

/// Every credential, active and revoked, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperatorsDto {
    pub operators: Vec<OperatorDto>,
}
