//! The recovery requests a holder's node was asked to authorize, kept under its data
//! directory until its human decides: the desk behind `mpc party recoveries` and the
//! party's `/v1/recoveries` routes.
//!
//! A request names a key, the holder whose share is lost (the target) and the new
//! device's identity keys; it reaches the node from whoever runs the recovery,
//! through the node's credentialed listener. Nothing in it is trusted: approving it
//! signs an authorization only after the holder's vault checked the target and the
//! identity against the roster it pinned ([`mpc_party::Holder::authorize_recovery`]),
//! and the human compares the identity shown with the one the new device shows.
//! A request's id is the SHA-256 of what it asks ([`request_id`]), so naming the id
//! names exactly what was shown, and the same request pushed twice is one request.
//! The authorization an approval signed stays on the record, for the operator to
//! collect (`mpc recovery start --authorizations-from`): it is no secret, since it
//! authorizes only this repair, from this holder's current share generation.
//!
//! One JSON file per request (`recoveries/<request id>.json`, see [`crate::folder`]).

use std::path::Path;

use mpc_api::{IdentityDto, SignedApprovalDto};
use mpc_events::{Decision, IdentityKey, KeyId, PartyId, SignedApproval};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::folder::{Folder, Read};

/// The directory under a party's data directory that holds its recovery requests.
pub const RECOVERIES_DIR: &str = "recoveries";
/// How many undecided requests a node keeps; a request beyond them is refused.
pub const MAX_PENDING: usize = 64;
/// The longest reason a request may give.
pub const MAX_REASON_CHARS: usize = 500;

/// A recovery request as it arrives (`POST /v1/recoveries`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryRequest {
    pub key_id: String,
    /// The holder whose share is lost.
    pub target: String,
    /// The new device's identity keys (what `mpc party identity` prints there).
    pub device_identity: IdentityDto,
    /// Why, for the human deciding (at most 500 characters).
    #[serde(default)]
    pub reason: String,
}

/// One request: what was asked and, once decided, the decision and (approved) the
/// authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    /// [`request_id`] of key, target and identity.
    pub request_id: String,
    pub key_id: String,
    pub target: String,
    pub device_identity: IdentityDto,
    pub reason: String,
    /// `approve` or `reject` once decided.
    pub decision: Option<String>,
    /// This holder's signed authorization, once approved.
    pub authorization: Option<SignedApprovalDto>,
}

impl Recovery {
    /// Key, target and new identity, as parsed when the request was received.
    pub fn asked(&self) -> Result<(KeyId, PartyId, IdentityKey), RecoveryError> {
        let corrupt = || RecoveryError::Corrupt(self.request_id.clone());
        Ok((
            self.key_id.parse().map_err(|_| corrupt())?,
            PartyId::parse(self.target.as_str()).map_err(|_| corrupt())?,
            IdentityKey::try_from(&self.device_identity).map_err(|_| corrupt())?,
        ))
    }
}

/// The id of the request to rebuild `target`'s share of `key` for the device with
/// `identity`: hex SHA-256 over a domain tag and the three.
pub fn request_id(key: KeyId, target: &PartyId, identity: &IdentityKey) -> String {
    let mut hash = Sha256::new();
    hash.update(b"mpc-recovery-request-v1\0");
    hash.update(key.to_string().as_bytes());
    hash.update(b"\0");
    hash.update(target.as_str().as_bytes());
    hash.update(b"\0");
    hash.update(identity.signing());
    hash.update(identity.encryption());
    hex::encode(hash.finalize())
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("not a key id: {0:?}")]
    InvalidKey(String),
    #[error("not a party id: {0:?}")]
    InvalidTarget(String),
    #[error("the device identity is invalid: {0}")]
    InvalidIdentity(String),
    #[error("the reason is over {MAX_REASON_CHARS} characters")]
    ReasonTooLong,
    #[error("not a recovery request id (64 hex digits): {0:?}")]
    InvalidRequestId(String),
    #[error("{MAX_PENDING} recovery requests are already waiting for a decision")]
    Full,
    #[error("recovery request {0} was already decided here")]
    AlreadyDecided(String),
    #[error("no recovery request {0} here")]
    Unknown(String),
    #[error("the stored recovery request {0} is damaged")]
    Corrupt(String),
    #[error("recoveries directory: {0}")]
    Io(#[from] std::io::Error),
}

