//! In-memory protocol driver for tests and benchmarks (cargo feature `testing`).
//!
//! [`Driver`] runs several parties' [`Protocol`]s in this process on one thread,
//! routing each [`Outgoing`] to its recipients as [`Incoming`] in a chosen
//! [`Order`]; it can rewrite messages on their way ([`Driver::intercept`]), hold
//! some back until nothing else can be delivered ([`Driver::hold`]) and start one
//! party late ([`Driver::start_late`]). Every run reports how each party ended
//! ([`Outcome`]) and counts what it exchanged ([`RunStats`]). [`drive`] is the
//! plain case: FIFO, every party must finish, outputs and counts returned.
//!
//! The builders ([`keygen_machines`], [`sign_machines`], [`refresh_machines`]) and
//! the one-call runs ([`keygen`], [`sign`], [`refresh`]) use [`Dkls23Engine`] and
//! panic when it refuses their parameters: they are for tests and benchmarks,
//! where that is a bug of the caller.

use std::collections::{BTreeMap, VecDeque};
use std::sync::OnceLock;

use mpc_events::{MessageHash, Signature};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sha2::{Digest, Sha256};

use crate::{
    Dkls23Engine, EngineError, Incoming, KeyShare, KeygenParams, Outgoing, PartyIndex, Protocol,
    RefreshParams, Refreshed, RepairPlan, ShareSlot, SignParams, Step, ThresholdEngine, To,
};

/// Party index `i`; panics outside `1..=MAX_PARTIES`.
pub fn idx(i: u8) -> PartyIndex {
    PartyIndex::new(i).unwrap_or_else(|error| panic!("{error}"))
}

/// The parties of one run, each with its state machine.
pub type Machines<O> = Vec<(PartyIndex, Box<dyn Protocol<Output = O>>)>;

/// Which queued message is delivered next.
#[derive(Debug, Clone, Copy)]
pub enum Order {
    Fifo,
    Random(u64),
    /// Highest round first: parties receive later rounds before they finish earlier ones.
    LatestRoundFirst,
}

/// How one party's run ended.
#[derive(Debug)]
pub enum Outcome<O> {
    Done(O),
    Failed(EngineError),
    /// Still waiting when no message was left to deliver.
    Stalled,
}

impl<O> Outcome<O> {
    /// The output; panics if the party failed or stalled.
    pub fn done(self) -> O {
        match self {
            Outcome::Done(output) => output,
            Outcome::Failed(error) => panic!("party failed: {error}"),
            Outcome::Stalled => panic!("party stalled"),
        }
    }
    pub fn error(&self) -> Option<&EngineError> {
        match self {
            Outcome::Failed(error) => Some(error),
            _ => None,
        }
    }
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done(_))
    }
}

/// What the runs of a [`Driver`] exchanged, summed over its runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Messages the parties sent (a broadcast counts once).
    pub messages: u64,
    /// Sum of their payload sizes (a broadcast counts once).
    pub payload_bytes: u64,
    /// Deliveries of a round-`r` message to a party that had not yet sent its own
    /// round-`r` messages (it had to buffer it).
    pub early_deliveries: usize,
    /// Runs that finished in the same call that produced their last messages.
    pub done_with_outgoing: usize,
}

/// Rewrites one message on its way to `to`: returns what is actually delivered.
pub type Intercept<'a> = Box<dyn FnMut(PartyIndex, Incoming) -> Vec<Incoming> + 'a>;

/// Picks messages (by recipient and content) to hold back until nothing else can
/// be delivered.
pub type Hold<'a> = Box<dyn FnMut(PartyIndex, &Incoming) -> bool + 'a>;

pub struct Driver<'a> {
    order: Order,
    intercept: Option<Intercept<'a>>,
    hold: Option<Hold<'a>>,
    /// Started only once nothing else can be delivered: its peers' messages
    /// reach it before its `start`.
    late: Option<PartyIndex>,
    stats: RunStats,
}

impl<'a> Driver<'a> {
    pub fn new(order: Order) -> Self {
        Self {
            order,
            intercept: None,
            hold: None,
            late: None,
            stats: RunStats::default(),
        }
    }

    pub fn start_late(mut self, party: PartyIndex) -> Self {
        self.late = Some(party);
        self
    }

