//! Version 6 of `SessionCreated`: a repair carries the key's signing policy, which
//! every holder checks against its pin and the new device pins (v5 and older repairs
//! decode as `any-request`, which the holders of an `approved-only` key refuse).
//! Everything else is as in v5.

use super::v1::Identity;
use super::v2::ApprovalSignature;
use super::*;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repair {
    pub target: String,
    pub identity: Identity,
    pub helpers: Vec<String>,
    pub authorizations: Vec<ApprovalSignature>,
    pub policy: String,
}

pub type SessionCreated = v3::SessionCreated<Repair, v5::Keygen>;

impl From<&RepairSpec> for Repair {
    fn from(r: &RepairSpec) -> Self {
        let v4::Repair {
            target,
            identity,
            helpers,
            authorizations,
        } = v4::Repair::from(r);
        Self {
            target,
            identity,
            helpers,
            authorizations,
            policy: r.policy.as_str().to_owned(),
        }
    }
}

impl TryFrom<Repair> for RepairSpec {
    type Error = SchemaError;
    fn try_from(r: Repair) -> Result<Self, SchemaError> {
        let policy = crate::json::policy(&r.policy)?;
        let earlier = v4::Repair {
            target: r.target,
            identity: r.identity,
            helpers: r.helpers,
            authorizations: r.authorizations,
        };
        Ok(Self {
            policy,
            ..RepairSpec::try_from(earlier)?
        })
    }
}
