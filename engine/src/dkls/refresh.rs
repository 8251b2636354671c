//! Complete refresh, optionally rebuilding a lost share first (repair): the
//! target's round 1 assembles its share from the helpers' terms, then the shared
//! fragment, commit and reveal rounds (2 to 4) re-randomize every share, and each
//! party updates the key's public package with every party's proof.

use std::collections::BTreeMap;

use dkls23::protocols::dkg::{
    KeepInitMulPhase3to4, KeepInitZeroSharePhase2to3, KeepInitZeroSharePhase3to4,
};
use dkls23::protocols::repair::{RepairError, RepairTerm, repair_assemble};
use dkls23::protocols::{Abort, Party, PartyIndex as DklsIndex, PublicKeyPackage};
use k256::Scalar;
use k256::elliptic_curve::sec1::ToSec1Point;
use mpc_events::PublicKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::commit_reveal::{CommitReveal, Dkg, Message, Revealed};
use super::{
    Curve, ENGINE, StoredShare, aborted, all_indices, check_sender, check_shape, decode,
    decode_share, direct, dkls_index, encode, encode_secret, internal, invalid, wrong_type,
};
use crate::port::{
    EngineError, KeyShare, Outgoing, ParameterError, PartyIndex, RefreshParams, Refreshed,
    RepairPlan, ShareSlot,
};
use crate::rounds::{Received, RoundMachine, RoundStep, Rounds, Slot};

const SESSION_TAG: &[u8] = b"mpc-engine/dkls23/refresh/v1";
const REPAIR_ID_TAG: &[u8] = b"mpc-engine/dkls23/repair/v1";
const ECHO_TAG: &[u8] = b"mpc-engine/dkls23/refresh/round3-echo/v1";
const PACKAGE_DIGEST_TAG: &[u8] = b"mpc-engine/dkls23/public-key-package/v1";