/// A node's recovery requests, in `<data dir>/recoveries`.
#[derive(Debug, Clone)]
pub struct RecoveryDesk {
    folder: Folder,
}

impl RecoveryDesk {
    /// The desk of the party whose data directory is `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            folder: Folder::new(data_dir.join(RECOVERIES_DIR)),
        }
    }

    /// Stores a request, or answers the stored one when the same was received
    /// before. Refuses bad input and a full desk, storing nothing.
    pub fn receive(&self, request: RecoveryRequest) -> Result<Recovery, RecoveryError> {
        let key: KeyId = request
            .key_id
            .parse()
            .map_err(|_| RecoveryError::InvalidKey(request.key_id.clone()))?;
        let target = PartyId::parse(request.target.as_str())
            .map_err(|_| RecoveryError::InvalidTarget(request.target.clone()))?;
        let identity = IdentityKey::try_from(&request.device_identity)
            .map_err(|e| RecoveryError::InvalidIdentity(e.to_string()))?;
        if request.reason.chars().count() > MAX_REASON_CHARS {
            return Err(RecoveryError::ReasonTooLong);
        }
        let recovery = Recovery {
            request_id: request_id(key, &target, &identity),
            key_id: key.to_string(),
            target: target.to_string(),
            device_identity: IdentityDto::from(&identity),
            reason: request.reason,
            decision: None,
            authorization: None,
        };
        match self.get(&recovery.request_id) {
            Ok(stored) => return Ok(stored),
            Err(RecoveryError::Unknown(_)) => {}
            Err(e) => return Err(e),
        }
        if self.list()?.iter().filter(|r| r.decision.is_none()).count() >= MAX_PENDING {
            return Err(RecoveryError::Full);
        }
        self.folder.write(&recovery.request_id, &recovery)?;
        Ok(recovery)
    }

    /// Every request, pending and decided, by id.
    pub fn list(&self) -> Result<Vec<Recovery>, RecoveryError> {
        self.folder.names()?.iter().map(|id| self.get(id)).collect()
    }

    /// The request `id`.
    pub fn get(&self, id: &str) -> Result<Recovery, RecoveryError> {
        let id = id.trim().to_ascii_lowercase();
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RecoveryError::InvalidRequestId(id));
        }
        match self.folder.read::<Recovery>(&id)? {
            Read::Found(recovery) if recovery.request_id == id => Ok(recovery),
            Read::Found(_) | Read::Corrupt => Err(RecoveryError::Corrupt(id)),
            Read::Missing => Err(RecoveryError::Unknown(id)),
        }
    }

    /// The pending request `id`, about to be decided.
    pub fn to_decide(&self, id: &str) -> Result<Recovery, RecoveryError> {
        let recovery = self.get(id)?;
        if recovery.decision.is_some() {
            return Err(RecoveryError::AlreadyDecided(recovery.request_id));
        }
        Ok(recovery)
    }

    /// Records that `recovery` was approved with `authorization`.
    pub fn approved(
        &self,
        mut recovery: Recovery,
        authorization: &SignedApproval,
    ) -> Result<Recovery, RecoveryError> {
        recovery.decision = Some(decision_name(Decision::Approve));
        recovery.authorization = Some(authorization.into());
        self.folder.write(&recovery.request_id, &recovery)?;
        Ok(recovery)
    }

    /// Records that `recovery` was rejected.
    pub fn rejected(&self, mut recovery: Recovery) -> Result<Recovery, RecoveryError> {
        recovery.decision = Some(decision_name(Decision::Reject));
        self.folder.write(&recovery.request_id, &recovery)?;
        Ok(recovery)
    }
}

