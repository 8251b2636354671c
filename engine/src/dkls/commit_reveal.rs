//! The three rounds keygen and refresh share. Both are a DKG (refresh's
//! polynomials have a zero constant term) that runs, from its fragment round `f`
//! ([`Dkg::FRAGMENT_ROUND`]: 1 in keygen, 2 in refresh):
//!
//! | round   | broadcast (`To::All`)                        | point-to-point (`To::One(j)`)                          |
//! |---------|----------------------------------------------|--------------------------------------------------------|
//! | `f`     | —                                            | polynomial fragment `p_i(j)` (a scalar)                |
//! | `f + 1` | proof commitment, attachment                 | zero-share seed commitment                             |
//! | `f + 2` | echo of round `f + 1`, DLog proof, attachment | zero-share seed decommitment, multiplication (OT) init |
//!
//! The proof of the party's key point is committed in round `f + 1` and revealed
//! in round `f + 2`, after every commitment is in (Protocol 9.1 of ePrint
//! 2023/602). The echo is a digest of every party's round-`f + 1` broadcast; a
//! party that saw different broadcasts than a peer aborts, so all honest parties
//! finish with the same view.
//!
//! Keygen attaches its chain-code commitment and decommitment to the two
//! broadcasts; refresh attaches `()`, which postcard encodes as no bytes.

use std::collections::BTreeMap;

use dkls23::protocols::PartyIndex as DklsIndex;
use dkls23::protocols::dkg::{
    BroadcastDerivationPhase2to4, BroadcastDerivationPhase3to4, ProofCommitment,
    TransmitInitMulPhase3to4, TransmitInitZeroSharePhase2to4, TransmitInitZeroSharePhase3to4,
};
use dkls23::utilities::hashes::HashOutput;
use dkls23::utilities::proofs::DLogProof;
use k256::Scalar;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{
    Curve, check_route, check_sender, decode, direct, dkls_index, encode, internal, wrong_type,
};
use crate::port::{EngineError, Outgoing, PartyIndex, To};
use crate::rounds::{Received, Slot};

/// A state machine built on these rounds.
pub(super) trait Dkg {
    /// Carried by the commit broadcast besides the proof commitment.
    type Commit: Attachment;
    /// Carried by the reveal broadcast besides the echo and the proof.
    type Reveal: Attachment;
    /// What the machine receives before the fragment round, if anything.
    type Prelude;
    /// The round the fragments travel in.
    const FRAGMENT_ROUND: u16;
    /// Domain tag of the echo digest.
    const ECHO_TAG: &'static [u8];
}

/// Data a machine adds to a commit or reveal broadcast.
pub(super) trait Attachment: Serialize + DeserializeOwned + Send {
    /// The sender the attachment names, checked against the envelope's.
    fn sender(&self) -> Option<DklsIndex>;
    /// What of it the echo covers (for a commit attachment).
    fn echoed(&self) -> &[u8] {
        &[]
    }
}

impl Attachment for () {
    fn sender(&self) -> Option<DklsIndex> {
        None
    }
}

impl Attachment for BroadcastDerivationPhase2to4 {
    fn sender(&self) -> Option<DklsIndex> {
        Some(self.sender_index)
    }
    fn echoed(&self) -> &[u8] {
        &self.cc_commitment
    }
}

impl Attachment for BroadcastDerivationPhase3to4 {
    fn sender(&self) -> Option<DklsIndex> {
        Some(self.sender_index)
    }
}

fn check_attachment(attachment: &impl Attachment, from: PartyIndex) -> Result<(), String> {
    attachment
        .sender()
        .map_or(Ok(()), |sender| check_sender(sender, from))
}

/// Commit broadcast: the proof commitment only (the proof is revealed a round later).
#[derive(Serialize, Deserialize)]
pub(super) struct Commit<A> {
    proof_commitment: HashOutput,
    attachment: A,
}

/// Reveal broadcast.
#[derive(Serialize, Deserialize)]
pub(super) struct Reveal<A> {
    /// Digest of all commit broadcasts as the sender saw them.
    echo: [u8; 32],
    proof: DLogProof<Curve>,
    attachment: A,
}

