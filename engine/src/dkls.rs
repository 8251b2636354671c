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
//! Every payload is postcard. A share's secret is the postcard encoding of the
//! library's `Party` together with the key's `PublicKeyPackage` (the group key and
//! every party's verifying share), which a later repair needs.

use std::collections::BTreeMap;

use dkls23::DkgSession;
use dkls23::protocols::dkg::{
    BroadcastDerivationPhase2to4, BroadcastDerivationPhase3to4, KeepInitMulPhase3to4,
    KeepInitZeroSharePhase2to3, KeepInitZeroSharePhase3to4, ProofCommitment,
    TransmitInitMulPhase3to4, TransmitInitZeroSharePhase2to4, TransmitInitZeroSharePhase3to4,
};
use dkls23::protocols::repair::{RepairError, RepairTerm, repair_assemble};
use dkls23::protocols::signing::{
    Broadcast3to4, KeepPhase1to2, KeepPhase2to3, SignData, TransmitPhase1to2, TransmitPhase2to3,
    UniqueKeep1to2, UniqueKeep2to3,
};
use dkls23::protocols::{
    Abort, AbortKind, AbortReason, Parameters, PartiesMessage, Party, PartyIndex as DklsIndex,
    PublicKeyPackage,
};
use dkls23::utilities::hashes::HashOutput;
use dkls23::utilities::proofs::DLogProof;
use k256::elliptic_curve::sec1::ToSec1Point;
use k256::{ProjectivePoint, Scalar, Secp256k1};
use mpc_events::{MessageHash, PublicKey, Signature};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::port::{
    EngineError, KeyShare, KeygenParams, Outgoing, PartyIndex, Protocol, RefreshParams, Refreshed,
    RepairPlan, ShareSlot, SignParams, Step, ThresholdEngine, To, verify_signature,
};
use crate::rounds::{Received, RoundMachine, Rounds};

type Curve = Secp256k1;

const ENGINE: &str = "dkls23";
const KEYGEN_SESSION_TAG: &[u8] = b"mpc-engine/dkls23/keygen/v1";
const ECHO_TAG: &[u8] = b"mpc-engine/dkls23/keygen/round2-echo/v1";
const REFRESH_SESSION_TAG: &[u8] = b"mpc-engine/dkls23/refresh/v1";
const REPAIR_ID_TAG: &[u8] = b"mpc-engine/dkls23/repair/v1";
const REFRESH_ECHO_TAG: &[u8] = b"mpc-engine/dkls23/refresh/round3-echo/v1";
const PACKAGE_DIGEST_TAG: &[u8] = b"mpc-engine/dkls23/public-key-package/v1";

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
        let KeygenParams {
            execution_id,
            threshold,
            parties,
            me,
        } = params;
        if threshold < 2 || threshold > parties || parties > mpc_events::MAX_PARTIES {
            return Err(EngineError::InvalidParameters(format!(
                "threshold {threshold} of {parties} parties: need 2 <= t <= n <= {}",
                mpc_events::MAX_PARTIES
            )));
        }
        if me.get() > parties {
            return Err(EngineError::InvalidParameters(format!(
                "party index {me} outside 1..={parties}"
            )));
        }
        let parameters = Parameters::new(threshold, parties)
            .map_err(|error| EngineError::InvalidParameters(error.to_string()))?;
        let session_id = [KEYGEN_SESSION_TAG, &[threshold, parties], &execution_id].concat();
        let peers = all_indices(parties)?;
        let keygen = Keygen {
            me,
            threshold,
            parties,
            session: Some(DkgSession::new(parameters, dkls_index(me)?, session_id)),
            own_fragment: None,
            own_proof: None,
            commitments: BTreeMap::new(),
            derivation2: BTreeMap::new(),
            zero2: Vec::new(),
            echo: [0; 32],
            own_derivation3: None,
        };
        Ok(Box::new(RoundMachine::new(keygen, me, peers)))
    }

    fn sign(
        &self,
        share: &KeyShare,
        params: SignParams,
    ) -> Result<Box<dyn Protocol<Output = Signature>>, EngineError> {
        let party = decode_share(share)?.party;
        let me = share.index;
        let mut signers = params.signers.clone();
        signers.sort_unstable();
        signers.dedup();
        if signers.len() != params.signers.len() {
            return Err(EngineError::InvalidParameters(
                "signers contain a duplicate".into(),
            ));
        }
        if signers.len() != usize::from(share.threshold) {
            return Err(EngineError::InvalidParameters(format!(
                "need exactly {} signers, got {}",
                share.threshold,
                signers.len()
            )));
        }
        if !signers.contains(&me) {
            return Err(EngineError::InvalidParameters(format!(
                "signers do not include this party ({me})"
            )));
        }
        if let Some(outside) = signers.iter().find(|s| s.get() > share.parties) {
            return Err(EngineError::InvalidParameters(format!(
                "signer {outside} outside 1..={}",
                share.parties
            )));
        }
        let counterparties = signers
            .iter()
            .filter(|s| **s != me)
            .map(|s| dkls_index(*s))
            .collect::<Result<Vec<_>, _>>()?;
        let data = SignData {
            sign_id: params.execution_id.to_vec(),
            counterparties,
            message_hash: *params.message_hash.as_bytes(),
        };
        let sign = Sign {
            party,
            data,
            me,
            public_key: share.public_key,
            message_hash: params.message_hash,
            unique1: None,
            keep1: None,
            unique2: None,
            keep2: None,
            x_coord: None,
            own_broadcast: None,
        };
        Ok(Box::new(RoundMachine::new(sign, me, signers)))
    }

    fn refresh(
        &self,
        share: &KeyShare,
        params: RefreshParams,
    ) -> Result<Box<dyn Protocol<Output = Refreshed>>, EngineError> {
        let StoredShare { party, package } = decode_share(share)?;
        let me = share.index;
        let plan = params
            .repair
            .as_ref()
            .map(|plan| check_plan(plan, share.threshold, share.parties))
            .transpose()?;
        let term = match &plan {
            Some(plan) if plan.target == dkls_index(me)? => {
                return Err(EngineError::InvalidParameters(format!(
                    "this party ({me}) is the repair target: it runs recover, not refresh"
                )));
            }
            Some(plan) if plan.helpers.contains(&dkls_index(me)?) => Some(
                party
                    .repair_term(&plan.helpers, plan.target, &repair_id(&params.execution_id))
                    .map_err(repair_term_error)?,
            ),
            _ => None,
        };
        let refresh = Refresh::new(
            RefreshStart {
                me,
                threshold: share.threshold,
                parties: share.parties,
                public_key: share.public_key,
                execution_id: params.execution_id,
                plan,
            },
            Some(party),
            Some(package),
            term,
        );
        Ok(Box::new(RoundMachine::new(
            refresh,
            me,
            all_indices(share.parties)?,
        )))
    }

    fn recover(
        &self,
        slot: ShareSlot,
        params: RefreshParams,
    ) -> Result<Box<dyn Protocol<Output = Refreshed>>, EngineError> {
        let ShareSlot {
            engine,
            public_key,
            index: me,
            threshold,
            parties,
        } = slot;
        if engine != ENGINE {
            return Err(EngineError::InvalidParameters(format!(
                "key belongs to engine {engine:?}, not {ENGINE}"
            )));
        }
        if threshold < 2 || threshold > parties || parties > mpc_events::MAX_PARTIES {
            return Err(EngineError::InvalidParameters(format!(
                "threshold {threshold} of {parties} parties: need 2 <= t <= n <= {}",
                mpc_events::MAX_PARTIES
            )));
        }
        if me.get() > parties {
            return Err(EngineError::InvalidParameters(format!(
                "party index {me} outside 1..={parties}"
            )));
        }
        let Some(plan) = params.repair.as_ref() else {
            return Err(EngineError::InvalidParameters(
                "recover needs a repair plan naming this party as target".into(),
            ));
        };
        if plan.target != me {
            return Err(EngineError::InvalidParameters(format!(
                "the repair target is {}, not this party ({me})",
                plan.target
            )));
        }
        let plan = check_plan(plan, threshold, parties)?;
        let refresh = Refresh::new(
            RefreshStart {
                me,
                threshold,
                parties,
                public_key,
                execution_id: params.execution_id,
                plan: Some(plan),
            },
            None,
            None,
            None,
        );
        Ok(Box::new(RoundMachine::new(
            refresh,
            me,
            all_indices(parties)?,
        )))
    }
}

