//! DKLs23 adapter (crate `dkls23`, pinned; not audited).
//!
//! Keygen is the library's four-phase DKG with three communication rounds:
//!
//! | round | broadcast (`To::All`)                                   | point-to-point (`To::One(j)`)                          |
//! |-------|---------------------------------------------------------|--------------------------------------------------------|
//! | 1     | —                                                       | polynomial fragment `p_i(j)` (a scalar)                |
//! | 2     | proof commitment, chain-code commitment                 | zero-share seed commitment                             |
//! | 3     | echo of round 2, DLog proof, chain-code decommitment    | zero-share seed decommitment, multiplication (OT) init |
//!
//! The proof of the party's key point is committed in round 2 and revealed in
//! round 3, after every commitment is in (Protocol 9.1 of ePrint 2023/602). The
//! round-3 echo is a digest of every party's round-2 broadcast; a party that saw
//! different round-2 broadcasts than a peer aborts, so all honest parties finish
//! with the same view (round-3 broadcasts are bound by the round-2 commitments).
//!
//! Signing is Protocol 3.6 of DKLs23 with three rounds: two point-to-point rounds
//! (multiplication), then one broadcast of `(u, w)`. The assembled signature is
//! low-S, carries its recovery id, and is verified with `k256` before it is
//! returned.
//!
//! A complete refresh re-randomizes every share of a key among all `n` parties
//! (the library's complete refresh: a DKG whose polynomials have a zero constant
//! term), optionally rebuilding a lost share first (the library's repair). It has
//! four rounds:
//!
//! | round | broadcast (`To::All`)       | point-to-point (`To::One(j)`)                                        |
//! |-------|-----------------------------|----------------------------------------------------------------------|
//! | 1     | —                           | repair only, helper → target: masked repair term, public key package |
//! | 2     | —                           | refresh polynomial fragment `p_i(j)` (a scalar)                      |
//! | 3     | proof commitment            | zero-share seed commitment                                           |
//! | 4     | echo of round 3, DLog proof | zero-share seed decommitment, multiplication (OT) init               |
//!
//! Round 1 is empty for everyone in a plain refresh, and for everyone but the
//! target in a repair. The target checks that all helpers sent the same public key
//! package, for the key it expects, and assembles the terms into a *hollow* share
//! (correct secret, no multiplication state) that the rest of the run completes.
//! Rounds 2 to 4 mirror keygen's commit-then-reveal: the round-4 echo is a digest
//! of every party's round-3 broadcast, and a mismatch aborts. Each party then
//! updates the public key package with every party's proof and reports a digest of
//! it ([`crate::Refreshed`]), so all parties can be checked to hold the same view.
//!
//! Each state machine has its own module ([`keygen`], [`sign`], [`refresh`]);
//! keygen and refresh share their fragment, commit and reveal rounds
//! ([`commit_reveal`]). Every payload is postcard. A share's secret is the postcard encoding of the
//! library's `Party` together with the key's `PublicKeyPackage` (the group key and
//! every party's verifying share), which a later repair needs.

use dkls23::protocols::{
    Abort, AbortKind, AbortReason, PartiesMessage, Party, PartyIndex as DklsIndex, PublicKeyPackage,
};
use k256::elliptic_curve::sec1::ToSec1Point;
use k256::{ProjectivePoint, Secp256k1};
use mpc_events::Signature;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::port::{
    EngineError, KeyShare, KeygenParams, Outgoing, ParameterError, PartyIndex, Protocol,
    RefreshParams, Refreshed, ShareSlot, SignParams, ThresholdEngine, To,
};

mod commit_reveal;
mod keygen;
mod refresh;
mod sign;

type Curve = Secp256k1;

const ENGINE: &str = "dkls23";

/// The DKLs23 engine. Stateless: every run owns its data.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dkls23Engine;

