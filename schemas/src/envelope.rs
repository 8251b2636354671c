//! The transport envelope: how one protocol message travels between parties.
//!
//! Wire form (format 2): one format byte (`2`) followed by the postcard encoding of
//! the header (`message_id`, `session_id`, `round`, `sender`, `recipient`), the
//! `payload` (the body) and the sender's 64-byte Ed25519 `signature`. Every field is
//! fixed-size or length-prefixed, so the encoding is unambiguous.
//!
//! The body of a point-to-point envelope is ciphertext: the RFC 9180 HPKE
//! encapsulated key (32 bytes) followed by the ChaCha20-Poly1305 ciphertext and tag,
//! sealed to the recipient's registered X25519 key. The body of a broadcast is the
//! protocol message in the clear (broadcasts are public to every participant; they
//! are signed like everything else). `mpc-engine`'s `envelope` module seals and
//! opens envelopes; this module only maps them to and from bytes.
//!
//! Format 1 (unsigned, unencrypted) was never stored durably and is not accepted.

use mpc_events::{PartyId, SessionId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DecodeError, SchemaError};

/// Current envelope format byte.
pub const ENVELOPE_FORMAT: u8 = 2;
/// Largest encoded envelope accepted anywhere (4 MiB).
pub const MAX_ENVELOPE_BYTES: usize = 4 * 1024 * 1024;
/// Length of the sender's Ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;

/// Addressee of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// Every participant of the session except the sender.
    Broadcast,
    Party(PartyId),
}

/// One protocol message in transit. The transport routes it by its header and never
/// looks inside the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub message_id: Uuid,
    pub session_id: SessionId,
    pub round: u16,
    pub sender: PartyId,
    pub recipient: Recipient,
    /// The body: ciphertext for a point-to-point message, the protocol message
    /// itself for a broadcast.
    pub payload: Vec<u8>,
    /// The sender's Ed25519 signature over the format, every header field and the
    /// body.
    pub signature: [u8; SIGNATURE_BYTES],
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
        let wire = WireV2 {
            message_id: *self.message_id.as_bytes(),
            session_id: *self.session_id.as_uuid().as_bytes(),
            round: self.round,
            sender: self.sender.as_str(),
            recipient: match &self.recipient {
                Recipient::Broadcast => None,
                Recipient::Party(p) => Some(p.as_str()),
            },
            payload: &self.payload,
            signature: &self.signature,
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
        let (&format, body) = bytes.split_first().ok_or(DecodeError::EmptyEnvelope)?;
        if format != ENVELOPE_FORMAT {
            return Err(SchemaError::UnknownVersion {
                what: "envelope".into(),
                version: u16::from(format),
            });
        }
        let (wire, rest): (WireV2<'_>, _) =
            postcard::take_from_bytes(body).map_err(DecodeError::Postcard)?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes(rest.len()).into());
        }
        let signature = wire
            .signature
            .try_into()
            .map_err(|_| DecodeError::SignatureLength {
                expected: SIGNATURE_BYTES,
                got: wire.signature.len(),
            })?;
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
            signature,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct WireV2<'a> {
    message_id: [u8; 16],
    session_id: [u8; 16],
    round: u16,
    #[serde(borrow)]
    sender: &'a str,
    #[serde(borrow)]
    recipient: Option<&'a str>,
    #[serde(borrow, with = "serde_bytes_compat")]
    payload: &'a [u8],
    #[serde(borrow, with = "serde_bytes_compat")]
    signature: &'a [u8],
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
            signature: std::array::from_fn(|i| i as u8),
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
    fn envelope_v2_matches_its_fixture() {
        let fixture = include_str!("../fixtures/envelope/v2.hex").trim();
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
    fn format_1_envelopes_are_an_unknown_version() {
        // A format-1 envelope (unsigned): format byte, ids, round, sender, recipient,
        // payload.
        let mut v1 = vec![1];
        v1.extend_from_slice(&[0xab; 16]);
        v1.extend_from_slice(&[0xcd; 16]);
        v1.extend_from_slice(&[2, 6]);
        v1.extend_from_slice(b"device");
        v1.extend_from_slice(&[1, 6]);
        v1.extend_from_slice(b"server");
        v1.extend_from_slice(&[4, 1, 2, 3, 4]);
        match Envelope::decode(&v1) {
            Err(SchemaError::UnknownVersion { what, version }) => {
                assert_eq!((what.as_str(), version), ("envelope", 1));
            }
            other => panic!("expected UnknownVersion, got {other:?}"),
        }
    }

    #[test]
    fn a_signature_of_another_length_is_rejected() {
        let bytes = sample().encode().unwrap();
        let sig_len_at = bytes.len() - SIGNATURE_BYTES - 1;
        assert_eq!(usize::from(bytes[sig_len_at]), SIGNATURE_BYTES);
        for len in [0_u8, 63, 65] {
            let mut other = bytes[..sig_len_at].to_vec();
            other.push(len);
            other.extend(std::iter::repeat_n(7, usize::from(len)));
            assert!(
                matches!(Envelope::decode(&other), Err(SchemaError::Decode(_))),
                "a {len}-byte signature decoded"
            );
        }
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
