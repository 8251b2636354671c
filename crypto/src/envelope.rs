//! End-to-end envelope crypto: every protocol message is signed by its sender's
//! identity key and every point-to-point message is encrypted to its recipient, so
//! the coordinator and the transport only ever carry signed ciphertext (broadcasts
//! are signed plaintext: they are public to every participant).
//!
//! - Signature: Ed25519 (`ed25519-dalek`, strict verification) over a length-prefixed
//!   transcript of a domain tag, the envelope format, every header field (message id,
//!   session id, round, sender, recipient) and the body.
//! - Point-to-point encryption: HPKE (RFC 9180, crate `hpke`), mode Base,
//!   DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305, to the recipient's
//!   registered X25519 key. The HPKE `info` is a length-prefixed transcript of a
//!   domain tag, the format, every header field and the recipient's encryption key,
//!   so a ciphertext opens only in the session, round, direction and message it was
//!   made for. The body is the encapsulated key (32 bytes) followed by the
//!   ciphertext and its 16-byte tag.
//!
//! [`open`] checks, in this order: the signature, the session, that the sender is
//! not the receiver, the recipient, then decrypts. Whether the sender is a
//! participant (and so which key to verify with) is the caller's lookup;
//! [`SeenMessages`] rejects replays within one run.

use std::collections::HashSet;
use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use mpc_events::{IdentityKey, PartyId, SessionId};
use mpc_schemas::envelope::{ENVELOPE_FORMAT, SIGNATURE_BYTES};
use mpc_schemas::{Envelope, Recipient};
use uuid::Uuid;
use zeroize::Zeroizing;

type Kem = X25519HkdfSha256;
type EncryptionSecret = <Kem as hpke::Kem>::PrivateKey;
type EncryptionPublic = <Kem as hpke::Kem>::PublicKey;
type EncappedKey = <Kem as hpke::Kem>::EncappedKey;

const SIGNATURE_TAG: &[u8] = b"mpc-platform/envelope/signature/v2";
const HPKE_INFO_TAG: &[u8] = b"mpc-platform/envelope/p2p/v2";
/// Length of the HPKE encapsulated key that starts a point-to-point body.
const ENCAPPED_KEY_BYTES: usize = 32;
/// Length of the ChaCha20-Poly1305 tag that ends a point-to-point body.
const AEAD_TAG_BYTES: usize = 16;
/// How many bytes encryption adds to a point-to-point body.
pub const P2P_OVERHEAD: usize = ENCAPPED_KEY_BYTES + AEAD_TAG_BYTES;

const IDENTITY_SECRET_FORMAT: u8 = 1;
const IDENTITY_SECRET_BYTES: usize = 1 + 32 + 32;

/// Why an envelope could not be sealed, or was rejected on arrival.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("sender {0} is not a participant of the session")]
    UnknownSender(PartyId),
    #[error("signature does not verify under the sender's identity key")]
    BadSignature,
    #[error("envelope belongs to session {actual}, not {expected}")]
    WrongSession {
        expected: SessionId,
        actual: SessionId,
    },
    #[error("envelope claims to come from this party")]
    FromSelf,
    #[error("envelope is addressed to {0}, not to this party")]
    WrongRecipient(PartyId),
    #[error("message {0} was already received in this run")]
    Replayed(Uuid),
    #[error("run already received the most messages one run may ({0})")]
    TooManyMessages(usize),
    #[error("body cannot be decrypted")]
    Undecryptable,
    #[error("cannot encrypt to the recipient's key")]
    Encrypt,
    #[error("a point-to-point message needs the recipient's key, a broadcast none")]
    RecipientKeyMismatch,
    #[error("identity secret is malformed")]
    MalformedIdentity,
}

/// A party's long-term identity: an Ed25519 key that signs its protocol messages
/// and an X25519 key that peers encrypt to. Secret halves are zeroized on drop and
/// never printed.
pub struct PartyIdentity {
    signing: SigningKey,
    encryption: EncryptionSecret,
}

