//! The accounts projection against a real event store, fed with encoded account and
//! session events, including account recovery sessions.

use std::ops::Deref;

use mpc_events::{
    AccountEvent, AccountId, AccountParties, AccountStatus, Email, FailureReason, IdentityKey,
    KeyId, KeyPolicy, PartyId, PartyOutcome, Phone, RecoveryKind, RecoveryStatus, SessionEvent,
    SessionId, SessionSpec, ShareRole, Signature, Threshold, Username, stream,
};
use mpc_projections::on_every_backend;
use mpc_projections::testing::samples::{at, completed, created, group_key, participant};
use mpc_projections::testing::{ProjectionFixture, TestBackend};
use mpc_projections::{
    AccountRow, AccountsProjection, KeyStatus, ProjectionError, ProjectionRunner,
    RecoverySessionRow, replay,
};
use mpc_store::StreamName;
use mpc_store::testing::new_event;

struct Fixture(ProjectionFixture<AccountsProjection>);

impl Deref for Fixture {
    type Target = ProjectionFixture<AccountsProjection>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Fixture {
    async fn new(backend: TestBackend) -> Self {
        Self(ProjectionFixture::new(backend, AccountsProjection::new).await)
    }

    fn accounts(&self) -> &AccountsProjection {
        self.runner.projection()
    }

    async fn row(&self, id: AccountId) -> AccountRow {
        self.accounts().get(id).await.unwrap().expect("account row")
    }
}

fn parties(user: &str) -> AccountParties {
    AccountParties {
        device: participant(&format!("{user}-device"), 1),
        server: participant("server", 3),
        recovery: participant("recovery", 5),
    }
}

fn opened(id: AccountId, user: &str, keygen: SessionId, ms: i64) -> AccountEvent {
    AccountEvent::AccountOpened {
        account_id: id,
        username: Username::parse(user).unwrap(),
        email: Email::parse(&format!("{user}@example.com")).unwrap(),
        phone: Some(Phone::parse("+4915112345678").unwrap()),
        parties: parties(user),
        keygen_session: keygen,
        at: at(ms),
    }
}

fn keygen_created(id: SessionId, user: &str, ms: i64) -> SessionEvent {
    let spec = SessionSpec::Keygen {
        threshold: Threshold::new(2, 3).unwrap(),
        policy: KeyPolicy::AnyRequest,
    };
    created(id, spec, parties(user).in_order(), ms)
}

fn failed(ms: i64) -> SessionEvent {
    SessionEvent::SessionFailed {
        reason: FailureReason::PartyAborted {
            reported_by: PartyId::parse("server").unwrap(),
            culprits: vec![PartyId::parse("recovery").unwrap()],
            detail: "bad share".to_owned(),
        },
        at: at(ms),
    }
}

async fn an_opened_account_is_active_with_its_shares_and_a_pending_key(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let id = AccountId::new();
    let keygen = SessionId::new();
    let position = f.account(id, &[opened(id, "alice", keygen, 0)]).await;
    assert_eq!(f.runner.catch_up().await.unwrap(), position);

    let row = f.row(id).await;
    assert_eq!(
        row,
        AccountRow {
            account_id: id,
            username: Username::parse("alice").unwrap(),
            email: Email::parse("alice@example.com").unwrap(),
            phone: Some(Phone::parse("+4915112345678").unwrap()),
            status: AccountStatus::Active,
            status_reason: None,
            keygen_session_id: keygen,
            key_status: KeyStatus::Pending,
            key_id: None,
            public_key_hex: None,
            created_at: at(0),
            updated_at: at(0),
            last_used_at: None,
            last_position: position,
        }
    );
    let shares = f.accounts().shares(id).await.unwrap();
    let located: Vec<_> = shares
        .iter()
        .map(|s| {
            (
                s.role,
                s.party_id.as_str(),
                s.identity_signing_hex.as_str(),
                s.account_id,
            )
        })
        .collect();
    let (one, three, five) = ("01".repeat(32), "03".repeat(32), "05".repeat(32));
    assert_eq!(
        located,
        [
            (ShareRole::Device, "alice-device", one.as_str(), id),
            (ShareRole::Server, "server", three.as_str(), id),
            (ShareRole::Recovery, "recovery", five.as_str(), id),
        ]
    );
    let by_name = f
        .accounts()
        .by_username(&Username::parse("alice").unwrap())
        .await
        .unwrap();
    assert_eq!(by_name, Some(row));
    assert_eq!(
        f.accounts()
            .by_username(&Username::parse("bob").unwrap())
            .await
            .unwrap(),
        None
    );
    assert_eq!(f.accounts().get(AccountId::new()).await.unwrap(), None);
    assert!(
        f.accounts()
            .shares(AccountId::new())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn the_keygen_session_completing_makes_the_key_ready_and_others_change_nothing(
    backend: TestBackend,
) {
    let f = Fixture::new(backend).await;
    let id = AccountId::new();
    let keygen = SessionId::new();
    f.account(id, &[opened(id, "alice", keygen, 0)]).await;
    f.session(keygen, &[keygen_created(keygen, "alice", 1)])
        .await;
    f.runner.catch_up().await.unwrap();
    let before = f.row(id).await;

    // An unrelated keygen session completes, and a signing session ends.
    let unrelated = SessionId::new();
    f.session(
        unrelated,
        &[
            keygen_created(unrelated, "bob", 2),
            completed(PartyOutcome::PublicKey(group_key()), 3),
        ],
    )
    .await;
    let signing = SessionId::new();
    let signature = Signature::new(&[0xab; 32], &[0xcd; 32], 1).unwrap();
    f.session(signing, &[completed(PartyOutcome::Signature(signature), 4)])
        .await;
    f.runner.catch_up().await.unwrap();
    assert_eq!(f.row(id).await, before);

    let position = f
        .session(
            keygen,
            &[completed(PartyOutcome::PublicKey(group_key()), 10)],
        )
        .await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!(row.key_status, KeyStatus::Ready);
    assert_eq!(row.key_id, Some(KeyId::of_keygen(keygen)));
    assert_eq!(row.public_key_hex, Some(format!("02{}", "5a".repeat(32))));
    assert_eq!((row.updated_at, row.last_position), (at(10), position));
    assert_eq!((row.status, row.created_at), (AccountStatus::Active, at(0)));
}

async fn status_changes_record_their_reason_and_use_records_its_time(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let id = AccountId::new();
    f.account(
        id,
        &[
            opened(id, "alice", SessionId::new(), 0),
            AccountEvent::AccountSuspended {
                reason: "chargeback under review".to_owned(),
                at: at(5),
            },
        ],
    )
    .await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!(row.status, AccountStatus::Suspended);
    assert_eq!(
        row.status_reason.as_deref(),
        Some("chargeback under review")
    );
    assert_eq!(row.updated_at, at(5));

    f.account(
        id,
        &[
            AccountEvent::AccountReactivated { at: at(6) },
            AccountEvent::AccountUsed {
                signing_session: SessionId::new(),
                at: at(7),
            },
        ],
    )
    .await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!(
        (row.status, row.status_reason),
        (AccountStatus::Active, None)
    );
    assert_eq!(row.last_used_at, Some(at(7)));

    let position = f
        .account(
            id,
            &[AccountEvent::AccountLocked {
                reason: "too many failed logins".to_owned(),
                at: at(8),
            }],
        )
        .await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!(row.status, AccountStatus::Locked);
    assert_eq!(row.status_reason.as_deref(), Some("too many failed logins"));
    assert_eq!(row.last_used_at, Some(at(7)));
    assert_eq!(row.last_position, position);
}

async fn a_failed_keygen_restarted_is_pending_again_on_the_new_session(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let id = AccountId::new();
    let first = SessionId::new();
    f.account(id, &[opened(id, "alice", first, 0)]).await;
    f.session(first, &[keygen_created(first, "alice", 1), failed(2)])
        .await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!((row.key_status, row.key_id), (KeyStatus::Failed, None));

    let second = SessionId::new();
    f.account(
        id,
        &[AccountEvent::AccountKeygenRestarted {
            keygen_session: second,
            at: at(3),
        }],
    )
    .await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!(row.keygen_session_id, second);
    assert_eq!(row.key_status, KeyStatus::Pending);

    // The old session's events no longer concern the account; the new one's do.
    f.session(
        second,
        &[
            keygen_created(second, "alice", 4),
            SessionEvent::SessionExpired { at: at(600_004) },
        ],
    )
    .await;
    f.runner.catch_up().await.unwrap();
    assert_eq!(f.row(id).await.key_status, KeyStatus::Failed);
    let third = SessionId::new();
    f.account(
        id,
        &[AccountEvent::AccountKeygenRestarted {
            keygen_session: third,
            at: at(600_005),
        }],
    )
    .await;
    f.session(
        third,
        &[
            keygen_created(third, "alice", 600_006),
            completed(PartyOutcome::PublicKey(group_key()), 600_007),
        ],
    )
    .await;
    f.runner.catch_up().await.unwrap();
    let row = f.row(id).await;
    assert_eq!(row.key_status, KeyStatus::Ready);
    assert_eq!(row.key_id, Some(KeyId::of_keygen(third)));
}

async fn redelivery_is_idempotent_and_a_rebuild_equals_the_live_model(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let (alice, bob) = (AccountId::new(), AccountId::new());
    let (alice_keygen, bob_keygen) = (SessionId::new(), SessionId::new());
    f.account(alice, &[opened(alice, "alice", alice_keygen, 0)])
        .await;
    f.runner.catch_up().await.unwrap();
    f.account(bob, &[opened(bob, "bob", bob_keygen, 10)]).await;
    f.session(
        alice_keygen,
        &[
            keygen_created(alice_keygen, "alice", 1),
            completed(PartyOutcome::PublicKey(group_key()), 20),
        ],
    )
    .await;
    f.session(
        bob_keygen,
        &[keygen_created(bob_keygen, "bob", 11), failed(21)],
    )
    .await;
    let head = f
        .account(
            alice,
            &[AccountEvent::AccountUsed {
                signing_session: SessionId::new(),
                at: at(30),
            }],
        )
        .await;
    assert_eq!(f.runner.catch_up().await.unwrap(), head);
    let live = f.accounts().list(10).await.unwrap();
    assert_eq!(
        live.iter().map(|r| r.account_id).collect::<Vec<_>>(),
        [bob, alice],
        "newest first"
    );
    let shares = f.accounts().shares(alice).await.unwrap();

    // The same batch again, through this runner and a second one starting from the
    // stored checkpoint: nothing is applied twice.
    assert_eq!(f.runner.catch_up().await.unwrap(), head);
    let other_pool = f.db.other_pool().await;
    let other = ProjectionRunner::new(
        f.store.clone(),
        other_pool.clone(),
        AccountsProjection::new(other_pool),
    )
    .await
    .unwrap();
    assert_eq!(other.catch_up().await.unwrap(), head);
    assert_eq!(f.accounts().list(10).await.unwrap(), live);
    assert_eq!(f.accounts().shares(alice).await.unwrap(), shares);

    let compared = replay(f.store.clone(), &f.db.models()).await.unwrap();
    let model = compared
        .iter()
        .find(|c| c.model == AccountsProjection::NAME)
        .expect("replay compares the accounts");
    assert!(model.matches(), "{model:?}");
    assert_eq!((model.live_rows, model.checkpoint), (2, head));

    // Damage the model so that a rebuild which does not reset and replay shows up.
    f.db.exec("UPDATE accounts SET status = 'locked', key_status = 'failed'")
        .await;
    f.db.exec("DELETE FROM account_shares WHERE role = 'server'")
        .await;
    assert_ne!(f.accounts().list(10).await.unwrap(), live);
    assert_eq!(f.runner.rebuild().await.unwrap(), head);
    assert_eq!(f.accounts().list(10).await.unwrap(), live);
    assert_eq!(f.accounts().shares(alice).await.unwrap(), shares);
    assert_eq!(f.accounts().list(1).await.unwrap(), live[..1]);
}

async fn a_corrupt_account_payload_stops_catch_up_before_it(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let id = AccountId::new();
    let first = f
        .account(id, &[opened(id, "alice", SessionId::new(), 0)])
        .await;
    f.append(
        &StreamName::new(stream::ACCOUNT, id).unwrap(),
        vec![new_event(
            "AccountSuspended",
            1,
            b"{not json".to_vec(),
            at(1),
        )],
    )
    .await;
    let error = f.runner.catch_up().await.unwrap_err();
    assert!(
        matches!(&error, ProjectionError::Decode { event_type, .. } if event_type == "AccountSuspended"),
        "{error:?}"
    );
    assert_eq!(f.runner.checkpoint().await.unwrap(), first);
    assert_eq!(f.row(id).await.status, AccountStatus::Active);
}

/// The new device of a `device_lost` recovery: identity signing key `07…07`.
fn device_lost() -> RecoveryKind {
    RecoveryKind::DeviceLost {
        identity: IdentityKey::new(&[7; 32], &[8; 32]).unwrap(),
    }
}

fn recovery_started(ms: i64) -> AccountEvent {
    AccountEvent::AccountRecoveryStarted {
        reason: "phone lost".to_owned(),
        at: at(ms),
    }
}

fn requested(session_id: SessionId, kind: RecoveryKind, ms: i64) -> AccountEvent {
    AccountEvent::RecoveryRequested {
        session_id,
        kind,
        at: at(ms),
    }
}

fn in_progress(session_id: SessionId, ms: i64) -> AccountEvent {
    AccountEvent::RecoveryInProgress {
        session_id,
        at: at(ms),
    }
}

fn recovered(session_id: SessionId, ms: i64) -> AccountEvent {
    AccountEvent::RecoveryCompleted {
        session_id,
        at: at(ms),
    }
}

fn recovery_failed(session_id: SessionId, ms: i64) -> AccountEvent {
    AccountEvent::RecoveryFailed {
        session_id,
        reason: "the refresh session expired".to_owned(),
        at: at(ms),
    }
}

/// (role, identity signing key hex) of each of an account's shares.
async fn share_identities(f: &Fixture, id: AccountId) -> Vec<(ShareRole, String)> {
    f.accounts()
        .shares(id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.role, s.identity_signing_hex))
        .collect()
}

fn identities(device: u8) -> Vec<(ShareRole, String)> {
    vec![
        (ShareRole::Device, format!("{device:02x}").repeat(32)),
        (ShareRole::Server, "03".repeat(32)),
        (ShareRole::Recovery, "05".repeat(32)),
    ]
}

async fn a_device_lost_recovery_rebinds_the_device_share_and_reactivates_the_account(
    backend: TestBackend,
) {
    let f = Fixture::new(backend).await;
    let id = AccountId::new();
    let recovery = SessionId::new();
    f.account(
        id,
        &[
            opened(id, "alice", SessionId::new(), 0),
            recovery_started(1),
        ],
    )
    .await;
    let requested_at = f
        .account(id, &[requested(recovery, device_lost(), 2)])
        .await;
    f.runner.catch_up().await.unwrap();
    let expected = RecoverySessionRow {
        session_id: recovery,
        account_id: id,
        kind: "device_lost".to_owned(),
        status: RecoveryStatus::Requested,
        new_device_identity_signing_hex: Some("07".repeat(32)),
        failure: None,
        requested_at: at(2),
        updated_at: at(2),
        last_position: requested_at,
    };
    assert_eq!(
        f.accounts().recoveries(id).await.unwrap(),
        std::slice::from_ref(&expected)
    );
    let row = f.row(id).await;
    assert_eq!(
        (row.status, row.status_reason.as_deref()),
        (AccountStatus::Recovering, Some("phone lost"))
    );
    assert_eq!((row.updated_at, row.last_position), (at(2), requested_at));

    let started_at = f.account(id, &[in_progress(recovery, 3)]).await;
    f.runner.catch_up().await.unwrap();
    assert_eq!(
        f.accounts().recoveries(id).await.unwrap(),
        [RecoverySessionRow {
            status: RecoveryStatus::InProgress,
            updated_at: at(3),
            last_position: started_at,
            ..expected.clone()
        }]
    );
    assert_eq!(f.row(id).await.status, AccountStatus::Recovering);
    assert_eq!(share_identities(&f, id).await, identities(1));

    let completed_at = f.account(id, &[recovered(recovery, 4)]).await;
    f.runner.catch_up().await.unwrap();
    assert_eq!(
        f.accounts().recoveries(id).await.unwrap(),
        [RecoverySessionRow {
            status: RecoveryStatus::Completed,
            updated_at: at(4),
            last_position: completed_at,
            ..expected
        }]
    );
    let row = f.row(id).await;
    assert_eq!(
        (row.status, row.status_reason),
        (AccountStatus::Active, None)
    );
    assert_eq!((row.updated_at, row.last_position), (at(4), completed_at));
    // Same party, new identity.
    let device = f.accounts().shares(id).await.unwrap().remove(0);
    assert_eq!(
        (device.role, device.party_id.as_str()),
        (ShareRole::Device, "alice-device")
    );
    assert_eq!(share_identities(&f, id).await, identities(7));
}

async fn a_failed_recovery_keeps_the_account_recovering_and_the_old_device(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let id = AccountId::new();
    let recovery = SessionId::new();
    let failed_at = f
        .account(
            id,
            &[
                opened(id, "alice", SessionId::new(), 0),
                recovery_started(1),
                requested(recovery, device_lost(), 2),
                in_progress(recovery, 3),
                recovery_failed(recovery, 4),
            ],
        )
        .await;
    f.runner.catch_up().await.unwrap();
    let recoveries = f.accounts().recoveries(id).await.unwrap();
    assert_eq!(recoveries.len(), 1);
    assert_eq!(recoveries[0].status, RecoveryStatus::Failed);
    assert_eq!(
        recoveries[0].failure.as_deref(),
        Some("the refresh session expired")
    );
    assert_eq!(
        (
            recoveries[0].requested_at,
            recoveries[0].updated_at,
            recoveries[0].last_position
        ),
        (at(2), at(4), failed_at)
    );
    let row = f.row(id).await;
    assert_eq!(
        (row.status, row.status_reason.as_deref()),
        (AccountStatus::Recovering, Some("phone lost"))
    );
    assert_eq!((row.updated_at, row.last_position), (at(4), failed_at));
    assert_eq!(share_identities(&f, id).await, identities(1));
}

async fn a_share_rotation_changes_neither_status_nor_shares_and_recoveries_are_per_account(
    backend: TestBackend,
) {
    let f = Fixture::new(backend).await;
    let (alice, bob) = (AccountId::new(), AccountId::new());
    let (first, second, bobs) = (SessionId::new(), SessionId::new(), SessionId::new());
    f.account(alice, &[opened(alice, "alice", SessionId::new(), 0)])
        .await;
    f.account(
        bob,
        &[
            opened(bob, "bob", SessionId::new(), 1),
            requested(bobs, RecoveryKind::ShareRotation, 2),
        ],
    )
    .await;
    let last = f
        .account(
            alice,
            &[
                requested(first, RecoveryKind::ShareRotation, 3),
                in_progress(first, 4),
                recovered(first, 5),
                requested(second, RecoveryKind::ShareRotation, 6),
            ],
        )
        .await;
    f.runner.catch_up().await.unwrap();
    let recoveries = f.accounts().recoveries(alice).await.unwrap();
    let summary: Vec<_> = recoveries
        .iter()
        .map(|r| {
            (
                r.session_id,
                r.account_id,
                r.kind.as_str(),
                r.status,
                r.new_device_identity_signing_hex.as_deref(),
                r.requested_at,
                r.updated_at,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                first,
                alice,
                "share_rotation",
                RecoveryStatus::Completed,
                None,
                at(3),
                at(5)
            ),
            (
                second,
                alice,
                "share_rotation",
                RecoveryStatus::Requested,
                None,
                at(6),
                at(6)
            ),
        ],
        "oldest first, only alice's"
    );
    assert_eq!(recoveries[1].last_position, last);
    let row = f.row(alice).await;
    assert_eq!(
        (row.status, row.status_reason),
        (AccountStatus::Active, None)
    );
    assert_eq!((row.updated_at, row.last_position), (at(6), last));
    assert_eq!(share_identities(&f, alice).await, identities(1));
    let bob_recoveries = f.accounts().recoveries(bob).await.unwrap();
    assert_eq!(
        bob_recoveries
            .iter()
            .map(|r| (r.session_id, r.status))
            .collect::<Vec<_>>(),
        [(bobs, RecoveryStatus::Requested)]
    );
    assert!(
        f.accounts()
            .recoveries(AccountId::new())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn replay_and_rebuild_include_recovery_sessions(backend: TestBackend) {
    let f = Fixture::new(backend).await;
    let (alice, bob) = (AccountId::new(), AccountId::new());
    let (lost, rotation, failed) = (SessionId::new(), SessionId::new(), SessionId::new());
    f.account(
        alice,
        &[
            opened(alice, "alice", SessionId::new(), 0),
            recovery_started(1),
            requested(failed, device_lost(), 2),
            recovery_failed(failed, 3),
            requested(lost, device_lost(), 4),
            in_progress(lost, 5),
            recovered(lost, 6),
        ],
    )
    .await;
    let head = f
        .account(
            bob,
            &[
                opened(bob, "bob", SessionId::new(), 10),
                requested(rotation, RecoveryKind::ShareRotation, 11),
                in_progress(rotation, 12),
            ],
        )
        .await;
    assert_eq!(f.runner.catch_up().await.unwrap(), head);
    let alice_recoveries = f.accounts().recoveries(alice).await.unwrap();
    assert_eq!(
        alice_recoveries
            .iter()
            .map(|r| (r.session_id, r.status))
            .collect::<Vec<_>>(),
        [
            (failed, RecoveryStatus::Failed),
            (lost, RecoveryStatus::Completed)
        ]
    );
    let bob_recoveries = f.accounts().recoveries(bob).await.unwrap();

    let compared = replay(f.store.clone(), &f.db.models()).await.unwrap();
    let model = compared
        .iter()
        .find(|c| c.model == AccountsProjection::NAME)
        .expect("replay compares the accounts");
    assert!(model.matches(), "{model:?}");
    assert_eq!((model.live_rows, model.checkpoint), (2, head));

    // A damaged recovery session is a difference replay reports.
    f.db.exec(format!(
        "UPDATE account_recovery_sessions SET status = 'requested', failure = NULL          WHERE session_id = '{failed}'"
    ))
    .await;
    let compared = replay(f.store.clone(), &f.db.models()).await.unwrap();
    let model = compared
        .iter()
        .find(|c| c.model == AccountsProjection::NAME)
        .expect("replay compares the accounts");
    let difference = model.first_difference.as_deref().expect("a difference");
    assert!(
        difference.starts_with(&format!("account {alice}:")),
        "{difference}"
    );

    // A rebuild resets the recovery sessions and replays them.
    f.db.exec("DELETE FROM account_recovery_sessions WHERE kind = 'share_rotation'")
        .await;
    assert_eq!(f.runner.rebuild().await.unwrap(), head);
    assert_eq!(
        f.accounts().recoveries(alice).await.unwrap(),
        alice_recoveries
    );
    assert_eq!(f.accounts().recoveries(bob).await.unwrap(), bob_recoveries);
    assert_eq!(share_identities(&f, alice).await, identities(7));
    let compared = replay(f.store.clone(), &f.db.models()).await.unwrap();
    assert!(compared.iter().all(|c| c.matches()), "{compared:?}");
}

/// The error catching up `events` of one fresh account (opened first when `open`),
/// after checking the checkpoint stays just before the offending last event.
async fn error_applying(backend: TestBackend, open: bool, events: &[AccountEvent]) -> String {
    let f = Fixture::new(backend).await;
    let id = AccountId::new();
    let mut history = Vec::new();
    if open {
        history.push(opened(id, "alice", SessionId::new(), 0));
    }
    history.extend_from_slice(events);
    let (last, rest) = history.split_last().unwrap();
    let before = if rest.is_empty() {
        0
    } else {
        f.account(id, rest).await
    };
    f.account(id, std::slice::from_ref(last)).await;
    let error = f.runner.catch_up().await.unwrap_err();
    assert_eq!(f.runner.checkpoint().await.unwrap(), before);
    match error {
        ProjectionError::Inconsistent { detail, .. } => detail,
        other => panic!("expected an inconsistency, got {other:?}"),
    }
}

async fn recovery_events_that_contradict_the_model_are_errors(backend: TestBackend) {
    let unknown = SessionId::new();
    let detail = error_applying(backend, true, &[in_progress(unknown, 1)]).await;
    assert!(detail.contains("never requested"), "{detail}");
    assert!(detail.contains(&unknown.to_string()), "{detail}");

    let detail = error_applying(backend, true, &[recovery_failed(unknown, 1)]).await;
    assert!(detail.contains("never requested"), "{detail}");

    let detail = error_applying(
        backend,
        false,
        &[requested(SessionId::new(), RecoveryKind::ShareRotation, 1)],
    )
    .await;
    assert!(detail.contains("never opened"), "{detail}");

    let twice = SessionId::new();
    let detail = error_applying(
        backend,
        true,
        &[
            requested(twice, RecoveryKind::ShareRotation, 1),
            requested(twice, RecoveryKind::ShareRotation, 2),
        ],
    )
    .await;
    assert!(detail.contains("already requested"), "{detail}");
}

on_every_backend!(
    an_opened_account_is_active_with_its_shares_and_a_pending_key,
    the_keygen_session_completing_makes_the_key_ready_and_others_change_nothing,
    status_changes_record_their_reason_and_use_records_its_time,
    a_failed_keygen_restarted_is_pending_again_on_the_new_session,
    redelivery_is_idempotent_and_a_rebuild_equals_the_live_model,
    a_corrupt_account_payload_stops_catch_up_before_it,
    a_device_lost_recovery_rebinds_the_device_share_and_reactivates_the_account,
    a_failed_recovery_keeps_the_account_recovering_and_the_old_device,
    a_share_rotation_changes_neither_status_nor_shares_and_recoveries_are_per_account,
    replay_and_rebuild_include_recovery_sessions,
    recovery_events_that_contradict_the_model_are_errors,
);
