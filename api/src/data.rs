//! `/v1/data`: signing data with a completed key and verifying signatures.

use std::time::Duration;

use mpc_events::{KeyId, PartyId, PublicKey, Signature};
use serde::{Deserialize, Serialize};

use crate::DtoError;
use crate::common::{invalid, key_id, party, session_ttl, unhex};

/// `POST /v1/data/signatures`: sign a document or record with completed key
/// `key_id` by `signers`. The data (hex) is what signers see; they sign its
/// SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataSigningRequest {
    pub key_id: String,
    pub signers: Vec<String>,
    pub data_hex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

/// A validated [`DataSigningRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSigning {
    pub key_id: KeyId,
    pub signers: Vec<PartyId>,
    pub data: Vec<u8>,
    pub ttl: Duration,
}

impl DataSigningRequest {
    pub fn into_domain(self) -> Result<DataSigning, DtoError> {
        Ok(DataSigning {
            key_id: key_id("key_id", &self.key_id)?,
            signers: self
                .signers
                .iter()
                .map(|s| party("signers", s))
                .collect::<Result<_, _>>()?,
            data: unhex("data_hex", &self.data_hex)?,
            ttl: session_ttl(self.ttl_seconds)?,
        })
    }
}

/// An ECDSA signature to verify: `r` and `s` as 32-byte hex, and the recovery id
/// when known (without it, either is accepted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifySignatureDto {
    pub r_hex: String,
    pub s_hex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_id: Option<u8>,
}

/// `POST /v1/data/verify`: does `signature` sign the SHA-256 of `data_hex` under
/// a public key? Exactly one of `public_key_hex` (33-byte compressed SEC1) and
/// `key_id` (a completed key) names the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyDataRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub data_hex: String,
    pub signature: VerifySignatureDto,
}

/// Which key a verification is against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyKey {
    PublicKey(PublicKey),
    KeyId(KeyId),
}

/// A validated [`VerifyDataRequest`]: the key, the data and the candidate
/// signatures (one per recovery id when none was given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataVerification {
    pub key: VerifyKey,
    pub data: Vec<u8>,
    pub signatures: Vec<Signature>,
}

impl VerifyDataRequest {
    pub fn into_domain(self) -> Result<DataVerification, DtoError> {
        let key = match (self.public_key_hex, self.key_id) {
            (Some(pk), None) => VerifyKey::PublicKey(
                PublicKey::from_slice(&unhex("public_key_hex", &pk)?)
                    .map_err(invalid("public_key_hex"))?,
            ),
            (None, Some(id)) => VerifyKey::KeyId(key_id("key_id", &id)?),
            _ => return Err(DtoError::KeySource),
        };
        let r = unhex("signature.r_hex", &self.signature.r_hex)?;
        let s = unhex("signature.s_hex", &self.signature.s_hex)?;
        let recovery_ids = match self.signature.recovery_id {
            Some(id) => vec![id],
            None => vec![0, 1],
        };
        Ok(DataVerification {
            key,
            data: unhex("data_hex", &self.data_hex)?,
            signatures: recovery_ids
                .into_iter()
                .map(|id| Signature::new(&r, &s, id).map_err(invalid("signature")))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Answer to `POST /v1/data/verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyDataResponse {
    pub valid: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verification_without_recovery_id_tries_both() {
        let r: VerifyDataRequest = serde_json::from_value(serde_json::json!({
            "public_key_hex": format!("02{}", hex::encode([7u8; 32])),
            "data_hex": "00",
            "signature": {"r_hex": hex::encode([1u8; 32]), "s_hex": hex::encode([2u8; 32])},
        }))
        .unwrap();
        let v = r.into_domain().unwrap();
        let ids: Vec<u8> = v.signatures.iter().map(Signature::recovery_id).collect();
        assert_eq!(ids, [0, 1]);
    }
}