// ---------------------------------------------------------------------------
// Keygen
// ---------------------------------------------------------------------------

/// Round-2 broadcast: commitments only (proof and chain code are revealed in round 3).
#[derive(Serialize, Deserialize)]
struct KeygenBroadcast2 {
    proof_commitment: HashOutput,
    derivation: BroadcastDerivationPhase2to4,
}

/// Round-3 broadcast.
#[derive(Serialize, Deserialize)]
struct KeygenBroadcast3 {
    /// Digest of all round-2 broadcasts as the sender saw them.
    echo: [u8; 32],
    proof: DLogProof<Curve>,
    derivation: BroadcastDerivationPhase3to4,
}

/// Zero-share seed decommitment and multiplication init: keygen's round-3 and
/// refresh's round-4 point-to-point message.
#[derive(Serialize, Deserialize)]
struct InitDirect {
    zero_share: TransmitInitZeroSharePhase3to4,
    multiplication: TransmitInitMulPhase3to4<Curve>,
}

enum KeygenMsg {
    Fragment(Zeroizing<Scalar>),
    Broadcast2(KeygenBroadcast2),
    Direct2(TransmitInitZeroSharePhase2to4),
    Broadcast3(Box<KeygenBroadcast3>),
    Direct3(Box<InitDirect>),
}

struct Keygen {
    me: PartyIndex,
    threshold: u8,
    parties: u8,
    /// Consumed by phase 4.
    session: Option<DkgSession<Curve>>,
    own_fragment: Option<Zeroizing<Scalar>>,
    own_proof: Option<ProofCommitment<Curve>>,
    /// Every party's proof commitment (ours included), from round 2.
    commitments: BTreeMap<DklsIndex, HashOutput>,
    /// Every party's chain-code commitment (ours included), from round 2.
    derivation2: BTreeMap<DklsIndex, BroadcastDerivationPhase2to4>,
    zero2: Vec<TransmitInitZeroSharePhase2to4>,
    /// Our digest of the round-2 broadcasts.
    echo: [u8; 32],
    own_derivation3: Option<BroadcastDerivationPhase3to4>,
}

impl Keygen {
    fn session(&mut self) -> Result<&mut DkgSession<Curve>, EngineError> {
        self.session
            .as_mut()
            .ok_or_else(|| internal("keygen session already consumed"))
    }

    fn round1(&mut self, received: Received<KeygenMsg>) -> Result<Vec<Outgoing>, EngineError> {
        let own = self
            .own_fragment
            .take()
            .ok_or_else(|| internal("own fragment missing"))?;
        let mut fragments: Zeroizing<Vec<Scalar>> =
            Zeroizing::new(Vec::with_capacity(usize::from(self.parties)));
        let mut peers = received.direct.into_iter();
        for index in 1..=self.parties {
            if index == self.me.get() {
                fragments.push(*own);
                continue;
            }
            match peers.next() {
                Some((from, KeygenMsg::Fragment(fragment))) if from.get() == index => {
                    fragments.push(*fragment);
                }
                _ => return Err(internal("round-1 fragments out of order")),
            }
        }
        let me = dkls_index(self.me)?;
        let (proof_commitment, zero_transmit, derivation) = self
            .session()?
            .phase2(&fragments)
            .map_err(|a| aborted(me, a))?;

        let broadcast = KeygenBroadcast2 {
            proof_commitment: proof_commitment.commitment,
            derivation: derivation.clone(),
        };
        self.commitments.insert(me, proof_commitment.commitment);
        self.derivation2.insert(me, derivation);
        self.own_proof = Some(proof_commitment);

        let mut outgoing = vec![Outgoing {
            round: 2,
            to: To::All,
            payload: encode(&broadcast)?,
        }];
        for message in &zero_transmit {
            outgoing.push(Outgoing {
                round: 2,
                to: To::One(engine_index(message.parties.receiver)?),
                payload: encode(message)?,
            });
        }
        Ok(outgoing)
    }

