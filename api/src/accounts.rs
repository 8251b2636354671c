//! `/v1/accounts`: opening an account, its status changes, recoveries and signing
//! with its key.

use std::collections::BTreeMap;
use std::time::Duration;

use mpc_events::{
    AccountParties, Email, IdentityKey, Participant, Phone, RecoveryKind, ShareRole,
    SignedApproval, Username,
};
use serde::{Deserialize, Serialize};

use crate::common::{invalid, party, session_ttl, signing_input, text};
use crate::{
    CreateSessionResponse, DtoError, IdentityDto, ParticipantDto, SignedApprovalDto, SigningInput,
};

/// `POST /v1/accounts`: a user's account and the three parties of its 2-of-3 key
/// (each given like a session participant: party id and identity keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenAccountRequest {
    pub username: String,
    /// Compared case-insensitively for uniqueness.
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    pub device: ParticipantDto,
    pub server: ParticipantDto,
    pub recovery: ParticipantDto,
    /// Lifetime of the keygen session (default 600, at most 86 400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

/// A validated [`OpenAccountRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountOpening {
    pub username: Username,
    pub email: Email,
    pub phone: Option<Phone>,
    pub parties: AccountParties,
    pub keygen_ttl: Duration,
}

fn role_participant(role: ShareRole, d: &ParticipantDto) -> Result<Participant, DtoError> {
    let (party_field, identity_field) = match role {
        ShareRole::Device => ("device.party_id", "device.identity"),
        ShareRole::Server => ("server.party_id", "server.identity"),
        ShareRole::Recovery => ("recovery.party_id", "recovery.identity"),
    };
    Ok(Participant {
        party_id: party(party_field, &d.party_id)?,
        identity: IdentityKey::try_from(&d.identity).map_err(|e| match e {
            DtoError::Invalid { source, .. } => DtoError::Invalid {
                field: identity_field,
                source,
            },
            DtoError::Hex { .. } => DtoError::Hex {
                field: identity_field,
            },
            other => other,
        })?,
    })
}

impl OpenAccountRequest {
    /// Validates every field, naming the first one at fault.
    pub fn into_domain(self) -> Result<AccountOpening, DtoError> {
        Ok(AccountOpening {
            username: Username::parse(&self.username).map_err(invalid("username"))?,
            email: Email::parse(&self.email).map_err(invalid("email"))?,
            phone: self
                .phone
                .as_deref()
                .map(Phone::parse)
                .transpose()
                .map_err(invalid("phone"))?,
            parties: AccountParties {
                device: role_participant(ShareRole::Device, &self.device)?,
                server: role_participant(ShareRole::Server, &self.server)?,
                recovery: role_participant(ShareRole::Recovery, &self.recovery)?,
            },
            keygen_ttl: session_ttl(self.ttl_seconds)?,
        })
    }
}

/// `201` answer to `POST /v1/accounts`: the account and its keygen session (hand
/// each join token only to its party).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenAccountResponse {
    pub account_id: String,
    pub keygen: CreateSessionResponse,
}

/// Where an account's key stands: `pending` (keygen running or not yet started),
/// `completed` (the public key is known) or `failed` (keygen failed or expired;
/// restart it with `POST /v1/accounts/{id}/keygen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeyStatusDto {
    Pending,
    Completed,
    Failed,
}

/// `GET /v1/accounts/{id}`: an account, where its shares are (role → party id;
/// never share content) and its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountDto {
    pub account_id: String,
    pub username: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// `active`, `suspended`, `locked` or `recovering`.
    pub status: String,
    /// Share-location map: `device`, `server`, `recovery` → party id.
    pub shares: BTreeMap<String, String>,
    /// Each share holder's identity keys, by role: after a lost-device recovery,
    /// the new device's, so a user can tell which device holds the share now.
    pub share_identities: BTreeMap<String, IdentityDto>,
    pub keygen_session_id: String,
    pub key_status: KeyStatusDto,
    /// The key's id, once keygen completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Compressed SEC1 public key, once keygen completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_hex: Option<String>,
    /// The key's share generation in use (1 after keygen, one more per completed
    /// refresh), once keygen completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_epoch: Option<u32>,
    /// The recovery session still requested or in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_recovery: Option<RecoveryDto>,
    pub opened_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
    pub updated_at: i64,
}

