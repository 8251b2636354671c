//! Protocol fault matrix (issue 7, item 1): for keygen (2-of-3) and signing (2-of-3)
//! runs of the DKLs23 engine, one message of a chosen round, kind and sender is
//! dropped, bit-flipped, duplicated, delayed behind later messages, relabelled with
//! another round or sender, replaced by the same message of another run (another
//! execution id: a replay from another session), or equivocated (the sender's message
//! from a second run with the same inputs goes to a peer).
//!
//! Expected: duplicates and delays complete with the same key / valid signatures at
//! every party; every other fault ends with an [`mpc_engine::EngineError`] at some
//! party or stalls (no party errs but some never outputs: the session layer aborts
//! it at its deadline, there is no clock at this level), and never a wrong output:
//! no invalid signature, no two parties with different keys, and no run that
//! completes everywhere despite the fault.
//!
//! Each test prints its table (`cargo test -p mpc-engine --test faults -- --nocapture`)
//! and asserts that "accepted-when-it-should-not" is 0 and that it ran exactly the
//! planned number of cases. Keygen costs about 0.7 s of CPU per pair of parties, so
//! the keygen matrix is a representative subset (see [`keygen_fault_matrix`]); signing
//! runs the full matrix against one key generated once.
//!
//! Faults on the envelope (wrong session, replay of an envelope, wrong recipient,
//! forged or tampered signature, tampered ciphertext) are caught before a payload
//! reaches the engine: they are tested in `engine/src/envelope.rs` and
//! `party/tests/envelopes.rs`, and counted in [`envelope_fault_matrix`] below.

use std::collections::BTreeMap;
use std::fmt;

use mpc_crypto::verify_signature;
use mpc_engine::testing::{
    Driver, Order, Outcome, hash, idx, keygen_machines, sign_machines, two_of_three,
};
use mpc_engine::{EngineError, Incoming, PartyIndex};
use mpc_events::Signature;

/// The message a fault hits: `round`, kind, from `sender` to `recipient`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target {
    round: u16,
    broadcast: bool,
    sender: u8,
    recipient: u8,
}

impl Target {
    fn hits(&self, to: PartyIndex, message: &Incoming) -> bool {
        to.get() == self.recipient
            && message.from.get() == self.sender
            && message.round == self.round
            && message.broadcast == self.broadcast
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The message never arrives.
    Drop,
    /// Bit `bit` of the payload byte at `eighths`/8 of its length is flipped.
    Flip { eighths: usize, bit: u8 },
    /// Delivered twice.
    Duplicate,
    /// Held back until nothing else can be delivered: the recipient gets the
    /// peers' later-round messages first.
    Delay,
    /// Labelled with the next round (3 wraps to 1).
    WrongRound,
    /// Labelled as coming from the third party (not the sender nor the recipient).
    WrongSender,
    /// Replaced by the same round/sender/recipient message of a run with another
    /// execution id: a replay from another session.
    Replay,
    /// The sender's message from a second run with the same inputs: a broadcast
    /// with two recipients goes genuine to one and the other run's to the other;
    /// otherwise the recipient gets both, the other run's first. (Genuine first,
    /// the last round's copy completes the recipient's run and the conflicting
    /// one arrives after its output, where the engine answers `Finished`: the
    /// output is the honest one, but the fault went unseen, so the matrix puts
    /// the conflicting copy first.)
    Equivocate,
}

impl Fault {
    fn should_complete(&self) -> bool {
        matches!(self, Fault::Duplicate | Fault::Delay)
    }
    fn kind(&self) -> &'static str {
        match self {
            Fault::Drop => "drop",
            Fault::Flip { .. } => "bit flip",
            Fault::Duplicate => "duplicate",
            Fault::Delay => "reorder (delay)",
            Fault::WrongRound => "wrong round",
            Fault::WrongSender => "wrong sender",
            Fault::Replay => "replay other session",
            Fault::Equivocate => "equivocation",
        }
    }
}

const FLIPS: [Fault; 4] = [
    Fault::Flip { eighths: 0, bit: 0 },
    Fault::Flip { eighths: 3, bit: 4 },
    Fault::Flip { eighths: 5, bit: 7 },
    Fault::Flip { eighths: 8, bit: 1 },
];

