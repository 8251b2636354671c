//! Domain events for external consumers: the JSON records the outbox publishes.
//!
//! Schema `mpc.domain-event/v1` (documented in `docs/domain-events.md`):
//!
//! ```json
//! {"schema":"mpc.domain-event/v1","event_id":"…","position":42,"type":"signature.produced",
//!  "occurred_at":"2026-11-23T10:00:00.000Z","correlation_id":"…",
//!  "subject":{"kind":"session","id":"…"},"data":{…}}
//! ```
//!
//! `event_id` is the id of the stored event the domain event was made from, so every
//! republication carries the same id: consumers deduplicate on it. `position` is that
//! event's global position in the event log. `subject` is derived from `data`.
//!
//! [`encode`] writes compact JSON with the fields in the order above; [`decode`]
//! ignores fields it does not know (v1 may gain fields, never lose or change them) and
//! refuses other schemas and unknown types. Fixtures of every type live in
//! `fixtures/domain/` and are tested byte for byte.

use mpc_events::{
    AccountId, KeyId, KeyPolicy, MessageHash, PartyId, PublicKey, SessionId, SessionKind,
    ShareRole, Signature, Threshold, Timestamp, Username, WorkflowId,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::json::{self, from_json, to_json, unhex};
use crate::{DecodeError, SchemaError};

/// The `schema` field of every record [`encode`] writes.
pub const SCHEMA: &str = "mpc.domain-event/v1";

/// Every domain event type of [`SCHEMA`].
pub const EVENT_TYPES: [&str; 7] = [
    "key.generated",
    "key.refreshed",
    "signature.produced",
    "session.failed",
    "account.created",
    "workflow.approved",
    "workflow.rejected",
];

/// One domain event, made from one stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainEvent {
    /// Id of the source event in the event store: the deduplication key.
    pub event_id: Uuid,
    /// Global position of the source event.
    pub position: u64,
    pub occurred_at: Timestamp,
    pub correlation_id: Uuid,
    pub data: DomainData,
}

impl DomainEvent {
    /// The `type` field, one of [`EVENT_TYPES`].
    pub fn event_type(&self) -> &'static str {
        match &self.data {
            DomainData::KeyGenerated(_) => "key.generated",
            DomainData::KeyRefreshed(_) => "key.refreshed",
            DomainData::SignatureProduced(_) => "signature.produced",
            DomainData::SessionFailed(_) => "session.failed",
            DomainData::AccountCreated(_) => "account.created",
            DomainData::WorkflowDecided(w) if w.approved => "workflow.approved",
            DomainData::WorkflowDecided(_) => "workflow.rejected",
        }
    }

    /// What the event is about.
    pub fn subject(&self) -> Subject {
        match &self.data {
            DomainData::KeyGenerated(k) => Subject {
                kind: "key",
                id: k.key_id.to_string(),
            },
            DomainData::KeyRefreshed(k) => Subject {
                kind: "key",
                id: k.key_id.to_string(),
            },
            DomainData::SignatureProduced(s) => Subject {
                kind: "session",
                id: s.session_id.to_string(),
            },
            DomainData::SessionFailed(f) => Subject {
                kind: "session",
                id: f.session_id.to_string(),
            },
            DomainData::AccountCreated(a) => Subject {
                kind: "account",
                id: a.account_id.to_string(),
            },
            DomainData::WorkflowDecided(w) => Subject {
                kind: "workflow",
                id: w.workflow_id.to_string(),
            },
        }
    }
}

/// The `subject` field: the kind of entity and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub kind: &'static str,
    pub id: String,
}

/// The type-specific part of a domain event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainData {
    KeyGenerated(KeyGenerated),
    KeyRefreshed(KeyRefreshed),
    SignatureProduced(SignatureProduced),
    SessionFailed(SessionFailed),
    AccountCreated(AccountCreated),
    /// `workflow.approved` or `workflow.rejected`.
    WorkflowDecided(WorkflowDecided),
}

/// `account.created`: an account was opened; its 2-of-3 keygen session is named.
/// Contact details (email, phone) stay inside the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountCreated {
    pub account_id: AccountId,
    pub username: Username,
    pub keygen_session: SessionId,
    /// Which party holds which share: (role, party).
    pub shares: Vec<(ShareRole, PartyId)>,
}