/// `POST /v1/accounts/{id}/recoveries`: start a recovery session of the account, a
/// refresh session of its key. `device_lost` (the account must be `recovering`):
/// server and recovery rebuild the device share for the new device whose public
/// identity is `device_identity` (what `mpc party identity` prints), then every
/// share is refreshed. `authorizations` are the signatures of server and recovery
/// over the recovery transcript (what `mpc party authorize-recovery` prints): each
/// of them refuses to help without both, so an operator's token alone cannot move
/// the device share. `share_rotation` (the account must be `active`): every share
/// is refreshed. `ttl_seconds` is the session's lifetime (default 600, at most
/// 86 400).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RecoveryRequest {
    DeviceLost {
        device_identity: IdentityDto,
        authorizations: Vec<SignedApprovalDto>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_seconds: Option<u64>,
    },
    ShareRotation {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_seconds: Option<u64>,
    },
}

impl RecoveryRequest {
    /// The recovery asked for, its authorizations (none for a share rotation) and
    /// its session's lifetime.
    pub fn into_domain(self) -> Result<(RecoveryKind, Vec<SignedApproval>, Duration), DtoError> {
        Ok(match self {
            Self::DeviceLost {
                device_identity,
                authorizations,
                ttl_seconds,
            } => (
                RecoveryKind::DeviceLost {
                    identity: (&device_identity).try_into()?,
                },
                authorizations
                    .iter()
                    .map(|a| a.to_domain("authorizations.approver", "authorizations.signature_hex"))
                    .collect::<Result<_, _>>()?,
                session_ttl(ttl_seconds)?,
            ),
            Self::ShareRotation { ttl_seconds } => (
                RecoveryKind::ShareRotation,
                Vec::new(),
                session_ttl(ttl_seconds)?,
            ),
        })
    }
}

/// One recovery session of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryDto {
    /// The refresh session that carries it out.
    pub session_id: String,
    /// `device_lost` or `share_rotation`.
    pub kind: String,
    /// `requested`, `in_progress`, `completed` or `failed`.
    pub status: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The new device's public identity, for `device_lost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_device_identity: Option<IdentityDto>,
    pub requested_at: i64,
    pub updated_at: i64,
}

/// `GET /v1/accounts/{id}/recoveries`: every recovery session of the account,
/// oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveriesDto {
    pub recoveries: Vec<RecoveryDto>,
}

/// An operator's status change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccountAction {
    Suspend,
    Lock,
    StartRecovery,
    Reactivate,
}

