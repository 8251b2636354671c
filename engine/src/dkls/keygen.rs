//! Distributed key generation: the library's four-phase DKG over the shared
//! fragment, commit and reveal rounds (1 to 3), with the chain-code commitment
//! attached to the commit broadcast and its decommitment to the reveal.

use std::convert::Infallible;

use dkls23::DkgSession;
use dkls23::protocols::Parameters;
use dkls23::protocols::dkg::{BroadcastDerivationPhase2to4, BroadcastDerivationPhase3to4};
use k256::elliptic_curve::sec1::ToSec1Point;
use mpc_events::PublicKey;
use zeroize::Zeroizing;

use super::commit_reveal::{CommitReveal, Dkg, Message, Revealed};
use super::{
    Curve, ENGINE, StoredShare, aborted, all_indices, check_shape, dkls_index, encode_secret,
    internal, invalid,
};
use crate::port::{EngineError, KeyShare, KeygenParams, Outgoing, ParameterError, PartyIndex};
use crate::rounds::{Received, RoundMachine, RoundStep, Rounds, Slot};

const SESSION_TAG: &[u8] = b"mpc-engine/dkls23/keygen/v1";
const ECHO_TAG: &[u8] = b"mpc-engine/dkls23/keygen/round2-echo/v1";

/// Checks the parameters and builds this party's keygen run.
pub(super) fn start(params: KeygenParams) -> Result<RoundMachine<Keygen>, EngineError> {
    let KeygenParams {
        execution_id,
        threshold,
        parties,
        me,
    } = params;
    check_shape(threshold, parties, me)?;
    let parameters = Parameters::new(threshold, parties)
        .map_err(|_| invalid(ParameterError::Threshold { threshold, parties }))?;
    let session_id = [SESSION_TAG, &[threshold, parties], &execution_id].concat();
    let peers = all_indices(parties)?;
    let keygen = Keygen {
        me,
        threshold,
        parties,
        session: Some(DkgSession::new(parameters, dkls_index(me)?, session_id)),
        rounds: CommitReveal::new(me, parties),
    };
    Ok(RoundMachine::new(keygen, me, peers))
}

pub(super) struct Keygen {
    me: PartyIndex,
    threshold: u8,
    parties: u8,
    /// Consumed by phase 4.
    session: Option<DkgSession<Curve>>,
    rounds: CommitReveal<Keygen>,
}

impl Dkg for Keygen {
    type Commit = BroadcastDerivationPhase2to4;
    type Reveal = BroadcastDerivationPhase3to4;
    type Prelude = Infallible;
    const FRAGMENT_ROUND: u16 = 1;
    const ECHO_TAG: &'static [u8] = ECHO_TAG;
}

type KeygenMsg = Message<Keygen>;

impl Keygen {
    fn session(&mut self) -> Result<&mut DkgSession<Curve>, EngineError> {
        self.session
            .as_mut()
            .ok_or_else(|| internal("keygen session already consumed"))
    }

    fn round1(&mut self, received: Received<KeygenMsg>) -> Result<Vec<Outgoing>, EngineError> {
        let fragments = self.rounds.fragments(received)?;
        let me = dkls_index(self.me)?;
        let (proof_commitment, zero_transmit, derivation) = self
            .session()?
            .phase2(&fragments)
            .map_err(|a| aborted(me, a))?;
        self.rounds
            .commit(proof_commitment, derivation, &zero_transmit)
    }

    fn round2(&mut self, received: Received<KeygenMsg>) -> Result<Vec<Outgoing>, EngineError> {
        self.rounds.take_commitments(received)?;
        let me = dkls_index(self.me)?;
        let (zero_transmit, mul_transmit, derivation) =
            self.session()?.phase3().map_err(|a| aborted(me, a))?;
        self.rounds.reveal(derivation, zero_transmit, mul_transmit)
    }

    fn round3(&mut self, received: Received<KeygenMsg>) -> Result<KeyShare, EngineError> {
        let me = dkls_index(self.me)?;
        let revealed: Revealed<Self> = self.rounds.open(received)?;
        let session = self
            .session
            .take()
            .ok_or_else(|| internal("keygen session already consumed"))?;
        let (party, package) = session
            .phase4(
                &revealed.proofs,
                &revealed.seed_commitments,
                &revealed.seed_decommitments,
                &revealed.multiplication,
                &revealed.commit_attachments,
                &revealed.reveal_attachments,
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
    const STEPS: &'static [RoundStep<Self>] = &[Self::round1, Self::round2];

    fn carries(round: u16, broadcast: bool) -> bool {
        match round {
            1 => !broadcast,
            2 | 3 => true,
            _ => false,
        }
    }

    fn decode(&self, slot: Slot, payload: &[u8]) -> Result<KeygenMsg, String> {
        self.rounds.decode(slot, payload)
    }

    fn begin(&mut self) -> Result<Vec<Outgoing>, EngineError> {
        let fragments = Zeroizing::new(self.session()?.phase1());
        self.rounds.send_fragments(&fragments)
    }

    fn finish(&mut self, received: Received<KeygenMsg>) -> Result<KeyShare, EngineError> {
        self.round3(received)
    }
}
