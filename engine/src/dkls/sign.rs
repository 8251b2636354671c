//! Signing: Protocol 3.6 of DKLs23 in three rounds, two point-to-point rounds
//! (multiplication) and one broadcast of `(u, w)`. The assembled signature is
//! low-S, carries its recovery id, and is verified with `k256` before it is
//! returned.

use std::collections::BTreeMap;

use dkls23::protocols::signing::{
    Broadcast3to4, KeepPhase1to2, KeepPhase2to3, SignData, TransmitPhase1to2, TransmitPhase2to3,
    UniqueKeep1to2, UniqueKeep2to3,
};
use dkls23::protocols::{Party, PartyIndex as DklsIndex};
use mpc_events::{MessageHash, PublicKey, Signature};

use super::{
    Curve, aborted, check_route, decode, decode_share, direct, dkls_index, encode, internal,
    invalid, wrong_type,
};
use crate::port::{EngineError, KeyShare, Outgoing, ParameterError, PartyIndex, SignParams, To};
use crate::rounds::{Received, RoundMachine, RoundStep, Rounds, Slot};

/// Checks the signer set against the share and builds this party's signing run.
pub(super) fn start(
    share: &KeyShare,
    params: SignParams,
) -> Result<RoundMachine<Sign>, EngineError> {
    let party = decode_share(share)?.party;
    let me = share.index;
    let mut signers = params.signers.clone();
    signers.sort_unstable();
    signers.dedup();
    if signers.len() != params.signers.len() {
        return Err(invalid(ParameterError::DuplicateSigner));
    }
    if signers.len() != usize::from(share.threshold) {
        return Err(invalid(ParameterError::SignerCount {
            threshold: share.threshold,
            got: signers.len(),
        }));
    }
    if !signers.contains(&me) {
        return Err(invalid(ParameterError::NotASigner { me }));
    }
    if let Some(outside) = signers.iter().find(|s| s.get() > share.parties) {
        return Err(invalid(ParameterError::SignerOutOfRange {
            signer: *outside,
            parties: share.parties,
        }));
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
    Ok(RoundMachine::new(sign, me, signers))
}

pub(super) enum SignMsg {
    First(Box<TransmitPhase1to2>),
    Second(Box<TransmitPhase2to3<Curve>>),
    Third(Broadcast3to4<Curve>),
}

pub(super) struct Sign {
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
                return Err(wrong_type(1, false));
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
            .map(|message| direct(2, message.parties.receiver, message))
            .collect()
    }

    fn round2(&mut self, received: Received<SignMsg>) -> Result<Vec<Outgoing>, EngineError> {
        let mut messages = Vec::with_capacity(received.direct.len());
        for (_, message) in received.direct {
            let SignMsg::Second(message) = message else {
                return Err(wrong_type(2, false));
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
                return Err(wrong_type(3, true));
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
        // Every signature the adapter outputs passes the coordinator's own check.
        if !mpc_crypto::verify_signature(&self.public_key, &self.message_hash, &signature) {
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
    const STEPS: &'static [RoundStep<Self>] = &[Self::round1, Self::round2];

    fn carries(round: u16, broadcast: bool) -> bool {
        match round {
            1 | 2 => !broadcast,
            3 => broadcast,
            _ => false,
        }
    }

    fn decode(&self, slot: Slot, payload: &[u8]) -> Result<SignMsg, String> {
        let Slot {
            round,
            from,
            broadcast,
        } = slot;
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
            .map(|message| direct(1, message.parties.receiver, message))
            .collect()
    }

    fn finish(&mut self, received: Received<SignMsg>) -> Result<Signature, EngineError> {
        self.round3(received)
    }
}