/// `workflow.approved` (t approvals are in) or `workflow.rejected` (t approvals can
/// no longer be reached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowDecided {
    pub workflow_id: WorkflowId,
    pub key_id: KeyId,
    pub payload_hash: MessageHash,
    pub approved: bool,
    /// The approvers whose decisions decided it: the t approvers, or the rejecters.
    pub deciders: Vec<PartyId>,
}

/// `key.generated`: a keygen session completed; the key can sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGenerated {
    pub key_id: KeyId,
    pub public_key: PublicKey,
    pub threshold: Threshold,
    /// The key's parties in keygen order.
    pub parties: Vec<PartyId>,
    /// Which signing sessions the holders join, pinned by each at keygen.
    pub policy: KeyPolicy,
}

/// `key.refreshed`: a refresh session completed; every share of the key was
/// re-randomized (and a lost one rebuilt, when `repaired` names its holder). The
/// public key is unchanged; shares of earlier generations no longer sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRefreshed {
    pub key_id: KeyId,
    /// The refresh session.
    pub session_id: SessionId,
    pub public_key: PublicKey,
    /// The share generation now in use (1 after keygen, one more per refresh).
    pub epoch: u32,
    /// The holder whose lost share was rebuilt for a new device, if any.
    pub repaired: Option<PartyId>,
}

/// `signature.produced`: a signing session completed with a verified signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureProduced {
    pub session_id: SessionId,
    pub key_id: KeyId,
    pub public_key: PublicKey,
    pub message_hash: MessageHash,
    pub signature: Signature,
    /// The parties that ran the signing session.
    pub signers: Vec<PartyId>,
}

/// `session.failed`: a session failed or expired before completing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFailed {
    pub session_id: SessionId,
    pub kind: SessionKind,
    pub reason: FailureCode,
    /// The engine's abort detail or the operator's close reason, when there is one.
    pub detail: Option<String>,
    /// The parties the failure is attributed to (may be empty).
    pub culprits: Vec<PartyId>,
}

/// Why a session failed, as a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    PublicKeyMismatch,
    InvalidSignature,
    PartyAborted,
    Closed,
    Expired,
}

/// `event` as compact JSON of [`SCHEMA`].
pub fn encode(event: &DomainEvent) -> Result<Vec<u8>, SchemaError> {
    match &event.data {
        DomainData::KeyGenerated(k) => record(event, v1::KeyGenerated::from(k)),
        DomainData::KeyRefreshed(k) => record(event, v1::KeyRefreshed::from(k)),
        DomainData::SignatureProduced(s) => record(event, v1::SignatureProduced::from(s)),
        DomainData::SessionFailed(f) => record(event, v1::SessionFailed::from(f)),
        DomainData::AccountCreated(a) => record(event, v1::AccountCreated::from(a)),
        DomainData::WorkflowDecided(w) if w.approved => {
            record(event, v1::WorkflowApproved::from(w))
        }
        DomainData::WorkflowDecided(w) => record(event, v1::WorkflowRejected::from(w)),
    }
}

fn record<D: Serialize>(event: &DomainEvent, data: D) -> Result<Vec<u8>, SchemaError> {
    let subject = event.subject();
    to_json(&v1::Record {
        schema: SCHEMA.to_owned(),
        event_id: event.event_id,
        position: event.position,
        event_type: event.event_type().to_owned(),
        occurred_at: v1::Time::from(event.occurred_at),
        correlation_id: event.correlation_id,
        subject: v1::Subject {
            kind: subject.kind.to_owned(),
            id: subject.id,
        },
        data,
    })
}