const OTHERS: [Fault; 7] = [
    Fault::Drop,
    Fault::Duplicate,
    Fault::Delay,
    Fault::WrongRound,
    Fault::WrongSender,
    Fault::Replay,
    Fault::Equivocate,
];

/// Every message of one fault-free run: (sender, recipient, round, broadcast) → payload.
type Recording = BTreeMap<(u8, u8, u16, bool), Vec<u8>>;

fn recorder(recording: &mut Recording) -> impl FnMut(PartyIndex, Incoming) -> Vec<Incoming> + '_ {
    |to, message: Incoming| {
        recording.insert(
            (
                message.from.get(),
                to.get(),
                message.round,
                message.broadcast,
            ),
            message.payload.clone(),
        );
        vec![message]
    }
}

/// Rewrites the target message as `fault` says. `other` is a run with another
/// execution id, `twin` one with the same inputs; `members` are the run's parties.
fn inject<'a>(
    target: Target,
    fault: Fault,
    members: &'a [u8],
    other: &'a Recording,
    twin: &'a Recording,
) -> impl FnMut(PartyIndex, Incoming) -> Vec<Incoming> + 'a {
    let third = (1..=3)
        .find(|i| *i != target.sender && *i != target.recipient)
        .unwrap();
    let bystander = members
        .iter()
        .copied()
        .find(|i| *i != target.sender && *i != target.recipient);
    move |to, mut message| {
        let key = |to: u8| (target.sender, to, target.round, target.broadcast);
        if fault == Fault::Equivocate
            && target.broadcast
            && Some(to.get()) == bystander
            && message.from.get() == target.sender
            && message.round == target.round
            && message.broadcast
        {
            message.payload = twin[&key(to.get())].clone();
            return vec![message];
        }
        if !target.hits(to, &message) {
            return vec![message];
        }
        match fault {
            Fault::Drop => vec![],
            Fault::Flip { eighths, bit } => {
                let len = message.payload.len();
                message.payload[(len * eighths / 8).min(len - 1)] ^= 1 << bit;
                vec![message]
            }
            Fault::Duplicate => vec![message.clone(), message],
            Fault::Delay => vec![message],
            Fault::WrongRound => {
                message.round = message.round % 3 + 1;
                vec![message]
            }
            Fault::WrongSender => {
                message.from = idx(third);
                vec![message]
            }
            Fault::Replay => {
                message.payload = other[&key(target.recipient)].clone();
                vec![message]
            }
            Fault::Equivocate if bystander.is_some() && target.broadcast => vec![message],
            Fault::Equivocate => {
                let mut conflicting = message.clone();
                conflicting.payload = twin[&key(target.recipient)].clone();
                assert_ne!(conflicting.payload, message.payload);
                vec![conflicting, message]
            }
        }
    }
}

#[derive(Default)]
struct Row {
    tried: usize,
    completed: usize,
    aborted: usize,
    stalled: usize,
    /// Aborted cases where some party's error names the party that sent the
    /// faulty message.
    blamed: usize,
    bad: usize,
}

/// Counts per fault kind, printed as a table.
#[derive(Default)]
struct Table {
    rows: BTreeMap<&'static str, Row>,
    failures: Vec<String>,
}

impl Table {
    /// Records one case from every party's outcome; `wrong` says whether the
    /// outputs that were produced are wrong (invalid signature, keys that differ).
    fn record<O>(
        &mut self,
        fault: Fault,
        sender: u8,
        case: String,
        outcomes: &BTreeMap<u8, Outcome<O>>,
        wrong: bool,
    ) {
        let row = self.rows.entry(fault.kind()).or_default();
        row.tried += 1;
        let completed = outcomes.values().all(Outcome::is_done);
        let aborted = outcomes.values().any(|o| o.error().is_some());
        if completed {
            row.completed += 1;
        } else if aborted {
            row.aborted += 1;
            row.blamed += usize::from(
                outcomes
                    .values()
                    .filter_map(Outcome::error)
                    .any(|error| culprit(error) == Some(sender)),
            );
        } else {
            row.stalled += 1;
        }
        let bad = wrong || (completed != fault.should_complete());
        if bad {
            row.bad += 1;
            let summary: Vec<String> = outcomes
                .iter()
                .map(|(party, outcome)| match outcome {
                    Outcome::Done(_) => format!("{party}: done"),
                    Outcome::Failed(error) => format!("{party}: {error}"),
                    Outcome::Stalled => format!("{party}: stalled"),
                })
                .collect();
            self.failures
                .push(format!("{case}: wrong={wrong} {}", summary.join("; ")));
        }
    }

