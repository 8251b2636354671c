//! Round bookkeeping shared by engine adapters.
//!
//! An adapter describes its protocol as numbered communication rounds ([`Rounds`]):
//! which rounds carry broadcasts and which carry point-to-point messages (and, when
//! not every peer sends in a round, from whom it expects them), how to
//! decode a payload, and what to do once every peer's messages of a round are in
//! (one [`RoundStep`] per round before the last, then [`Rounds::finish`]).
//! [`RoundMachine`] turns that into a [`Protocol`]: it checks the envelope (sender,
//! round, broadcast flag), ignores exact duplicates, reports a second, different
//! payload for the same round, sender and kind as equivocation, buffers messages of
//! later rounds until their round comes, and ends the run on the first error.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::port::{EngineError, Incoming, Outgoing, PartyIndex, Protocol, Step};

/// The messages of one completed round, each list in ascending sender order.
pub(crate) struct Received<M> {
    pub broadcasts: Vec<(PartyIndex, M)>,
    pub direct: Vec<(PartyIndex, M)>,
}

/// Where a message belongs: its round, its sender, and whether it was broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Slot {
    pub round: u16,
    pub from: PartyIndex,
    pub broadcast: bool,
}

/// What a party does once every expected message of a round before the last is
/// in: yields the next round's messages.
pub(crate) type RoundStep<R> =
    fn(&mut R, Received<<R as Rounds>::Msg>) -> Result<Vec<Outgoing>, EngineError>;

/// One party's side of a protocol, round by round.
pub(crate) trait Rounds: Send + Sized + 'static {
    type Msg: Send + 'static;
    type Output;

    /// The steps of rounds `1..LAST`, in order: rounds are numbered `1..=LAST`,
    /// where `LAST` is one more than the number of steps.
    const STEPS: &'static [RoundStep<Self>];

    /// Whether `round` carries messages of this kind (broadcast or point-to-point).
    fn carries(round: u16, broadcast: bool) -> bool;

    /// Whether this party expects the message of `slot` (by default, from every
    /// peer in every round that carries its kind). A round completes once every
    /// expected message is in; any other message is [`EngineError::Unexpected`].
    fn expects(&self, slot: Slot) -> bool {
        Self::carries(slot.round, slot.broadcast)
    }

    /// Decodes and checks one payload; `Err` explains why it is malformed.
    fn decode(&self, slot: Slot, payload: &[u8]) -> Result<Self::Msg, String>;

    /// Produces the round-1 messages.
    fn begin(&mut self) -> Result<Vec<Outgoing>, EngineError>;

    /// Runs once every expected message of the last round is in: yields the output.
    fn finish(&mut self, received: Received<Self::Msg>) -> Result<Self::Output, EngineError>;
}

enum State {
    NotStarted,
    Awaiting(u16),
    Over,
}

/// A [`Protocol`] built from [`Rounds`].
pub(crate) struct RoundMachine<R: Rounds> {
    rounds: R,
    me: PartyIndex,
    peers: Vec<PartyIndex>,
    /// SHA-256 of every payload accepted so far, to tell duplicates from equivocation.
    seen: BTreeMap<Slot, [u8; 32]>,
    /// Decoded messages of rounds not yet completed.
    pending: BTreeMap<Slot, R::Msg>,
    state: State,
}

impl<R: Rounds> RoundMachine<R> {
    const LAST: u16 = R::STEPS.len() as u16 + 1;

    /// `peers` are the other parties of the run (without `me`).
    pub(crate) fn new(rounds: R, me: PartyIndex, mut peers: Vec<PartyIndex>) -> Self {
        peers.sort_unstable();
        peers.dedup();
        peers.retain(|peer| *peer != me);
        Self {
            rounds,
            me,
            peers,
            seen: BTreeMap::new(),
            pending: BTreeMap::new(),
            state: State::NotStarted,
        }
    }

    fn begin(&mut self) -> Result<Vec<Outgoing>, EngineError> {
        let mut outgoing = self.rounds.begin()?;
        self.state = State::Awaiting(1);
        // Peers' messages that arrived before `start` may complete round 1 already.
        match self.advance()? {
            Step::Continue(more) => {
                outgoing.extend(more);
                Ok(outgoing)
            }
            Step::Done { .. } => Err(EngineError::Aborted {
                culprit: None,
                ban: false,
                detail: "messages received before this party started completed the whole run"
                    .into(),
            }),
        }
    }

