//! `/v1/keys`: a completed key, its share generation and its latest refresh.

use std::str::FromStr;

use mpc_events::{KeyId, KeyRef, Participant, PublicKey};
use serde::{Deserialize, Serialize};

use crate::common::{invalid, parse_status, unhex};
use crate::{DtoError, IndexedParticipantDto, ThresholdDto};

/// A completed threshold key. `parties` are the key holders in keygen order
/// (`index` = position + 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyDto {
    pub key_id: String,
    /// Compressed SEC1 secp256k1 point, 33 bytes.
    pub public_key_hex: String,
    pub threshold: ThresholdDto,
    pub parties: Vec<IndexedParticipantDto>,
    /// The generation of shares in use: 1 after keygen, one more per completed refresh.
    pub epoch: u32,
}

impl From<&KeyRef> for KeyDto {
    fn from(k: &KeyRef) -> Self {
        Self {
            key_id: k.key_id.to_string(),
            public_key_hex: hex::encode(k.public_key.as_bytes()),
            threshold: k.threshold.into(),
            parties: k
                .parties
                .iter()
                .zip(1u8..)
                .map(|(p, i)| IndexedParticipantDto::new(i, p))
                .collect(),
            epoch: k.epoch,
        }
    }
}

impl TryFrom<&KeyDto> for KeyRef {
    type Error = DtoError;
    fn try_from(d: &KeyDto) -> Result<Self, DtoError> {
        let mut parties: Vec<(u8, Participant)> = d
            .parties
            .iter()
            .map(IndexedParticipantDto::to_domain)
            .collect::<Result<_, _>>()?;
        parties.sort_by_key(|(i, _)| *i);
        Ok(KeyRef {
            key_id: KeyId::from_str(&d.key_id).map_err(invalid("key.key_id"))?,
            public_key: PublicKey::from_slice(&unhex("key.public_key_hex", &d.public_key_hex)?)
                .map_err(invalid("key.public_key_hex"))?,
            threshold: d.threshold.try_into()?,
            parties: parties.into_iter().map(|(_, p)| p).collect(),
            epoch: d.epoch,
        })
    }
}

/// The latest refresh session of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LastRefreshDto {
    pub session_id: String,
    /// The session's status (`created`, `in_progress`, `completed`, `failed`,
    /// `expired`); absent when the session was recorded but never created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl LastRefreshDto {
    /// Whether the refresh may still run: its session exists and has not ended.
    pub fn is_running(&self) -> Result<bool, DtoError> {
        match &self.status {
            Some(status) => Ok(!parse_status(status)?.is_terminal()),
            None => Ok(false),
        }
    }
}

/// `GET /v1/keys/{key_id}`: a completed key, when its current share generation
/// came to be and its latest refresh session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyStateDto {
    #[serde(flatten)]
    pub key: KeyDto,
    /// When the current generation of shares came to be (keygen or the latest
    /// completed refresh), in milliseconds.
    pub generation_at: i64,
    /// Which signing sessions the holders join, fixed at keygen: `any-request` or
    /// `approved-only`.
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refresh: Option<LastRefreshDto>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpc_events::SessionId;

    #[test]
    fn a_last_refresh_runs_until_its_session_ends() {
        let last = |status: Option<&str>| LastRefreshDto {
            session_id: SessionId::new().to_string(),
            status: status.map(str::to_owned),
        };
        assert!(last(Some("created")).is_running().unwrap());
        assert!(last(Some("in_progress")).is_running().unwrap());
        assert!(!last(Some("completed")).is_running().unwrap());
        assert!(!last(Some("expired")).is_running().unwrap());
        assert!(!last(None).is_running().unwrap());
        assert!(last(Some("exploded")).is_running().is_err());
    }
}