    fn total(&self) -> Row {
        let mut total = Row::default();
        for row in self.rows.values() {
            total.tried += row.tried;
            total.completed += row.completed;
            total.aborted += row.aborted;
            total.stalled += row.stalled;
            total.blamed += row.blamed;
            total.bad += row.bad;
        }
        total
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| fault | tried | completed | aborted | (sender named) | stalled | accepted-when-it-should-not |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|")?;
        let line = |f: &mut fmt::Formatter<'_>, name: &str, r: &Row| {
            writeln!(
                f,
                "| {name} | {} | {} | {} | {} | {} | {} |",
                r.tried, r.completed, r.aborted, r.blamed, r.stalled, r.bad
            )
        };
        for (name, row) in &self.rows {
            line(f, name, row)?;
        }
        line(f, "**total**", &self.total())
    }
}

/// The party an error blames, if it names one.
fn culprit(error: &EngineError) -> Option<u8> {
    match error {
        EngineError::Malformed { from, .. }
        | EngineError::Unexpected { from, .. }
        | EngineError::Equivocation { from, .. } => Some(from.get()),
        EngineError::Aborted { culprit, .. } => culprit.map(|c| c.get()),
        _ => None,
    }
}

fn assert_clean(name: &str, table: &Table, planned: usize) {
    println!("\n{name}\n{table}");
    for failure in &table.failures {
        println!("NOT OK {failure}");
    }
    let total = table.total();
    assert_eq!(total.bad, 0, "{name}: accepted-when-it-should-not");
    assert_eq!(total.tried, planned, "{name}: cases tried");
}

/// (round, broadcast) of every message kind each protocol sends.
const KEYGEN_SLOTS: [(u16, bool); 5] = [(1, false), (2, true), (2, false), (3, true), (3, false)];
const SIGN_SLOTS: [(u16, bool); 3] = [(1, false), (2, false), (3, true)];

fn next_member(members: &[u8], sender: u8) -> u8 {
    let position = members.iter().position(|m| *m == sender).unwrap();
    members[(position + 1) % members.len()]
}

/// Signing, 2-of-3: every signer pair, both senders of each pair, every round,
/// every fault (four bit-flip positions): 3 × 2 × 3 × 11 = 198 cases.
#[test]
fn signing_fault_matrix() {
    let shares = two_of_three();
    let public_key = shares[0].public_key;
    let mut table = Table::default();
    let mut planned = 0;
    for (pair, members) in [[1u8, 2], [1, 3], [2, 3]].iter().enumerate() {
        let message = hash(&format!("fault matrix, signers {members:?}"));
        let execution_id = [0x40 + pair as u8; 32];
        let record = |execution_id: [u8; 32]| {
            let mut recording = Recording::new();
            let outcomes = Driver::new(Order::Fifo)
                .intercept(recorder(&mut recording))
                .run(sign_machines(shares, members, execution_id, message));
            assert!(outcomes.values().all(Outcome::is_done));
            recording
        };
        let twin = record(execution_id);
        let other = record([0x50 + pair as u8; 32]);
        for sender in members.iter().copied() {
            for (round, broadcast) in SIGN_SLOTS {
                let target = Target {
                    round,
                    broadcast,
                    sender,
                    recipient: next_member(members, sender),
                };
                for fault in FLIPS.iter().chain(&OTHERS).copied() {
                    planned += 1;
                    let mut driver = Driver::new(Order::Fifo)
                        .intercept(inject(target, fault, members, &other, &twin));
                    if fault == Fault::Delay {
                        let mut once = true;
                        driver = driver.hold(move |to, m| {
                            let hit = once && target.hits(to, m);
                            once &= !hit;
                            hit
                        });
                    }
                    let outcomes =
                        driver.run(sign_machines(shares, members, execution_id, message));
                    let wrong = outcomes.values().any(|outcome| match outcome {
                        Outcome::Done(signature) => {
                            !verify_signature(&public_key, &message, signature)
                        }
                        _ => false,
                    });
                    let signatures: Vec<&Signature> = outcomes
                        .values()
                        .filter_map(|o| match o {
                            Outcome::Done(s) => Some(s),
                            _ => None,
                        })
                        .collect();
                    // Two valid signatures may differ only if both verify; they come
                    // from one nonce here, so they must be equal.
                    let disagree = signatures.windows(2).any(|w| w[0] != w[1]);
                    table.record(
                        fault,
                        sender,
                        format!("sign {members:?} {target:?} {fault:?}"),
                        &outcomes,
                        wrong || disagree,
                    );
                }
            }
        }
    }
    assert_clean("signing 2-of-3 fault matrix", &table, planned);
    assert_eq!(planned, 198);
}

