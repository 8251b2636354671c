//! DKLs23 complete refresh and lost-share repair end to end through the in-memory
//! driver: refreshed shares sign, old and new shares never sign together, bad plans
//! are refused, and wrong repair terms or packages abort the target.

use mpc_crypto::verify_signature;
use mpc_engine::testing::{
    Driver, Order, Outcome, assert_cannot_sign, hash, idx, keygen, refresh, refresh_machines, sign,
    slot_of, two_of_three,
};
use mpc_engine::{
    Dkls23Engine, EngineError, Incoming, KeyShare, RefreshParams, Refreshed, RepairPlan,
    ThresholdEngine,
};

fn into_shares(refreshed: Vec<Refreshed>) -> Vec<KeyShare> {
    refreshed.into_iter().map(|r| r.share).collect()
}

fn assert_signs(shares: &[KeyShare], signers: &[u8]) {
    let message = hash(&format!("signed by {signers:?}"));
    let signature = sign(shares, signers, message);
    assert!(verify_signature(
        &shares[0].public_key,
        &message,
        &signature
    ));
}

/// Every share keeps the key's public facts and its own index.
fn assert_same_key(refreshed: &[Refreshed], original: &[KeyShare]) {
    assert_eq!(refreshed.len(), original.len());
    for (new, old) in refreshed.iter().zip(original) {
        assert_eq!(new.share.public_key, old.public_key);
        assert_eq!(new.share.index, old.index);
        assert_eq!(
            (new.share.threshold, new.share.parties),
            (old.threshold, old.parties)
        );
        assert_eq!(new.share.engine, old.engine);
        assert_ne!(new.share.secret.as_slice(), old.secret.as_slice());
        assert_eq!(new.digest, refreshed[0].digest);
    }
}

#[test]
fn a_lost_share_is_rebuilt_and_every_share_refreshed() {
    let old = two_of_three();
    // Party 1 lost its share; helpers given out of order.
    let refreshed = refresh(&[&old[1], &old[2]], Some(slot_of(&old[0])), &[3, 2]);
    assert_same_key(&refreshed, old);
    let debug = format!("{:?}", refreshed[0]);
    assert!(
        debug.contains("digest") && !debug.contains("secret"),
        "{debug}"
    );
    let new = into_shares(refreshed);

    // Every pair of new shares signs, so the rebuilt share signs with each helper.
    for signers in [[1, 2], [1, 3], [2, 3]] {
        assert_signs(&new, &signers);
    }
    // Any old share (the lost one or a helper's) with any new share fails.
    for stale in old {
        for fresh in new.iter().filter(|s| s.index != stale.index) {
            let mut pair = [stale, fresh];
            pair.sort_by_key(|s| s.index);
            assert_cannot_sign(&pair, hash("old and new"));
        }
    }
}

#[test]
fn a_three_of_five_key_is_refreshed_then_repaired_with_a_bystander() {
    let old = keygen(3, 5);
    let holders: Vec<&KeyShare> = old.iter().collect();
    let refreshed = refresh(&holders, None, &[]);
    assert_same_key(&refreshed, &old);
    let first_digest = refreshed[0].digest;
    let new = into_shares(refreshed);
    assert_signs(&new, &[1, 2, 3]);
    assert_signs(&new, &[2, 4, 5]);
    assert_cannot_sign(&[&old[0], &new[1], &new[2]], hash("mixed"));
    assert_cannot_sign(&[&new[0], &old[3], &new[4]], hash("mixed"));

    // A refreshed key can be repaired: party 5 is rebuilt by {1, 2, 3} while
    // party 4, not a helper, only takes part in the refresh.
    let repaired = refresh(
        &[&new[0], &new[1], &new[2], &new[3]],
        Some(slot_of(&new[4])),
        &[1, 2, 3],
    );
    assert_same_key(&repaired, &new);
    assert_ne!(
        repaired[0].digest, first_digest,
        "verifying shares did not change"
    );
    let newer = into_shares(repaired);
    assert_signs(&newer, &[3, 4, 5]);
    assert_cannot_sign(&[&new[2], &newer[3], &newer[4]], hash("stale"));
}

#[test]
fn duplicates_reordering_and_a_late_target_still_complete() {
    let old = two_of_three();
    let runs = [
        Driver::new(Order::Random(17)).intercept(|_, message| vec![message.clone(), message]),
        Driver::new(Order::LatestRoundFirst).start_late(idx(1)),
    ];
    for (number, mut driver) in runs.into_iter().enumerate() {
        let execution_id = [20 + number as u8; 32];
        let machines = refresh_machines(
            &[&old[1], &old[2]],
            Some(slot_of(&old[0])),
            &[2, 3],
            execution_id,
        );
        let refreshed: Vec<Refreshed> = driver
            .run(machines)
            .into_values()
            .map(Outcome::done)
            .collect();
        assert_same_key(&refreshed, old);
        if number == 1 {
            assert!(driver.stats().early_deliveries > 0, "nothing arrived early");
        }
    }
}

fn params(helpers: &[u8], target: u8) -> RefreshParams {
    RefreshParams {
        execution_id: [30; 32],
        repair: Some(RepairPlan {
            helpers: helpers.iter().map(|i| idx(*i)).collect(),
            target: idx(target),
        }),
    }
}