/// Zero-share seed decommitment and multiplication init: the reveal round's
/// point-to-point message.
#[derive(Serialize, Deserialize)]
pub(super) struct InitDirect {
    zero_share: TransmitInitZeroSharePhase3to4,
    multiplication: TransmitInitMulPhase3to4<Curve>,
}

/// A decoded message of a machine built on these rounds.
pub(super) enum Message<D: Dkg> {
    Prelude(D::Prelude),
    Fragment(Zeroizing<Scalar>),
    Commit(Commit<D::Commit>),
    SeedCommit(TransmitInitZeroSharePhase2to4),
    Reveal(Box<Reveal<D::Reveal>>),
    Init(Box<InitDirect>),
}

/// What the reveal round yields for the library's last phase.
pub(super) struct Revealed<D: Dkg> {
    /// Every party's proof (ours included) with the commitment it broadcast before.
    pub proofs: Vec<ProofCommitment<Curve>>,
    /// Every party's commit attachment (ours included).
    pub commit_attachments: BTreeMap<DklsIndex, D::Commit>,
    /// Every party's reveal attachment (ours included).
    pub reveal_attachments: BTreeMap<DklsIndex, D::Reveal>,
    pub seed_commitments: Vec<TransmitInitZeroSharePhase2to4>,
    pub seed_decommitments: Vec<TransmitInitZeroSharePhase3to4>,
    pub multiplication: Vec<TransmitInitMulPhase3to4<Curve>>,
}

/// One party's state across the three rounds.
pub(super) struct CommitReveal<D: Dkg> {
    me: PartyIndex,
    parties: u8,
    own_fragment: Option<Zeroizing<Scalar>>,
    own_proof: Option<ProofCommitment<Curve>>,
    /// Every party's proof commitment (ours included), from the commit round.
    commitments: BTreeMap<DklsIndex, HashOutput>,
    /// Every party's commit attachment (ours included).
    attachments: BTreeMap<DklsIndex, D::Commit>,
    seed_commitments: Vec<TransmitInitZeroSharePhase2to4>,
    /// Our digest of the commit broadcasts.
    echo: [u8; 32],
    own_reveal: Option<D::Reveal>,
}

impl<D: Dkg> CommitReveal<D> {
    const COMMIT_ROUND: u16 = D::FRAGMENT_ROUND + 1;
    const REVEAL_ROUND: u16 = D::FRAGMENT_ROUND + 2;

    pub(super) fn new(me: PartyIndex, parties: u8) -> Self {
        Self {
            me,
            parties,
            own_fragment: None,
            own_proof: None,
            commitments: BTreeMap::new(),
            attachments: BTreeMap::new(),
            seed_commitments: Vec::new(),
            echo: [0; 32],
            own_reveal: None,
        }
    }

    /// Decodes and checks a message of the three rounds.
    pub(super) fn decode(&self, slot: Slot, payload: &[u8]) -> Result<Message<D>, String> {
        let Slot {
            round,
            from,
            broadcast,
        } = slot;
        match (round.checked_sub(D::FRAGMENT_ROUND), broadcast) {
            (Some(0), false) => {
                decode::<Scalar>(payload).map(|f| Message::Fragment(Zeroizing::new(f)))
            }
            (Some(1), true) => {
                let message: Commit<D::Commit> = decode(payload)?;
                check_attachment(&message.attachment, from)?;
                Ok(Message::Commit(message))
            }
            (Some(1), false) => {
                let message: TransmitInitZeroSharePhase2to4 = decode(payload)?;
                check_route(&message.parties, from, self.me)?;
                Ok(Message::SeedCommit(message))
            }
            (Some(2), true) => {
                let message: Reveal<D::Reveal> = decode(payload)?;
                check_attachment(&message.attachment, from)?;
                Ok(Message::Reveal(Box::new(message)))
            }
            (Some(2), false) => {
                let message: InitDirect = decode(payload)?;
                check_route(&message.zero_share.parties, from, self.me)?;
                check_route(&message.multiplication.parties, from, self.me)?;
                Ok(Message::Init(Box::new(message)))
            }
            _ => Err(format!("no such message in round {round}")),
        }
    }

