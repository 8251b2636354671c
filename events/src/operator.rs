//! The operator vocabulary: who may call the coordinator's gateway, and as what.
//!
//! Operators hold API keys. The coordinator keeps only each key's SHA-256 digest, in
//! one `operators-registry` stream, next to the key's [`CredentialId`], a display
//! name and its [`Role`]; the key itself is shown once, when it is added. A revoked
//! credential stays in the registry (the audit log names it) and never authenticates
//! again. The bootstrap admin token of `mpc serve` is not in the registry: it is the
//! credential that adds the first keys.

use std::fmt;
use std::str::FromStr;

use crate::ids::{CredentialId, Timestamp};

/// Longest display name of a credential.
pub const MAX_CREDENTIAL_NAME_CHARS: usize = 64;

/// The id of the only registry stream (`operators-registry`).
pub const REGISTRY_ID: &str = "registry";

/// What a credential may do. Least privilege: each role but `admin` reaches only
/// its own routes; `admin` reaches every operator route and alone manages
/// credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Credentials, and every other operator route.
    Admin,
    /// Keygen, refresh, accounts and recovery requests.
    KeyManager,
    /// Signing requests and approval workflows.
    Requester,
    /// Read-only: sessions, keys, accounts, workflows.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Admin,
        Role::KeyManager,
        Role::Requester,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::KeyManager => "key-manager",
            Self::Requester => "requester",
            Self::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected admin, key-manager, requester or auditor")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// A credential's display name: 1–64 characters, none of them a control character.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CredentialName(String);

impl CredentialName {
    pub fn parse(s: impl Into<String>) -> Result<Self, OperatorError> {
        let s = s.into();
        let chars = s.chars().count();
        if (1..=MAX_CREDENTIAL_NAME_CHARS).contains(&chars)
            && !s.chars().any(char::is_control)
            && s.trim() == s
        {
            Ok(Self(s))
        } else {
            Err(OperatorError::InvalidName)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CredentialName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A request to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorCommand {
    /// Adds a credential whose key has SHA-256 `digest`.
    Add {
        id: CredentialId,
        name: CredentialName,
        role: Role,
        digest: [u8; 32],
        now: Timestamp,
    },
    /// Revokes a credential for good.
    Revoke { id: CredentialId, now: Timestamp },
}

/// Facts recorded in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorEvent {
    CredentialAdded {
        id: CredentialId,
        name: CredentialName,
        role: Role,
        digest: [u8; 32],
        at: Timestamp,
    },
    CredentialRevoked {
        id: CredentialId,
        at: Timestamp,
    },
}

impl OperatorEvent {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::CredentialAdded { .. } => "CredentialAdded",
            Self::CredentialRevoked { .. } => "CredentialRevoked",
        }
    }
    pub fn at(&self) -> Timestamp {
        match self {
            Self::CredentialAdded { at, .. } | Self::CredentialRevoked { at, .. } => *at,
        }
    }
}

/// Why the registry refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    #[error(
        "a credential name is 1-{MAX_CREDENTIAL_NAME_CHARS} characters without control characters or surrounding spaces"
    )]
    InvalidName,
    #[error("credential {0} already exists")]
    DuplicateId(CredentialId),
    #[error("an active credential is already named {0:?}")]
    NameTaken(String),
    #[error("another credential has the same key")]
    DuplicateKey,
    #[error("no credential {0}")]
    UnknownCredential(CredentialId),
    #[error("credential {0} is already revoked")]
    AlreadyRevoked(CredentialId),
}
