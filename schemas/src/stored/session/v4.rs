//! Version 4 of `SessionCreated`: a repair carries its authorizations, the
//! signatures of t holders other than the target over the recovery transcript
//! (v3 repairs decode with none, which every holder refuses). Everything else is as
//! in v3. Repairs before v6 carry no policy and decode as `any-request`.

use super::v1::{self, Identity};
use super::v2::ApprovalSignature;
use super::*;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repair {
    pub target: String,
    pub identity: Identity,
    pub helpers: Vec<String>,
    pub authorizations: Vec<ApprovalSignature>,
}

pub type SessionCreated = v3::SessionCreated<Repair>;

impl From<&RepairSpec> for Repair {
    fn from(r: &RepairSpec) -> Self {
        Self {
            target: r.target.to_string(),
            identity: Identity::from(&r.identity),
            helpers: v1::names(&r.helpers),
            authorizations: r
                .authorizations
                .iter()
                .map(ApprovalSignature::from)
                .collect(),
        }
    }
}

impl TryFrom<Repair> for RepairSpec {
    type Error = SchemaError;
    fn try_from(r: Repair) -> Result<Self, SchemaError> {
        Ok(Self {
            target: PartyId::parse(r.target)?,
            identity: r.identity.try_into()?,
            helpers: v1::parse_names(r.helpers)?,
            authorizations: r
                .authorizations
                .into_iter()
                .map(SignedApproval::try_from)
                .collect::<Result<_, SchemaError>>()?,
            policy: KeyPolicy::AnyRequest,
        })
    }
}
