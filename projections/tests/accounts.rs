//! The accounts projection against a real event store, fed with encoded account and
//! session events.

use std::collections::BTreeMap;
use std::sync::Arc;

use mpc_events::{
    AccountEvent, AccountId, AccountParties, AccountStatus, Email, FailureReason, IdentityKey,
    KeyId, Participant, PartyId, PartyOutcome, Phone, PublicKey, SessionCreated, SessionEvent,
    SessionId, SessionSpec, ShareRole, Signature, Threshold, Timestamp, TokenDigest, Username,
};
use mpc_projections::{
    AccountRow, AccountsProjection, KeyStatus, ProjectionError, ProjectionRunner, replay,
};
use mpc_store::{EventStore, ExpectedVersion, NewEvent, StreamName};
use uuid::Uuid;

mod support;

use support::{TestBackend, TestDb, on_every_backend};

struct Fixture {
    // Declared before `db`, so the runner's pool goes before its database.
    runner: ProjectionRunner<AccountsProjection>,
    store: Arc<dyn EventStore>,
    db: TestDb,
}

impl Fixture {
    async fn new(backend: TestBackend) -> Self {
        let db = TestDb::create(backend).await;
        let store = db.store();
        let models = db.models();
        let runner = ProjectionRunner::new(
            store.clone(),
            models.clone(),
            AccountsProjection::new(models),
        )
        .await
        .unwrap();
        Self { runner, store, db }
    }

    fn accounts(&self) -> &AccountsProjection {
        self.runner.projection()
    }

    async fn row(&self, id: AccountId) -> AccountRow {
        self.accounts().get(id).await.unwrap().expect("account row")
    }

    /// Appends `events` to `account-<id>`; returns the position of the last one.
    async fn account(&self, id: AccountId, events: &[AccountEvent]) -> u64 {
        let encoded = events
            .iter()
            .map(|e| {
                let encoded = mpc_schemas::account::encode_account(e).unwrap();
                new_event(
                    encoded.event_type,
                    encoded.schema_version,
                    encoded.payload,
                    e.at(),
                )
            })
            .collect();
        self.append(&StreamName::new("account", id).unwrap(), encoded)
            .await
    }

    /// Appends `events` to `session-<id>`; returns the position of the last one.
    async fn session(&self, id: SessionId, events: &[SessionEvent]) -> u64 {
        let encoded = events
            .iter()
            .map(|e| {
                let encoded = mpc_schemas::session::encode(e).unwrap();
                new_event(
                    encoded.event_type,
                    encoded.schema_version,
                    encoded.payload,
                    e.at(),
                )
            })
            .collect();
        self.append(&StreamName::new("session", id).unwrap(), encoded)
            .await
    }

    async fn append(&self, stream: &StreamName, events: Vec<NewEvent>) -> u64 {
        let version = self.store.read_stream(stream, 1).await.unwrap().len() as u64;
        self.store
            .append(stream, ExpectedVersion::Exact(version), events)
            .await
            .unwrap()
            .last_position
    }
}

fn new_event(event_type: &str, schema_version: u16, payload: Vec<u8>, at: Timestamp) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        schema_version,
        payload,
        correlation_id: Uuid::now_v7(),
        causation_id: Uuid::now_v7(),
        occurred_at: at,
    }
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_700_000_000_000 + ms)
}

fn participant(name: &str, seed: u8) -> Participant {
    Participant {
        party_id: PartyId::parse(name).unwrap(),
        identity: IdentityKey::new(&[seed; 32], &[seed.wrapping_add(1); 32]).unwrap(),
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

fn group_key() -> PublicKey {
    let mut bytes = [0x5a; 33];
    bytes[0] = 0x02;
    PublicKey::from_slice(&bytes).unwrap()
}

fn keygen_created(id: SessionId, user: &str, ms: i64) -> SessionEvent {
    let parties = parties(user).in_order();
    let join_tokens: BTreeMap<_, _> = parties
        .iter()
        .map(|p| (p.party_id.clone(), TokenDigest::from_bytes([9; 32])))
        .collect();
    SessionEvent::SessionCreated(SessionCreated {
        session_id: id,
        spec: SessionSpec::Keygen {
            threshold: Threshold::new(2, 3).unwrap(),
        },
        participants: parties,
        join_tokens,
        join_expires_at: at(ms + 60_000),
        expires_at: at(ms + 600_000),
        at: at(ms),
    })
}

fn completed(outcome: PartyOutcome, ms: i64) -> SessionEvent {
    SessionEvent::SessionCompleted {
        outcome,
        at: at(ms),
    }
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
        &StreamName::new("account", id).unwrap(),
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

on_every_backend!(
    an_opened_account_is_active_with_its_shares_and_a_pending_key,
    the_keygen_session_completing_makes_the_key_ready_and_others_change_nothing,
    status_changes_record_their_reason_and_use_records_its_time,
    a_failed_keygen_restarted_is_pending_again_on_the_new_session,
    redelivery_is_idempotent_and_a_rebuild_equals_the_live_model,
    a_corrupt_account_payload_stops_catch_up_before_it,
);