    fn round2(&mut self, received: Received<KeygenMsg>) -> Result<Vec<Outgoing>, EngineError> {
        for (from, message) in received.broadcasts {
            let KeygenMsg::Broadcast2(broadcast) = message else {
                return Err(internal("round-2 broadcast of the wrong type"));
            };
            let from = dkls_index(from)?;
            self.commitments.insert(from, broadcast.proof_commitment);
            self.derivation2.insert(from, broadcast.derivation);
        }
        for (_, message) in received.direct {
            let KeygenMsg::Direct2(transmit) = message else {
                return Err(internal("round-2 message of the wrong type"));
            };
            self.zero2.push(transmit);
        }
        self.echo = self.round2_digest()?;

        let me = dkls_index(self.me)?;
        let (zero_transmit, mul_transmit, derivation) =
            self.session()?.phase3().map_err(|a| aborted(me, a))?;
        let proof = self
            .own_proof
            .as_ref()
            .ok_or_else(|| internal("own proof missing"))?
            .proof
            .clone();
        let broadcast = KeygenBroadcast3 {
            echo: self.echo,
            proof,
            derivation: derivation.clone(),
        };
        self.own_derivation3 = Some(derivation);

        let mut outgoing = vec![Outgoing {
            round: 3,
            to: To::All,
            payload: encode(&broadcast)?,
        }];
        let mut multiplication: BTreeMap<DklsIndex, TransmitInitMulPhase3to4<Curve>> = mul_transmit
            .into_iter()
            .map(|m| (m.parties.receiver, m))
            .collect();
        for zero_share in zero_transmit {
            let receiver = zero_share.parties.receiver;
            let multiplication = multiplication
                .remove(&receiver)
                .ok_or_else(|| internal("phase 3 produced unmatched messages"))?;
            outgoing.push(Outgoing {
                round: 3,
                to: To::One(engine_index(receiver)?),
                payload: encode(&InitDirect {
                    zero_share,
                    multiplication,
                })?,
            });
        }
        Ok(outgoing)
    }

    /// Digest of every party's round-2 broadcast, in index order (fixed-size fields).
    fn round2_digest(&self) -> Result<[u8; 32], EngineError> {
        let mut hash = Sha256::new();
        hash.update(ECHO_TAG);
        for index in 1..=self.parties {
            let index = DklsIndex::new(index).map_err(|e| internal(&e.to_string()))?;
            let (Some(commitment), Some(derivation)) =
                (self.commitments.get(&index), self.derivation2.get(&index))
            else {
                return Err(internal("round-2 broadcast missing"));
            };
            hash.update([index.as_u8()]);
            hash.update(commitment);
            hash.update(derivation.cc_commitment);
        }
        Ok(hash.finalize().into())
    }

    fn round3(&mut self, received: Received<KeygenMsg>) -> Result<KeyShare, EngineError> {
        let me = dkls_index(self.me)?;
        let own_proof = self
            .own_proof
            .take()
            .ok_or_else(|| internal("own proof missing"))?;
        let own_derivation = self
            .own_derivation3
            .take()
            .ok_or_else(|| internal("own round-3 broadcast missing"))?;

        let mut proofs: BTreeMap<DklsIndex, DLogProof<Curve>> = BTreeMap::new();
        let mut derivation3: BTreeMap<DklsIndex, BroadcastDerivationPhase3to4> = BTreeMap::new();
        proofs.insert(me, own_proof.proof);
        derivation3.insert(me, own_derivation);
        for (from, message) in received.broadcasts {
            let KeygenMsg::Broadcast3(broadcast) = message else {
                return Err(internal("round-3 broadcast of the wrong type"));
            };
            let KeygenBroadcast3 {
                echo,
                proof,
                derivation,
            } = *broadcast;
            if echo != self.echo {
                return Err(EngineError::Aborted {
                    culprit: None,
                    ban: false,
                    detail: format!(
                        "party {from} saw different round-2 broadcasts: a party equivocated, \
                         or {from} misreported"
                    ),
                });
            }
            let from = dkls_index(from)?;
            proofs.insert(from, proof);
            derivation3.insert(from, derivation);
        }
        let mut zero3 = Vec::new();
        let mut multiplication = Vec::new();
        for (_, message) in received.direct {
            let KeygenMsg::Direct3(direct) = message else {
                return Err(internal("round-3 message of the wrong type"));
            };
            let InitDirect {
                zero_share,
                multiplication: mul,
            } = *direct;
            zero3.push(zero_share);
            multiplication.push(mul);
        }
        let proofs_commitments = pair_proofs(proofs, &self.commitments)?;

        let session = self
            .session
            .take()
            .ok_or_else(|| internal("keygen session already consumed"))?;
        let (party, package) = session
            .phase4(
                &proofs_commitments,
                &self.zero2,
                &zero3,
                &multiplication,
                &self.derivation2,
                &derivation3,
                |_| String::new(),
            )
            .map_err(|a| aborted(me, a))?;

        let public_key = PublicKey::from_slice(party.pk.to_sec1_point(true).as_bytes())
            .map_err(|e| internal(&format!("group key: {e}")))?;
        Ok(KeyShare {
            engine: ENGINE.to_owned(),
            public_key,
            index: self.me,
            threshold: self.threshold,
            parties: self.parties,
            secret: encode_secret(&StoredShare { party, package })?,
        })
    }
}

impl Rounds for Keygen {
    type Msg = KeygenMsg;
    type Output = KeyShare;
    const LAST: u16 = 3;