/// Checks the repair plan, if any, and builds this share holder's refresh run (a
/// helper's computes its repair term now).
pub(super) fn start(
    share: &KeyShare,
    params: RefreshParams,
) -> Result<RoundMachine<Refresh>, EngineError> {
    let StoredShare { party, package } = decode_share(share)?;
    let me = share.index;
    let plan = params
        .repair
        .as_ref()
        .map(|plan| check_plan(plan, share.threshold, share.parties))
        .transpose()?;
    let term = match &plan {
        Some(plan) if plan.target == dkls_index(me)? => {
            return Err(invalid(ParameterError::TargetRefreshes { me }));
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
    Ok(RoundMachine::new(refresh, me, all_indices(share.parties)?))
}

/// Checks the slot and the repair plan naming this party as target, and builds the
/// target's run.
pub(super) fn recover(
    slot: ShareSlot,
    params: RefreshParams,
) -> Result<RoundMachine<Refresh>, EngineError> {
    let ShareSlot {
        engine,
        public_key,
        index: me,
        threshold,
        parties,
    } = slot;
    if engine != ENGINE {
        return Err(invalid(ParameterError::WrongEngine {
            engine,
            expected: ENGINE,
        }));
    }
    check_shape(threshold, parties, me)?;
    let Some(plan) = params.repair.as_ref() else {
        return Err(invalid(ParameterError::NoRepairPlan));
    };
    if plan.target != me {
        return Err(invalid(ParameterError::NotTheTarget {
            target: plan.target,
            me,
        }));
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
    Ok(RoundMachine::new(refresh, me, all_indices(parties)?))
}

/// A checked repair plan in the library's terms: helpers sorted and distinct.
struct CheckedPlan {
    helpers: Vec<DklsIndex>,
    target: DklsIndex,
}

/// Round-1 message, helper to target.
#[derive(Serialize, Deserialize)]
pub(super) struct RepairMessage {
    term: RepairTerm<Curve>,
    /// The helper's public key package, which the target checks the terms against.
    package: PublicKeyPackage<Curve>,
}

type RefreshMsg = Message<Refresh>;

/// The public facts a refresh run starts from.
struct RefreshStart {
    me: PartyIndex,
    threshold: u8,
    parties: u8,
    public_key: PublicKey,
    execution_id: [u8; 32],
    plan: Option<CheckedPlan>,
}

pub(super) struct Refresh {
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
    rounds: CommitReveal<Refresh>,
    correction: Option<Zeroizing<Scalar>>,
    zero_keep2: BTreeMap<DklsIndex, KeepInitZeroSharePhase2to3>,
    zero_keep3: BTreeMap<DklsIndex, KeepInitZeroSharePhase3to4>,
    mul_keep: BTreeMap<DklsIndex, KeepInitMulPhase3to4<Curve>>,
}

impl Dkg for Refresh {
    type Commit = ();
    type Reveal = ();
    type Prelude = Box<RepairMessage>;
    const FRAGMENT_ROUND: u16 = 2;
    const ECHO_TAG: &'static [u8] = ECHO_TAG;
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
            refresh_sid: [SESSION_TAG, &[threshold, parties], &execution_id].concat(),
            plan,
            party,
            package,
            term,
            rounds: CommitReveal::new(me, parties),
            correction: None,
            zero_keep2: BTreeMap::new(),
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
            let Message::Prelude(message) = message else {
                return Err(wrong_type(1, false));
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
        self.rounds.send_fragments(&fragments)
    }

    fn round2(&mut self, received: Received<RefreshMsg>) -> Result<Vec<Outgoing>, EngineError> {
        let fragments = self.rounds.fragments(received)?;
        let (correction, proof_commitment, zero_keep, zero_transmit) = self
            .party()?
            .refresh_complete_phase2(&self.refresh_sid, &fragments);
        self.correction = Some(Zeroizing::new(correction));
        self.zero_keep2 = zero_keep;
        self.rounds.commit(proof_commitment, (), &zero_transmit)
    }

    fn round3(&mut self, received: Received<RefreshMsg>) -> Result<Vec<Outgoing>, EngineError> {
        self.rounds.take_commitments(received)?;
        let (zero_keep, zero_transmit, mul_keep, mul_transmit) = self
            .party()?
            .refresh_complete_phase3(&self.refresh_sid, &self.zero_keep2);
        self.zero_keep3 = zero_keep;
        self.mul_keep = mul_keep;
        self.rounds.reveal((), zero_transmit, mul_transmit)
    }

    fn round4(&mut self, received: Received<RefreshMsg>) -> Result<Refreshed, EngineError> {
        let me = dkls_index(self.me)?;
        let revealed: Revealed<Self> = self.rounds.open(received)?;
        let correction = self
            .correction
            .take()
            .ok_or_else(|| internal("correction missing"))?;

        let party = self
            .party()?
            .refresh_complete_phase4(
                &self.refresh_sid,
                &correction,
                &revealed.proofs,
                &self.zero_keep3,
                &revealed.seed_commitments,
                &revealed.seed_decommitments,
                &self.mul_keep,
                &revealed.multiplication,
            )
            .map_err(|a| aborted(me, a))?;
        let package = self
            .package
            .as_ref()
            .ok_or_else(|| internal("public key package missing"))?
            .refresh(&self.refresh_sid, &revealed.proofs)
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
    const STEPS: &'static [RoundStep<Self>] = &[Self::round1, Self::round2, Self::round3];

    fn carries(round: u16, broadcast: bool) -> bool {
        match round {
            1 | 2 => !broadcast,
            3 | 4 => true,
            _ => false,
        }
    }

    /// Round 1 carries only the helpers' terms to the target.
    fn expects(&self, slot: Slot) -> bool {
        if slot.round == 1 {
            !slot.broadcast
                && self.is_target()
                && self.plan.as_ref().is_some_and(|plan| {
                    plan.helpers
                        .iter()
                        .any(|helper| helper.as_u8() == slot.from.get())
                })
        } else {
            Self::carries(slot.round, slot.broadcast)
        }
    }

    fn decode(&self, slot: Slot, payload: &[u8]) -> Result<RefreshMsg, String> {
        match (slot.round, slot.broadcast) {
            (1, false) => {
                let message: RepairMessage = decode(payload)?;
                check_sender(message.term.helper, slot.from)?;
                if message.term.target.as_u8() != self.me.get() {
                    return Err(format!(
                        "repair term is for {}, not for {}",
                        message.term.target, self.me
                    ));
                }
                Ok(Message::Prelude(Box::new(message)))
            }
            _ => self.rounds.decode(slot, payload),
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
        let target = term.target;
        Ok(vec![direct(1, target, &RepairMessage { term, package })?])
    }

    fn finish(&mut self, received: Received<RefreshMsg>) -> Result<Refreshed, EngineError> {
        self.round4(received)
    }
}

/// Checks a repair plan against the key's threshold and party count.
fn check_plan(plan: &RepairPlan, threshold: u8, parties: u8) -> Result<CheckedPlan, EngineError> {
    let mut helpers = plan.helpers.clone();
    helpers.sort_unstable();
    helpers.dedup();
    if helpers.len() != plan.helpers.len() {
        return Err(invalid(ParameterError::DuplicateHelper));
    }
    if helpers.len() < usize::from(threshold) {
        return Err(invalid(ParameterError::TooFewHelpers {
            threshold,
            got: helpers.len(),
        }));
    }
    if helpers.contains(&plan.target) {
        return Err(invalid(ParameterError::TargetIsHelper {
            target: plan.target,
        }));
    }
    if let Some(outside) = helpers
        .iter()
        .chain([&plan.target])
        .find(|index| index.get() > parties)
    {
        return Err(invalid(ParameterError::RepairPartyOutOfRange {
            index: *outside,
            parties,
        }));
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
        other => invalid(ParameterError::Repair(other.to_string())),
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
