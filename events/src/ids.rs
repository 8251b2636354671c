//! Identifiers and value objects. Each newtype rejects bad values when it is built,
//! so code that holds one never has to check it again.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// Largest number of parties a key may have.
pub const MAX_PARTIES: u8 = 20;

/// Why a value could not become one of the identifiers in this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "party id must be 1 to 64 characters of a-z, A-Z, 0-9, '.', '_' or '-', starting with a letter or digit; got {0:?}"
    )]
    PartyId(String),
    #[error("threshold t={t} of n={n} is invalid: need 2 <= t <= n <= {max}", max = MAX_PARTIES)]
    Threshold { t: u16, n: u16 },
    #[error("not a uuid: {0:?}")]
    Uuid(String),
    #[error("{what} must be {expected} bytes, got {got}")]
    Length {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("public key must be a compressed SEC1 point (prefix 02 or 03)")]
    PublicKeyPrefix,
    #[error("recovery id must be 0 or 1, got {0}")]
    RecoveryId(u8),
    #[error(
        "username must be 3 to 32 characters of a-z, 0-9, '.', '_' or '-', starting with a letter; got {0:?}"
    )]
    Username(String),
    #[error("not a valid email address: {0:?}")]
    Email(String),
    #[error("phone number must be in E.164 form: '+' and 8 to 15 digits; got {0:?}")]
    Phone(String),
}

fn fixed<const N: usize>(what: &'static str, bytes: &[u8]) -> Result<[u8; N], IdError> {
    bytes.try_into().map_err(|_| IdError::Length {
        what,
        expected: N,
        got: bytes.len(),
    })
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUIDv7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| IdError::Uuid(s.to_owned()))
            }
        }
    };
}

uuid_id!(
    /// Identifies one MPC session (keygen or signing); its stream is `session-<id>`.
    SessionId
);

uuid_id!(
    /// Identifies a user account; its stream is `account-<id>`.
    AccountId
);

uuid_id!(
    /// Identifies an approval workflow; its stream is `approval-<id>`.
    WorkflowId
);

uuid_id!(
    /// Identifies an operator credential (an API key) in the `operators-registry`
    /// stream.
    CredentialId
);

/// Identifies a threshold key: the id of the keygen session that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(SessionId);

impl KeyId {
    pub fn of_keygen(session: SessionId) -> Self {
        Self(session)
    }
    pub fn keygen_session(&self) -> SessionId {
        self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for KeyId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        s.parse().map(Self)
    }
}

/// A party's name, e.g. `device`, `server`, `recovery`, `approver-3`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartyId(String);

impl PartyId {
    pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        let ok_len = (1..=64).contains(&s.len());
        let ok_first = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok_len && ok_first && ok_chars {
            Ok(Self(s))
        } else {
            Err(IdError::PartyId(s))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PartyId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

/// `t`-of-`n`: any `t` of the `n` parties can sign; `2 <= t <= n <= 20`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Threshold {
    t: u8,
    n: u8,
}

impl Threshold {
    pub fn new(t: u16, n: u16) -> Result<Self, IdError> {
        if t < 2 || t > n || n > u16::from(MAX_PARTIES) {
            return Err(IdError::Threshold { t, n });
        }
        Ok(Self {
            t: t as u8,
            n: n as u8,
        })
    }
    pub fn t(&self) -> u8 {
        self.t
    }
    pub fn n(&self) -> u8 {
        self.n
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-of-{}", self.t, self.n)
    }
}

/// Milliseconds since the Unix epoch, UTC. Commands carry the time so that
/// `decide` stays pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }
    pub fn as_millis(&self) -> i64 {
        self.0
    }
    pub fn plus_millis(&self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }
}

/// SHA-256 digest of a join token. Only digests are recorded, never tokens.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdError> {
        fixed("token digest", bytes).map(Self)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// SHA-256 of a key's public verification data after a refresh (the group key and
/// every party's verifying share). Every honest party of a refresh computes the
/// same digest; the session completes only when all of them report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RefreshDigest([u8; 32]);

