//! The error body every refusal carries and the validation error that becomes it.

use mpc_events::IdError;
use serde::{Deserialize, Serialize};

use crate::{MAX_TEXT_BYTES, MAX_TTL_SECONDS, MAX_WORKFLOW_TTL_SECONDS};

/// Every error the gateway returns: a stable machine-readable `code` and a
/// human-readable `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Why a body could not become domain values. [`DtoError::code`] is the
/// [`ApiError::code`] the gateway answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DtoError {
    #[error("{field}: {source}")]
    Invalid {
        field: &'static str,
        #[source]
        source: IdError,
    },
    #[error("{field}: not hex")]
    Hex { field: &'static str },
    #[error("{field}: unknown value {value:?}")]
    UnknownValue { field: &'static str, value: String },
    #[error("give exactly one of message_hex and message_hash_hex")]
    Payload,
    #[error("ttl_seconds must be between 1 and {MAX_TTL_SECONDS}, got {0}")]
    Ttl(u64),
    #[error("{field} is longer than {MAX_TEXT_BYTES} bytes")]
    TooLong { field: &'static str },
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0} is not allowed here")]
    Unexpected(&'static str),
    #[error("ttl_seconds must be between 1 and {MAX_WORKFLOW_TTL_SECONDS}, got {0}")]
    WorkflowTtl(u64),
    #[error("give exactly one of public_key_hex and key_id")]
    KeySource,
}

impl DtoError {
    /// The stable error code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { source, .. } => match source {
                IdError::PartyId(_) => "invalid_party_id",
                IdError::Threshold { .. } => "invalid_threshold",
                IdError::Uuid(_) => "invalid_id",
                IdError::Length { .. } => "invalid_length",
                IdError::PublicKeyPrefix => "invalid_public_key",
                IdError::RecoveryId(_) => "invalid_signature",
                IdError::Username(_) => "invalid_username",
                IdError::Email(_) => "invalid_email",
                IdError::Phone(_) => "invalid_phone",
            },
            Self::Hex { .. } => "invalid_hex",
            Self::UnknownValue { .. } => "invalid_value",
            Self::Payload => "invalid_payload",
            Self::Ttl(_) => "invalid_ttl",
            Self::TooLong { .. } => "text_too_long",
            Self::Missing(_) => "missing_field",
            Self::Unexpected(_) => "unexpected_field",
            Self::WorkflowTtl(_) => "invalid_ttl",
            Self::KeySource => "invalid_key_source",
        }
    }

    /// This error as a response body.
    pub fn to_api_error(&self) -> ApiError {
        ApiError::new(self.code(), self.to_string())
    }
}
