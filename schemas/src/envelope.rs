//! The transport envelope: how one protocol message travels between parties.
//!
//! Wire form: one format byte (`1`) followed by the postcard encoding of
//! [`Envelope`] (length-prefixed fields, so the encoding is unambiguous).

use mpc_events::{PartyId, SessionId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::SchemaError;

/// Current envelope format byte.
pub const ENVELOPE_FORMAT: u8 = 1;
/// Largest encoded envelope accepted anywhere (4 MiB).
pub const MAX_ENVELOPE_BYTES: usize = 4 * 1024 * 1024;

/// Addressee of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// Every participant of the session except the sender.
    Broadcast,
    Party(PartyId),
}

/// One protocol message in transit. The payload is opaque to the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub message_id: Uuid,
    pub session_id: SessionId,
    pub round: u16,
    pub sender: PartyId,
    pub recipient: Recipient,
    pub payload: Vec<u8>,
}

impl Envelope {
    /// Whether `party` should receive this envelope.
    pub fn is_for(&self, party: &PartyId) -> bool {
        match &self.recipient {
            Recipient::Broadcast => &self.sender != party,
            Recipient::Party(p) => p == party,
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, SchemaError> {
        let wire = WireV1 {
            message_id: *self.message_id.as_bytes(),
            session_id: *self.session_id.as_uuid().as_bytes(),
            round: self.round,
            sender: self.sender.as_str(),
            recipient: match &self.recipient {
                Recipient::Broadcast => None,
                Recipient::Party(p) => Some(p.as_str()),
            },
            payload: &self.payload,
        };
        let mut out = vec![ENVELOPE_FORMAT];
        out = postcard::to_extend(&wire, out).map_err(|e| SchemaError::Encode(e.to_string()))?;
        if out.len() > MAX_ENVELOPE_BYTES {
            return Err(SchemaError::TooLarge {
                size: out.len(),
                max: MAX_ENVELOPE_BYTES,
            });
        }
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, SchemaError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(SchemaError::TooLarge {
                size: bytes.len(),
                max: MAX_ENVELOPE_BYTES,
            });
        }
        let (&format, body) = bytes
            .split_first()
            .ok_or_else(|| SchemaError::Decode("empty envelope".into()))?;
        if format != ENVELOPE_FORMAT {
            return Err(SchemaError::UnknownVersion {
                what: "envelope".into(),
                version: u16::from(format),
            });
        }
        let (wire, rest): (WireV1<'_>, _) =
            postcard::take_from_bytes(body).map_err(|e| SchemaError::Decode(e.to_string()))?;
        if !rest.is_empty() {
            return Err(SchemaError::Decode(format!(
                "{} trailing bytes after envelope",
                rest.len()
            )));
        }
        Ok(Self {
            message_id: Uuid::from_bytes(wire.message_id),
            session_id: SessionId::from_uuid(Uuid::from_bytes(wire.session_id)),
            round: wire.round,
            sender: PartyId::parse(wire.sender)?,
            recipient: match wire.recipient {
                None => Recipient::Broadcast,
                Some(p) => Recipient::Party(PartyId::parse(p)?),
            },
            payload: wire.payload.to_vec(),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct WireV1<'a> {
    message_id: [u8; 16],
    session_id: [u8; 16],
    round: u16,
    #[serde(borrow)]
    sender: &'a str,
    #[serde(borrow)]
    recipient: Option<&'a str>,
    #[serde(borrow, with = "serde_bytes_compat")]
    payload: &'a [u8],
}

/// postcard encodes `&[u8]` as a length-prefixed byte string through serde's
/// bytes support; this keeps it that way without another dependency.
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'de [u8], D::Error> {
        <&'de [u8] as serde::Deserialize<'de>>::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope {
            message_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            session_id: SessionId::from_uuid(Uuid::from_u128(42)),
            round: 2,
            sender: PartyId::parse("device").unwrap(),
            recipient: Recipient::Party(PartyId::parse("server").unwrap()),
            payload: vec![1, 2, 3, 4],
        }
    }

    #[test]
    fn envelope_round_trips() {
        let e = sample();
        assert_eq!(Envelope::decode(&e.encode().unwrap()).unwrap(), e);
        let b = Envelope {
            recipient: Recipient::Broadcast,
            ..sample()
        };
        assert_eq!(Envelope::decode(&b.encode().unwrap()).unwrap(), b);
    }

    #[test]
    fn envelope_v1_matches_its_fixture() {
        let fixture = include_str!("../fixtures/envelope/v1.hex").trim();
        assert_eq!(hex::encode(sample().encode().unwrap()), fixture);
        assert_eq!(
            Envelope::decode(&hex::decode(fixture).unwrap()).unwrap(),
            sample()
        );
    }

    #[test]
    fn truncated_trailing_and_unknown_format_are_errors_not_panics() {
        let bytes = sample().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(
                Envelope::decode(&bytes[..cut]).is_err(),
                "prefix {cut} decoded"
            );
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(Envelope::decode(&trailing).is_err());
        let mut other = bytes;
        other[0] = 9;
        assert!(matches!(
            Envelope::decode(&other),
            Err(SchemaError::UnknownVersion { .. })
        ));
    }

    #[test]
    fn invalid_party_ids_inside_an_envelope_are_rejected() {
        let mut e = sample().encode().unwrap();
        let pos = e.windows(6).position(|w| w == b"device").unwrap();
        e[pos] = b' ';
        assert!(matches!(Envelope::decode(&e), Err(SchemaError::Invalid(_))));
    }

    #[test]
    fn broadcasts_are_for_everyone_but_the_sender() {
        let b = Envelope {
            recipient: Recipient::Broadcast,
            ..sample()
        };
        assert!(!b.is_for(&PartyId::parse("device").unwrap()));
        assert!(b.is_for(&PartyId::parse("server").unwrap()));
        let p = sample();
        assert!(p.is_for(&PartyId::parse("server").unwrap()));
        assert!(!p.is_for(&PartyId::parse("recovery").unwrap()));
    }
}