impl ThresholdEngine for Dkls23Engine {
    fn name(&self) -> &'static str {
        ENGINE
    }

    fn keygen(
        &self,
        params: KeygenParams,
    ) -> Result<Box<dyn Protocol<Output = KeyShare>>, EngineError> {
        Ok(Box::new(keygen::start(params)?))
    }

    fn sign(
        &self,
        share: &KeyShare,
        params: SignParams,
    ) -> Result<Box<dyn Protocol<Output = Signature>>, EngineError> {
        Ok(Box::new(sign::start(share, params)?))
    }

    fn refresh(
        &self,
        share: &KeyShare,
        params: RefreshParams,
    ) -> Result<Box<dyn Protocol<Output = Refreshed>>, EngineError> {
        Ok(Box::new(refresh::start(share, params)?))
    }

    fn recover(
        &self,
        slot: ShareSlot,
        params: RefreshParams,
    ) -> Result<Box<dyn Protocol<Output = Refreshed>>, EngineError> {
        Ok(Box::new(refresh::recover(slot, params)?))
    }
}

/// What a share's secret holds: the library's party and the key's public package.
#[derive(Serialize, Deserialize)]
struct StoredShare {
    party: Party<Curve>,
    package: PublicKeyPackage<Curve>,
}

/// Decodes a share's secret and checks it against the share's public facts: index,
/// threshold, party count and group key, and that the package's group key is that
/// key and its verifying share for this party is the party's share times G.
fn decode_share(share: &KeyShare) -> Result<StoredShare, EngineError> {
    if share.engine != ENGINE {
        return Err(EngineError::BadShare(format!(
            "share belongs to engine {:?}, not {ENGINE}",
            share.engine
        )));
    }
    let stored: StoredShare = decode(&share.secret)
        .map_err(|detail| EngineError::BadShare(format!("undecodable share: {detail}")))?;
    let StoredShare { party, package } = &stored;
    if party.party_index.as_u8() != share.index.get()
        || party.parameters.threshold != share.threshold
        || party.parameters.share_count != share.parties
        || package.threshold() != share.threshold
        || package.share_count() != share.parties
    {
        return Err(EngineError::BadShare(
            "share content does not match its index, threshold or party count".into(),
        ));
    }
    if party.pk.to_sec1_point(true).as_bytes() != share.public_key.as_bytes()
        || package.verifying_key() != &party.pk
    {
        return Err(EngineError::BadShare(
            "share content does not match its public key".into(),
        ));
    }
    let point = (ProjectivePoint::GENERATOR * party.poly_point).to_affine();
    if package.verifying_share(party.party_index) != Some(&point) {
        return Err(EngineError::BadShare(
            "share does not match its verifying share in the public key package".into(),
        ));
    }
    Ok(stored)
}

/// Postcard encoding of a secret into one exactly-sized, zeroized-on-drop buffer.
fn encode_secret<T: Serialize>(secret: &T) -> Result<Zeroizing<Vec<u8>>, EngineError> {
    let size = postcard::serialize_with_flavor::<_, postcard::ser_flavors::Size, usize>(
        secret,
        postcard::ser_flavors::Size::default(),
    )
    .map_err(|e| internal(&format!("share encoding: {e}")))?;
    let mut buffer = Zeroizing::new(vec![0u8; size]);
    let written = postcard::to_slice(secret, buffer.as_mut_slice())
        .map_err(|e| internal(&format!("share encoding: {e}")))?
        .len();
    if written != size {
        return Err(internal("share encoding changed size"));
    }
    Ok(buffer)
}

/// A point-to-point message of `round` to `receiver`.
fn direct<T: Serialize + ?Sized>(
    round: u16,
    receiver: DklsIndex,
    message: &T,
) -> Result<Outgoing, EngineError> {
    Ok(Outgoing {
        round,
        to: To::One(engine_index(receiver)?),
        payload: encode(message)?,
    })
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EngineError> {
    postcard::to_allocvec(value).map_err(|e| internal(&format!("message encoding: {e}")))
}

/// Decodes exactly one value: trailing bytes are an error.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|e| e.to_string())?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(format!("{} trailing bytes", rest.len()))
    }
}

