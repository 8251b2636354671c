//! The coordinator over a real SQLite event store: replay, bad input, expiry.

use std::sync::Arc;
use std::time::Duration;

use k256::ecdsa::SigningKey;
use mpc_actors::{
    Approvals, Clock, CommandMeta, Coordinator, CoordinatorError, NewKeygen, NewSigning,
    NewWorkflow, SigningPayload, SystemClock,
};
use mpc_events::{
    IdentityKey, KeyId, KeyPolicy, Participant, PartyId, PartyOutcome, PublicKey, SessionError,
    SessionId, SessionStatus, Threshold, WorkflowStatus, stream,
};
use mpc_store::{EventStore, SqliteStore, StreamName};

fn pid(s: &str) -> PartyId {
    PartyId::parse(s).unwrap()
}

fn participants(names: &[&str]) -> Vec<Participant> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| Participant {
            party_id: pid(n),
            identity: IdentityKey::new(&[i as u8 + 1; 32], &[i as u8 + 50; 32]).unwrap(),
        })
        .collect()
}

fn group_key() -> PublicKey {
    let sk = SigningKey::from_bytes(&[5u8; 32].into()).unwrap();
    PublicKey::from_slice(sk.verifying_key().to_sec1_point(true).as_bytes()).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Arc<dyn EventStore>,
    coordinator: Coordinator,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let coordinator = Coordinator::new(store.clone(), Arc::new(SystemClock));
    Fixture {
        _dir: dir,
        path,
        store,
        coordinator,
    }
}

fn keygen_request(ttl: Duration) -> NewKeygen {
    NewKeygen {
        policy: KeyPolicy::AnyRequest,
        threshold: Threshold::new(2, 3).unwrap(),
        participants: participants(&["device", "server", "recovery"]),
        ttl,
    }
}

/// Runs a keygen session to completion with every party reporting `group_key()`.
async fn completed_keygen(f: &Fixture) -> SessionId {
    let created = f
        .coordinator
        .create_keygen(keygen_request(Duration::from_secs(60)), CommandMeta::new())
        .await
        .unwrap();
    for (party, token) in &created.join_tokens {
        f.coordinator
            .join(
                created.session_id,
                party,
                token.expose(),
                CommandMeta::new(),
            )
            .await
            .unwrap();
    }
    for party in created.join_tokens.keys() {
        f.coordinator
            .report_completion(
                created.session_id,
                party,
                PartyOutcome::PublicKey(group_key()),
                CommandMeta::new(),
            )
            .await
            .unwrap();
    }
    created.session_id
}