impl PartyIdentity {
    /// Fresh keys from the operating system's random source.
    pub fn generate() -> Self {
        let signing_seed = Zeroizing::new(rand::random::<[u8; 32]>());
        let (encryption, _) = Kem::gen_keypair();
        Self {
            signing: SigningKey::from_bytes(&signing_seed),
            encryption,
        }
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The public halves, as registered with sessions.
    pub fn public(&self) -> IdentityKey {
        let signing = self.signing.verifying_key().to_bytes();
        let encryption = Kem::sk_to_pk(&self.encryption).to_bytes();
        IdentityKey::new(&signing, &encryption)
            .unwrap_or_else(|_| unreachable!("both keys are 32 bytes"))
    }

    /// The secret keys as bytes, to keep in a vault: a format byte, the Ed25519
    /// seed and the X25519 secret (65 bytes). Treat them as the keys themselves.
    pub fn to_secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(IDENTITY_SECRET_BYTES));
        out.push(IDENTITY_SECRET_FORMAT);
        out.extend_from_slice(Zeroizing::new(self.signing.to_bytes()).as_slice());
        out.extend_from_slice(Zeroizing::new(self.encryption.to_bytes()).as_slice());
        out
    }

    /// Reads what [`PartyIdentity::to_secret_bytes`] wrote.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let [format, keys @ ..] = bytes else {
            return Err(EnvelopeError::MalformedIdentity);
        };
        if *format != IDENTITY_SECRET_FORMAT || keys.len() != 64 {
            return Err(EnvelopeError::MalformedIdentity);
        }
        let (signing, encryption) = keys.split_at(32);
        let signing_seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            signing
                .try_into()
                .map_err(|_| EnvelopeError::MalformedIdentity)?,
        );
        Ok(Self {
            signing: SigningKey::from_bytes(&signing_seed),
            encryption: EncryptionSecret::from_bytes(encryption)
                .map_err(|_| EnvelopeError::MalformedIdentity)?,
        })
    }
}

impl fmt::Debug for PartyIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartyIdentity")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

/// Everything about an envelope except its body and signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub message_id: Uuid,
    pub session_id: SessionId,
    pub round: u16,
    pub sender: PartyId,
    pub recipient: Recipient,
}

