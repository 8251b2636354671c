//! The fuzz targets' bodies, shared by the `cargo fuzz` targets (`fuzz/fuzz_targets/`)
//! and by the deterministic mutation test that runs in every `cargo test`
//! (`crypto/tests/mutations.rs`). Each takes arbitrary bytes, must never panic, and
//! returns how many decoders accepted them (the rest returned an error).
//!
//! Properties checked beyond "no panic":
//! - `envelope`: a decoded envelope re-encodes to an envelope that decodes equal;
//!   it is opened (signature, session, recipient, decryption) with a fixed identity;
//!   and the input sealed as a point-to-point payload opens to itself.
//! - the event decoders: every event type × every schema version (and one past the
//!   current, which must be refused).
//! - `http_dtos`: every request DTO parsed with `serde_json`, then validated into its
//!   domain type.

#![allow(dead_code)] // each includer uses a different part

use mpc_crypto::{Header, PartyIdentity, open, seal};
use mpc_events::{PartyId, SessionId};
use mpc_schemas::stored::{account, approval, session};
use mpc_schemas::{Envelope, Recipient, domain};

fn identity(fill: u8) -> PartyIdentity {
    let mut secret = vec![1u8];
    secret.extend_from_slice(&[fill; 32]);
    secret.extend_from_slice(&[fill.wrapping_add(1); 32]);
    PartyIdentity::from_secret_bytes(&secret).expect("a fixed, valid identity")
}

/// `Envelope::decode`, the encode/decode round trip, `mpc_crypto::open` as party
/// `server` with a fixed identity, and a seal/open round trip of the input as a payload.
pub fn envelope(data: &[u8]) -> usize {
    let me = PartyId::parse("server").unwrap();
    let mine = identity(0x11);
    let sender = identity(0x22);
    let mut accepted = 0;
    if let Ok(envelope) = Envelope::decode(data) {
        accepted += 1;
        let encoded = envelope.encode().expect("a decoded envelope encodes");
        assert_eq!(
            Envelope::decode(&encoded).expect("a re-encoded envelope decodes"),
            envelope
        );
        let session = envelope.session_id;
        if open(&envelope, session, &me, &mine, &sender.public()).is_ok() {
            accepted += 1;
        }
    }
    let header = Header {
        message_id: uuid::Uuid::from_u128(1),
        session_id: SessionId::from_uuid(uuid::Uuid::from_u128(2)),
        round: 1,
        sender: PartyId::parse("device").unwrap(),
        recipient: Recipient::Party(me.clone()),
    };
    let sealed = seal(&sender, header, Some(&mine.public()), data).expect("seal");
    let opened = open(
        &sealed,
        SessionId::from_uuid(uuid::Uuid::from_u128(2)),
        &me,
        &mine,
        &sender.public(),
    )
    .expect("a sealed envelope opens");
    assert_eq!(opened.payload.as_slice(), data);
    accepted
}

/// Every session event type × every schema version 1..=current, plus the version
/// after the current one (always refused).
pub fn session_events(data: &[u8]) -> usize {
    let mut accepted = 0;
    for event_type in session::EVENT_TYPES {
        let current = session::current_version(event_type);
        for version in 1..=current {
            accepted += usize::from(session::decode(event_type, version, data).is_ok());
        }
        assert!(session::decode(event_type, current + 1, data).is_err());
        assert!(session::decode(event_type, 0, data).is_err());
    }
    assert!(session::decode("NoSuchEvent", 1, data).is_err());
    accepted
}

/// Account, key and claim stream events (schema version 1; 0 and 2 are refused).
pub fn account_events(data: &[u8]) -> usize {
    let mut accepted = 0;
    for event_type in account::ACCOUNT_EVENT_TYPES {
        accepted += usize::from(account::decode_account(event_type, 1, data).is_ok());
        assert!(account::decode_account(event_type, 2, data).is_err());
    }
    for event_type in account::KEY_EVENT_TYPES {
        accepted += usize::from(account::decode_key(event_type, 1, data).is_ok());
        assert!(account::decode_key(event_type, 0, data).is_err());
    }
    for event_type in account::CLAIM_EVENT_TYPES {
        accepted += usize::from(account::decode_claim(event_type, 1, data).is_ok());
        assert!(account::decode_claim(event_type, 2, data).is_err());
    }
    accepted
}

/// Approval workflow events (version 1) and published domain events.
pub fn workflow_and_domain_events(data: &[u8]) -> usize {
    let mut accepted = 0;
    for event_type in approval::WORKFLOW_EVENT_TYPES {
        accepted += usize::from(approval::decode_workflow(event_type, 1, data).is_ok());
        assert!(approval::decode_workflow(event_type, 2, data).is_err());
    }
    accepted += usize::from(domain::decode(data).is_ok());
    accepted
}

fn dto<T: serde::de::DeserializeOwned, O, E>(
    data: &[u8],
    validate: impl FnOnce(T) -> Result<O, E>,
) -> usize {
    match serde_json::from_slice::<T>(data) {
        Ok(value) => 1 + usize::from(validate(value).is_ok()),
        Err(_) => 0,
    }
}

/// Every HTTP request DTO (and the DTOs parties read back) through `serde_json`, then
/// its validation into the domain type.
pub fn http_dtos(data: &[u8]) -> usize {
    use mpc_events::{IdentityKey, Signature, Threshold};
    let ok = |_| Ok::<(), ()>(());
    dto::<mpc_api::CreateSessionRequest, _, _>(data, mpc_api::NewSession::try_from)
        + dto::<mpc_api::JoinRequest, _, _>(data, ok)
        + dto::<mpc_api::ReportRequest, _, _>(data, mpc_api::Report::try_from)
        + dto(data, mpc_api::CloseRequest::into_reason)
        + dto(data, mpc_api::OpenAccountRequest::into_domain)
        + dto(data, mpc_api::AccountStatusRequest::into_domain)
        + dto(data, mpc_api::SessionTtlRequest::into_ttl)
        + dto(data, mpc_api::AccountSigningRequest::into_domain)
        + dto(data, mpc_api::CreateWorkflowRequest::into_domain)
        + dto(data, mpc_api::DecisionRequest::into_domain)
        + dto(data, mpc_api::DataSigningRequest::into_domain)
        + dto(data, mpc_api::VerifyDataRequest::into_domain)
        + dto(data, |v: mpc_api::ThresholdDto| Threshold::try_from(v))
        + dto(data, |v: mpc_api::IdentityDto| IdentityKey::try_from(&v))
        + dto(data, |v: mpc_api::KeyDto| mpc_events::KeyRef::try_from(&v))
        + dto(data, |v: mpc_api::RepairDto| {
            mpc_events::RepairSpec::try_from(&v)
        })
        + dto(data, |v: mpc_api::SignatureDto| Signature::try_from(&v))
        + dto(data, |v: mpc_api::ApprovalEvidenceDto| {
            mpc_events::ApprovalEvidence::try_from(&v)
        })
        + dto(data, |v: mpc_api::SessionViewDto| {
            mpc_events::SessionView::try_from(&v)
        })
        + dto(data, |v: mpc_api::ParticipantDto| {
            mpc_events::Participant::try_from(&v)
        })
}

/// Every target on one input.
pub fn all(data: &[u8]) -> usize {
    envelope(data)
        + session_events(data)
        + account_events(data)
        + workflow_and_domain_events(data)
        + http_dtos(data)
}
