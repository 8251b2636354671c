//! Version 5 of `SessionCreated`: a keygen spec carries the new key's signing
//! policy (`any-request` or `approved-only`; v4 and older keygens decode as
//! `any-request`). Everything else is as in v4.

use super::v1::{ThresholdV1, threshold_v1};
use super::v3::KeygenPayload;
use super::*;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keygen {
    pub threshold: ThresholdV1,
    pub policy: String,
}

pub type SessionCreated = v3::SessionCreated<v4::Repair, Keygen>;

impl KeygenPayload for Keygen {
    fn of(threshold: &Threshold, policy: KeyPolicy) -> Self {
        Self {
            threshold: threshold_v1(threshold),
            policy: policy.as_str().to_owned(),
        }
    }
    fn into_domain(self) -> Result<(Threshold, KeyPolicy), SchemaError> {
        let policy = crate::json::policy(&self.policy)?;
        Ok((Threshold::new(self.threshold.t, self.threshold.n)?, policy))
    }
}