/// Keygen, 2-of-3, a representative subset (each case is a fresh keygen): every
/// round and kind × every fault but bit flips, with party 1 sending (5 × 7 = 35);
/// plus bit flips at two positions from every sender (5 × 3 × 2 = 30): 65 cases.
#[test]
fn keygen_fault_matrix() {
    let members = [1u8, 2, 3];
    let execution_id = [0x60; 32];
    let record = |execution_id: [u8; 32]| {
        let mut recording = Recording::new();
        let outcomes = Driver::new(Order::Fifo)
            .intercept(recorder(&mut recording))
            .run(keygen_machines(2, 3, execution_id));
        assert!(outcomes.values().all(Outcome::is_done));
        recording
    };
    let twin = record(execution_id);
    let other = record([0x61; 32]);
    let mut cases: Vec<(Target, Fault)> = Vec::new();
    for (round, broadcast) in KEYGEN_SLOTS {
        let target = |sender| Target {
            round,
            broadcast,
            sender,
            recipient: next_member(&members, sender),
        };
        for fault in OTHERS {
            cases.push((target(1), fault));
        }
        for sender in members {
            for fault in [FLIPS[1], FLIPS[3]] {
                cases.push((target(sender), fault));
            }
        }
    }
    let planned = cases.len();
    let mut table = Table::default();
    for (target, fault) in cases {
        let mut driver =
            Driver::new(Order::Fifo).intercept(inject(target, fault, &members, &other, &twin));
        if fault == Fault::Delay {
            let mut once = true;
            driver = driver.hold(move |to, m| {
                let hit = once && target.hits(to, m);
                once &= !hit;
                hit
            });
        }
        let outcomes = driver.run(keygen_machines(2, 3, execution_id));
        let keys: Vec<_> = outcomes
            .values()
            .filter_map(|o| match o {
                Outcome::Done(share) => Some(share.public_key),
                _ => None,
            })
            .collect();
        let wrong = keys.windows(2).any(|w| w[0] != w[1]);
        table.record(
            fault,
            target.sender,
            format!("keygen {target:?} {fault:?}"),
            &outcomes,
            wrong,
        );
    }
    assert_clean("keygen 2-of-3 fault matrix (subset)", &table, planned);
    assert_eq!(planned, 65);
}

struct Peer {
    id: mpc_events::PartyId,
    identity: mpc_crypto::PartyIdentity,
}

fn peer(name: &str) -> Peer {
    Peer {
        id: mpc_events::PartyId::parse(name).unwrap(),
        identity: mpc_crypto::PartyIdentity::generate(),
    }
}