#[test]
fn invalid_repair_plans_are_refused() {
    let old = two_of_three();
    let invalid = |result: Result<_, EngineError>, what: &str| {
        assert!(
            matches!(result, Err(EngineError::InvalidParameters(_))),
            "{what} accepted"
        );
    };
    let slot = || slot_of(&old[0]);
    for (helpers, target, what) in [
        (&[2][..], 1, "fewer than t helpers"),
        (&[1, 2], 1, "the target among the helpers"),
        (&[2, 2, 3], 1, "a duplicate helper"),
        (&[2, 4], 1, "a helper outside the key"),
    ] {
        invalid(
            Dkls23Engine.refresh(&old[1], params(helpers, target)),
            &format!("refresh with {what}"),
        );
        invalid(
            Dkls23Engine.recover(slot(), params(helpers, target)),
            &format!("recover with {what}"),
        );
    }
    invalid(
        Dkls23Engine.refresh(&old[0], params(&[2, 3], 1)),
        "refresh by the target itself",
    );
    invalid(
        Dkls23Engine.refresh(&old[1], params(&[1, 2], 4)),
        "a target outside the key",
    );
    invalid(
        Dkls23Engine.recover(slot(), params(&[1, 3], 2)),
        "recover for another target",
    );
    invalid(
        Dkls23Engine.recover(
            slot(),
            RefreshParams {
                execution_id: [30; 32],
                repair: None,
            },
        ),
        "recover without a repair plan",
    );
    let mut other_engine = slot();
    other_engine.engine = "cggmp24".into();
    invalid(
        Dkls23Engine.recover(other_engine, params(&[2, 3], 1)),
        "recover for another engine",
    );
}

#[test]
fn round_one_carries_only_helper_terms_to_the_target() {
    let old = two_of_three();
    let message = |from: u8| Incoming {
        round: 1,
        from: idx(from),
        broadcast: false,
        payload: vec![0],
    };
    // A plain refresh has no round-1 messages at all.
    let plain = RefreshParams {
        execution_id: [31; 32],
        repair: None,
    };
    let mut machine = Dkls23Engine.refresh(&old[1], plain).unwrap();
    machine.start().unwrap();
    assert!(matches!(
        machine.handle(message(1)),
        Err(EngineError::Unexpected { round: 1, .. })
    ));
    // In a repair, a helper (not the target) receives none either.
    let mut helper = Dkls23Engine.refresh(&old[1], params(&[2, 3], 1)).unwrap();
    helper.start().unwrap();
    assert!(matches!(
        helper.handle(message(3)),
        Err(EngineError::Unexpected { round: 1, .. })
    ));
}

/// Runs a repair of party 1 by {2, 3}, rewriting round-1 messages from `helper`
/// with `edit`; returns the target's error.
fn repair_with_edited_term(helper: u8, edit: impl Fn(&mut Vec<u8>)) -> EngineError {
    let old = two_of_three();
    let mut driver = Driver::new(Order::Fifo).intercept(|_, mut message: Incoming| {
        if message.round == 1 && message.from == idx(helper) {
            edit(&mut message.payload);
        }
        vec![message]
    });
    let mut outcomes = driver.run(refresh_machines(
        &[&old[1], &old[2]],
        Some(slot_of(&old[0])),
        &[2, 3],
        [40; 32],
    ));
    assert!(outcomes.values().all(|outcome| !outcome.is_done()));
    match outcomes.remove(&1) {
        Some(Outcome::Failed(error)) => error,
        other => panic!("the target did not fail: {other:?}"),
    }
}

#[test]
fn a_tampered_repair_term_aborts_the_target_and_old_shares_still_sign() {
    // The round-1 payload starts with the term: helper and target indices (a byte
    // each), then the masked scalar (32 bytes, big-endian). Flipping its lowest bit
    // keeps it a valid scalar, so the payload still decodes.
    let error = repair_with_edited_term(2, |payload| payload[33] ^= 1);
    match &error {
        EngineError::Aborted {
            culprit: None,
            detail,
            ..
        } => assert!(detail.contains("a helper sent a wrong term"), "{detail}"),
        other => panic!("expected an abort, got {other:?}"),
    }
    let old = two_of_three();
    assert_signs(old, &[2, 3]);
    assert_signs(old, &[1, 2]);
}

#[test]
fn a_helper_with_a_different_package_aborts_the_target() {
    // The payload ends with the package's parameters: threshold, then party count.
    let error = repair_with_edited_term(3, |payload| {
        let last = payload.len() - 1;
        payload[last] = 4;
    });
    match &error {
        EngineError::Aborted { detail, .. } => {
            assert!(detail.contains("different public key packages"), "{detail}");
        }
        other => panic!("expected an abort, got {other:?}"),
    }
}

#[test]
fn a_party_shown_a_different_round_three_broadcast_makes_the_run_abort() {
    let old = two_of_three();
    // Party 2 sees another proof commitment from party 1 than party 3 does.
    let mut driver = Driver::new(Order::Fifo).intercept(|to, mut message: Incoming| {
        if message.round == 3 && message.broadcast && message.from == idx(1) && to == idx(2) {
            message.payload[0] ^= 1;
        }
        vec![message]
    });
    let holders: Vec<&KeyShare> = old.iter().collect();
    let outcomes = driver.run(refresh_machines(&holders, None, &[], [50; 32]));
    for (index, outcome) in &outcomes {
        match outcome.error() {
            Some(EngineError::Aborted { detail, .. }) => {
                assert!(detail.contains("different round-3 broadcasts"), "{detail}");
            }
            other => panic!("party {index}: expected an abort, got {other:?}"),
        }
    }
}
