//! A party's long-term identity keys.

use std::fmt;

use mpc_events::IdentityKey;
use zeroize::Zeroizing;

/// An Ed25519 key that signs the party's protocol messages and an X25519 key that
/// peers encrypt to. Secret halves are zeroized on drop and never printed.
pub struct PartyIdentity {
    signing: ed25519_dalek::SigningKey,
    encryption: x25519_dalek::StaticSecret,
}

impl PartyIdentity {
    /// Fresh keys from the operating system's random source.
    pub fn generate() -> Self {
        let signing_seed = Zeroizing::new(rand::random::<[u8; 32]>());
        let encryption_seed = Zeroizing::new(rand::random::<[u8; 32]>());
        Self {
            signing: ed25519_dalek::SigningKey::from_bytes(&signing_seed),
            encryption: x25519_dalek::StaticSecret::from(*encryption_seed),
        }
    }

    /// The public halves, as registered with sessions.
    pub fn public(&self) -> IdentityKey {
        let signing = self.signing.verifying_key().to_bytes();
        let encryption = x25519_dalek::PublicKey::from(&self.encryption).to_bytes();
        IdentityKey::new(&signing, &encryption)
            .unwrap_or_else(|_| unreachable!("both keys are 32 bytes"))
    }
}

impl fmt::Debug for PartyIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartyIdentity")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_identities_differ_and_debug_shows_no_secret() {
        let a = PartyIdentity::generate();
        let b = PartyIdentity::generate();
        assert_ne!(a.public(), b.public());
        let text = format!("{a:?}");
        assert!(text.contains("PartyIdentity"));
        for secret in [a.signing.to_bytes(), a.encryption.to_bytes()] {
            assert!(!text.contains(&format!("{secret:?}")));
            assert!(!text.contains(&format!("{:?}", &secret[..8])));
        }
    }
}