/// `POST /v1/accounts/{id}/status`. `reason` (1 to 500 characters) is required for
/// every action but `reactivate`, which takes none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountStatusRequest {
    pub action: AccountAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A validated [`AccountStatusRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountStatusChange {
    Suspend(String),
    Lock(String),
    StartRecovery(String),
    Reactivate,
}

impl AccountStatusRequest {
    pub fn into_domain(self) -> Result<AccountStatusChange, DtoError> {
        let reason = || {
            self.reason
                .clone()
                .ok_or(DtoError::Missing("reason"))
                .and_then(|r| text("reason", r))
        };
        Ok(match self.action {
            AccountAction::Suspend => AccountStatusChange::Suspend(reason()?),
            AccountAction::Lock => AccountStatusChange::Lock(reason()?),
            AccountAction::StartRecovery => AccountStatusChange::StartRecovery(reason()?),
            AccountAction::Reactivate => match self.reason {
                None => AccountStatusChange::Reactivate,
                Some(_) => return Err(DtoError::Unexpected("reason")),
            },
        })
    }
}

/// `POST /v1/accounts/{id}/signatures`: sign with the account's key (device and
/// server sign). Exactly one of `message_hex` and `message_hash_hex`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountSigningRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_hash_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

impl AccountSigningRequest {
    pub fn into_domain(self) -> Result<(SigningInput, Duration), DtoError> {
        Ok((
            signing_input(self.message_hex, self.message_hash_hex)?,
            session_ttl(self.ttl_seconds)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_SESSION_TTL_SECONDS;
    use crate::test_support::identity;

    fn account_json() -> serde_json::Value {
        serde_json::json!({
            "username": "alice",
            "email": "Alice@Example.com",
            "device": {"party_id": "device", "identity": identity(1)},
            "server": {"party_id": "server", "identity": identity(2)},
            "recovery": {"party_id": "recovery", "identity": identity(3)},
        })
    }

    #[test]
    fn account_request_names_the_field_at_fault() {
        let r: OpenAccountRequest = serde_json::from_value(account_json()).unwrap();
        let opening = r.into_domain().unwrap();
        assert_eq!(opening.email.as_str(), "alice@example.com");
        assert_eq!(
            opening.keygen_ttl,
            Duration::from_secs(DEFAULT_SESSION_TTL_SECONDS)
        );

        let mut j = account_json();
        j["recovery"]["identity"]["signing"] = "zz".into();
        let r: OpenAccountRequest = serde_json::from_value(j).unwrap();
        assert_eq!(
            r.into_domain().unwrap_err(),
            DtoError::Hex {
                field: "recovery.identity"
            }
        );

        let mut j = account_json();
        j["server"]["party_id"] = "has space".into();
        let r: OpenAccountRequest = serde_json::from_value(j).unwrap();
        let e = r.into_domain().unwrap_err();
        assert_eq!(e.code(), "invalid_party_id");
        assert!(e.to_string().starts_with("server.party_id"), "{e}");
    }

    #[test]
    fn recovery_requests_convert_or_name_the_field_at_fault() {
        let parse = |v: serde_json::Value| serde_json::from_value::<RecoveryRequest>(v);
        let (kind, authorizations, ttl) = parse(serde_json::json!({"kind": "share_rotation"}))
            .unwrap()
            .into_domain()
            .unwrap();
        assert_eq!(kind, RecoveryKind::ShareRotation);
        assert!(authorizations.is_empty());
        assert_eq!(ttl, Duration::from_secs(DEFAULT_SESSION_TTL_SECONDS));
        let signature = hex::encode([7; 64]);
        let (kind, authorizations, ttl) = parse(serde_json::json!({
            "kind": "device_lost",
            "device_identity": identity(9),
            "authorizations": [{"approver": "server", "signature_hex": signature}],
            "ttl_seconds": 60,
        }))
        .unwrap()
        .into_domain()
        .unwrap();
        assert_eq!(authorizations.len(), 1);
        assert_eq!(authorizations[0].approver.as_str(), "server");
        assert_eq!(authorizations[0].signature.as_bytes(), &[7; 64]);
        assert_eq!(
            kind,
            RecoveryKind::DeviceLost {
                identity: (&identity(9)).try_into().unwrap()
            }
        );
        assert_eq!(ttl, Duration::from_secs(60));
        assert!(parse(serde_json::json!({"kind": "explode"})).is_err());
        assert!(parse(serde_json::json!({"kind": "device_lost"})).is_err());
        let without_authorizations =
            serde_json::json!({"kind": "device_lost", "device_identity": identity(9)});
        assert!(parse(without_authorizations).is_err());
        let bad_approver = parse(serde_json::json!({
            "kind": "device_lost",
            "device_identity": identity(9),
            "authorizations": [{"approver": "has space", "signature_hex": signature}],
        }))
        .unwrap()
        .into_domain()
        .unwrap_err();
        assert!(
            bad_approver
                .to_string()
                .starts_with("authorizations.approver"),
            "{bad_approver}"
        );
        assert!(
            parse(serde_json::json!({"kind": "share_rotation", "device_identity": identity(9)}))
                .is_err()
        );
        let bad_hex = parse(serde_json::json!({
            "kind": "device_lost",
            "device_identity": {"signing": "zz", "encryption": "00"},
            "authorizations": [],
        }))
        .unwrap()
        .into_domain()
        .unwrap_err();
        assert_eq!(bad_hex.code(), "invalid_hex");
        let ttl = parse(serde_json::json!({"kind": "share_rotation", "ttl_seconds": 0}))
            .unwrap()
            .into_domain()
            .unwrap_err();
        assert_eq!(ttl.code(), "invalid_ttl");
    }
}