/// A verified, decrypted envelope.
pub struct Opened {
    pub message_id: Uuid,
    pub round: u16,
    pub sender: PartyId,
    /// True for a broadcast, false for a message to this party alone.
    pub broadcast: bool,
    /// The protocol message; zeroized when dropped.
    pub payload: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("message_id", &self.message_id)
            .field("round", &self.round)
            .field("sender", &self.sender)
            .field("broadcast", &self.broadcast)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Signs an envelope as `identity`; a point-to-point one (`header.recipient` is a
/// party) is first encrypted to `recipient_key`, which must then be given (and must
/// not be for a broadcast).
pub fn seal(
    identity: &PartyIdentity,
    header: Header,
    recipient_key: Option<&IdentityKey>,
    plaintext: &[u8],
) -> Result<Envelope, EnvelopeError> {
    let mut envelope = Envelope {
        message_id: header.message_id,
        session_id: header.session_id,
        round: header.round,
        sender: header.sender,
        recipient: header.recipient,
        payload: Vec::new(),
        signature: [0; SIGNATURE_BYTES],
    };
    envelope.payload = match (&envelope.recipient, recipient_key) {
        (Recipient::Broadcast, None) => plaintext.to_vec(),
        (Recipient::Party(_), Some(key)) => encrypt(&envelope, key, plaintext)?,
        _ => return Err(EnvelopeError::RecipientKeyMismatch),
    };
    envelope.signature = identity.signing.sign(&signed_bytes(&envelope)).to_bytes();
    Ok(envelope)
}

/// Verifies and decrypts an envelope that arrived for `me` in `expected_session`.
/// `sender_key` is the identity the session registered for `envelope.sender`; the
/// caller looks it up (and rejects senders that are not participants).
pub fn open(
    envelope: &Envelope,
    expected_session: SessionId,
    me: &PartyId,
    my_identity: &PartyIdentity,
    sender_key: &IdentityKey,
) -> Result<Opened, EnvelopeError> {
    let verifying =
        VerifyingKey::from_bytes(sender_key.signing()).map_err(|_| EnvelopeError::BadSignature)?;
    let signature = ed25519_dalek::Signature::from_bytes(&envelope.signature);
    verifying
        .verify_strict(&signed_bytes(envelope), &signature)
        .map_err(|_| EnvelopeError::BadSignature)?;
    if envelope.session_id != expected_session {
        return Err(EnvelopeError::WrongSession {
            expected: expected_session,
            actual: envelope.session_id,
        });
    }
    if &envelope.sender == me {
        return Err(EnvelopeError::FromSelf);
    }
    let payload = match &envelope.recipient {
        Recipient::Broadcast => Zeroizing::new(envelope.payload.clone()),
        Recipient::Party(p) if p == me => decrypt(envelope, my_identity)?,
        Recipient::Party(p) => return Err(EnvelopeError::WrongRecipient(p.clone())),
    };
    Ok(Opened {
        message_id: envelope.message_id,
        round: envelope.round,
        sender: envelope.sender.clone(),
        broadcast: envelope.recipient == Recipient::Broadcast,
        payload,
    })
}

/// The message ids one run has accepted, to reject replays. Bounded: a run that
/// receives more than `capacity` messages rejects the rest (only messages signed by
/// a participant count, and an honest run sends far fewer).
#[derive(Debug)]
pub struct SeenMessages {
    ids: HashSet<Uuid>,
    capacity: usize,
}

impl SeenMessages {
    /// Room for every message of a 20-party run with many rounds.
    pub const DEFAULT_CAPACITY: usize = 16_384;

    pub fn new(capacity: usize) -> Self {
        Self {
            ids: HashSet::new(),
            capacity,
        }
    }

    /// Records `id`; fails if it was seen before or the run is full.
    pub fn admit(&mut self, id: Uuid) -> Result<(), EnvelopeError> {
        if self.ids.contains(&id) {
            return Err(EnvelopeError::Replayed(id));
        }
        if self.ids.len() >= self.capacity {
            return Err(EnvelopeError::TooManyMessages(self.capacity));
        }
        self.ids.insert(id);
        Ok(())
    }
}

impl Default for SeenMessages {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

/// Unambiguous concatenation: each field preceded by its length (u64, big-endian).
struct Transcript(Vec<u8>);

impl Transcript {
    fn of_header(tag: &[u8], envelope: &Envelope) -> Self {
        let mut t = Self(Vec::with_capacity(256 + envelope.payload.len()));
        t.put(tag);
        t.put(&[ENVELOPE_FORMAT]);
        t.put(envelope.message_id.as_bytes());
        t.put(envelope.session_id.as_uuid().as_bytes());
        t.put(&envelope.round.to_be_bytes());
        t.put(envelope.sender.as_str().as_bytes());
        match &envelope.recipient {
            Recipient::Broadcast => t.put(&[0]),
            Recipient::Party(p) => {
                t.put(&[1]);
                t.put(p.as_str().as_bytes());
            }
        }
        t
    }

    fn put(&mut self, bytes: &[u8]) {
        self.0
            .extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        self.0.extend_from_slice(bytes);
    }
}

/// What the sender signs: the header and the body (ciphertext for point-to-point).
fn signed_bytes(envelope: &Envelope) -> Vec<u8> {
    let mut t = Transcript::of_header(SIGNATURE_TAG, envelope);
    t.put(&envelope.payload);
    t.0
}

/// The HPKE `info`: the header and the recipient's encryption key.
fn hpke_info(envelope: &Envelope, recipient_encryption_key: &[u8; 32]) -> Vec<u8> {
    let mut t = Transcript::of_header(HPKE_INFO_TAG, envelope);
    t.put(recipient_encryption_key);
    t.0
}

fn encrypt(
    envelope: &Envelope,
    recipient: &IdentityKey,
    plaintext: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    let public =
        EncryptionPublic::from_bytes(recipient.encryption()).map_err(|_| EnvelopeError::Encrypt)?;
    let info = hpke_info(envelope, recipient.encryption());
    let (encapped, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &public,
        &info,
        plaintext,
        &[],
    )
    .map_err(|_| EnvelopeError::Encrypt)?;
    let mut body = Vec::with_capacity(ENCAPPED_KEY_BYTES + ciphertext.len());
    body.extend_from_slice(&encapped.to_bytes());
    body.extend_from_slice(&ciphertext);
    Ok(body)
}

fn decrypt(envelope: &Envelope, me: &PartyIdentity) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    if envelope.payload.len() < P2P_OVERHEAD {
        return Err(EnvelopeError::Undecryptable);
    }
    let (encapped, ciphertext) = envelope.payload.split_at(ENCAPPED_KEY_BYTES);
    let encapped = EncappedKey::from_bytes(encapped).map_err(|_| EnvelopeError::Undecryptable)?;
    let my_key = Kem::sk_to_pk(&me.encryption).to_bytes();
    let my_key: [u8; 32] = my_key.into();
    let info = hpke_info(envelope, &my_key);
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &me.encryption,
        &encapped,
        &info,
        ciphertext,
        &[],
    )
    .map(Zeroizing::new)
    .map_err(|_| EnvelopeError::Undecryptable)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Party {
        id: PartyId,
        identity: PartyIdentity,
    }

    fn party(name: &str) -> Party {
        Party {
            id: PartyId::parse(name).unwrap(),
            identity: PartyIdentity::generate(),
        }
    }

    fn session() -> SessionId {
        SessionId::from_uuid(Uuid::from_u128(7))
    }

    fn header(from: &Party, to: Option<&Party>) -> Header {
        Header {
            message_id: Uuid::now_v7(),
            session_id: session(),
            round: 3,
            sender: from.id.clone(),
            recipient: to.map_or(Recipient::Broadcast, |p| Recipient::Party(p.id.clone())),
        }
    }

    const SECRET: &[u8] = b"a secret point-to-point protocol message";

    fn p2p(from: &Party, to: &Party) -> Envelope {
        seal(
            &from.identity,
            header(from, Some(to)),
            Some(&to.identity.public()),
            SECRET,
        )
        .unwrap()
    }

    fn open_as(to: &Party, from: &Party, envelope: &Envelope) -> Result<Opened, EnvelopeError> {
        open(
            envelope,
            session(),
            &to.id,
            &to.identity,
            &from.identity.public(),
        )
    }

    /// Re-signs a modified envelope as `from`, as a participant could.
    fn resign(from: &Party, mut envelope: Envelope) -> Envelope {
        envelope.signature = from
            .identity
            .signing
            .sign(&signed_bytes(&envelope))
            .to_bytes();
        envelope
    }

    #[test]
    fn a_point_to_point_envelope_opens_for_its_recipient_only_as_ciphertext_in_transit() {
        let (a, b) = (party("device"), party("server"));
        let envelope = p2p(&a, &b);
        assert_eq!(envelope.payload.len(), SECRET.len() + P2P_OVERHEAD);
        assert!(!envelope.payload.windows(SECRET.len()).any(|w| w == SECRET));
        let opened = open_as(&b, &a, &envelope).unwrap();
        assert_eq!(opened.payload.as_slice(), SECRET);
        assert_eq!(
            (
                opened.message_id,
                opened.round,
                &opened.sender,
                opened.broadcast
            ),
            (envelope.message_id, 3, &a.id, false)
        );
        let again = p2p(&a, &b);
        assert_ne!(again.payload, envelope.payload, "a fresh key per message");
    }

    #[test]
    fn a_broadcast_is_signed_plaintext_that_every_other_party_opens() {
        let (a, b, c) = (party("device"), party("server"), party("recovery"));
        let envelope = seal(&a.identity, header(&a, None), None, b"public").unwrap();
        assert_eq!(envelope.payload, b"public");
        for to in [&b, &c] {
            let opened = open_as(to, &a, &envelope).unwrap();
            assert!(opened.broadcast);
            assert_eq!(opened.payload.as_slice(), b"public");
        }
    }

    #[test]
    fn each_tampered_header_field_breaks_the_signature() {
        let (a, b, c) = (party("device"), party("server"), party("recovery"));
        let original = p2p(&a, &b);
        let tampered: [(&str, Envelope); 6] = [
            (
                "session",
                Envelope {
                    session_id: SessionId::from_uuid(Uuid::from_u128(8)),
                    ..original.clone()
                },
            ),
            (
                "round",
                Envelope {
                    round: 4,
                    ..original.clone()
                },
            ),
            (
                "sender",
                Envelope {
                    sender: c.id.clone(),
                    ..original.clone()
                },
            ),
            (
                "recipient",
                Envelope {
                    recipient: Recipient::Broadcast,
                    ..original.clone()
                },
            ),
            (
                "message id",
                Envelope {
                    message_id: Uuid::now_v7(),
                    ..original.clone()
                },
            ),
            ("signature", {
                let mut e = original.clone();
                e.signature[10] ^= 1;
                e
            }),
        ];
        for (field, envelope) in tampered {
            let expected = envelope.session_id;
            assert_eq!(
                open(
                    &envelope,
                    expected,
                    &b.id,
                    &b.identity,
                    &a.identity.public()
                )
                .unwrap_err(),
                EnvelopeError::BadSignature,
                "tampered {field}"
            );
        }
        let claimed_by_c = Envelope {
            sender: c.id.clone(),
            ..original.clone()
        };
        assert_eq!(
            open_as(&b, &c, &claimed_by_c).unwrap_err(),
            EnvelopeError::BadSignature
        );
        let to_c = Envelope {
            recipient: Recipient::Party(c.id.clone()),
            ..original
        };
        assert_eq!(
            open_as(&c, &a, &to_c).unwrap_err(),
            EnvelopeError::BadSignature
        );
    }

    #[test]
    fn a_signature_by_anyone_but_the_sender_is_rejected() {
        let (a, b, mallory) = (party("device"), party("server"), party("mallory"));
        let forged = resign(&mallory, p2p(&a, &b));
        assert_eq!(
            open_as(&b, &a, &forged).unwrap_err(),
            EnvelopeError::BadSignature
        );
    }

    #[test]
    fn tampered_ciphertext_fails_the_signature_and_if_resigned_the_aead() {
        let (a, b) = (party("device"), party("server"));
        for at in [0, ENCAPPED_KEY_BYTES + 1, SECRET.len() + P2P_OVERHEAD - 1] {
            let mut envelope = p2p(&a, &b);
            envelope.payload[at] ^= 0x40;
            assert_eq!(
                open_as(&b, &a, &envelope).unwrap_err(),
                EnvelopeError::BadSignature
            );
            assert_eq!(
                open_as(&b, &a, &resign(&a, envelope)).unwrap_err(),
                EnvelopeError::Undecryptable,
                "byte {at}"
            );
        }
        for len in [0, ENCAPPED_KEY_BYTES, P2P_OVERHEAD - 1] {
            let mut envelope = p2p(&a, &b);
            envelope.payload.truncate(len);
            assert_eq!(
                open_as(&b, &a, &resign(&a, envelope)).unwrap_err(),
                EnvelopeError::Undecryptable
            );
        }
    }

    #[test]
    fn a_ciphertext_moved_to_another_round_or_message_does_not_decrypt_even_if_resigned() {
        let (a, b) = (party("device"), party("server"));
        let original = p2p(&a, &b);
        for moved in [
            Envelope {
                round: 9,
                ..original.clone()
            },
            Envelope {
                message_id: Uuid::now_v7(),
                ..original.clone()
            },
        ] {
            assert_eq!(
                open_as(&b, &a, &resign(&a, moved)).unwrap_err(),
                EnvelopeError::Undecryptable
            );
        }
    }

    #[test]
    fn a_message_encrypted_to_another_key_does_not_decrypt() {
        let (a, b, c) = (party("device"), party("server"), party("recovery"));
        let envelope = seal(
            &a.identity,
            header(&a, Some(&b)),
            Some(&c.identity.public()),
            SECRET,
        )
        .unwrap();
        assert_eq!(
            open_as(&b, &a, &envelope).unwrap_err(),
            EnvelopeError::Undecryptable
        );
    }

    #[test]
    fn another_partys_envelope_and_our_own_are_rejected() {
        let (a, b, c) = (party("device"), party("server"), party("recovery"));
        let to_b = p2p(&a, &b);
        assert_eq!(
            open_as(&c, &a, &to_b).unwrap_err(),
            EnvelopeError::WrongRecipient(b.id.clone())
        );
        let from_b_to_b = p2p(&b, &b);
        assert_eq!(
            open_as(&b, &b, &from_b_to_b).unwrap_err(),
            EnvelopeError::FromSelf
        );
        let own_broadcast = seal(&b.identity, header(&b, None), None, b"x").unwrap();
        assert_eq!(
            open_as(&b, &b, &own_broadcast).unwrap_err(),
            EnvelopeError::FromSelf
        );
    }

    #[test]
    fn a_valid_envelope_of_another_session_is_rejected() {
        let (a, b) = (party("device"), party("server"));
        let envelope = p2p(&a, &b);
        let other = SessionId::from_uuid(Uuid::from_u128(99));
        assert_eq!(
            open(&envelope, other, &b.id, &b.identity, &a.identity.public()).unwrap_err(),
            EnvelopeError::WrongSession {
                expected: other,
                actual: session()
            }
        );
    }

    #[test]
    fn replays_within_a_run_are_rejected_and_the_set_is_bounded() {
        let mut seen = SeenMessages::new(2);
        let (one, two, three) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        seen.admit(one).unwrap();
        assert_eq!(seen.admit(one), Err(EnvelopeError::Replayed(one)));
        seen.admit(two).unwrap();
        assert_eq!(seen.admit(three), Err(EnvelopeError::TooManyMessages(2)));
        assert_eq!(seen.admit(two), Err(EnvelopeError::Replayed(two)));
    }

    #[test]
    fn the_recipient_key_must_match_the_kind_of_message_and_be_usable() {
        let (a, b) = (party("device"), party("server"));
        let key = b.identity.public();
        assert_eq!(
            seal(&a.identity, header(&a, None), Some(&key), b"x").unwrap_err(),
            EnvelopeError::RecipientKeyMismatch
        );
        assert_eq!(
            seal(&a.identity, header(&a, Some(&b)), None, b"x").unwrap_err(),
            EnvelopeError::RecipientKeyMismatch
        );
        let low_order = IdentityKey::new(key.signing(), &[0; 32]).unwrap();
        assert_eq!(
            seal(&a.identity, header(&a, Some(&b)), Some(&low_order), b"x").unwrap_err(),
            EnvelopeError::Encrypt
        );
    }

    #[test]
    fn a_malformed_sender_key_is_a_bad_signature_not_a_panic() {
        let (a, b) = (party("device"), party("server"));
        let envelope = p2p(&a, &b);
        let mut not_a_point = [0xff; 32];
        not_a_point[31] = 0x7f;
        let bogus = IdentityKey::new(&not_a_point, a.identity.public().encryption()).unwrap();
        assert_eq!(
            open(&envelope, session(), &b.id, &b.identity, &bogus).unwrap_err(),
            EnvelopeError::BadSignature
        );
    }

    #[test]
    fn identity_secret_bytes_round_trip_and_malformed_ones_are_rejected() {
        let a = party("device");
        let bytes = a.identity.to_secret_bytes();
        assert_eq!(bytes.len(), IDENTITY_SECRET_BYTES);
        let restored = PartyIdentity::from_secret_bytes(&bytes).unwrap();
        assert_eq!(restored.public(), a.identity.public());
        let b = party("server");
        let envelope = p2p(
            &b,
            &Party {
                id: a.id.clone(),
                identity: restored,
            },
        );
        assert_eq!(
            open_as(&a, &b, &envelope).unwrap().payload.as_slice(),
            SECRET
        );
        let mut other_format = bytes.to_vec();
        other_format[0] = 2;
        for bad in [
            &[][..],
            &bytes[..64],
            &other_format,
            &[bytes.as_slice(), &[0]].concat(),
        ] {
            assert_eq!(
                PartyIdentity::from_secret_bytes(bad).unwrap_err(),
                EnvelopeError::MalformedIdentity
            );
        }
    }

    #[test]
    fn two_identities_differ_and_debug_shows_no_secret() {
        let (a, b) = (PartyIdentity::generate(), PartyIdentity::generate());
        assert_ne!(a.public(), b.public());
        let text = format!("{a:?}");
        assert!(text.contains("PartyIdentity"));
        let secret = a.to_secret_bytes();
        for key in [&secret[1..33], &secret[33..]] {
            assert!(!text.contains(&format!("{key:?}")));
            assert!(!text.contains(&format!("{:?}", &key[..8])));
            assert!(!text.contains(&hex::encode(key)));
        }
        let opened = Opened {
            message_id: Uuid::nil(),
            round: 1,
            sender: PartyId::parse("device").unwrap(),
            broadcast: false,
            payload: Zeroizing::new(b"secret-bytes".to_vec()),
        };
        assert!(!format!("{opened:?}").contains("115, 101, 99"));
    }
}