impl RefreshDigest {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdError> {
        fixed("refresh digest", bytes).map(Self)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The 32-byte hash that a signing session signs (SHA-256 of the message, or a
/// caller-supplied pre-hash such as a transaction digest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageHash([u8; 32]);

impl MessageHash {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdError> {
        fixed("message hash", bytes).map(Self)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A group public key as a compressed SEC1 point (33 bytes). The prefix is checked
/// here; that the point is on the curve is checked where curve arithmetic lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 33]);

impl PublicKey {
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdError> {
        let bytes: [u8; 33] = fixed("public key", bytes)?;
        if bytes[0] != 0x02 && bytes[0] != 0x03 {
            return Err(IdError::PublicKeyPrefix);
        }
        Ok(Self(bytes))
    }
    pub fn as_bytes(&self) -> &[u8; 33] {
        &self.0
    }
}

/// An ECDSA signature over secp256k1 with its recovery id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    r: [u8; 32],
    s: [u8; 32],
    recovery_id: u8,
}

impl Signature {
    pub fn new(r: &[u8], s: &[u8], recovery_id: u8) -> Result<Self, IdError> {
        if recovery_id > 1 {
            return Err(IdError::RecoveryId(recovery_id));
        }
        Ok(Self {
            r: fixed("signature r", r)?,
            s: fixed("signature s", s)?,
            recovery_id,
        })
    }
    pub fn r(&self) -> &[u8; 32] {
        &self.r
    }
    pub fn s(&self) -> &[u8; 32] {
        &self.s
    }
    pub fn recovery_id(&self) -> u8 {
        self.recovery_id
    }
}

/// A party's long-term identity: an Ed25519 key that signs its protocol messages
/// and an X25519 key that peers encrypt to. Only the public halves appear here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentityKey {
    signing: [u8; 32],
    encryption: [u8; 32],
}

impl IdentityKey {
    pub fn new(signing: &[u8], encryption: &[u8]) -> Result<Self, IdError> {
        Ok(Self {
            signing: fixed("identity signing key", signing)?,
            encryption: fixed("identity encryption key", encryption)?,
        })
    }
    pub fn signing(&self) -> &[u8; 32] {
        &self.signing
    }
    pub fn encryption(&self) -> &[u8; 32] {
        &self.encryption
    }
}

/// An account's login name: 3 to 32 characters of `a-z`, `0-9`, `.`, `_`, `-`,
/// starting with a letter. Stored lowercase, so `Alice` and `alice` are one name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let lower = s.trim().to_ascii_lowercase();
        let ok_len = (3..=32).contains(&lower.len());
        let ok_first = lower.chars().next().is_some_and(|c| c.is_ascii_lowercase());
        let ok_chars = lower
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
        if ok_len && ok_first && ok_chars {
            Ok(Self(lower))
        } else {
            Err(IdError::Username(s.to_owned()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, stored lowercase: one `@`, a local part of 1 to 64 printable
/// characters, a domain of dot-separated labels of `a-z`, `0-9`, `-`; at most 254
/// characters in all. (Deliverability is not this type's business.)
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let lower = s.trim().to_ascii_lowercase();
        let bad = || IdError::Email(s.to_owned());
        let (local, domain) = lower.split_once('@').ok_or_else(bad)?;
        let ok_local = (1..=64).contains(&local.len())
            && local.chars().all(|c| {
                c.is_ascii_graphic()
                    && !matches!(
                        c,
                        '@' | '"' | '(' | ')' | ',' | ':' | ';' | '<' | '>' | '[' | '\\' | ']'
                    )
            });
        let labels: Vec<&str> = domain.split('.').collect();
        let ok_domain = labels.len() >= 2
            && labels.iter().all(|l| {
                (1..=63).contains(&l.len())
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if lower.len() <= 254 && ok_local && ok_domain {
            Ok(Self(lower))
        } else {
            Err(bad())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form (`+` and 8 to 15 digits, the first not 0). Spaces,
/// dashes and dots between digits are dropped when parsing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Phone(String);

impl Phone {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let compact: String = s
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.'))
            .collect();
        let digits = compact.strip_prefix('+').unwrap_or("");
        let ok = (8..=15).contains(&digits.len())
            && digits.chars().all(|c| c.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Self(compact))
        } else {
            Err(IdError::Phone(s.to_owned()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Ed25519 signature (64 bytes) by a party's identity signing key, e.g. over an
/// approval decision.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentitySignature([u8; 64]);

impl IdentitySignature {
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }
    pub fn from_slice(bytes: &[u8]) -> Result<Self, IdError> {
        fixed("identity signature", bytes).map(Self)
    }
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for IdentitySignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentitySignature({:02x}{:02x}..)", self.0[0], self.0[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_restricted() {
        assert_eq!(Username::parse(" Alice_1 ").unwrap().as_str(), "alice_1");
        for bad in ["al", "1alice", "a b c", "ålice", &"a".repeat(33), ""] {
            assert!(Username::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn emails_need_one_at_and_a_dotted_domain() {
        assert_eq!(
            Email::parse("Alice.B+tag@Example.COM").unwrap().as_str(),
            "alice.b+tag@example.com"
        );
        for bad in [
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a@b@example.com",
            "alice@-x.com",
            "al ice@example.com",
            "alice@exa_mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn phones_are_e164() {
        assert_eq!(
            Phone::parse("+49 170 123-4567").unwrap().as_str(),
            "+491701234567"
        );
        for bad in [
            "01701234567",
            "+0123456789",
            "+12",
            "+1234567890123456",
            "+49abc12345",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn threshold_accepts_two_of_two_up_to_twenty_of_twenty() {
        assert!(Threshold::new(2, 2).is_ok());
        assert!(Threshold::new(20, 20).is_ok());
        assert_eq!(Threshold::new(2, 3).unwrap().to_string(), "2-of-3");
    }

    #[test]
    fn threshold_rejects_t_below_two_t_above_n_and_n_above_twenty() {
        for (t, n) in [(0, 3), (1, 3), (4, 3), (2, 21), (300, 300)] {
            assert_eq!(Threshold::new(t, n), Err(IdError::Threshold { t, n }));
        }
    }

    #[test]
    fn party_id_rejects_empty_long_and_odd_characters() {
        assert!(PartyId::parse("device").is_ok());
        assert!(PartyId::parse("approver-3.eu_1").is_ok());
        for bad in ["", "-lead", "has space", "ünï", &"x".repeat(65)] {
            assert!(PartyId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn public_key_needs_33_bytes_and_a_compressed_prefix() {
        let mut bytes = [7u8; 33];
        assert_eq!(PublicKey::from_slice(&bytes), Err(IdError::PublicKeyPrefix));
        bytes[0] = 2;
        assert!(PublicKey::from_slice(&bytes).is_ok());
        assert!(matches!(
            PublicKey::from_slice(&bytes[..32]),
            Err(IdError::Length { got: 32, .. })
        ));
    }

    #[test]
    fn signature_rejects_recovery_id_above_one() {
        assert_eq!(
            Signature::new(&[1; 32], &[1; 32], 2),
            Err(IdError::RecoveryId(2))
        );
    }

    #[test]
    fn session_id_round_trips_through_its_string_form() {
        let id = SessionId::new();
        assert_eq!(id.to_string().parse::<SessionId>(), Ok(id));
        assert!("nope".parse::<SessionId>().is_err());
    }
}
