//! JSON helpers shared by the stored payloads and the domain-event records.

use mpc_events::KeyPolicy;
use serde::{Deserialize, Serialize};

use crate::{DecodeError, SchemaError};

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, SchemaError> {
    serde_json::to_vec(value).map_err(|e| SchemaError::Encode(e.to_string()))
}

pub(crate) fn from_json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, SchemaError> {
    serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e).into())
}

pub(crate) fn unhex(field: &'static str, s: &str) -> Result<Vec<u8>, SchemaError> {
    hex::decode(s).map_err(|source| DecodeError::Hex { field, source }.into())
}

/// A key's signing policy as stored and published: `any-request` or `approved-only`.
pub(crate) fn policy(s: &str) -> Result<KeyPolicy, SchemaError> {
    s.parse().map_err(|_| {
        DecodeError::Schema {
            found: s.to_owned(),
            expected: "any-request or approved-only",
        }
        .into()
    })
}