/// A record of [`SCHEMA`] back into a [`DomainEvent`].
pub fn decode(bytes: &[u8]) -> Result<DomainEvent, SchemaError> {
    let probe: v1::Record<serde::de::IgnoredAny> = from_json(bytes)?;
    if probe.schema != SCHEMA {
        return Err(DecodeError::Schema {
            found: probe.schema,
            expected: SCHEMA,
        }
        .into());
    }
    let (record, data) = match probe.event_type.as_str() {
        "key.generated" => {
            let (header, data) = from_json::<v1::Record<v1::KeyGenerated>>(bytes)?.split();
            (header, DomainData::KeyGenerated(data.try_into()?))
        }
        "key.refreshed" => {
            let (header, data) = from_json::<v1::Record<v1::KeyRefreshed>>(bytes)?.split();
            (header, DomainData::KeyRefreshed(data.try_into()?))
        }
        "signature.produced" => {
            let (header, data) = from_json::<v1::Record<v1::SignatureProduced>>(bytes)?.split();
            (header, DomainData::SignatureProduced(data.try_into()?))
        }
        "session.failed" => {
            let (header, data) = from_json::<v1::Record<v1::SessionFailed>>(bytes)?.split();
            (header, DomainData::SessionFailed(data.try_into()?))
        }
        "account.created" => {
            let (header, data) = from_json::<v1::Record<v1::AccountCreated>>(bytes)?.split();
            (header, DomainData::AccountCreated(data.try_into()?))
        }
        "workflow.approved" => {
            let (header, data) = from_json::<v1::Record<v1::WorkflowApproved>>(bytes)?.split();
            (header, DomainData::WorkflowDecided(data.try_into()?))
        }
        "workflow.rejected" => {
            let (header, data) = from_json::<v1::Record<v1::WorkflowRejected>>(bytes)?.split();
            (header, DomainData::WorkflowDecided(data.try_into()?))
        }
        other => return Err(SchemaError::UnknownType(other.to_owned())),
    };
    let event = DomainEvent {
        event_id: record.event_id,
        position: record.position,
        occurred_at: record.occurred_at.into(),
        correlation_id: record.correlation_id,
        data,
    };
    let subject = event.subject();
    if record.subject.kind != subject.kind || record.subject.id != subject.id {
        return Err(DecodeError::Subject {
            recorded: format!("{}/{}", record.subject.kind, record.subject.id),
            derived: format!("{}/{}", subject.kind, subject.id),
        }
        .into());
    }
    Ok(event)
}

fn parties(names: Vec<String>) -> Result<Vec<PartyId>, SchemaError> {
    names
        .into_iter()
        .map(|p| PartyId::parse(p).map_err(SchemaError::from))
        .collect()
}

fn names(parties: &[PartyId]) -> Vec<String> {
    parties.iter().map(PartyId::to_string).collect()
}

/// The v1 JSON shapes. Bytes are lowercase hex; times are RFC 3339 UTC.
mod v1 {
    use super::*;

    /// RFC 3339 in UTC, written with exactly three fractional digits
    /// (`2026-11-23T10:00:00.000Z`), read in any RFC 3339 form.
    #[derive(Debug, Clone, Copy)]
    pub struct Time(time::OffsetDateTime);

