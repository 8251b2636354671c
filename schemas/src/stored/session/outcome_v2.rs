//! Version 2 of `PartyCompleted` and `SessionCompleted`: the outcome may also be
//! `refreshed` (group key and refresh digest). Everything else is as in v1.

use super::v1::Time;
use super::*;

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    PublicKey {
        public_key: String,
    },
    Signature {
        r: String,
        s: String,
        recovery_id: u8,
    },
    Refreshed {
        public_key: String,
        digest: String,
    },
}

impl From<&PartyOutcome> for Outcome {
    fn from(o: &PartyOutcome) -> Self {
        match o {
            PartyOutcome::PublicKey(pk) => Outcome::PublicKey {
                public_key: hex::encode(pk.as_bytes()),
            },
            PartyOutcome::Signature(sig) => Outcome::Signature {
                r: hex::encode(sig.r()),
                s: hex::encode(sig.s()),
                recovery_id: sig.recovery_id(),
            },
            PartyOutcome::Refreshed { public_key, digest } => Outcome::Refreshed {
                public_key: hex::encode(public_key.as_bytes()),
                digest: hex::encode(digest.as_bytes()),
            },
        }
    }
}

impl TryFrom<Outcome> for PartyOutcome {
    type Error = SchemaError;
    fn try_from(o: Outcome) -> Result<Self, SchemaError> {
        Ok(match o {
            Outcome::PublicKey { public_key } => {
                v1::Outcome::PublicKey { public_key }.try_into()?
            }
            Outcome::Signature { r, s, recovery_id } => {
                v1::Outcome::Signature { r, s, recovery_id }.try_into()?
            }
            Outcome::Refreshed { public_key, digest } => PartyOutcome::Refreshed {
                public_key: PublicKey::from_slice(&unhex("public_key", &public_key)?)?,
                digest: RefreshDigest::from_slice(&unhex("digest", &digest)?)?,
            },
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyCompleted {
    pub party_id: String,
    pub outcome: Outcome,
    pub at: Time,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionCompleted {
    pub outcome: Outcome,
    pub at: Time,
}