#[tokio::test]
async fn state_rebuilt_from_the_store_equals_the_live_state() {
    let f = fixture().await;
    let keygen = completed_keygen(&f).await;
    let signing = f
        .coordinator
        .create_signing(
            NewSigning {
                key_id: KeyId::of_keygen(keygen),
                signers: vec![pid("server"), pid("recovery")],
                payload: SigningPayload::Message(b"pay 5".to_vec()),
                ttl: Duration::from_secs(60),
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let live_keygen = f.coordinator.session(keygen).await.unwrap();
    let live_signing = f.coordinator.session(signing.session_id).await.unwrap();
    assert_eq!(live_keygen.status, SessionStatus::Completed);

    // A new coordinator over the reopened database file replays both streams.
    let reopened: Arc<dyn EventStore> = Arc::new(SqliteStore::open(&f.path).await.unwrap());
    let replayed = Coordinator::new(reopened, Arc::new(SystemClock));
    assert_eq!(replayed.session(keygen).await.unwrap(), live_keygen);
    assert_eq!(
        replayed.session(signing.session_id).await.unwrap(),
        live_signing
    );
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_appends_nothing() {
    let f = fixture().await;
    let created = f
        .coordinator
        .create_keygen(keygen_request(Duration::from_secs(60)), CommandMeta::new())
        .await
        .unwrap();
    let session = created.session_id;
    let device = pid("device");
    let device_token = created.join_tokens[&device].expose().to_owned();
    let head = f.store.head().await.unwrap();

    let unknown = f
        .coordinator
        .join(SessionId::new(), &device, &device_token, CommandMeta::new())
        .await;
    assert!(matches!(
        unknown,
        Err(CoordinatorError::Session(SessionError::UnknownSession))
    ));

    let server_token = created.join_tokens[&pid("server")].expose().to_owned();
    let wrong = f
        .coordinator
        .join(session, &device, &server_token, CommandMeta::new())
        .await;
    assert!(matches!(
        wrong,
        Err(CoordinatorError::Session(SessionError::InvalidToken))
    ));

    let mut duplicate = keygen_request(Duration::from_secs(60));
    duplicate.participants[1].party_id = pid("device");
    let dup = f
        .coordinator
        .create_keygen(duplicate, CommandMeta::new())
        .await;
    assert!(matches!(
        dup,
        Err(CoordinatorError::Session(SessionError::DuplicateParty(_)))
    ));

    let not_ready = f
        .coordinator
        .create_signing(
            NewSigning {
                key_id: KeyId::of_keygen(session),
                signers: vec![pid("device"), pid("server")],
                payload: SigningPayload::Message(b"x".to_vec()),
                ttl: Duration::from_secs(60),
            },
            CommandMeta::new(),
        )
        .await;
    assert!(matches!(not_ready, Err(CoordinatorError::KeyNotReady(_))));
    assert_eq!(
        f.store.head().await.unwrap(),
        head,
        "a refusal appended events"
    );

    f.coordinator
        .join(session, &device, &device_token, CommandMeta::new())
        .await
        .unwrap();
    let head = f.store.head().await.unwrap();
    let reused = f
        .coordinator
        .join(session, &device, &device_token, CommandMeta::new())
        .await;
    assert!(matches!(
        reused,
        Err(CoordinatorError::Session(SessionError::AlreadyJoined(_)))
    ));
    assert_eq!(
        f.store.head().await.unwrap(),
        head,
        "a reused token appended events"
    );
}

#[tokio::test]
async fn an_unfinished_session_expires_by_itself_at_its_deadline() {
    let f = fixture().await;
    let created = f
        .coordinator
        .create_keygen(
            keygen_request(Duration::from_millis(300)),
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let session = tokio::time::timeout(
        Duration::from_secs(10),
        f.coordinator
            .wait_for(created.session_id, |s| s.status == SessionStatus::Expired),
    )
    .await
    .expect("the session did not expire")
    .unwrap();
    assert_eq!(session.status, SessionStatus::Expired);

    let token = created.join_tokens[&pid("device")].expose().to_owned();
    let late = f
        .coordinator
        .join(
            created.session_id,
            &pid("device"),
            &token,
            CommandMeta::new(),
        )
        .await;
    assert!(matches!(
        late,
        Err(CoordinatorError::Session(SessionError::NotJoinable(
            SessionStatus::Expired
        )))
    ));
}

/// A coordinator process that dies stops its session actors with it; the next one
/// loads nothing by itself, so the session expires only once it is resumed.
#[test]
fn a_workflow_left_pending_by_a_stopped_coordinator_expires_once_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let runtime = || tokio::runtime::Runtime::new().unwrap();

    let first = runtime();
    let workflow_id = first.block_on(async {
        let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let f = Fixture {
            _dir: tempfile::tempdir().unwrap(),
            path: path.clone(),
            store: store.clone(),
            coordinator: Coordinator::new(store.clone(), Arc::new(SystemClock)),
        };
        let key_id = KeyId::of_keygen(completed_keygen(&f).await);
        let approvals = Approvals::new(store, Arc::new(SystemClock), Arc::new(f.coordinator));
        approvals
            .create(
                NewWorkflow {
                    key_id,
                    title: "left pending".into(),
                    payload: b"payload".to_vec(),
                    ttl: Duration::from_millis(300),
                },
                CommandMeta::new(),
            )
            .await
            .unwrap()
    });
    // The process is gone: its runtime, and every actor task on it, dropped.
    drop(first);

    runtime().block_on(async {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let coordinator = Arc::new(Coordinator::new(store.clone(), Arc::new(SystemClock)));
        let stream = StreamName::new(stream::APPROVAL, workflow_id).unwrap();
        assert_eq!(
            store.read_stream(&stream, 1).await.unwrap().len(),
            1,
            "only WorkflowCreated: nobody expired the workflow while no coordinator ran"
        );
        let approvals = Approvals::new(store.clone(), Arc::new(SystemClock), coordinator);
        approvals.resume(workflow_id).await.unwrap();
        // Watched in the store, not through `approvals`, which would load the actor.
        let expired = tokio::time::timeout(Duration::from_secs(10), async {
            while store.read_stream(&stream, 1).await.unwrap().len() < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(expired.is_ok(), "the resumed workflow did not expire");
        let types: Vec<String> = store
            .read_stream(&stream, 1)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect();
        assert_eq!(types, ["WorkflowCreated", "WorkflowExpired"]);
        assert_eq!(
            approvals.workflow(workflow_id).await.unwrap().status,
            WorkflowStatus::Expired
        );
    });
}

#[test]
fn a_session_left_open_by_a_stopped_coordinator_expires_once_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let runtime = || tokio::runtime::Runtime::new().unwrap();

    let first = runtime();
    let (session_id, expires_at) = first.block_on(async {
        let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let coordinator = Coordinator::new(store, Arc::new(SystemClock));
        let created = coordinator
            .create_keygen(
                keygen_request(Duration::from_millis(200)),
                CommandMeta::new(),
            )
            .await
            .unwrap();
        (created.session_id, created.expires_at)
    });
    // The process is gone: its runtime, and every actor task on it, dropped.
    drop(first);

    runtime().block_on(async {
        while SystemClock.now() <= expires_at {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let coordinator = Coordinator::new(store.clone(), Arc::new(SystemClock));
        let stream = StreamName::new(stream::SESSION, session_id).unwrap();
        assert_eq!(
            store.read_stream(&stream, 1).await.unwrap().len(),
            1,
            "only SessionCreated: nobody expired the session while no coordinator ran"
        );
        assert_eq!(
            coordinator.resume(session_id).await.unwrap(),
            SessionStatus::Created
        );
        let session = tokio::time::timeout(
            Duration::from_secs(10),
            coordinator.wait_for(session_id, |s| s.status.is_terminal()),
        )
        .await
        .expect("the resumed session did not expire")
        .unwrap();
        assert_eq!(session.status, SessionStatus::Expired);
        let types: Vec<String> = store
            .read_stream(&stream, 1)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect();
        assert_eq!(types, ["SessionCreated", "SessionExpired"]);
        assert!(matches!(
            coordinator.resume(SessionId::new()).await,
            Err(CoordinatorError::Session(SessionError::UnknownSession))
        ));
    });
}

#[tokio::test]
async fn two_coordinators_racing_on_one_session_both_see_every_join() {
    let f = fixture().await;
    let created = f
        .coordinator
        .create_keygen(keygen_request(Duration::from_secs(60)), CommandMeta::new())
        .await
        .unwrap();
    // A second coordinator over the same database (another process in production)
    // loads the session before any join, so its actor starts with a stale version.
    let other = Coordinator::new(f.store.clone(), Arc::new(SystemClock));
    other.session(created.session_id).await.unwrap();
    let tokens: Vec<_> = created
        .join_tokens
        .iter()
        .map(|(p, t)| (p.clone(), t.expose().to_owned()))
        .collect();
    f.coordinator
        .join(
            created.session_id,
            &tokens[0].0,
            &tokens[0].1,
            CommandMeta::new(),
        )
        .await
        .unwrap();
    other
        .join(
            created.session_id,
            &tokens[1].0,
            &tokens[1].1,
            CommandMeta::new(),
        )
        .await
        .unwrap();
    f.coordinator
        .join(
            created.session_id,
            &tokens[2].0,
            &tokens[2].1,
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let s = f.coordinator.session(created.session_id).await.unwrap();
    assert_eq!(s.joined.len(), 3, "a join was lost");
    let fresh = Coordinator::new(f.store.clone(), Arc::new(SystemClock));
    let replayed = fresh.session(created.session_id).await.unwrap();
    assert_eq!(replayed.status, SessionStatus::InProgress);
    assert_eq!(replayed.joined.len(), 3);
}