    fn carries(round: u16, broadcast: bool) -> bool {
        match round {
            1 => !broadcast,
            2 | 3 => true,
            _ => false,
        }
    }

    fn decode(
        &self,
        round: u16,
        from: PartyIndex,
        broadcast: bool,
        payload: &[u8],
    ) -> Result<KeygenMsg, String> {
        match (round, broadcast) {
            (1, false) => decode::<Scalar>(payload).map(|f| KeygenMsg::Fragment(Zeroizing::new(f))),
            (2, true) => {
                let message: KeygenBroadcast2 = decode(payload)?;
                check_sender(message.derivation.sender_index, from)?;
                Ok(KeygenMsg::Broadcast2(message))
            }
            (2, false) => {
                let message: TransmitInitZeroSharePhase2to4 = decode(payload)?;
                check_route(&message.parties, from, self.me)?;
                Ok(KeygenMsg::Direct2(message))
            }
            (3, true) => {
                let message: KeygenBroadcast3 = decode(payload)?;
                check_sender(message.derivation.sender_index, from)?;
                Ok(KeygenMsg::Broadcast3(Box::new(message)))
            }
            (3, false) => {
                let message: InitDirect = decode(payload)?;
                check_route(&message.zero_share.parties, from, self.me)?;
                check_route(&message.multiplication.parties, from, self.me)?;
                Ok(KeygenMsg::Direct3(Box::new(message)))
            }
            _ => Err(format!("no such message in round {round}")),
        }
    }

    fn begin(&mut self) -> Result<Vec<Outgoing>, EngineError> {
        let fragments = Zeroizing::new(self.session()?.phase1());
        if fragments.len() != usize::from(self.parties) {
            return Err(internal("phase 1 produced the wrong number of fragments"));
        }
        let mut outgoing = Vec::with_capacity(fragments.len());
        for (index, fragment) in (1..=self.parties).zip(fragments.iter()) {
            if index == self.me.get() {
                self.own_fragment = Some(Zeroizing::new(*fragment));
            } else {
                outgoing.push(Outgoing {
                    round: 1,
                    to: To::One(PartyIndex::new(index)?),
                    payload: encode(fragment)?,
                });
            }
        }
        Ok(outgoing)
    }

    fn complete(
        &mut self,
        round: u16,
        received: Received<KeygenMsg>,
    ) -> Result<Step<KeyShare>, EngineError> {
        match round {
            1 => self.round1(received).map(Step::Continue),
            2 => self.round2(received).map(Step::Continue),
            3 => self.round3(received).map(|output| Step::Done {
                output,
                outgoing: Vec::new(),
            }),
            _ => Err(internal("no such round")),
        }
    }
}

// ---------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------

enum SignMsg {
    First(Box<TransmitPhase1to2>),
    Second(Box<TransmitPhase2to3<Curve>>),
    Third(Broadcast3to4<Curve>),
}

struct Sign {
    party: Party<Curve>,
    data: SignData,
    me: PartyIndex,
    public_key: PublicKey,
    message_hash: MessageHash,
    unique1: Option<UniqueKeep1to2<Curve>>,
    keep1: Option<BTreeMap<DklsIndex, KeepPhase1to2<Curve>>>,
    unique2: Option<UniqueKeep2to3<Curve>>,
    keep2: Option<BTreeMap<DklsIndex, KeepPhase2to3<Curve>>>,
    /// `r` as hex, from phase 3.
    x_coord: Option<String>,
    own_broadcast: Option<Broadcast3to4<Curve>>,
}

impl Sign {
    fn round1(&mut self, received: Received<SignMsg>) -> Result<Vec<Outgoing>, EngineError> {
        let mut messages = Vec::with_capacity(received.direct.len());
        for (_, message) in received.direct {
            let SignMsg::First(message) = message else {
                return Err(internal("round-1 message of the wrong type"));
            };
            messages.push(*message);
        }
        let (Some(unique), Some(keep)) = (self.unique1.take(), self.keep1.take()) else {
            return Err(internal("phase-1 state missing"));
        };
        let me = self.party.party_index;
        let (unique, keep, transmit) = self
            .party
            .sign_phase2(&self.data, unique, keep, &messages)
            .map_err(|a| aborted(me, a))?;
        self.unique2 = Some(unique);
        self.keep2 = Some(keep);
        transmit
            .iter()
            .map(|message| {
                Ok(Outgoing {
                    round: 2,
                    to: To::One(engine_index(message.parties.receiver)?),
                    payload: encode(message)?,
                })
            })
            .collect()
    }

    fn round2(&mut self, received: Received<SignMsg>) -> Result<Vec<Outgoing>, EngineError> {
        let mut messages = Vec::with_capacity(received.direct.len());
        for (_, message) in received.direct {
            let SignMsg::Second(message) = message else {
                return Err(internal("round-2 message of the wrong type"));
            };
            messages.push(*message);
        }
        let (Some(unique), Some(keep)) = (self.unique2.take(), self.keep2.take()) else {
            return Err(internal("phase-2 state missing"));
        };
        let me = self.party.party_index;
        let (x_coord, broadcast) = self
            .party
            .sign_phase3(&self.data, unique, keep, &messages)
            .map_err(|a| aborted(me, a))?;
        let payload = encode(&broadcast)?;
        self.x_coord = Some(x_coord);
        self.own_broadcast = Some(broadcast);
        Ok(vec![Outgoing {
            round: 3,
            to: To::All,
            payload,
        }])
    }

