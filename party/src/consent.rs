//! What a holder signs outside a session: its decision on an approval workflow and
//! its authorization of another holder's repair. Both are signed over the key as
//! this holder's own vault holds it (id, group public key, current share
//! generation, pinned roster), never over the coordinator's description of it, and
//! only when a person asks (a command, an app's button): a node never signs one on
//! its own.

use mpc_crypto::PartyIdentity;
use mpc_events::{
    Decision, IdentityKey, IdentitySignature, KeyId, KeyRef, MessageHash, PartyId, SignedApproval,
    Threshold, WorkflowId,
};
use mpc_vault::{ShareRecord, ShareVault, VaultError};
use sha2::{Digest, Sha256};

use crate::node::PartyError;
use crate::roster::RosterError;

/// A key holder: its vault, party id and identity keys.
pub struct Holder<'a> {
    vault: &'a dyn ShareVault,
    id: &'a PartyId,
    signer: &'a PartyIdentity,
}

impl<'a> Holder<'a> {
    pub fn new(vault: &'a dyn ShareVault, id: &'a PartyId, signer: &'a PartyIdentity) -> Self {
        Self { vault, id, signer }
    }

    /// Authorizes rebuilding `target`'s share of key `key_id` for the new device
    /// whose identity is `identity`, from the share generation this holder holds
    /// now. Target and new identity are checked against the roster it pinned: it
    /// authorizes only the repair of another genuine holder, for an identity no
    /// holder uses. Needs no coordinator.
    pub fn authorize_recovery(
        &self,
        key_id: KeyId,
        target: &PartyId,
        identity: &IdentityKey,
    ) -> Result<SignedApproval, PartyError> {
        let record = self.vault.get(self.id, &key_id)?;
        let pinned = record.roster.as_ref().ok_or(RosterError::Missing(key_id))?;
        if target == self.id || !pinned.iter().any(|p| p.party_id == *target) {
            return Err(RosterError::Participant(target.clone()).into());
        }
        if pinned.iter().any(|p| p.identity == *identity) {
            return Err(PartyError::RepairTargetMismatch);
        }
        Ok(SignedApproval {
            approver: self.id.clone(),
            signature: self
                .signer
                .authorize_recovery(key_id, record.version, target, identity),
        })
    }

    /// Signs `decision` on workflow `workflow_id` to sign `payload` with key
    /// `key_id`, over the payload this holder was shown and the key as its vault
    /// holds it: the decision verifies for no other payload, key or generation.
    pub fn decide(
        &self,
        workflow_id: WorkflowId,
        key_id: KeyId,
        payload: &[u8],
        decision: Decision,
    ) -> Result<IdentitySignature, PartyError> {
        let record = self.vault.get(self.id, &key_id)?;
        let key = held_key(&record)?;
        let payload_hash = MessageHash::from_bytes(Sha256::digest(payload).into());
        Ok(self
            .signer
            .sign_decision(workflow_id, &key, &payload_hash, decision))
    }
}

/// The key a share record holds, as this holder verified it.
fn held_key(record: &ShareRecord) -> Result<KeyRef, PartyError> {
    let roster = record
        .roster
        .clone()
        .ok_or(RosterError::Missing(record.key_id))?;
    let threshold = Threshold::new(
        u16::from(record.share.threshold),
        u16::from(record.share.parties),
    )
    .map_err(|e| VaultError::Malformed(format!("share threshold: {e}")))?;
    Ok(KeyRef {
        key_id: record.key_id,
        public_key: record.share.public_key,
        threshold,
        parties: roster,
        epoch: record.version,
    })
}
