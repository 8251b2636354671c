//! In-memory driver: runs several parties' [`Protocol`]s by routing each
//! [`Outgoing`] to its recipients as [`Incoming`], in a chosen order.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;

use mpc_engine::{
    Dkls23Engine, EngineError, Incoming, KeyShare, KeygenParams, Outgoing, PartyIndex, Protocol,
    RefreshParams, Refreshed, RepairPlan, ShareSlot, SignParams, Step, ThresholdEngine, To,
};
use mpc_events::{MessageHash, Signature};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

pub fn idx(i: u8) -> PartyIndex {
    PartyIndex::new(i).unwrap()
}

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
    /// Deliveries of a round-`r` message to a party that had not yet sent its own
    /// round-`r` messages (it had to buffer it).
    pub early_deliveries: usize,
    /// Runs that finished in the same call that produced their last messages.
    pub done_with_outgoing: usize,
}

impl<'a> Driver<'a> {
    pub fn new(order: Order) -> Self {
        Self {
            order,
            intercept: None,
            hold: None,
            late: None,
            early_deliveries: 0,
            done_with_outgoing: 0,
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

    pub fn run<O>(
        &mut self,
        parties: Vec<(PartyIndex, Box<dyn Protocol<Output = O>>)>,
    ) -> BTreeMap<u8, Outcome<O>> {
        let members: Vec<PartyIndex> = parties.iter().map(|(i, _)| *i).collect();
        let mut machines: BTreeMap<u8, Box<dyn Protocol<Output = O>>> =
            parties.into_iter().map(|(i, p)| (i.get(), p)).collect();
        let mut outcomes: BTreeMap<u8, Outcome<O>> = BTreeMap::new();
        let mut sent_round: BTreeMap<u8, u16> = BTreeMap::new();
        let mut queue: Vec<(PartyIndex, Incoming)> = Vec::new();
        let mut held: Vec<(PartyIndex, Incoming)> = Vec::new();
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
                let machine = machines.get_mut(&me.get()).unwrap();
                match machine.start() {
                    Ok(out) => self.route(me, out, &members, &mut queue, &mut sent_round),
                    Err(error) => {
                        outcomes.insert(me.get(), Outcome::Failed(error));
                    }
                }
            }
            if queue.is_empty() && held.is_empty() {
                break;
            }
            // A held message, once released, is not held again.
            let (to, message) = if queue.is_empty() {
                held.remove(0)
            } else {
                let next = match self.order {
                    Order::Fifo => 0,
                    Order::Random(_) => rng.random_range(0..queue.len()),
                    Order::LatestRoundFirst => {
                        let top = queue.iter().map(|(_, m)| m.round).max().unwrap();
                        queue.iter().position(|(_, m)| m.round == top).unwrap()
                    }
                };
                let (to, message) = queue.remove(next);
                if let Some(hold) = self.hold.as_mut()
                    && hold(to, &message)
                {
                    held.push((to, message));
                    continue;
                }
                (to, message)
            };
            if outcomes.contains_key(&to.get()) {
                continue;
            }
            if message.round > sent_round.get(&to.get()).copied().unwrap_or(0) {
                self.early_deliveries += 1;
            }
            let machine = machines.get_mut(&to.get()).unwrap();
            match machine.handle(message) {
                Ok(Step::Continue(out)) => {
                    self.route(to, out, &members, &mut queue, &mut sent_round)
                }
                Ok(Step::Done { output, outgoing }) => {
                    self.done_with_outgoing += usize::from(!outgoing.is_empty());
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

    fn route(
        &mut self,
        from: PartyIndex,
        out: Vec<Outgoing>,
        members: &[PartyIndex],
        queue: &mut Vec<(PartyIndex, Incoming)>,
        sent_round: &mut BTreeMap<u8, u16>,
    ) {
        for message in out {
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

pub fn keygen_machines(
    t: u8,
    n: u8,
    execution_id: [u8; 32],
) -> Vec<(PartyIndex, Box<dyn Protocol<Output = KeyShare>>)> {
    (1..=n)
        .map(|i| {
            let params = KeygenParams {
                execution_id,
                threshold: t,
                parties: n,
                me: idx(i),
            };
            (idx(i), Dkls23Engine.keygen(params).unwrap())
        })
        .collect()
}

pub fn sign_machines(
    shares: &[KeyShare],
    signers: &[u8],
    execution_id: [u8; 32],
    hash: MessageHash,
) -> Vec<(PartyIndex, Box<dyn Protocol<Output = Signature>>)> {
    let signer_indices: Vec<PartyIndex> = signers.iter().map(|i| idx(*i)).collect();
    signers
        .iter()
        .map(|i| {
            let share = shares.iter().find(|s| s.index.get() == *i).unwrap();
            let params = SignParams {
                execution_id,
                signers: signer_indices.clone(),
                message_hash: hash,
            };
            (idx(*i), Dkls23Engine.sign(share, params).unwrap())
        })
        .collect()
}

/// Runs keygen in order and returns every party's share, by index.
pub fn keygen(t: u8, n: u8) -> Vec<KeyShare> {
    let outcomes = Driver::new(Order::Fifo).run(keygen_machines(t, n, [7; 32]));
    outcomes.into_values().map(Outcome::done).collect()
}

/// Runs signing in order; every signer must produce the same signature.
pub fn sign(shares: &[KeyShare], signers: &[u8], hash: MessageHash) -> Signature {
    let outcomes = Driver::new(Order::Fifo).run(sign_machines(shares, signers, [9; 32], hash));
    let signatures: Vec<Signature> = outcomes.into_values().map(Outcome::done).collect();
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
) -> Vec<(PartyIndex, Box<dyn Protocol<Output = Refreshed>>)> {
    let repair = target.as_ref().map(|slot| RepairPlan {
        helpers: helpers.iter().map(|i| idx(*i)).collect(),
        target: slot.index,
    });
    let params = || RefreshParams {
        execution_id,
        repair: repair.clone(),
    };
    let mut machines: Vec<(PartyIndex, Box<dyn Protocol<Output = Refreshed>>)> = holders
        .iter()
        .map(|share| (share.index, Dkls23Engine.refresh(share, params()).unwrap()))
        .collect();
    if let Some(slot) = target {
        machines.push((slot.index, Dkls23Engine.recover(slot, params()).unwrap()));
    }
    machines.sort_by_key(|(index, _)| *index);
    machines
}

/// Runs a refresh in order and returns every party's output, by index; all must
/// report the same digest.
pub fn refresh(holders: &[&KeyShare], target: Option<ShareSlot>, helpers: &[u8]) -> Vec<Refreshed> {
    let outcomes =
        Driver::new(Order::Fifo).run(refresh_machines(holders, target, helpers, [11; 32]));
    let refreshed: Vec<Refreshed> = outcomes.into_values().map(Outcome::done).collect();
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
            (share.index, Dkls23Engine.sign(share, params).unwrap())
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