    pub fn intercept(mut self, f: impl FnMut(PartyIndex, Incoming) -> Vec<Incoming> + 'a) -> Self {
        self.intercept = Some(Box::new(f));
        self
    }

    /// Messages for which `f` returns true are delivered only once the queue is
    /// otherwise empty (after every message that does not depend on them).
    pub fn hold(mut self, f: impl FnMut(PartyIndex, &Incoming) -> bool + 'a) -> Self {
        self.hold = Some(Box::new(f));
        self
    }

    /// What this driver's runs exchanged so far.
    pub fn stats(&self) -> RunStats {
        self.stats
    }

    /// Runs the parties until no message is left; every party's outcome, by index.
    pub fn run<O>(&mut self, parties: Machines<O>) -> BTreeMap<u8, Outcome<O>> {
        let members: Vec<PartyIndex> = parties.iter().map(|(i, _)| *i).collect();
        let mut machines: BTreeMap<u8, Box<dyn Protocol<Output = O>>> =
            parties.into_iter().map(|(i, p)| (i.get(), p)).collect();
        let mut outcomes: BTreeMap<u8, Outcome<O>> = BTreeMap::new();
        let mut sent_round: BTreeMap<u8, u16> = BTreeMap::new();
        let mut queue: VecDeque<(PartyIndex, Incoming)> = VecDeque::new();
        let mut held: VecDeque<(PartyIndex, Incoming)> = VecDeque::new();
        let mut rng = StdRng::seed_from_u64(match self.order {
            Order::Random(seed) => seed,
            _ => 0,
        });

        let mut to_start: Vec<PartyIndex> = members
            .iter()
            .copied()
            .filter(|m| Some(*m) != self.late)
            .collect();
        to_start.extend(self.late);
        let mut started = 0;
        loop {
            // Start everyone but the late party at once; the late one when idle.
            while started < to_start.len()
                && (Some(to_start[started]) != self.late || queue.is_empty())
            {
                let me = to_start[started];
                started += 1;
                if outcomes.contains_key(&me.get()) {
                    continue;
                }
                let machine = machines.get_mut(&me.get()).expect("a member's machine");
                match machine.start() {
                    Ok(out) => self.route(me, out, &members, &mut queue, &mut sent_round),
                    Err(error) => {
                        outcomes.insert(me.get(), Outcome::Failed(error));
                    }
                }
            }
            // A held message, once released, is not held again.
            let (to, message) = if let Some(next) = self.next(&mut queue, &mut rng) {
                if let Some(hold) = self.hold.as_mut()
                    && hold(next.0, &next.1)
                {
                    held.push_back(next);
                    continue;
                }
                next
            } else if let Some(released) = held.pop_front() {
                released
            } else {
                break;
            };
            if outcomes.contains_key(&to.get()) {
                continue;
            }
            if message.round > sent_round.get(&to.get()).copied().unwrap_or(0) {
                self.stats.early_deliveries += 1;
            }
            let machine = machines.get_mut(&to.get()).expect("a member's machine");
            match machine.handle(message) {
                Ok(Step::Continue(out)) => {
                    self.route(to, out, &members, &mut queue, &mut sent_round)
                }
                Ok(Step::Done { output, outgoing }) => {
                    self.stats.done_with_outgoing += usize::from(!outgoing.is_empty());
                    self.route(to, outgoing, &members, &mut queue, &mut sent_round);
                    outcomes.insert(to.get(), Outcome::Done(output));
                }
                Err(error) => {
                    outcomes.insert(to.get(), Outcome::Failed(error));
                }
            }
        }
        for me in members {
            outcomes.entry(me.get()).or_insert(Outcome::Stalled);
        }
        outcomes
    }

    /// Takes the next queued message in this driver's order.
    fn next(
        &self,
        queue: &mut VecDeque<(PartyIndex, Incoming)>,
        rng: &mut StdRng,
    ) -> Option<(PartyIndex, Incoming)> {
        let next = match self.order {
            Order::Fifo => 0,
            Order::Random(_) if !queue.is_empty() => rng.random_range(0..queue.len()),
            Order::Random(_) => 0,
            Order::LatestRoundFirst => {
                let top = queue.iter().map(|(_, m)| m.round).max()?;
                queue.iter().position(|(_, m)| m.round == top)?
            }
        };
        queue.remove(next)
    }