fn decision_name(decision: Decision) -> String {
    match decision {
        Decision::Approve => "approve",
        Decision::Reject => "reject",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use mpc_crypto::PartyIdentity;
    use mpc_events::SessionId;

    use super::*;

    fn request(key: KeyId, identity: &IdentityKey) -> RecoveryRequest {
        RecoveryRequest {
            key_id: key.to_string(),
            target: "device".into(),
            device_identity: identity.into(),
            reason: "lost phone".into(),
        }
    }

    #[test]
    fn a_request_is_named_by_what_it_asks_and_kept_until_decided() {
        let dir = tempfile::tempdir().unwrap();
        let desk = RecoveryDesk::new(dir.path());
        let key = KeyId::of_keygen(SessionId::new());
        let phone = PartyIdentity::generate().public();
        let device = PartyId::parse("device").unwrap();

        let received = desk.receive(request(key, &phone)).unwrap();
        assert_eq!(received.request_id, request_id(key, &device, &phone));
        assert_eq!(received.asked().unwrap(), (key, device.clone(), phone));
        assert_eq!(
            desk.receive(request(key, &phone)).unwrap(),
            received,
            "the same request twice is one request"
        );
        let other = PartyIdentity::generate().public();
        assert_ne!(
            desk.receive(request(key, &other)).unwrap().request_id,
            received.request_id,
            "another device is another request"
        );
        assert_eq!(desk.list().unwrap().len(), 2);

        let pending = desk.to_decide(&received.request_id.to_uppercase()).unwrap();
        let signed = SignedApproval {
            approver: PartyId::parse("server").unwrap(),
            signature: PartyIdentity::generate().authorize_recovery(key, 1, &device, &phone),
        };
        let approved = desk.approved(pending, &signed).unwrap();
        assert_eq!(approved.decision.as_deref(), Some("approve"));
        assert_eq!(approved.authorization, Some((&signed).into()));
        assert_eq!(desk.get(&received.request_id).unwrap(), approved);
        assert!(matches!(
            desk.to_decide(&received.request_id),
            Err(RecoveryError::AlreadyDecided(_))
        ));
        assert_eq!(
            desk.receive(request(key, &phone)).unwrap(),
            approved,
            "a decided request is not reopened by pushing it again"
        );
    }

    #[test]
    fn bad_requests_store_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let desk = RecoveryDesk::new(dir.path());
        let good = request(
            KeyId::of_keygen(SessionId::new()),
            &PartyIdentity::generate().public(),
        );
        let cases = [
            (
                RecoveryRequest {
                    key_id: "nope".into(),
                    ..good.clone()
                },
                "not a key id",
            ),
            (
                RecoveryRequest {
                    target: String::new(),
                    ..good.clone()
                },
                "not a party id",
            ),
            (
                RecoveryRequest {
                    device_identity: IdentityDto {
                        signing: "00".into(),
                        encryption: good.device_identity.encryption.clone(),
                    },
                    ..good.clone()
                },
                "identity is invalid",
            ),
            (
                RecoveryRequest {
                    reason: "x".repeat(MAX_REASON_CHARS + 1),
                    ..good
                },
                "over 500",
            ),
        ];
        for (bad, says) in cases {
            let error = desk.receive(bad).unwrap_err().to_string();
            assert!(error.contains(says), "{error}");
        }
        assert!(desk.list().unwrap().is_empty());
        for id in ["../vault/x", "ab", &"g".repeat(64)] {
            assert!(matches!(
                desk.get(id),
                Err(RecoveryError::InvalidRequestId(_))
            ));
        }
        assert!(matches!(
            desk.get(&"a".repeat(64)),
            Err(RecoveryError::Unknown(_))
        ));
    }

    #[test]
    fn a_full_desk_refuses_new_requests_but_answers_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let desk = RecoveryDesk::new(dir.path());
        let key = KeyId::of_keygen(SessionId::new());
        let first = PartyIdentity::generate().public();
        desk.receive(request(key, &first)).unwrap();
        for _ in 1..MAX_PENDING {
            desk.receive(request(key, &PartyIdentity::generate().public()))
                .unwrap();
        }
        assert!(matches!(
            desk.receive(request(key, &PartyIdentity::generate().public())),
            Err(RecoveryError::Full)
        ));
        desk.receive(request(key, &first)).unwrap();
        assert_eq!(desk.list().unwrap().len(), MAX_PENDING);
    }
}
