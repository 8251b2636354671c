//! ECDSA signature checks over secp256k1: the one verification the coordinator, the
//! gateway and every party run on a threshold signature.

use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, VerifyingKey};
use mpc_events::{MessageHash, PublicKey, Signature};

/// Whether `public_key` is a point on secp256k1 (not only a well-formed encoding).
pub fn is_on_curve(public_key: &PublicKey) -> bool {
    VerifyingKey::from_sec1_bytes(public_key.as_bytes()).is_ok()
}

/// Verifies an ECDSA signature over a 32-byte pre-hash with `k256`; also rejects
/// high-S signatures and a recovery id that does not recover `public_key`.
/// Returns false, never panics, on malformed input (a key off the curve, `r` or `s`
/// zero or not below the group order).
pub fn verify_signature(public_key: &PublicKey, hash: &MessageHash, sig: &Signature) -> bool {
    let Ok(key) = VerifyingKey::from_sec1_bytes(public_key.as_bytes()) else {
        return false;
    };
    let Ok(signature) = EcdsaSignature::from_scalars(*sig.r(), *sig.s()) else {
        return false;
    };
    if signature.normalize_s() != signature {
        return false;
    }
    if key.verify_prehash(hash.as_bytes(), &signature).is_err() {
        return false;
    }
    let Some(recovery_id) = RecoveryId::from_byte(sig.recovery_id()) else {
        return false;
    };
    VerifyingKey::recover_from_prehash(hash.as_bytes(), &signature, recovery_id)
        .is_ok_and(|recovered| recovered == key)
}

#[cfg(test)]
mod tests {
    use k256::ecdsa::SigningKey;

    use super::*;

    fn fixture() -> (PublicKey, MessageHash, Signature, SigningKey) {
        let key = SigningKey::from_slice(&[0x11; 32]).unwrap();
        let public_key =
            PublicKey::from_slice(key.verifying_key().to_sec1_point(true).as_bytes()).unwrap();
        let hash = MessageHash::from_bytes([0x22; 32]);
        let (sig, recovery_id) = key.sign_prehash_recoverable(hash.as_bytes());
        let (r, s) = sig.split_bytes();
        let signature = Signature::new(&r, &s, recovery_id.to_byte()).unwrap();
        (public_key, hash, signature, key)
    }

    #[test]
    fn a_valid_low_s_signature_with_its_recovery_id_verifies() {
        let (public_key, hash, signature, _) = fixture();
        assert!(verify_signature(&public_key, &hash, &signature));
    }

    #[test]
    fn another_message_or_key_or_recovery_id_fails() {
        let (public_key, hash, signature, _) = fixture();
        assert!(!verify_signature(
            &public_key,
            &MessageHash::from_bytes([0x23; 32]),
            &signature
        ));
        let other = SigningKey::from_slice(&[0x12; 32]).unwrap();
        let other =
            PublicKey::from_slice(other.verifying_key().to_sec1_point(true).as_bytes()).unwrap();
        assert!(!verify_signature(&other, &hash, &signature));
        let flipped =
            Signature::new(signature.r(), signature.s(), signature.recovery_id() ^ 1).unwrap();
        assert!(!verify_signature(&public_key, &hash, &flipped));
    }

    #[test]
    fn the_high_s_twin_of_a_valid_signature_fails() {
        let (public_key, hash, signature, _) = fixture();
        let low = EcdsaSignature::from_scalars(*signature.r(), *signature.s()).unwrap();
        let high_s = (-*low.s()).to_bytes();
        let twin = Signature::new(signature.r(), &high_s, signature.recovery_id() ^ 1).unwrap();
        assert!(!verify_signature(&public_key, &hash, &twin));
    }

    #[test]
    fn malformed_r_s_or_key_is_false_not_a_panic() {
        let (public_key, hash, signature, _) = fixture();
        let order_or_more = [0xff; 32];
        for (r, s) in [
            ([0; 32], *signature.s()),
            (*signature.r(), [0; 32]),
            (order_or_more, *signature.s()),
            (*signature.r(), order_or_more),
        ] {
            let bad = Signature::new(&r, &s, signature.recovery_id()).unwrap();
            assert!(!verify_signature(&public_key, &hash, &bad));
        }
        let mut off_curve = [0xff; 33];
        off_curve[0] = 0x02;
        let off_curve = PublicKey::from_slice(&off_curve).unwrap();
        assert!(!verify_signature(&off_curve, &hash, &signature));
    }
}