    fn route(
        &mut self,
        from: PartyIndex,
        out: Vec<Outgoing>,
        members: &[PartyIndex],
        queue: &mut VecDeque<(PartyIndex, Incoming)>,
        sent_round: &mut BTreeMap<u8, u16>,
    ) {
        for message in out {
            self.stats.messages += 1;
            self.stats.payload_bytes += message.payload.len() as u64;
            let slot = sent_round.entry(from.get()).or_insert(0);
            *slot = (*slot).max(message.round);
            let (recipients, broadcast): (Vec<PartyIndex>, bool) = match message.to {
                To::All => (
                    members.iter().copied().filter(|m| *m != from).collect(),
                    true,
                ),
                To::One(to) => {
                    assert!(members.contains(&to), "message to {to}, not in the run");
                    assert_ne!(to, from, "message to self");
                    (vec![to], false)
                }
            };
            for to in recipients {
                let incoming = Incoming {
                    round: message.round,
                    from,
                    broadcast,
                    payload: message.payload.clone(),
                };
                let delivered = match self.intercept.as_mut() {
                    Some(intercept) => intercept(to, incoming),
                    None => vec![incoming],
                };
                queue.extend(delivered.into_iter().map(|m| (to, m)));
            }
        }
    }
}

/// What a run in which every party finished produced.
#[derive(Debug)]
pub struct Run<O> {
    /// Every party's output, in index order.
    pub outputs: Vec<O>,
    pub stats: RunStats,
}

/// Why [`drive`] produced no outputs.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("party {party} failed: {error}")]
    Failed { party: u8, error: EngineError },
    #[error("party {party} stalled")]
    Stalled { party: u8 },
}

/// Runs every party to completion, delivering messages FIFO; a failure (the
/// lowest-indexed failed party, else the lowest-indexed stalled one) is an error.
pub fn drive<O>(machines: Machines<O>) -> Result<Run<O>, DriveError> {
    let mut driver = Driver::new(Order::Fifo);
    let outcomes = driver.run(machines);
    let mut outputs = Vec::with_capacity(outcomes.len());
    let mut stalled = None;
    for (party, outcome) in outcomes {
        match outcome {
            Outcome::Done(output) => outputs.push(output),
            Outcome::Failed(error) => return Err(DriveError::Failed { party, error }),
            Outcome::Stalled => stalled = stalled.or(Some(party)),
        }
    }
    match stalled {
        Some(party) => Err(DriveError::Stalled { party }),
        None => Ok(Run {
            outputs,
            stats: driver.stats(),
        }),
    }
}

/// [`drive`]'s outputs; panics if a party failed or stalled.
fn outputs<O>(machines: Machines<O>) -> Vec<O> {
    drive(machines)
        .unwrap_or_else(|error| panic!("{error}"))
        .outputs
}

/// Keygen machines for parties `1..=n` of a `t`-of-`n` key.
pub fn keygen_machines(t: u8, n: u8, execution_id: [u8; 32]) -> Machines<KeyShare> {
    (1..=n)
        .map(|i| {
            let params = KeygenParams {
                execution_id,
                threshold: t,
                parties: n,
                me: idx(i),
            };
            (idx(i), expect(Dkls23Engine.keygen(params)))
        })
        .collect()
}

/// Signing machines for `signers`, each with its share from `shares`.
pub fn sign_machines(
    shares: &[KeyShare],
    signers: &[u8],
    execution_id: [u8; 32],
    hash: MessageHash,
) -> Machines<Signature> {
    let signer_indices: Vec<PartyIndex> = signers.iter().map(|i| idx(*i)).collect();
    signers
        .iter()
        .map(|i| {
            let share = shares
                .iter()
                .find(|s| s.index.get() == *i)
                .unwrap_or_else(|| panic!("no share of signer {i}"));
            let params = SignParams {
                execution_id,
                signers: signer_indices.clone(),
                message_hash: hash,
            };
            (idx(*i), expect(Dkls23Engine.sign(share, params)))
        })
        .collect()
}

