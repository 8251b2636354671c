//! DKLs23 engine: keygen and signing end to end through the in-memory driver,
//! and the state machine's handling of duplicate, reordered, tampered,
//! equivocating and misaddressed messages.

use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, VerifyingKey};
use mpc_crypto::verify_signature;
use mpc_engine::testing::{
    Driver, Order, Outcome, hash, idx, keygen, keygen_machines, sign, sign_machines, two_of_three,
};
use mpc_engine::{
    Dkls23Engine, EngineError, Incoming, KeyShare, KeygenParams, Protocol, SignParams, Step,
    ThresholdEngine,
};
use mpc_events::{MessageHash, PublicKey, Signature};

/// Checks a signature with `verify_signature`, by recovery with k256, and that s is low.
fn assert_valid(public_key: &PublicKey, hash: &MessageHash, signature: &Signature) {
    assert!(verify_signature(public_key, hash, signature));
    let ecdsa = EcdsaSignature::from_scalars(*signature.r(), *signature.s()).unwrap();
    assert_eq!(ecdsa.normalize_s(), ecdsa, "s is high");
    let recovered = VerifyingKey::recover_from_prehash(
        hash.as_bytes(),
        &ecdsa,
        RecoveryId::from_byte(signature.recovery_id()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        recovered.to_sec1_point(true).as_bytes(),
        public_key.as_bytes()
    );
}

fn assert_same_key(shares: &[KeyShare], t: u8, n: u8) {
    assert_eq!(shares.len(), usize::from(n));
    for (position, share) in shares.iter().enumerate() {
        assert_eq!(share.public_key, shares[0].public_key);
        assert_eq!(usize::from(share.index.get()), position + 1);
        assert_eq!((share.threshold, share.parties), (t, n));
        assert_eq!(share.engine, "dkls23");
    }
}

#[test]
fn two_of_three_keygen_then_every_pair_signs() {
    let shares = two_of_three();
    assert_same_key(shares, 2, 3);
    println!("2-of-3 secret share: {} bytes", shares[0].secret.len());
    for signers in [[1, 2], [1, 3], [2, 3]] {
        let message = hash(&format!("pay 1 BTC, signed by {signers:?}"));
        let signature = sign(shares, &signers, message);
        assert_valid(&shares[0].public_key, &message, &signature);
    }
}

#[test]
fn three_of_five_keygen_then_sign() {
    let shares = keygen(3, 5);
    assert_same_key(&shares, 3, 5);
    let message = hash("three of five");
    let signature = sign(&shares, &[1, 3, 5], message);
    assert_valid(&shares[0].public_key, &message, &signature);
}

#[test]
fn four_of_seven_keygen_then_sign() {
    let shares = keygen(4, 7);
    assert_same_key(&shares, 4, 7);
    let message = hash("four of seven");
    let signature = sign(&shares, &[2, 4, 6, 7], message);
    assert_valid(&shares[0].public_key, &message, &signature);
}

#[test]
fn a_signature_does_not_verify_for_another_key_or_message() {
    let shares = two_of_three();
    let message = hash("original");
    let signature = sign(shares, &[1, 2], message);
    assert_valid(&shares[0].public_key, &message, &signature);
    let other = k256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    let other =
        PublicKey::from_slice(other.verifying_key().to_sec1_point(true).as_bytes()).unwrap();
    assert!(!verify_signature(&other, &message, &signature));
    assert!(!verify_signature(
        &shares[0].public_key,
        &hash("other"),
        &signature
    ));
}

/// Every message is delivered twice, in random order.
#[test]
fn duplicates_are_ignored() {
    let duplicate = |_to, message: Incoming| vec![message.clone(), message];
    let shares: Vec<KeyShare> = Driver::new(Order::Random(1))
        .intercept(duplicate)
        .run(keygen_machines(2, 3, [1; 32]))
        .into_values()
        .map(Outcome::done)
        .collect();
    assert_same_key(&shares, 2, 3);

    let message = hash("twice");
    let outcomes = Driver::new(Order::Random(2))
        .intercept(duplicate)
        .run(sign_machines(&shares, &[1, 3], [2; 32], message));
    for outcome in outcomes.into_values() {
        assert_valid(&shares[0].public_key, &message, &outcome.done());
    }
}

/// Latest-round-first delivery must make some party buffer a message; a random
/// order may happen to be in order.
fn assert_early(order: Order, early_deliveries: usize) {
    if matches!(order, Order::LatestRoundFirst) {
        assert!(early_deliveries > 0, "{order:?} delivered in order");
    }
}

#[test]
fn later_rounds_delivered_first_are_buffered() {
    let mut done_with_outgoing = 0;
    for order in [Order::LatestRoundFirst, Order::Random(3)] {
        let mut driver = Driver::new(order);
        let shares: Vec<KeyShare> = driver
            .run(keygen_machines(2, 3, [3; 32]))
            .into_values()
            .map(Outcome::done)
            .collect();
        assert_same_key(&shares, 2, 3);
        assert_early(order, driver.stats().early_deliveries);
        done_with_outgoing += driver.stats().done_with_outgoing;
    }
    let shares = two_of_three();
    for order in [Order::LatestRoundFirst, Order::Random(4), Order::Random(5)] {
        let message = hash("out of order");
        let mut driver = Driver::new(order);
        let outcomes = driver.run(sign_machines(shares, &[1, 3], [4; 32], message));
        assert_early(order, driver.stats().early_deliveries);
        done_with_outgoing += driver.stats().done_with_outgoing;
        for outcome in outcomes.into_values() {
            assert_valid(&shares[0].public_key, &message, &outcome.done());
        }
    }
    // Some party finished while its last messages were still unsent.
    assert!(done_with_outgoing > 0);
}

#[test]
fn messages_received_before_start_are_kept() {
    let shares = two_of_three();
    let message = hash("late");
    let outcomes = Driver::new(Order::Fifo)
        .start_late(idx(3))
        .run(sign_machines(shares, &[1, 3], [19; 32], message));
    for outcome in outcomes.into_values() {
        assert_valid(&shares[0].public_key, &message, &outcome.done());
    }
}

/// Flips one bit of the message `from` 1 `to` 2 of the given round and kind, at
/// `eighths`/8 of its length.
fn flip(
    round: u16,
    broadcast: bool,
    eighths: usize,
) -> impl FnMut(mpc_engine::PartyIndex, Incoming) -> Vec<Incoming> {
    move |to, mut message| {
        if to == idx(2)
            && message.from == idx(1)
            && message.round == round
            && message.broadcast == broadcast
        {
            let len = message.payload.len();
            message.payload[(len * eighths / 8).min(len - 1)] ^= 0x10;
        }
        vec![message]
    }
}

#[test]
fn a_tampered_keygen_message_fails_the_receiver() {
    // A wrong round-1 fragment is only detectable when n > t (with n = t any
    // fragments lie on some polynomial); later rounds use 2-of-2 to save time.
    let kinds = [
        (3, 1, false, 3),
        (2, 2, true, 1),
        (2, 2, false, 5),
        (2, 3, true, 7),
        (2, 3, false, 2),
    ];
    for (n, round, broadcast, eighths) in kinds {
        let outcomes = Driver::new(Order::Fifo)
            .intercept(flip(round, broadcast, eighths))
            .run(keygen_machines(2, n, [5; 32]));
        assert!(
            outcomes[&2].error().is_some(),
            "round {round} broadcast {broadcast} at {eighths}/8: {:?}",
            outcomes[&2]
        );
    }
}

#[test]
fn a_tampered_signing_message_fails_the_receiver() {
    let shares = two_of_three();
    for (round, broadcast) in [(1, false), (2, false), (3, true)] {
        for eighths in 0..8 {
            let outcomes = Driver::new(Order::Fifo)
                .intercept(flip(round, broadcast, eighths))
                .run(sign_machines(shares, &[1, 2], [6; 32], hash("tamper")));
            assert!(
                outcomes[&2].error().is_some(),
                "round {round} at {eighths}/8: {:?}",
                outcomes[&2]
            );
        }
    }
}

/// Party 1 sends party 2 a second, different round-`round` message.
fn equivocate(
    round: u16,
    broadcast: bool,
) -> impl FnMut(mpc_engine::PartyIndex, Incoming) -> Vec<Incoming> {
    move |to, message| {
        if to == idx(2)
            && message.from == idx(1)
            && message.round == round
            && message.broadcast == broadcast
        {
            let mut other = message.clone();
            let last = other.payload.len() - 1;
            other.payload[last] ^= 0x80;
            vec![message, other]
        } else {
            vec![message]
        }
    }
}

#[test]
fn an_equivocating_sender_is_reported() {
    // With two parties, party 2 completes round 1 on the first copy: the second
    // then hits a finished round.
    for (round, broadcast) in [(1, false), (2, true), (3, true)] {
        let outcomes = Driver::new(Order::Fifo)
            .intercept(equivocate(round, broadcast))
            .run(keygen_machines(2, 2, [8; 32]));
        assert_eq!(
            outcomes[&2].error(),
            Some(&EngineError::Equivocation {
                from: idx(1),
                round
            }),
            "keygen round {round}"
        );
    }
    for round in [1, 2] {
        let outcomes = Driver::new(Order::Fifo)
            .intercept(equivocate(round, false))
            .run(sign_machines(
                two_of_three(),
                &[1, 2],
                [8; 32],
                hash("equivocate"),
            ));
        assert_eq!(
            outcomes[&2].error(),
            Some(&EngineError::Equivocation {
                from: idx(1),
                round
            }),
            "signing round {round}"
        );
    }
}

/// Starts parties 1 to 3 of a 2-of-3 keygen; returns party 2 and the others'
/// round-1 messages for it.
fn keygen_party_two() -> (Box<dyn Protocol<Output = KeyShare>>, Vec<Incoming>) {
    let mut machines = keygen_machines(2, 3, [10; 32]);
    let mut for_two = Vec::new();
    for (me, machine) in machines.iter_mut() {
        let out = machine.start().unwrap();
        if *me == idx(2) {
            continue;
        }
        for message in out {
            if message.to == mpc_engine::To::One(idx(2)) {
                for_two.push(Incoming {
                    round: message.round,
                    from: *me,
                    broadcast: false,
                    payload: message.payload,
                });
            }
        }
    }
    (machines.remove(1).1, for_two)
}

#[test]
fn messages_of_finished_rounds_are_ignored_if_identical_else_equivocation() {
    let (mut two, round1) = keygen_party_two();
    assert_eq!(round1.len(), 2);
    for message in &round1 {
        assert!(matches!(two.handle(message.clone()), Ok(Step::Continue(_))));
    }
    // Round 1 is complete; the same message again changes nothing.
    match two.handle(round1[0].clone()) {
        Ok(Step::Continue(out)) => assert!(out.is_empty()),
        other => panic!("duplicate not ignored: {other:?}"),
    }
    let mut changed = round1[0].clone();
    changed.payload[0] ^= 1;
    assert_eq!(
        two.handle(changed).err(),
        Some(EngineError::Equivocation {
            from: round1[0].from,
            round: 1
        })
    );
    // The run is over after an error.
    assert_eq!(
        two.handle(round1[1].clone()).err(),
        Some(EngineError::Finished)
    );
}

#[test]
fn a_sender_out_of_range_or_equal_to_self_is_rejected() {
    let (_, round1) = keygen_party_two();
    let valid = round1[0].clone();
    let cases = [
        (4, valid.round, valid.broadcast),
        (2, valid.round, valid.broadcast),
        (20, valid.round, valid.broadcast),
        (valid.from.get(), 0, false),
        (valid.from.get(), 4, false),
        (valid.from.get(), 1, true),
    ];
    for (from, round, broadcast) in cases {
        let (mut two, _) = keygen_party_two();
        let message = Incoming {
            round,
            from: idx(from),
            broadcast,
            payload: valid.payload.clone(),
        };
        assert!(
            matches!(two.handle(message), Err(EngineError::Unexpected { .. })),
            "from {from} round {round} broadcast {broadcast} accepted"
        );
    }

    // A signer outside the signing set.
    let mut machines = sign_machines(two_of_three(), &[1, 2], [11; 32], hash("set"));
    let out = machines[0].1.start().unwrap();
    let message = Incoming {
        round: 1,
        from: idx(3),
        broadcast: false,
        payload: out[0].payload.clone(),
    };
    assert!(matches!(
        machines[1].1.handle(message),
        Err(EngineError::Unexpected { .. })
    ));
}

#[test]
fn a_message_naming_another_sender_inside_is_malformed() {
    // Party 1's round-1 signing message to party 2, delivered to party 3.
    let shares = two_of_three();
    let mut machines = sign_machines(shares, &[1, 2], [12; 32], hash("relabel"));
    let out = machines[0].1.start().unwrap();
    let mut three = Dkls23Engine
        .sign(
            &shares[2],
            SignParams {
                execution_id: [12; 32],
                signers: vec![idx(1), idx(3)],
                message_hash: hash("relabel"),
            },
        )
        .unwrap();
    let relabelled = Incoming {
        round: 1,
        from: idx(1),
        broadcast: false,
        payload: out[0].payload.clone(),
    };
    // Addressed (inside) to party 2, delivered to party 3.
    assert!(matches!(
        three.handle(relabelled),
        Err(EngineError::Malformed { .. })
    ));

    let garbage = Incoming {
        round: 1,
        from: idx(1),
        broadcast: false,
        payload: vec![0xff; 7],
    };
    assert!(matches!(
        machines[1].1.handle(garbage),
        Err(EngineError::Malformed { .. })
    ));
}

#[test]
fn parties_with_different_execution_ids_produce_no_signature() {
    let shares = two_of_three();
    let message = hash("which session?");
    let mut machines = sign_machines(shares, &[1, 2], [13; 32], message);
    machines.truncate(1);
    machines.extend(
        sign_machines(shares, &[1, 2], [14; 32], message)
            .into_iter()
            .skip(1),
    );
    let outcomes = Driver::new(Order::Fifo).run(machines);
    for outcome in outcomes.values() {
        assert!(outcome.error().is_some(), "{outcome:?}");
    }
}

#[test]
fn start_twice_or_handle_after_done_is_finished() {
    let mut machines = keygen_machines(2, 2, [15; 32]);
    machines[0].1.start().unwrap();
    assert_eq!(machines[0].1.start().err(), Some(EngineError::Finished));

    let shares = two_of_three();
    let digest = hash("done");
    let mut machines = sign_machines(shares, &[1, 2], [16; 32], digest);
    let mut queues: Vec<Vec<Incoming>> = vec![Vec::new(), Vec::new()];
    let post = |queues: &mut Vec<Vec<Incoming>>, from: u8, out: Vec<mpc_engine::Outgoing>| {
        for m in out {
            let to = if from == 1 { 1 } else { 0 };
            queues[to].push(Incoming {
                round: m.round,
                from: idx(from),
                broadcast: m.to == mpc_engine::To::All,
                payload: m.payload,
            });
        }
    };
    for (position, (me, machine)) in machines.iter_mut().enumerate() {
        let out = machine.start().unwrap();
        assert_eq!(position + 1, usize::from(me.get()));
        post(&mut queues, me.get(), out);
    }
    let mut last = None;
    let mut done = [false, false];
    while let Some(position) = (0..2).find(|p| !queues[*p].is_empty() && !done[*p]) {
        let message = queues[position].remove(0);
        last = Some((position, message.clone()));
        match machines[position].1.handle(message).unwrap() {
            Step::Continue(out) => post(&mut queues, position as u8 + 1, out),
            Step::Done { output, outgoing } => {
                assert_valid(&shares[0].public_key, &digest, &output);
                post(&mut queues, position as u8 + 1, outgoing);
                done[position] = true;
            }
        }
    }
    assert_eq!(done, [true, true]);
    let (position, message) = last.unwrap();
    assert_eq!(
        machines[position].1.handle(message).err(),
        Some(EngineError::Finished)
    );
}

#[test]
fn bad_shares_and_signer_sets_are_refused() {
    let shares = two_of_three();
    let params = |signers: &[u8]| SignParams {
        execution_id: [17; 32],
        signers: signers.iter().map(|i| idx(*i)).collect(),
        message_hash: hash("params"),
    };
    for signers in [&[1][..], &[1, 1], &[2, 3], &[1, 2, 3], &[1, 4]] {
        assert!(
            matches!(
                Dkls23Engine.sign(&shares[0], params(signers)),
                Err(EngineError::InvalidParameters(_))
            ),
            "{signers:?} accepted"
        );
    }
    let mut garbage = KeyShare {
        engine: shares[0].engine.clone(),
        public_key: shares[0].public_key,
        index: shares[0].index,
        threshold: 2,
        parties: 3,
        secret: zeroize::Zeroizing::new(vec![1, 2, 3]),
    };
    assert!(matches!(
        Dkls23Engine.sign(&garbage, params(&[1, 2])),
        Err(EngineError::BadShare(_))
    ));
    garbage.secret = shares[1].secret.clone();
    assert!(matches!(
        Dkls23Engine.sign(&garbage, params(&[1, 2])),
        Err(EngineError::BadShare(_))
    ));
    garbage.secret = shares[0].secret.clone();
    garbage.engine = "cggmp24".into();
    assert!(matches!(
        Dkls23Engine.sign(&garbage, params(&[1, 2])),
        Err(EngineError::BadShare(_))
    ));

    for (t, n, me) in [(1, 3, 1), (4, 3, 1), (2, 21, 1), (2, 3, 4)] {
        let params = KeygenParams {
            execution_id: [18; 32],
            threshold: t,
            parties: n,
            me: idx(me),
        };
        assert!(matches!(
            Dkls23Engine.keygen(params),
            Err(EngineError::InvalidParameters(_))
        ));
    }
}