/// Envelope-level faults, through `Envelope::decode` and [`mpc_crypto::open`] as a
/// party receives them: every one must be rejected before the engine sees a
/// payload. The field-by-field checks live in `engine/src/envelope.rs` and
/// `party/tests/envelopes.rs`; this counts them for the report: 8 named cases, a
/// bit flip at every 7th bit of an encoded point-to-point and broadcast envelope.
#[test]
fn envelope_fault_matrix() {
    use mpc_crypto::{Header, SeenMessages, open, seal};
    use mpc_events::SessionId;
    use mpc_schemas::{Envelope, Recipient};
    use uuid::Uuid;

    let (a, b, c) = (peer("party-a"), peer("party-b"), peer("party-c"));
    let session = SessionId::from_uuid(Uuid::from_u128(0x5e55));
    let other_session = SessionId::from_uuid(Uuid::from_u128(0x07e4));
    let payload: Vec<u8> = (0..=255u8).collect();
    let header = |session_id, sender: &Peer, to: Option<&Peer>| Header {
        message_id: Uuid::now_v7(),
        session_id,
        round: 2,
        sender: sender.id.clone(),
        recipient: to.map_or(Recipient::Broadcast, |p| Recipient::Party(p.id.clone())),
    };
    let p2p = |session_id, signer: &Peer, sender: &Peer| {
        seal(
            &signer.identity,
            header(session_id, sender, Some(&b)),
            Some(&b.identity.public()),
            &payload,
        )
        .unwrap()
    };
    // B receives from A in `session`.
    let open_at_b = |envelope: &Envelope| {
        open(envelope, session, &b.id, &b.identity, &a.identity.public()).map(|_| ())
    };
    let genuine = p2p(session, &a, &a);
    open_at_b(&genuine).expect("the untouched envelope opens");
    let broadcast = seal(&a.identity, header(session, &a, None), None, &payload).unwrap();
    open_at_b(&broadcast).expect("the untouched broadcast opens");

    let mut named: Vec<(&str, bool)> = vec![
        (
            "valid envelope of another session (replay across sessions)",
            open_at_b(&p2p(other_session, &a, &a)).is_err(),
        ),
        (
            "addressed to B, opened by C (wrong recipient)",
            open(&genuine, session, &c.id, &c.identity, &a.identity.public()).is_err(),
        ),
        (
            "claims sender A, signed by C (forged sender)",
            open_at_b(&p2p(session, &c, &a)).is_err(),
        ),
        (
            "A's own envelope delivered back to A (from self)",
            open(&genuine, session, &a.id, &a.identity, &a.identity.public()).is_err(),
        ),
    ];
    let mut relabelled = genuine.clone();
    relabelled.round = 3;
    named.push(("round changed", open_at_b(&relabelled).is_err()));
    let mut moved = genuine.clone();
    moved.session_id = other_session;
    named.push(("session id changed", open_at_b(&moved).is_err()));
    let mut readdressed = broadcast.clone();
    readdressed.recipient = Recipient::Party(b.id.clone());
    named.push((
        "broadcast readdressed to B",
        open_at_b(&readdressed).is_err(),
    ));
    let mut seen = SeenMessages::new(16);
    seen.admit(genuine.message_id).unwrap();
    named.push((
        "same message id twice in one run (replay)",
        seen.admit(genuine.message_id).is_err(),
    ));

    let mut flips = (0, 0);
    for envelope in [&genuine, &broadcast] {
        let bytes = envelope.encode().unwrap();
        for bit in (0..bytes.len() * 8).step_by(7) {
            let mut tampered = bytes.clone();
            tampered[bit / 8] ^= 1 << (bit % 8);
            flips.0 += 1;
            let rejected =
                Envelope::decode(&tampered).map_or(true, |envelope| open_at_b(&envelope).is_err());
            flips.1 += usize::from(rejected);
        }
    }

    println!("\nenvelope fault matrix\n| case | tried | rejected |\n|---|---:|---:|");
    for (case, rejected) in &named {
        println!("| {case} | 1 | {} |", usize::from(*rejected));
    }
    println!(
        "| bit flip at every 7th bit of the encoded envelope (p2p {} B, broadcast {} B) | {} | {} |",
        genuine.encode().unwrap().len(),
        broadcast.encode().unwrap().len(),
        flips.0,
        flips.1
    );
    let tried = named.len() + flips.0;
    let rejected = named.iter().filter(|(_, r)| *r).count() + flips.1;
    println!("| **total** | {tried} | {rejected} |");
    assert_eq!(rejected, tried, "an envelope fault was accepted");
}