    fn round3(&mut self, received: Received<SignMsg>) -> Result<Signature, EngineError> {
        let own = self
            .own_broadcast
            .take()
            .ok_or_else(|| internal("own round-3 broadcast missing"))?;
        let mut broadcasts = vec![own];
        for (_, message) in received.broadcasts {
            let SignMsg::Third(message) = message else {
                return Err(internal("round-3 broadcast of the wrong type"));
            };
            broadcasts.push(message);
        }
        let x_coord = self
            .x_coord
            .take()
            .ok_or_else(|| internal("phase-3 output missing"))?;
        let me = self.party.party_index;
        let (s_hex, recovery_id) = self
            .party
            .sign_phase4(&self.data, &x_coord, &broadcasts, true)
            .map_err(|a| aborted(me, a))?;
        if recovery_id > 1 {
            // R.x >= n: probability about 2^-128; such an r does not fit our signature type.
            return Err(EngineError::Aborted {
                culprit: None,
                ban: false,
                detail: "nonce point x-coordinate exceeds the group order; sign again".into(),
            });
        }
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        hex::decode_to_slice(&x_coord, &mut r).map_err(|e| internal(&format!("r: {e}")))?;
        hex::decode_to_slice(&s_hex, &mut s).map_err(|e| internal(&format!("s: {e}")))?;
        let signature = Signature::new(&r, &s, recovery_id)
            .map_err(|e| internal(&format!("signature: {e}")))?;
        if !verify_signature(&self.public_key, &self.message_hash, &signature) {
            return Err(EngineError::Aborted {
                culprit: None,
                ban: false,
                detail: "assembled signature does not verify".into(),
            });
        }
        Ok(signature)
    }
}

impl Rounds for Sign {
    type Msg = SignMsg;
    type Output = Signature;
    const LAST: u16 = 3;

    fn carries(round: u16, broadcast: bool) -> bool {
        match round {
            1 | 2 => !broadcast,
            3 => broadcast,
            _ => false,
        }
    }

    fn decode(
        &self,
        round: u16,
        from: PartyIndex,
        broadcast: bool,
        payload: &[u8],
    ) -> Result<SignMsg, String> {
        match (round, broadcast) {
            (1, false) => {
                let message: TransmitPhase1to2 = decode(payload)?;
                check_route(&message.parties, from, self.me)?;
                Ok(SignMsg::First(Box::new(message)))
            }
            (2, false) => {
                let message: TransmitPhase2to3<Curve> = decode(payload)?;
                check_route(&message.parties, from, self.me)?;
                Ok(SignMsg::Second(Box::new(message)))
            }
            (3, true) => decode(payload).map(SignMsg::Third),
            _ => Err(format!("no such message in round {round}")),
        }
    }

    fn begin(&mut self) -> Result<Vec<Outgoing>, EngineError> {
        let me = self.party.party_index;
        let (unique, keep, transmit) = self
            .party
            .sign_phase1(&self.data)
            .map_err(|a| aborted(me, a))?;
        self.unique1 = Some(unique);
        self.keep1 = Some(keep);
        transmit
            .iter()
            .map(|message| {
                Ok(Outgoing {
                    round: 1,
                    to: To::One(engine_index(message.parties.receiver)?),
                    payload: encode(message)?,
                })
            })
            .collect()
    }

    fn complete(
        &mut self,
        round: u16,
        received: Received<SignMsg>,
    ) -> Result<Step<Signature>, EngineError> {
        match round {
            1 => self.round1(received).map(Step::Continue),
            2 => self.round2(received).map(Step::Continue),
            3 => self.round3(received).map(|output| Step::Done {
                output,
                outgoing: Vec::new(),
            }),
            _ => Err(internal("no such round")),
        }
    }
}

// ---------------------------------------------------------------------------
// Refresh (with optional repair)
// ---------------------------------------------------------------------------

/// A checked repair plan in the library's terms: helpers sorted and distinct.
struct CheckedPlan {
    helpers: Vec<DklsIndex>,
    target: DklsIndex,
}

/// Round-1 message, helper to target.
#[derive(Serialize, Deserialize)]
struct RepairMessage {
    term: RepairTerm<Curve>,
    /// The helper's public key package, which the target checks the terms against.
    package: PublicKeyPackage<Curve>,
}

/// Round-3 broadcast: the commitment only (the proof is revealed in round 4).
#[derive(Serialize, Deserialize)]
struct RefreshBroadcast3 {
    proof_commitment: HashOutput,
}

/// Round-4 broadcast.
#[derive(Serialize, Deserialize)]
struct RefreshBroadcast4 {
    /// Digest of all round-3 broadcasts as the sender saw them.
    echo: [u8; 32],
    proof: DLogProof<Curve>,
}

enum RefreshMsg {
    Repair(Box<RepairMessage>),
    Fragment(Zeroizing<Scalar>),
    Broadcast3(RefreshBroadcast3),
    Direct3(TransmitInitZeroSharePhase2to4),
    Broadcast4(Box<RefreshBroadcast4>),
    Direct4(Box<InitDirect>),
}

/// The public facts a refresh run starts from.
struct RefreshStart {
    me: PartyIndex,
    threshold: u8,
    parties: u8,
    public_key: PublicKey,
    execution_id: [u8; 32],
    plan: Option<CheckedPlan>,
}

struct Refresh {
    me: PartyIndex,
    threshold: u8,
    parties: u8,
    public_key: PublicKey,
    refresh_sid: Vec<u8>,
    plan: Option<CheckedPlan>,
    /// The share being refreshed; the repair target's is assembled in round 1.
    party: Option<Party<Curve>>,
    /// The key's public package; the repair target's comes from the helpers.
    package: Option<PublicKeyPackage<Curve>>,
    /// This helper's repair term, sent in round 1.
    term: Option<RepairTerm<Curve>>,
    own_fragment: Option<Zeroizing<Scalar>>,
    correction: Option<Zeroizing<Scalar>>,
    own_proof: Option<ProofCommitment<Curve>>,
    /// Every party's proof commitment (ours included), from round 3.
    commitments: BTreeMap<DklsIndex, HashOutput>,
    zero_keep2: BTreeMap<DklsIndex, KeepInitZeroSharePhase2to3>,
    zero2: Vec<TransmitInitZeroSharePhase2to4>,
    /// Our digest of the round-3 broadcasts.
    echo: [u8; 32],
    zero_keep3: BTreeMap<DklsIndex, KeepInitZeroSharePhase3to4>,
    mul_keep: BTreeMap<DklsIndex, KeepInitMulPhase3to4<Curve>>,
}