    fn receive(&mut self, message: Incoming) -> Result<Step<R::Output>, EngineError> {
        let Incoming {
            round,
            from,
            broadcast,
            payload,
        } = message;
        // Point-to-point payloads are secret: wipe our copy once decoded.
        let payload = Zeroizing::new(payload);
        let unexpected = |detail: String| EngineError::Unexpected {
            from,
            round,
            detail,
        };
        if from == self.me {
            return Err(unexpected("message claims to come from this party".into()));
        }
        if !self.peers.contains(&from) {
            return Err(unexpected(format!("party {from} is not in this run")));
        }
        if round == 0 || round > Self::LAST {
            return Err(unexpected(format!(
                "the protocol has rounds 1 to {}",
                Self::LAST
            )));
        }
        if !R::carries(round, broadcast) {
            let kind = if broadcast {
                "broadcast"
            } else {
                "point-to-point"
            };
            return Err(unexpected(format!("round {round} has no {kind} messages")));
        }
        let slot = Slot {
            round,
            from,
            broadcast,
        };
        if !self.rounds.expects(slot) {
            return Err(unexpected(format!(
                "party {from} sends this party no message of this kind in round {round}"
            )));
        }
        let digest: [u8; 32] = Sha256::digest(payload.as_slice()).into();
        if let Some(previous) = self.seen.get(&slot) {
            return if *previous == digest {
                Ok(Step::Continue(Vec::new()))
            } else {
                Err(EngineError::Equivocation { from, round })
            };
        }
        let decoded =
            self.rounds
                .decode(slot, &payload)
                .map_err(|detail| EngineError::Malformed {
                    from,
                    round,
                    detail,
                })?;
        self.seen.insert(slot, digest);
        self.pending.insert(slot, decoded);
        self.advance()
    }

    /// Completes every round whose messages are all in.
    fn advance(&mut self) -> Result<Step<R::Output>, EngineError> {
        let mut outgoing = Vec::new();
        while let State::Awaiting(round) = self.state {
            if !self.round_ready(round) {
                break;
            }
            let received = self.take_round(round);
            match R::STEPS.get(usize::from(round - 1)) {
                Some(step) => {
                    outgoing.extend(step(&mut self.rounds, received)?);
                    self.state = State::Awaiting(round + 1);
                }
                None => {
                    let output = self.rounds.finish(received)?;
                    self.state = State::Over;
                    return Ok(Step::Done { output, outgoing });
                }
            }
        }
        Ok(Step::Continue(outgoing))
    }

    fn round_ready(&self, round: u16) -> bool {
        round <= Self::LAST
            && [false, true].into_iter().all(|broadcast| {
                self.peers.iter().all(|peer| {
                    let slot = Slot {
                        round,
                        from: *peer,
                        broadcast,
                    };
                    !self.rounds.expects(slot) || self.pending.contains_key(&slot)
                })
            })
    }

    fn take_round(&mut self, round: u16) -> Received<R::Msg> {
        let mut take = |broadcast: bool| {
            self.peers
                .iter()
                .filter_map(|peer| {
                    let slot = Slot {
                        round,
                        from: *peer,
                        broadcast,
                    };
                    self.pending.remove(&slot).map(|message| (*peer, message))
                })
                .collect()
        };
        Received {
            direct: take(false),
            broadcasts: take(true),
        }
    }
}

impl<R: Rounds> Protocol for RoundMachine<R> {
    type Output = R::Output;

    fn start(&mut self) -> Result<Vec<Outgoing>, EngineError> {
        if !matches!(self.state, State::NotStarted) {
            return Err(EngineError::Finished);
        }
        let result = self.begin();
        if result.is_err() {
            self.state = State::Over;
        }
        result
    }

    fn handle(&mut self, message: Incoming) -> Result<Step<R::Output>, EngineError> {
        if matches!(self.state, State::Over) {
            return Err(EngineError::Finished);
        }
        let result = self.receive(message);
        if result.is_err() {
            self.state = State::Over;
        }
        result
    }
}