    const WRITE_FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );

    impl Serialize for Time {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let text = self
                .0
                .to_offset(time::UtcOffset::UTC)
                .format(WRITE_FORMAT)
                .map_err(serde::ser::Error::custom)?;
            s.serialize_str(&text)
        }
    }

    impl<'de> Deserialize<'de> for Time {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
                .map(Self)
                .map_err(serde::de::Error::custom)
        }
    }

    impl From<Timestamp> for Time {
        fn from(t: Timestamp) -> Self {
            let nanos = i128::from(t.as_millis()) * 1_000_000;
            Self(
                time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            )
        }
    }

    impl From<Time> for Timestamp {
        fn from(t: Time) -> Self {
            let millis = t.0.unix_timestamp_nanos() / 1_000_000;
            Timestamp::from_millis(i64::try_from(millis).unwrap_or(i64::MAX))
        }
    }

    #[derive(Serialize, Deserialize)]
    pub struct Record<D> {
        pub schema: String,
        pub event_id: Uuid,
        pub position: u64,
        #[serde(rename = "type")]
        pub event_type: String,
        pub occurred_at: Time,
        pub correlation_id: Uuid,
        pub subject: Subject,
        pub data: D,
    }

    /// A record's fields other than `data`.
    pub struct Header {
        pub event_id: Uuid,
        pub position: u64,
        pub occurred_at: Time,
        pub correlation_id: Uuid,
        pub subject: Subject,
    }

    impl<D> Record<D> {
        pub fn split(self) -> (Header, D) {
            let header = Header {
                event_id: self.event_id,
                position: self.position,
                occurred_at: self.occurred_at,
                correlation_id: self.correlation_id,
                subject: self.subject,
            };
            (header, self.data)
        }
    }

    #[derive(Serialize, Deserialize)]
    pub struct Subject {
        pub kind: String,
        pub id: String,
    }

    #[derive(Serialize, Deserialize)]
    pub struct ThresholdV1 {
        pub t: u16,
        pub n: u16,
    }

    #[derive(Serialize, Deserialize)]
    pub struct KeyGenerated {
        pub key_id: String,
        pub public_key: String,
        pub threshold: ThresholdV1,
        pub parties: Vec<String>,
        /// Added within v1; records written before it are `any-request` keys.
        #[serde(default = "any_request")]
        pub policy: String,
    }

    fn any_request() -> String {
        KeyPolicy::AnyRequest.as_str().to_owned()
    }

    impl From<&super::KeyGenerated> for KeyGenerated {
        fn from(k: &super::KeyGenerated) -> Self {
            Self {
                key_id: k.key_id.to_string(),
                public_key: hex::encode(k.public_key.as_bytes()),
                threshold: ThresholdV1 {
                    t: u16::from(k.threshold.t()),
                    n: u16::from(k.threshold.n()),
                },
                parties: names(&k.parties),
                policy: k.policy.as_str().to_owned(),
            }
        }
    }

    impl TryFrom<KeyGenerated> for super::KeyGenerated {
        type Error = SchemaError;
        fn try_from(k: KeyGenerated) -> Result<Self, SchemaError> {
            Ok(Self {
                key_id: k.key_id.parse()?,
                public_key: PublicKey::from_slice(&unhex("public_key", &k.public_key)?)?,
                threshold: Threshold::new(k.threshold.t, k.threshold.n)?,
                parties: parties(k.parties)?,
                policy: json::policy(&k.policy)?,
            })
        }
    }

    #[derive(Serialize, Deserialize)]
    pub struct KeyRefreshed {
        pub key_id: String,
        pub session_id: String,
        pub public_key: String,
        pub epoch: u32,
        pub repaired: Option<String>,
    }

    impl From<&super::KeyRefreshed> for KeyRefreshed {
        fn from(k: &super::KeyRefreshed) -> Self {
            Self {
                key_id: k.key_id.to_string(),
                session_id: k.session_id.to_string(),
                public_key: hex::encode(k.public_key.as_bytes()),
                epoch: k.epoch,
                repaired: k.repaired.as_ref().map(ToString::to_string),
            }
        }
    }

    impl TryFrom<KeyRefreshed> for super::KeyRefreshed {
        type Error = SchemaError;
        fn try_from(k: KeyRefreshed) -> Result<Self, SchemaError> {
            Ok(Self {
                key_id: k.key_id.parse()?,
                session_id: k.session_id.parse()?,
                public_key: PublicKey::from_slice(&unhex("public_key", &k.public_key)?)?,
                epoch: k.epoch,
                repaired: k.repaired.map(PartyId::parse).transpose()?,
            })
        }
    }

    #[derive(Serialize, Deserialize)]
    pub struct SignatureProduced {
        pub session_id: String,
        pub key_id: String,
        pub public_key: String,
        pub message_hash: String,
        pub r: String,
        pub s: String,
        pub recovery_id: u8,
        pub signers: Vec<String>,
    }

    impl From<&super::SignatureProduced> for SignatureProduced {
        fn from(s: &super::SignatureProduced) -> Self {
            Self {
                session_id: s.session_id.to_string(),
                key_id: s.key_id.to_string(),
                public_key: hex::encode(s.public_key.as_bytes()),
                message_hash: hex::encode(s.message_hash.as_bytes()),
                r: hex::encode(s.signature.r()),
                s: hex::encode(s.signature.s()),
                recovery_id: s.signature.recovery_id(),
                signers: names(&s.signers),
            }
        }
    }

    impl TryFrom<SignatureProduced> for super::SignatureProduced {
        type Error = SchemaError;
        fn try_from(s: SignatureProduced) -> Result<Self, SchemaError> {
            Ok(Self {
                session_id: s.session_id.parse()?,
                key_id: s.key_id.parse()?,
                public_key: PublicKey::from_slice(&unhex("public_key", &s.public_key)?)?,
                message_hash: MessageHash::from_slice(&unhex("message_hash", &s.message_hash)?)?,
                signature: Signature::new(&unhex("r", &s.r)?, &unhex("s", &s.s)?, s.recovery_id)?,
                signers: parties(s.signers)?,
            })
        }
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Kind {
        Keygen,
        Signing,
        Refresh,
    }

    #[derive(Serialize, Deserialize)]
    pub struct SessionFailed {
        pub session_id: String,
        pub kind: Kind,
        pub reason: FailureCode,
        pub detail: Option<String>,
        pub culprits: Vec<String>,
    }

    impl From<&super::SessionFailed> for SessionFailed {
        fn from(f: &super::SessionFailed) -> Self {
            Self {
                session_id: f.session_id.to_string(),
                kind: match f.kind {
                    SessionKind::Keygen => Kind::Keygen,
                    SessionKind::Signing => Kind::Signing,
                    SessionKind::Refresh => Kind::Refresh,
                },
                reason: f.reason,
                detail: f.detail.clone(),
                culprits: names(&f.culprits),
            }
        }
    }

    impl TryFrom<SessionFailed> for super::SessionFailed {
        type Error = SchemaError;
        fn try_from(f: SessionFailed) -> Result<Self, SchemaError> {
            Ok(Self {
                session_id: f.session_id.parse()?,
                kind: match f.kind {
                    Kind::Keygen => SessionKind::Keygen,
                    Kind::Signing => SessionKind::Signing,
                    Kind::Refresh => SessionKind::Refresh,
                },
                reason: f.reason,
                detail: f.detail,
                culprits: parties(f.culprits)?,
            })
        }
    }

    #[derive(Serialize, Deserialize)]
    pub struct Share {
        pub role: String,
        pub party_id: String,
    }

    #[derive(Serialize, Deserialize)]
    pub struct AccountCreated {
        pub account_id: String,
        pub username: String,
        pub keygen_session_id: String,
        pub shares: Vec<Share>,
    }

    impl From<&super::AccountCreated> for AccountCreated {
        fn from(a: &super::AccountCreated) -> Self {
            Self {
                account_id: a.account_id.to_string(),
                username: a.username.to_string(),
                keygen_session_id: a.keygen_session.to_string(),
                shares: a
                    .shares
                    .iter()
                    .map(|(role, party)| Share {
                        role: role.to_string(),
                        party_id: party.to_string(),
                    })
                    .collect(),
            }
        }
    }

    impl TryFrom<AccountCreated> for super::AccountCreated {
        type Error = SchemaError;
        fn try_from(a: AccountCreated) -> Result<Self, SchemaError> {
            Ok(Self {
                account_id: a.account_id.parse()?,
                username: Username::parse(&a.username)?,
                keygen_session: a.keygen_session_id.parse()?,
                shares: a
                    .shares
                    .into_iter()
                    .map(|s| {
                        let role = ShareRole::ALL
                            .into_iter()
                            .find(|r| r.to_string() == s.role)
                            .ok_or_else(|| DecodeError::ShareRole(s.role.clone()))?;
                        Ok((role, PartyId::parse(s.party_id)?))
                    })
                    .collect::<Result<_, SchemaError>>()?,
            })
        }
    }

    #[derive(Serialize, Deserialize)]
    pub struct WorkflowApproved {
        pub workflow_id: String,
        pub key_id: String,
        pub payload_hash: String,
        pub approvers: Vec<String>,
    }

    #[derive(Serialize, Deserialize)]
    pub struct WorkflowRejected {
        pub workflow_id: String,
        pub key_id: String,
        pub payload_hash: String,
        pub rejected_by: Vec<String>,
    }

    impl From<&super::WorkflowDecided> for WorkflowApproved {
        fn from(w: &super::WorkflowDecided) -> Self {
            Self {
                workflow_id: w.workflow_id.to_string(),
                key_id: w.key_id.to_string(),
                payload_hash: hex::encode(w.payload_hash.as_bytes()),
                approvers: names(&w.deciders),
            }
        }
    }

    impl From<&super::WorkflowDecided> for WorkflowRejected {
        fn from(w: &super::WorkflowDecided) -> Self {
            Self {
                workflow_id: w.workflow_id.to_string(),
                key_id: w.key_id.to_string(),
                payload_hash: hex::encode(w.payload_hash.as_bytes()),
                rejected_by: names(&w.deciders),
            }
        }
    }

    fn decided(
        workflow_id: String,
        key_id: String,
        payload_hash: String,
        approved: bool,
        deciders: Vec<String>,
    ) -> Result<super::WorkflowDecided, SchemaError> {
        Ok(super::WorkflowDecided {
            workflow_id: workflow_id.parse()?,
            key_id: key_id.parse()?,
            payload_hash: MessageHash::from_slice(&unhex("payload_hash", &payload_hash)?)?,
            approved,
            deciders: parties(deciders)?,
        })
    }

    impl TryFrom<WorkflowApproved> for super::WorkflowDecided {
        type Error = SchemaError;
        fn try_from(w: WorkflowApproved) -> Result<Self, SchemaError> {
            decided(w.workflow_id, w.key_id, w.payload_hash, true, w.approvers)
        }
    }

    impl TryFrom<WorkflowRejected> for super::WorkflowDecided {
        type Error = SchemaError;
        fn try_from(w: WorkflowRejected) -> Result<Self, SchemaError> {
            decided(
                w.workflow_id,
                w.key_id,
                w.payload_hash,
                false,
                w.rejected_by,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn fixture_dir() -> &'static Path {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/domain"))
    }

    fn party(name: &str) -> PartyId {
        PartyId::parse(name).unwrap()
    }

    fn key_id() -> KeyId {
        KeyId::of_keygen(SessionId::from_uuid(Uuid::from_u128(
            0x0193_5a3c_1d00_7000_8000_0000_0000_0001,
        )))
    }

    fn public_key() -> PublicKey {
        let mut bytes = [0x11; 33];
        bytes[0] = 0x02;
        PublicKey::from_slice(&bytes).unwrap()
    }

    fn event(position: u64, data: DomainData) -> DomainEvent {
        DomainEvent {
            event_id: Uuid::from_u128(
                0x0193_5a3c_1d00_7000_8000_0000_0000_0100 + u128::from(position),
            ),
            position,
            occurred_at: Timestamp::from_millis(1_795_000_000_123),
            correlation_id: Uuid::from_u128(0x0193_5a3c_1d00_7000_8000_0000_0000_0abc),
            data,
        }
    }

    /// One event per fixture file: `(file name, event)`.
    fn examples() -> Vec<(&'static str, DomainEvent)> {
        let signing =
            SessionId::from_uuid(Uuid::from_u128(0x0193_5a3c_1d00_7000_8000_0000_0000_0002));
        vec![
            (
                "key.generated.json",
                event(
                    7,
                    DomainData::KeyGenerated(KeyGenerated {
                        key_id: key_id(),
                        public_key: public_key(),
                        threshold: Threshold::new(2, 3).unwrap(),
                        parties: vec![party("device"), party("server"), party("recovery")],
                        policy: KeyPolicy::ApprovedOnly,
                    }),
                ),
            ),
            (
                "key.refreshed.json",
                event(
                    12,
                    DomainData::KeyRefreshed(KeyRefreshed {
                        key_id: key_id(),
                        session_id: SessionId::from_uuid(Uuid::from_u128(
                            0x0193_5a3c_1d00_7000_8000_0000_0000_0051,
                        )),
                        public_key: public_key(),
                        epoch: 2,
                        repaired: Some(party("device")),
                    }),
                ),
            ),
            (
                "signature.produced.json",
                event(
                    15,
                    DomainData::SignatureProduced(SignatureProduced {
                        session_id: signing,
                        key_id: key_id(),
                        public_key: public_key(),
                        message_hash: MessageHash::from_bytes([0xab; 32]),
                        signature: Signature::new(&[0x22; 32], &[0x33; 32], 1).unwrap(),
                        signers: vec![party("device"), party("server")],
                    }),
                ),
            ),
            (
                "session.failed.party_aborted.json",
                event(
                    21,
                    DomainData::SessionFailed(SessionFailed {
                        session_id: signing,
                        kind: SessionKind::Signing,
                        reason: FailureCode::PartyAborted,
                        detail: Some("round 2: invalid commitment".into()),
                        culprits: vec![party("server")],
                    }),
                ),
            ),
            (
                "session.failed.expired.json",
                event(
                    30,
                    DomainData::SessionFailed(SessionFailed {
                        session_id: key_id().keygen_session(),
                        kind: SessionKind::Keygen,
                        reason: FailureCode::Expired,
                        detail: None,
                        culprits: vec![],
                    }),
                ),
            ),
            (
                "account.created.json",
                event(
                    40,
                    DomainData::AccountCreated(AccountCreated {
                        account_id: AccountId::from_uuid(Uuid::from_u128(
                            0x0193_5a3c_1d00_7000_8000_0000_0000_00c1,
                        )),
                        username: Username::parse("alice").unwrap(),
                        keygen_session: key_id().keygen_session(),
                        shares: vec![
                            (ShareRole::Device, party("alice-phone")),
                            (ShareRole::Server, party("server")),
                            (ShareRole::Recovery, party("recovery")),
                        ],
                    }),
                ),
            ),
            (
                "workflow.approved.json",
                event(
                    41,
                    DomainData::WorkflowDecided(WorkflowDecided {
                        workflow_id: workflow_id(),
                        key_id: key_id(),
                        payload_hash: MessageHash::from_bytes([0xab; 32]),
                        approved: true,
                        deciders: vec![
                            party("approver-1"),
                            party("approver-3"),
                            party("approver-4"),
                        ],
                    }),
                ),
            ),
            (
                "workflow.rejected.json",
                event(
                    42,
                    DomainData::WorkflowDecided(WorkflowDecided {
                        workflow_id: workflow_id(),
                        key_id: key_id(),
                        payload_hash: MessageHash::from_bytes([0xab; 32]),
                        approved: false,
                        deciders: vec![
                            party("approver-2"),
                            party("approver-3"),
                            party("approver-5"),
                        ],
                    }),
                ),
            ),
        ]
    }

    fn workflow_id() -> WorkflowId {
        WorkflowId::from_uuid(Uuid::from_u128(0x0193_5a3c_1d00_7000_8000_0000_0000_00a1))
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = fixture_dir().join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn the_encoder_reproduces_every_fixture_byte_for_byte() {
        for (name, event) in examples() {
            let mut encoded = encode(&event).unwrap();
            encoded.push(b'\n');
            assert_eq!(
                String::from_utf8(encoded).unwrap(),
                String::from_utf8(fixture(name)).unwrap(),
                "{name}"
            );
        }
    }

    #[test]
    fn the_decoder_reads_every_fixture() {
        for (name, event) in examples() {
            assert_eq!(decode(&fixture(name)).unwrap(), event, "{name}");
        }
    }

    #[test]
    fn every_type_has_a_fixture() {
        let files: Vec<String> = std::fs::read_dir(fixture_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files.len(), examples().len(), "{files:?}");
        for ty in EVENT_TYPES {
            assert!(
                files.iter().any(|f| f.starts_with(&format!("{ty}."))),
                "no fixture for {ty}"
            );
            assert!(examples().iter().any(|(_, e)| e.event_type() == ty));
        }
    }

    #[test]
    fn a_key_generated_before_policies_were_published_is_an_any_request_key() {
        let text = String::from_utf8(fixture("key.generated.json")).unwrap();
        let earlier = text.replace(r#","policy":"approved-only""#, "");
        assert_ne!(earlier, text);
        let DomainData::KeyGenerated(key) = decode(earlier.as_bytes()).unwrap().data else {
            panic!("not a key.generated");
        };
        assert_eq!(key.policy, KeyPolicy::AnyRequest);
        let unknown = text.replace("approved-only", "sign-anything");
        assert!(decode(unknown.as_bytes()).is_err());
    }

    #[test]
    fn unknown_fields_are_ignored_and_bad_records_are_errors() {
        let text = String::from_utf8(fixture("session.failed.expired.json")).unwrap();
        let extended = text.replacen("{", r#"{"added_later":true,"#, 1);
        assert!(decode(extended.as_bytes()).is_ok());
        let v2 = text.replace(SCHEMA, "mpc.domain-event/v2");
        assert!(matches!(decode(v2.as_bytes()), Err(SchemaError::Decode(_))));
        let unknown = text.replace("session.failed", "session.paused");
        assert!(matches!(
            decode(unknown.as_bytes()),
            Err(SchemaError::UnknownType(t)) if t == "session.paused"
        ));
        let wrong_subject = text.replace(r#""kind":"session""#, r#""kind":"key""#);
        assert!(decode(wrong_subject.as_bytes()).is_err());
        let bad_reason = text.replace(r#""expired""#, r#""bored""#);
        assert!(decode(bad_reason.as_bytes()).is_err());
        assert!(decode(b"{").is_err());
    }
}