fn check_sender(sender: DklsIndex, from: PartyIndex) -> Result<(), String> {
    if sender.as_u8() == from.get() {
        Ok(())
    } else {
        Err(format!("message names sender {sender}, envelope {from}"))
    }
}

fn check_route(parties: &PartiesMessage, from: PartyIndex, me: PartyIndex) -> Result<(), String> {
    check_sender(parties.sender, from)?;
    if parties.receiver.as_u8() == me.get() {
        Ok(())
    } else {
        Err(format!(
            "message is addressed to {}, not to {me}",
            parties.receiver
        ))
    }
}

fn all_indices(parties: u8) -> Result<Vec<PartyIndex>, EngineError> {
    (1..=parties).map(PartyIndex::new).collect()
}

fn dkls_index(index: PartyIndex) -> Result<DklsIndex, EngineError> {
    DklsIndex::new(index.get()).map_err(|_| {
        invalid(ParameterError::PartyOutOfRange {
            index: index.get(),
            max: mpc_events::MAX_PARTIES,
        })
    })
}

fn engine_index(index: DklsIndex) -> Result<PartyIndex, EngineError> {
    PartyIndex::new(index.as_u8())
}

/// Checks a key's shape: `2 <= t <= n <= MAX_PARTIES`, and `me` among the `n`.
fn check_shape(threshold: u8, parties: u8, me: PartyIndex) -> Result<(), EngineError> {
    if threshold < 2 || threshold > parties || parties > mpc_events::MAX_PARTIES {
        return Err(invalid(ParameterError::Threshold { threshold, parties }));
    }
    if me.get() > parties {
        return Err(invalid(ParameterError::PartyOutOfRange {
            index: me.get(),
            max: parties,
        }));
    }
    Ok(())
}

fn invalid(error: ParameterError) -> EngineError {
    EngineError::InvalidParameters(error)
}

/// A decoded message of another type than its round and kind take.
fn wrong_type(round: u16, broadcast: bool) -> EngineError {
    let kind = if broadcast { "broadcast" } else { "message" };
    internal(&format!("round-{round} {kind} of the wrong type"))
}

fn internal(detail: &str) -> EngineError {
    EngineError::Aborted {
        culprit: None,
        ban: false,
        detail: format!("internal: {detail}"),
    }
}

/// Maps a library abort; the culprit is the counterparty the reason names, if any.
fn aborted(me: DklsIndex, abort: Abort) -> EngineError {
    let detail = abort.description();
    let (culprit, ban) = match abort.kind {
        AbortKind::BanCounterparty(counterparty) => (Some(counterparty), true),
        AbortKind::Recoverable => (blamed(&abort.reason), false),
    };
    let culprit = culprit
        .filter(|culprit| *culprit != me)
        .and_then(|culprit| PartyIndex::new(culprit.as_u8()).ok());
    EngineError::Aborted {
        culprit,
        ban,
        detail,
    }
}

fn blamed(reason: &AbortReason) -> Option<DklsIndex> {
    match reason {
        AbortReason::UnexpectedSender { sender } | AbortReason::DuplicateSender { sender } => {
            Some(*sender)
        }
        AbortReason::MissingMessageFromParty { party }
        | AbortReason::MissingCommittedPoint { party }
        | AbortReason::ChainCodeCommitmentFailed { party } => Some(*party),
        AbortReason::SessionBindingMismatch { counterparty }
        | AbortReason::ProofVerificationFailed { counterparty }
        | AbortReason::CommitmentMismatch { counterparty }
        | AbortReason::TrivialInstancePoint { counterparty }
        | AbortReason::OtConsistencyCheckFailed { counterparty }
        | AbortReason::MultiplicationVerificationFailed { counterparty, .. }
        | AbortReason::GammaUInconsistency { counterparty }
        | AbortReason::ZeroShareDecommitFailed { counterparty } => Some(*counterparty),
        _ => None,
    }
}