impl Drop for Refresh {
    fn drop(&mut self) {
        for keep in self.zero_keep2.values_mut() {
            keep.seed.zeroize();
            keep.salt.zeroize();
        }
        for keep in self.zero_keep3.values_mut() {
            keep.seed.zeroize();
        }
        for keep in self.mul_keep.values_mut() {
            keep.nonce.zeroize();
            keep.correlation.zeroize();
            keep.vec_r.zeroize();
        }
    }
}

impl Refresh {
    fn new(
        start: RefreshStart,
        party: Option<Party<Curve>>,
        package: Option<PublicKeyPackage<Curve>>,
        term: Option<RepairTerm<Curve>>,
    ) -> Self {
        let RefreshStart {
            me,
            threshold,
            parties,
            public_key,
            execution_id,
            plan,
        } = start;
        Self {
            me,
            threshold,
            parties,
            public_key,
            refresh_sid: [REFRESH_SESSION_TAG, &[threshold, parties], &execution_id].concat(),
            plan,
            party,
            package,
            term,
            own_fragment: None,
            correction: None,
            own_proof: None,
            commitments: BTreeMap::new(),
            zero_keep2: BTreeMap::new(),
            zero2: Vec::new(),
            echo: [0; 32],
            zero_keep3: BTreeMap::new(),
            mul_keep: BTreeMap::new(),
        }
    }

    fn party(&self) -> Result<&Party<Curve>, EngineError> {
        self.party
            .as_ref()
            .ok_or_else(|| internal("refresh has no share yet"))
    }

    fn is_target(&self) -> bool {
        self.plan
            .as_ref()
            .is_some_and(|plan| plan.target.as_u8() == self.me.get())
    }

    /// The target's round 1: checks the helpers' packages and assembles its share.
    fn assemble(&mut self, received: Received<RefreshMsg>) -> Result<(), EngineError> {
        let aborted = |detail: String| EngineError::Aborted {
            culprit: None,
            ban: false,
            detail,
        };
        let mut terms = Vec::with_capacity(received.direct.len());
        let mut agreed: Option<(PartyIndex, PublicKeyPackage<Curve>, Vec<u8>)> = None;
        for (from, message) in received.direct {
            let RefreshMsg::Repair(message) = message else {
                return Err(internal("round-1 message of the wrong type"));
            };
            let RepairMessage { term, package } = *message;
            terms.push(term);
            let encoded = encode(&package)?;
            match &agreed {
                None => agreed = Some((from, package, encoded)),
                Some((first, _, first_encoded)) if *first_encoded != encoded => {
                    return Err(aborted(format!(
                        "helpers {first} and {from} sent different public key packages: \
                         one of them is wrong"
                    )));
                }
                Some(_) => {}
            }
        }
        let Some((_, package, _)) = agreed else {
            return Err(internal("no repair terms"));
        };
        if package.verifying_key().to_sec1_point(true).as_bytes() != self.public_key.as_bytes()
            || package.threshold() != self.threshold
            || package.share_count() != self.parties
        {
            return Err(aborted(
                "the helpers' public key package is not for this key".into(),
            ));
        }
        let party = repair_assemble(&package, dkls_index(self.me)?, &terms, |_| String::new())
            .map_err(|error| {
                aborted(match error {
                    RepairError::ShareMismatch => "repair terms do not add up to this party's \
                                                   verifying share: a helper sent a wrong term"
                        .into(),
                    RepairError::InconsistentTerms => "repair terms disagree on their session, \
                                                       chain code or key: a helper sent a wrong \
                                                       term"
                        .into(),
                    other => format!("repair failed: {other}"),
                })
            })?;
        self.party = Some(party);
        self.package = Some(package);
        Ok(())
    }

    fn round1(&mut self, received: Received<RefreshMsg>) -> Result<Vec<Outgoing>, EngineError> {
        if self.is_target() {
            self.assemble(received)?;
        }
        let fragments = Zeroizing::new(self.party()?.refresh_complete_phase1());
        if fragments.len() != usize::from(self.parties) {
            return Err(internal("phase 1 produced the wrong number of fragments"));
        }
        let mut outgoing = Vec::with_capacity(fragments.len());
        for (index, fragment) in (1..=self.parties).zip(fragments.iter()) {
            if index == self.me.get() {
                self.own_fragment = Some(Zeroizing::new(*fragment));
            } else {
                outgoing.push(Outgoing {
                    round: 2,
                    to: To::One(PartyIndex::new(index)?),
                    payload: encode(fragment)?,
                });
            }
        }
        Ok(outgoing)
    }

    fn round2(&mut self, received: Received<RefreshMsg>) -> Result<Vec<Outgoing>, EngineError> {
        let own = self
            .own_fragment
            .take()
            .ok_or_else(|| internal("own fragment missing"))?;
        let mut fragments: Zeroizing<Vec<Scalar>> =
            Zeroizing::new(Vec::with_capacity(usize::from(self.parties)));
        let mut peers = received.direct.into_iter();
        for index in 1..=self.parties {
            if index == self.me.get() {
                fragments.push(*own);
                continue;
            }
            match peers.next() {
                Some((from, RefreshMsg::Fragment(fragment))) if from.get() == index => {
                    fragments.push(*fragment);
                }
                _ => return Err(internal("round-2 fragments out of order")),
            }
        }
        let (correction, proof_commitment, zero_keep, zero_transmit) = self
            .party()?
            .refresh_complete_phase2(&self.refresh_sid, &fragments);
        let correction = Zeroizing::new(correction);
        let broadcast = RefreshBroadcast3 {
            proof_commitment: proof_commitment.commitment,
        };
        self.commitments
            .insert(dkls_index(self.me)?, proof_commitment.commitment);
        self.correction = Some(correction);
        self.own_proof = Some(proof_commitment);
        self.zero_keep2 = zero_keep;

        let mut outgoing = vec![Outgoing {
            round: 3,
            to: To::All,
            payload: encode(&broadcast)?,
        }];
        for message in &zero_transmit {
            outgoing.push(Outgoing {
                round: 3,
                to: To::One(engine_index(message.parties.receiver)?),
                payload: encode(message)?,
            });
        }
        Ok(outgoing)
    }