/// One 2-of-3 key per process, made by [`keygen`] on first use (keygen costs about
/// 0.7 s of CPU per pair of parties).
pub fn two_of_three() -> &'static [KeyShare] {
    static SHARES: OnceLock<Vec<KeyShare>> = OnceLock::new();
    SHARES.get_or_init(|| keygen(2, 3))
}

/// The SHA-256 of `text` as the hash to sign.
pub fn hash(text: &str) -> MessageHash {
    MessageHash::from_bytes(Sha256::digest(text.as_bytes()).into())
}

/// Runs keygen in order and returns every party's share, by index.
pub fn keygen(t: u8, n: u8) -> Vec<KeyShare> {
    outputs(keygen_machines(t, n, [7; 32]))
}

/// Runs signing in order; every signer must produce the same signature.
pub fn sign(shares: &[KeyShare], signers: &[u8], hash: MessageHash) -> Signature {
    let signatures = outputs(sign_machines(shares, signers, [9; 32], hash));
    assert!(
        signatures.windows(2).all(|w| w[0] == w[1]),
        "signers disagree"
    );
    signatures[0]
}

/// The public facts of `share`: where its holder starts after losing it.
pub fn slot_of(share: &KeyShare) -> ShareSlot {
    ShareSlot {
        engine: share.engine.clone(),
        public_key: share.public_key,
        index: share.index,
        threshold: share.threshold,
        parties: share.parties,
    }
}

/// Refresh machines for one run: every holder runs `refresh`; with `target`, that
/// party runs `recover` and `helpers` (in the given order) rebuild its share first.
pub fn refresh_machines(
    holders: &[&KeyShare],
    target: Option<ShareSlot>,
    helpers: &[u8],
    execution_id: [u8; 32],
) -> Machines<Refreshed> {
    let repair = target.as_ref().map(|slot| RepairPlan {
        helpers: helpers.iter().map(|i| idx(*i)).collect(),
        target: slot.index,
    });
    let params = || RefreshParams {
        execution_id,
        repair: repair.clone(),
    };
    let mut machines: Machines<Refreshed> = holders
        .iter()
        .map(|share| (share.index, expect(Dkls23Engine.refresh(share, params()))))
        .collect();
    if let Some(slot) = target {
        machines.push((slot.index, expect(Dkls23Engine.recover(slot, params()))));
    }
    machines.sort_by_key(|(index, _)| *index);
    machines
}

/// Runs a refresh in order and returns every party's output, by index; all must
/// report the same digest.
pub fn refresh(holders: &[&KeyShare], target: Option<ShareSlot>, helpers: &[u8]) -> Vec<Refreshed> {
    let refreshed = outputs(refresh_machines(holders, target, helpers, [11; 32]));
    assert!(
        refreshed.windows(2).all(|w| w[0].digest == w[1].digest),
        "parties disagree on the refreshed public key package"
    );
    refreshed
}

/// Signing with these shares (one per signer) must fail: some signer errs and none
/// produces a signature.
pub fn assert_cannot_sign(shares: &[&KeyShare], hash: MessageHash) {
    let signers: Vec<u8> = shares.iter().map(|s| s.index.get()).collect();
    let signer_indices: Vec<PartyIndex> = signers.iter().map(|i| idx(*i)).collect();
    let machines = shares
        .iter()
        .map(|share| {
            let params = SignParams {
                execution_id: [13; 32],
                signers: signer_indices.clone(),
                message_hash: hash,
            };
            (share.index, expect(Dkls23Engine.sign(share, params)))
        })
        .collect();
    let outcomes = Driver::new(Order::Fifo).run(machines);
    assert!(
        outcomes.values().all(|outcome| !outcome.is_done()),
        "signers {signers:?} produced a signature"
    );
    assert!(
        outcomes.values().any(|outcome| outcome.error().is_some()),
        "signers {signers:?} stalled without an error"
    );
}

/// The machine; panics with the engine's reason if it refused the parameters.
fn expect<O>(
    machine: Result<Box<dyn Protocol<Output = O>>, EngineError>,
) -> Box<dyn Protocol<Output = O>> {
    machine.unwrap_or_else(|error| panic!("the engine refused the run: {error}"))
}