    /// The fragment round's messages: each peer its fragment; ours is kept.
    pub(super) fn send_fragments(
        &mut self,
        fragments: &[Scalar],
    ) -> Result<Vec<Outgoing>, EngineError> {
        if fragments.len() != usize::from(self.parties) {
            return Err(internal("phase 1 produced the wrong number of fragments"));
        }
        let mut outgoing = Vec::with_capacity(fragments.len());
        for (index, fragment) in (1..=self.parties).zip(fragments) {
            if index == self.me.get() {
                self.own_fragment = Some(Zeroizing::new(*fragment));
            } else {
                outgoing.push(Outgoing {
                    round: D::FRAGMENT_ROUND,
                    to: To::One(PartyIndex::new(index)?),
                    payload: encode(fragment)?,
                });
            }
        }
        Ok(outgoing)
    }

    /// Every party's fragment for this party (ours included), in index order.
    pub(super) fn fragments(
        &mut self,
        received: Received<Message<D>>,
    ) -> Result<Zeroizing<Vec<Scalar>>, EngineError> {
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
                Some((from, Message::Fragment(fragment))) if from.get() == index => {
                    fragments.push(*fragment);
                }
                _ => {
                    return Err(internal(&format!(
                        "round-{} fragments out of order",
                        D::FRAGMENT_ROUND
                    )));
                }
            }
        }
        Ok(fragments)
    }

    /// The commit round's messages: our proof commitment with `attachment` to all,
    /// and each peer its zero-share seed commitment.
    pub(super) fn commit(
        &mut self,
        proof_commitment: ProofCommitment<Curve>,
        attachment: D::Commit,
        seeds: &[TransmitInitZeroSharePhase2to4],
    ) -> Result<Vec<Outgoing>, EngineError> {
        let broadcast = encode(&Commit {
            proof_commitment: proof_commitment.commitment,
            attachment: &attachment,
        })?;
        let me = dkls_index(self.me)?;
        self.commitments.insert(me, proof_commitment.commitment);
        self.attachments.insert(me, attachment);
        self.own_proof = Some(proof_commitment);

        let mut outgoing = vec![Outgoing {
            round: Self::COMMIT_ROUND,
            to: To::All,
            payload: broadcast,
        }];
        for message in seeds {
            outgoing.push(direct(
                Self::COMMIT_ROUND,
                message.parties.receiver,
                message,
            )?);
        }
        Ok(outgoing)
    }

    /// Takes in the peers' commit-round messages and computes our echo of them.
    pub(super) fn take_commitments(
        &mut self,
        received: Received<Message<D>>,
    ) -> Result<(), EngineError> {
        for (from, message) in received.broadcasts {
            let Message::Commit(broadcast) = message else {
                return Err(wrong_type(Self::COMMIT_ROUND, true));
            };
            let from = dkls_index(from)?;
            self.commitments.insert(from, broadcast.proof_commitment);
            self.attachments.insert(from, broadcast.attachment);
        }
        for (_, message) in received.direct {
            let Message::SeedCommit(transmit) = message else {
                return Err(wrong_type(Self::COMMIT_ROUND, false));
            };
            self.seed_commitments.push(transmit);
        }
        self.echo = self.commit_digest()?;
        Ok(())
    }

    /// Digest of every party's commit broadcast, in index order (fixed-size fields).
    fn commit_digest(&self) -> Result<[u8; 32], EngineError> {
        let mut hash = Sha256::new();
        hash.update(D::ECHO_TAG);
        for index in 1..=self.parties {
            let index = DklsIndex::new(index).map_err(|e| internal(&e.to_string()))?;
            let (Some(commitment), Some(attachment)) =
                (self.commitments.get(&index), self.attachments.get(&index))
            else {
                return Err(internal(&format!(
                    "round-{} broadcast missing",
                    Self::COMMIT_ROUND
                )));
            };
            hash.update([index.as_u8()]);
            hash.update(commitment);
            hash.update(attachment.echoed());
        }
        Ok(hash.finalize().into())
    }

    /// The reveal round's messages: our echo, proof and `attachment` to all, and
    /// each peer its seed decommitment with its multiplication init.
    pub(super) fn reveal(
        &mut self,
        attachment: D::Reveal,
        seeds: Vec<TransmitInitZeroSharePhase3to4>,
        multiplication: Vec<TransmitInitMulPhase3to4<Curve>>,
    ) -> Result<Vec<Outgoing>, EngineError> {
        let proof = self
            .own_proof
            .as_ref()
            .ok_or_else(|| internal("own proof missing"))?
            .proof
            .clone();
        let broadcast = encode(&Reveal {
            echo: self.echo,
            proof,
            attachment: &attachment,
        })?;
        self.own_reveal = Some(attachment);

        let mut outgoing = vec![Outgoing {
            round: Self::REVEAL_ROUND,
            to: To::All,
            payload: broadcast,
        }];
        let mut multiplication: BTreeMap<DklsIndex, TransmitInitMulPhase3to4<Curve>> =
            multiplication
                .into_iter()
                .map(|m| (m.parties.receiver, m))
                .collect();
        for zero_share in seeds {
            let receiver = zero_share.parties.receiver;
            let multiplication = multiplication
                .remove(&receiver)
                .ok_or_else(|| internal("phase 3 produced unmatched messages"))?;
            outgoing.push(direct(
                Self::REVEAL_ROUND,
                receiver,
                &InitDirect {
                    zero_share,
                    multiplication,
                },
            )?);
        }
        Ok(outgoing)
    }

    /// Takes in the peers' reveal-round messages: checks each echo against ours
    /// and pairs each proof with its commitment.
    pub(super) fn open(
        &mut self,
        received: Received<Message<D>>,
    ) -> Result<Revealed<D>, EngineError> {
        let me = dkls_index(self.me)?;
        let own_proof = self
            .own_proof
            .take()
            .ok_or_else(|| internal("own proof missing"))?;
        let own_reveal = self.own_reveal.take().ok_or_else(|| {
            internal(&format!(
                "own round-{} broadcast missing",
                Self::REVEAL_ROUND
            ))
        })?;

        let mut proofs: BTreeMap<DklsIndex, DLogProof<Curve>> = BTreeMap::new();
        let mut reveal_attachments = BTreeMap::new();
        proofs.insert(me, own_proof.proof);
        reveal_attachments.insert(me, own_reveal);
        for (from, message) in received.broadcasts {
            let Message::Reveal(broadcast) = message else {
                return Err(wrong_type(Self::REVEAL_ROUND, true));
            };
            let Reveal {
                echo,
                proof,
                attachment,
            } = *broadcast;
            if echo != self.echo {
                return Err(EngineError::Aborted {
                    culprit: None,
                    ban: false,
                    detail: format!(
                        "party {from} saw different round-{} broadcasts: a party equivocated, \
                         or {from} misreported",
                        Self::COMMIT_ROUND
                    ),
                });
            }
            let from = dkls_index(from)?;
            proofs.insert(from, proof);
            reveal_attachments.insert(from, attachment);
        }
        let mut seed_decommitments = Vec::new();
        let mut multiplication = Vec::new();
        for (_, message) in received.direct {
            let Message::Init(direct) = message else {
                return Err(wrong_type(Self::REVEAL_ROUND, false));
            };
            let InitDirect {
                zero_share,
                multiplication: mul,
            } = *direct;
            seed_decommitments.push(zero_share);
            multiplication.push(mul);
        }
        Ok(Revealed {
            proofs: self.pair_proofs(proofs)?,
            commit_attachments: std::mem::take(&mut self.attachments),
            reveal_attachments,
            seed_commitments: std::mem::take(&mut self.seed_commitments),
            seed_decommitments,
            multiplication,
        })
    }

    /// Each revealed proof with the commitment its sender broadcast before.
    fn pair_proofs(
        &self,
        proofs: BTreeMap<DklsIndex, DLogProof<Curve>>,
    ) -> Result<Vec<ProofCommitment<Curve>>, EngineError> {
        proofs
            .into_iter()
            .map(|(index, proof)| {
                let commitment = self
                    .commitments
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
}