    fn round3(&mut self, received: Received<RefreshMsg>) -> Result<Vec<Outgoing>, EngineError> {
        for (from, message) in received.broadcasts {
            let RefreshMsg::Broadcast3(broadcast) = message else {
                return Err(internal("round-3 broadcast of the wrong type"));
            };
            self.commitments
                .insert(dkls_index(from)?, broadcast.proof_commitment);
        }
        for (_, message) in received.direct {
            let RefreshMsg::Direct3(transmit) = message else {
                return Err(internal("round-3 message of the wrong type"));
            };
            self.zero2.push(transmit);
        }
        self.echo = self.round3_digest()?;

        let (zero_keep, zero_transmit, mul_keep, mul_transmit) = self
            .party()?
            .refresh_complete_phase3(&self.refresh_sid, &self.zero_keep2);
        let proof = self
            .own_proof
            .as_ref()
            .ok_or_else(|| internal("own proof missing"))?
            .proof
            .clone();
        self.zero_keep3 = zero_keep;
        self.mul_keep = mul_keep;

        let mut outgoing = vec![Outgoing {
            round: 4,
            to: To::All,
            payload: encode(&RefreshBroadcast4 {
                echo: self.echo,
                proof,
            })?,
        }];
        let mut multiplication: BTreeMap<DklsIndex, TransmitInitMulPhase3to4<Curve>> = mul_transmit
            .into_iter()
            .map(|m| (m.parties.receiver, m))
            .collect();
        for zero_share in zero_transmit {
            let receiver = zero_share.parties.receiver;
            let multiplication = multiplication
                .remove(&receiver)
                .ok_or_else(|| internal("phase 3 produced unmatched messages"))?;
            outgoing.push(Outgoing {
                round: 4,
                to: To::One(engine_index(receiver)?),
                payload: encode(&InitDirect {
                    zero_share,
                    multiplication,
                })?,
            });
        }
        Ok(outgoing)
    }

    /// Digest of every party's round-3 broadcast, in index order (fixed-size fields).
    fn round3_digest(&self) -> Result<[u8; 32], EngineError> {
        let mut hash = Sha256::new();
        hash.update(REFRESH_ECHO_TAG);
        for index in 1..=self.parties {
            let index = DklsIndex::new(index).map_err(|e| internal(&e.to_string()))?;
            let commitment = self
                .commitments
                .get(&index)
                .ok_or_else(|| internal("round-3 broadcast missing"))?;
            hash.update([index.as_u8()]);
            hash.update(commitment);
        }
        Ok(hash.finalize().into())
    }

    fn round4(&mut self, received: Received<RefreshMsg>) -> Result<Refreshed, EngineError> {
        let me = dkls_index(self.me)?;
        let own_proof = self
            .own_proof
            .take()
            .ok_or_else(|| internal("own proof missing"))?;
        let mut proofs: BTreeMap<DklsIndex, DLogProof<Curve>> = BTreeMap::new();
        proofs.insert(me, own_proof.proof);
        for (from, message) in received.broadcasts {
            let RefreshMsg::Broadcast4(broadcast) = message else {
                return Err(internal("round-4 broadcast of the wrong type"));
            };
            let RefreshBroadcast4 { echo, proof } = *broadcast;
            if echo != self.echo {
                return Err(EngineError::Aborted {
                    culprit: None,
                    ban: false,
                    detail: format!(
                        "party {from} saw different round-3 broadcasts: a party equivocated, \
                         or {from} misreported"
                    ),
                });
            }
            proofs.insert(dkls_index(from)?, proof);
        }
        let mut zero3 = Vec::new();
        let mut multiplication = Vec::new();
        for (_, message) in received.direct {
            let RefreshMsg::Direct4(direct) = message else {
                return Err(internal("round-4 message of the wrong type"));
            };
            let InitDirect {
                zero_share,
                multiplication: mul,
            } = *direct;
            zero3.push(zero_share);
            multiplication.push(mul);
        }
        let proofs_commitments = pair_proofs(proofs, &self.commitments)?;
        let correction = self
            .correction
            .take()
            .ok_or_else(|| internal("correction missing"))?;

        let party = self
            .party()?
            .refresh_complete_phase4(
                &self.refresh_sid,
                &correction,
                &proofs_commitments,
                &self.zero_keep3,
                &self.zero2,
                &zero3,
                &self.mul_keep,
                &multiplication,
            )
            .map_err(|a| aborted(me, a))?;
        let package = self
            .package
            .as_ref()
            .ok_or_else(|| internal("public key package missing"))?
            .refresh(&self.refresh_sid, &proofs_commitments)
            .map_err(|reason| aborted(me, Abort::recoverable(me, reason)))?;
        let digest = package_digest(&package)?;
        let share = KeyShare {
            engine: ENGINE.to_owned(),
            public_key: self.public_key,
            index: self.me,
            threshold: self.threshold,
            parties: self.parties,
            secret: encode_secret(&StoredShare { party, package })?,
        };
        decode_share(&share)
            .map_err(|e| internal(&format!("refreshed share is inconsistent: {e}")))?;
        Ok(Refreshed { share, digest })
    }
}

impl Rounds for Refresh {
    type Msg = RefreshMsg;
    type Output = Refreshed;
    const LAST: u16 = 4;

    fn carries(round: u16, broadcast: bool) -> bool {
        match round {
            1 | 2 => !broadcast,
            3 | 4 => true,
            _ => false,
        }
    }

    /// Round 1 carries only the helpers' terms to the target.
    fn expects(&self, round: u16, from: PartyIndex, broadcast: bool) -> bool {
        if round == 1 {
            !broadcast
                && self.is_target()
                && self.plan.as_ref().is_some_and(|plan| {
                    plan.helpers
                        .iter()
                        .any(|helper| helper.as_u8() == from.get())
                })
        } else {
            Self::carries(round, broadcast)
        }
    }

    fn decode(
        &self,
        round: u16,
        from: PartyIndex,
        broadcast: bool,
        payload: &[u8],
    ) -> Result<RefreshMsg, String> {
        match (round, broadcast) {
            (1, false) => {
                let message: RepairMessage = decode(payload)?;
                check_sender(message.term.helper, from)?;
                if message.term.target.as_u8() != self.me.get() {
                    return Err(format!(
                        "repair term is for {}, not for {}",
                        message.term.target, self.me
                    ));
                }
                Ok(RefreshMsg::Repair(Box::new(message)))
            }
            (2, false) => {
                decode::<Scalar>(payload).map(|f| RefreshMsg::Fragment(Zeroizing::new(f)))
            }
            (3, true) => decode(payload).map(RefreshMsg::Broadcast3),
            (3, false) => {
                let message: TransmitInitZeroSharePhase2to4 = decode(payload)?;
                check_route(&message.parties, from, self.me)?;
                Ok(RefreshMsg::Direct3(message))
            }
            (4, true) => decode(payload).map(|m| RefreshMsg::Broadcast4(Box::new(m))),
            (4, false) => {
                let message: InitDirect = decode(payload)?;
                check_route(&message.zero_share.parties, from, self.me)?;
                check_route(&message.multiplication.parties, from, self.me)?;
                Ok(RefreshMsg::Direct4(Box::new(message)))
            }
            _ => Err(format!("no such message in round {round}")),
        }
    }

    fn begin(&mut self) -> Result<Vec<Outgoing>, EngineError> {
        let Some(term) = self.term.take() else {
            return Ok(Vec::new());
        };
        let package = self
            .package
            .clone()
            .ok_or_else(|| internal("public key package missing"))?;
        let target = engine_index(term.target)?;
        Ok(vec![Outgoing {
            round: 1,
            to: To::One(target),
            payload: encode(&RepairMessage { term, package })?,
        }])
    }

    fn complete(
        &mut self,
        round: u16,
        received: Received<RefreshMsg>,
    ) -> Result<Step<Refreshed>, EngineError> {
        match round {
            1 => self.round1(received).map(Step::Continue),
            2 => self.round2(received).map(Step::Continue),
            3 => self.round3(received).map(Step::Continue),
            4 => self.round4(received).map(|output| Step::Done {
                output,
                outgoing: Vec::new(),
            }),
            _ => Err(internal("no such round")),
        }
    }
}

/// Each revealed proof with the commitment its sender broadcast before.
fn pair_proofs(
    proofs: BTreeMap<DklsIndex, DLogProof<Curve>>,
    commitments: &BTreeMap<DklsIndex, HashOutput>,
) -> Result<Vec<ProofCommitment<Curve>>, EngineError> {
    proofs
        .into_iter()
        .map(|(index, proof)| {
            let commitment = commitments
                .get(&index)
                .copied()
                .ok_or_else(|| internal("proof commitment missing"))?;
            Ok(ProofCommitment {
                index,
                proof,
                commitment,
            })
        })
        .collect()
}

/// Checks a repair plan against the key's threshold and party count.
fn check_plan(plan: &RepairPlan, threshold: u8, parties: u8) -> Result<CheckedPlan, EngineError> {
    let invalid = |detail: String| Err(EngineError::InvalidParameters(detail));
    let mut helpers = plan.helpers.clone();
    helpers.sort_unstable();
    helpers.dedup();
    if helpers.len() != plan.helpers.len() {
        return invalid("repair helpers contain a duplicate".into());
    }
    if helpers.len() < usize::from(threshold) {
        return invalid(format!(
            "need at least {threshold} repair helpers, got {}",
            helpers.len()
        ));
    }
    if helpers.contains(&plan.target) {
        return invalid(format!(
            "the repair target {} cannot be a helper",
            plan.target
        ));
    }
    if let Some(outside) = helpers
        .iter()
        .chain([&plan.target])
        .find(|index| index.get() > parties)
    {
        return invalid(format!("repair party {outside} outside 1..={parties}"));
    }
    Ok(CheckedPlan {
        helpers: helpers
            .into_iter()
            .map(dkls_index)
            .collect::<Result<_, _>>()?,
        target: dkls_index(plan.target)?,
    })
}

/// The id the helpers' masks are bound to, from the run's execution id.
fn repair_id(execution_id: &[u8; 32]) -> Vec<u8> {
    [REPAIR_ID_TAG, execution_id].concat()
}

/// Maps a helper's refusal to compute its term.
fn repair_term_error(error: RepairError) -> EngineError {
    match error {
        RepairError::DerivedShare | RepairError::MissingSeed { .. } => EngineError::BadShare(
            format!("this share cannot help repair ({error}); refresh it first"),
        ),
        other => EngineError::InvalidParameters(format!("repair: {other}")),
    }
}

/// SHA-256 of a key's public verification data: threshold, party count, group key
/// and every party's verifying share in index order (compressed points).
fn package_digest(package: &PublicKeyPackage<Curve>) -> Result<[u8; 32], EngineError> {
    let mut hash = Sha256::new();
    hash.update(PACKAGE_DIGEST_TAG);
    hash.update([package.threshold(), package.share_count()]);
    hash.update(package.verifying_key().to_sec1_point(true).as_bytes());
    for index in 1..=package.share_count() {
        let index = DklsIndex::new(index).map_err(|e| internal(&e.to_string()))?;
        let share = package
            .verifying_share(index)
            .ok_or_else(|| internal("verifying share missing"))?;
        hash.update([index.as_u8()]);
        hash.update(share.to_sec1_point(true).as_bytes());
    }
    Ok(hash.finalize().into())
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

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
    DklsIndex::new(index.get()).map_err(|e| EngineError::InvalidParameters(e.to_string()))
}

fn engine_index(index: DklsIndex) -> Result<PartyIndex, EngineError> {
    PartyIndex::new(index.as_u8())
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
