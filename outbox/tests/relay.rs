//! The relay against a file-backed SQLite event store holding real encoded session
//! events, publishing to the in-memory sink (and to one that crashes).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mpc_events::{
    AccountEvent, AccountId, AccountParties, Email, KeyPolicy, ShareRole, Username,
    WorkflowCreated, WorkflowEvent, WorkflowId, stream,
};
use mpc_events::{
    FailureReason, IdentityKey, KeyId, KeyRef, MessageHash, Participant, PartyId, PartyOutcome,
    PublicKey, RefreshDigest, RepairSpec, SessionCreated, SessionEvent, SessionId, SessionKind,
    SessionSpec, Signature, Threshold, Timestamp, TokenDigest,
};
use mpc_outbox::{DomainEventSink, InMemoryDomainSink, Outbox, OutboxError};
use mpc_schemas::DomainEvent;
use mpc_schemas::domain::{DomainData, FailureCode};
use mpc_store::testing::{TempSqlite, append_next, new_event};
use mpc_store::{EventStore, NewEvent, RecordedEvent, StreamName};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

struct Log {
    // Declared before `sqlite`, so the store closes before its directory is removed.
    store: Arc<dyn EventStore>,
    _sqlite: TempSqlite,
}

impl Log {
    async fn new() -> Self {
        let sqlite = TempSqlite::create().await;
        Self {
            store: Arc::new(sqlite.store().clone()),
            _sqlite: sqlite,
        }
    }

    /// Appends `events` to `session-<id>`; returns them as recorded.
    async fn record(&self, id: SessionId, events: &[SessionEvent]) -> Vec<RecordedEvent> {
        let stream = StreamName::new(stream::SESSION, id).unwrap();
        let encoded = events
            .iter()
            .map(|e| {
                let encoded = mpc_schemas::stored::session::encode(e).unwrap();
                new_event(
                    encoded.event_type,
                    encoded.schema_version,
                    encoded.payload,
                    e.at(),
                )
            })
            .collect();
        self.append(&stream, encoded).await
    }

    async fn append(&self, stream: &StreamName, events: Vec<NewEvent>) -> Vec<RecordedEvent> {
        let version = self.store.read_stream(stream, 1).await.unwrap().len() as u64;
        append_next(self.store.as_ref(), stream, events).await;
        self.store.read_stream(stream, version + 1).await.unwrap()
    }

    /// A keygen that completes, a signing with its key that completes, a keygen that
    /// aborts and a signing that expires, interleaved with events of another category.
    /// Returns the four terminal events, in position order.
    async fn history(&self) -> Vec<RecordedEvent> {
        let keygen = SessionId::new();
        let mut terminal = Vec::new();
        let key = PartyOutcome::PublicKey(group_key());
        terminal.push(
            self.record(
                keygen,
                &[
                    keygen_created(keygen),
                    joined("device"),
                    joined("server"),
                    joined("recovery"),
                    started(),
                    reported("device", key.clone()),
                    reported("server", key.clone()),
                    reported("recovery", key.clone()),
                    SessionEvent::SessionCompleted {
                        outcome: key,
                        at: at(9),
                    },
                ],
            )
            .await
            .pop()
            .unwrap(),
        );
        self.unselected().await;
        let signing = SessionId::new();
        let signature = PartyOutcome::Signature(signature());
        terminal.push(
            self.record(
                signing,
                &[
                    signing_created(signing, KeyId::of_keygen(keygen)),
                    joined("device"),
                    joined("server"),
                    started(),
                    reported("device", signature.clone()),
                    SessionEvent::SessionCompleted {
                        outcome: signature,
                        at: at(20),
                    },
                ],
            )
            .await
            .pop()
            .unwrap(),
        );
        let aborted = SessionId::new();
        terminal.push(
            self.record(
                aborted,
                &[
                    keygen_created(aborted),
                    joined("device"),
                    started(),
                    SessionEvent::SessionFailed {
                        reason: FailureReason::PartyAborted {
                            reported_by: party("device"),
                            culprits: vec![party("recovery")],
                            detail: "round 3: bad proof".into(),
                        },
                        at: at(30),
                    },
                ],
            )
            .await
            .pop()
            .unwrap(),
        );
        self.unselected().await;
        let expired = SessionId::new();
        terminal.push(
            self.record(
                expired,
                &[
                    signing_created(expired, KeyId::of_keygen(keygen)),
                    SessionEvent::SessionExpired { at: at(40) },
                ],
            )
            .await
            .pop()
            .unwrap(),
        );
        terminal
    }

    /// An event of a category the outbox does not publish, with a payload no schema
    /// decodes: selection must not even try.
    async fn unselected(&self) {
        let stream = StreamName::new(stream::PARTY, Uuid::new_v4()).unwrap();
        self.append(
            &stream,
            vec![new_event("IdentityRegistered", 1, b"\xff".to_vec(), at(1))],
        )
        .await;
    }

    /// A keygen session that an operator closes; returns its terminal event.
    async fn closed_session(&self, ms: i64) -> RecordedEvent {
        let id = SessionId::new();
        self.record(
            id,
            &[
                keygen_created(id),
                SessionEvent::SessionFailed {
                    reason: FailureReason::Closed {
                        reason: "operator".into(),
                    },
                    at: at(ms),
                },
            ],
        )
        .await
        .pop()
        .unwrap()
    }
}

fn party(name: &str) -> PartyId {
    PartyId::parse(name).unwrap()
}

fn participants() -> Vec<Participant> {
    [("device", 1), ("server", 3), ("recovery", 5)]
        .into_iter()
        .map(|(name, seed)| Participant {
            party_id: party(name),
            identity: IdentityKey::new(&[seed; 32], &[seed + 1; 32]).unwrap(),
        })
        .collect()
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(1_795_000_000_000 + ms)
}

fn created(id: SessionId, spec: SessionSpec, parties: Vec<Participant>) -> SessionEvent {
    let join_tokens: BTreeMap<_, _> = parties
        .iter()
        .map(|p| (p.party_id.clone(), TokenDigest::from_bytes([9; 32])))
        .collect();
    SessionEvent::SessionCreated(SessionCreated {
        session_id: id,
        spec,
        participants: parties,
        join_tokens,
        join_expires_at: at(60_000),
        expires_at: at(600_000),
        at: at(0),
    })
}

fn keygen_created(id: SessionId) -> SessionEvent {
    let spec = SessionSpec::Keygen {
        threshold: Threshold::new(2, 3).unwrap(),
        policy: KeyPolicy::ApprovedOnly,
    };
    created(id, spec, participants())
}

fn signing_created(id: SessionId, key_id: KeyId) -> SessionEvent {
    let spec = SessionSpec::Signing {
        key: KeyRef {
            key_id,
            public_key: group_key(),
            threshold: Threshold::new(2, 3).unwrap(),
            parties: participants(),
            epoch: 1,
        },
        message_hash: MessageHash::from_bytes([7; 32]),
        message: None,
        approval: None,
    };
    created(id, spec, participants()[..2].to_vec())
}

fn group_key() -> PublicKey {
    let mut bytes = [0x5a; 33];
    bytes[0] = 0x02;
    PublicKey::from_slice(&bytes).unwrap()
}

fn signature() -> Signature {
    Signature::new(&[0x21; 32], &[0x12; 32], 0).unwrap()
}

fn joined(name: &str) -> SessionEvent {
    SessionEvent::ParticipantJoined {
        party_id: party(name),
        at: at(2),
    }
}

fn started() -> SessionEvent {
    SessionEvent::SessionStarted { at: at(3) }
}

fn reported(name: &str, outcome: PartyOutcome) -> SessionEvent {
    SessionEvent::PartyCompleted {
        party_id: party(name),
        outcome,
        at: at(4),
    }
}

/// A running relay and the means to stop it.
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), OutboxError>>,
}

impl Running {
    fn start(outbox: Outbox) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            outbox
                .run(async {
                    stopped.await.ok();
                })
                .await
        });
        Self { stop, task }
    }

    async fn stop(self) -> Result<(), OutboxError> {
        self.stop.send(()).ok();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the relay stops")
            .unwrap()
    }
}

/// Waits until `sink` holds at least `n` events.
async fn published_at_least(sink: &InMemoryDomainSink, n: usize) -> Vec<DomainEvent> {
    tokio::time::timeout(WAIT, async {
        loop {
            let published = sink.published();
            if published.len() >= n {
                return published;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{} of {n} events published", sink.published().len()))
}

/// `(event id, position)` of each event.
fn ids(events: &[DomainEvent]) -> Vec<(Uuid, u64)> {
    events.iter().map(|e| (e.event_id, e.position)).collect()
}

fn sources(recorded: &[RecordedEvent]) -> Vec<(Uuid, u64)> {
    recorded.iter().map(|e| (e.event_id, e.position)).collect()
}

/// What a consumer keeps when it drops every event id it has seen before.
fn deduplicated(events: &[DomainEvent]) -> Vec<DomainEvent> {
    let mut seen = HashSet::new();
    events
        .iter()
        .filter(|e| seen.insert(e.event_id))
        .cloned()
        .collect()
}

#[tokio::test]
async fn selected_events_are_published_in_position_order_and_others_are_not() {
    let log = Log::new().await;
    let terminal = log.history().await;
    let sink = InMemoryDomainSink::new();
    let relay = Running::start(Outbox::new(log.store.clone(), Arc::new(sink.clone())));

    let published = published_at_least(&sink, 4).await;
    assert_eq!(ids(&published), sources(&terminal));
    let types: Vec<_> = published.iter().map(DomainEvent::event_type).collect();
    assert_eq!(
        types,
        [
            "key.generated",
            "signature.produced",
            "session.failed",
            "session.failed"
        ]
    );
    for (event, source) in published.iter().zip(&terminal) {
        assert_eq!(event.occurred_at, source.occurred_at);
        assert_eq!(event.correlation_id, source.correlation_id);
    }
    let keygen = SessionId::from_uuid(published[0].subject().id.parse().unwrap());
    let DomainData::KeyGenerated(key) = &published[0].data else {
        panic!("{:?}", published[0]);
    };
    assert_eq!(key.key_id, KeyId::of_keygen(keygen));
    assert_eq!(key.public_key, group_key());
    assert_eq!(key.threshold, Threshold::new(2, 3).unwrap());
    assert_eq!(
        key.parties,
        [party("device"), party("server"), party("recovery")]
    );
    assert_eq!(key.policy, KeyPolicy::ApprovedOnly);
    let DomainData::SignatureProduced(signed) = &published[1].data else {
        panic!("{:?}", published[1]);
    };
    assert_eq!(signed.key_id, key.key_id);
    assert_eq!(signed.public_key, group_key());
    assert_eq!(signed.message_hash, MessageHash::from_bytes([7; 32]));
    assert_eq!(signed.signature, signature());
    assert_eq!(signed.signers, [party("device"), party("server")]);
    let DomainData::SessionFailed(aborted) = &published[2].data else {
        panic!("{:?}", published[2]);
    };
    assert_eq!(aborted.kind, SessionKind::Keygen);
    assert_eq!(aborted.reason, FailureCode::PartyAborted);
    assert_eq!(aborted.detail.as_deref(), Some("round 3: bad proof"));
    assert_eq!(aborted.culprits, [party("recovery")]);
    let DomainData::SessionFailed(expired) = &published[3].data else {
        panic!("{:?}", published[3]);
    };
    assert_eq!(expired.kind, SessionKind::Signing);
    assert_eq!(expired.reason, FailureCode::Expired);
    assert_eq!(
        (expired.detail.as_deref(), expired.culprits.len()),
        (None, 0)
    );

    // New events are followed live.
    let closed = log.closed_session(50).await;
    let published = published_at_least(&sink, 5).await;
    assert_eq!(ids(&published[4..]), sources(&[closed]));
    let DomainData::SessionFailed(failed) = &published[4].data else {
        panic!("{:?}", published[4]);
    };
    assert_eq!(
        (failed.reason, failed.detail.as_deref()),
        (FailureCode::Closed, Some("operator"))
    );

    relay.stop().await.unwrap();
    assert_eq!(sink.published().len(), 5);
}

/// A sink that, like a process dying mid-batch, stops after `budget` more events:
/// the batch that crosses it is durable only up to the budget (or, if `ack_lost`,
/// entirely, with its acknowledgement lost), and the publish fails.
struct CrashingSink {
    inner: InMemoryDomainSink,
    budget: Mutex<usize>,
    ack_lost: bool,
}

#[async_trait]
impl DomainEventSink for CrashingSink {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), OutboxError> {
        let durable = {
            let mut budget = self.budget.lock().unwrap();
            let durable = events.len().min(*budget);
            *budget -= durable;
            durable
        };
        if durable == events.len() {
            return self.inner.publish(events).await;
        }
        let kept = if self.ack_lost {
            events
        } else {
            &events[..durable]
        };
        self.inner.publish(kept).await?;
        Err(OutboxError::Sink("crashed".into()))
    }

    async fn last_position(&self) -> Result<Option<u64>, OutboxError> {
        self.inner.last_position().await
    }
}

#[tokio::test]
async fn a_relay_restarted_after_a_crash_loses_nothing() {
    let log = Log::new().await;
    let mut terminal = log.history().await;
    for ms in 0..4 {
        terminal.push(log.closed_session(ms).await);
    }
    let expected = sources(&terminal);
    for ack_lost in [false, true] {
        for crash_after in 0..expected.len() {
            let inner = InMemoryDomainSink::new();
            let crashing = CrashingSink {
                inner: inner.clone(),
                budget: Mutex::new(crash_after),
                ack_lost,
            };
            let outbox = Outbox::new(log.store.clone(), Arc::new(crashing)).with_batch(7);
            let crashed = tokio::time::timeout(WAIT, outbox.run(std::future::pending()))
                .await
                .expect("the relay fails at the crash");
            assert!(matches!(crashed, Err(OutboxError::Sink(_))), "{crashed:?}");
            let before = inner.published().len();
            assert!(
                before < expected.len() || ack_lost,
                "{ack_lost} {crash_after}"
            );

            let relay = Running::start(Outbox::new(log.store.clone(), Arc::new(inner.clone())));
            published_at_least(&inner, expected.len()).await;
            relay.stop().await.unwrap();
            let published = inner.published();
            assert_eq!(
                ids(&deduplicated(&published)),
                expected,
                "crash after {crash_after} (ack lost: {ack_lost})"
            );
            // Duplicates are only ever of what had not been acknowledged: the events
            // resumed after are exactly those after the last durable one.
            assert_eq!(published.len(), expected.len(), "{published:?}");
        }
    }
}

#[tokio::test]
async fn a_selected_event_that_cannot_be_mapped_stops_the_relay() {
    let log = Log::new().await;
    let first = log.closed_session(1).await;
    // A completion in a stream without its SessionCreated.
    let orphan = SessionId::new();
    log.record(
        orphan,
        &[SessionEvent::SessionCompleted {
            outcome: PartyOutcome::PublicKey(group_key()),
            at: at(2),
        }],
    )
    .await;
    log.closed_session(3).await;
    let sink = InMemoryDomainSink::new();
    let outcome = tokio::time::timeout(
        WAIT,
        Outbox::new(log.store.clone(), Arc::new(sink.clone()))
            .with_batch(1)
            .run(std::future::pending()),
    )
    .await
    .expect("the relay fails");
    assert!(
        matches!(outcome, Err(OutboxError::Map { .. })),
        "{outcome:?}"
    );
    assert_eq!(ids(&sink.published()), sources(&[first]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opened_accounts_and_decided_workflows_are_published_with_their_context() {
    let log = Log::new().await;
    let parties = participants();
    let account = AccountId::new();
    let keygen = SessionId::new();
    let opened = AccountEvent::AccountOpened {
        account_id: account,
        username: Username::parse("alice").unwrap(),
        email: Email::parse("alice@example.com").unwrap(),
        phone: None,
        parties: AccountParties {
            device: parties[0].clone(),
            server: parties[1].clone(),
            recovery: parties[2].clone(),
        },
        keygen_session: keygen,
        at: Timestamp::from_millis(1),
    };
    let encoded = mpc_schemas::stored::account::encode_account(&opened).unwrap();
    log.append(
        &StreamName::new(stream::ACCOUNT, account).unwrap(),
        vec![new_event(
            encoded.event_type,
            encoded.schema_version,
            encoded.payload,
            opened.at(),
        )],
    )
    .await;
    let workflow = WorkflowId::new();
    let key_id = KeyId::of_keygen(keygen);
    let payload_hash = MessageHash::from_bytes([9; 32]);
    let events = [
        WorkflowEvent::WorkflowCreated(WorkflowCreated {
            workflow_id: workflow,
            title: "review".into(),
            key: KeyRef {
                key_id,
                public_key: group_key(),
                threshold: Threshold::new(2, 3).unwrap(),
                parties: parties.clone(),
                epoch: 1,
            },
            payload: b"x".to_vec(),
            payload_hash,
            expires_at: Timestamp::from_millis(10),
            at: Timestamp::from_millis(2),
        }),
        WorkflowEvent::WorkflowApproved {
            approvers: vec![party("device"), party("server")],
            at: Timestamp::from_millis(3),
        },
    ];
    let encoded = events
        .iter()
        .map(|e| {
            let encoded = mpc_schemas::stored::approval::encode_workflow(e).unwrap();
            new_event(
                encoded.event_type,
                encoded.schema_version,
                encoded.payload,
                e.at(),
            )
        })
        .collect();
    log.append(
        &StreamName::new(stream::APPROVAL, workflow).unwrap(),
        encoded,
    )
    .await;

    let sink = InMemoryDomainSink::new();
    let relay = Running::start(Outbox::new(log.store.clone(), Arc::new(sink.clone())));
    let published = published_at_least(&sink, 2).await;
    relay.stop().await.unwrap();
    let types: Vec<_> = published.iter().map(DomainEvent::event_type).collect();
    assert_eq!(types, ["account.created", "workflow.approved"]);
    let DomainData::AccountCreated(created) = &published[0].data else {
        panic!("{:?}", published[0]);
    };
    assert_eq!(created.account_id, account);
    assert_eq!(created.keygen_session, keygen);
    assert_eq!(
        created.shares,
        [
            (ShareRole::Device, party("device")),
            (ShareRole::Server, party("server")),
            (ShareRole::Recovery, party("recovery")),
        ]
    );
    let DomainData::WorkflowDecided(decided) = &published[1].data else {
        panic!("{:?}", published[1]);
    };
    assert!(decided.approved);
    assert_eq!(decided.key_id, key_id);
    assert_eq!(decided.payload_hash, payload_hash);
    assert_eq!(decided.deciders, [party("device"), party("server")]);
}

#[tokio::test]
async fn a_completed_repair_is_published_as_a_refreshed_key_of_the_next_generation() {
    let log = Log::new().await;
    let key_id = KeyId::of_keygen(SessionId::new());
    let id = SessionId::new();
    let new_device = IdentityKey::new(&[0x77; 32], &[0x78; 32]).unwrap();
    let mut holders = participants();
    holders[0].identity = new_device;
    let spec = SessionSpec::Refresh {
        key: KeyRef {
            key_id,
            public_key: group_key(),
            threshold: Threshold::new(2, 3).unwrap(),
            parties: participants(),
            epoch: 1,
        },
        repair: Some(Box::new(RepairSpec {
            target: party("device"),
            identity: new_device,
            helpers: vec![party("server"), party("recovery")],
            authorizations: Vec::new(),
            policy: KeyPolicy::AnyRequest,
        })),
    };
    let outcome = PartyOutcome::Refreshed {
        public_key: group_key(),
        digest: RefreshDigest::from_bytes([9; 32]),
    };
    let terminal = log
        .record(
            id,
            &[
                created(id, spec, holders),
                started(),
                reported("device", outcome.clone()),
                SessionEvent::SessionCompleted { outcome, at: at(5) },
            ],
        )
        .await
        .pop()
        .unwrap();
    let sink = InMemoryDomainSink::new();
    let relay = Running::start(Outbox::new(log.store.clone(), Arc::new(sink.clone())));
    let published = published_at_least(&sink, 1).await;
    relay.stop().await.unwrap();
    assert_eq!(ids(&published), sources(&[terminal]));
    assert_eq!(published[0].event_type(), "key.refreshed");
    let DomainData::KeyRefreshed(refreshed) = &published[0].data else {
        panic!("{:?}", published[0]);
    };
    assert_eq!(
        (refreshed.key_id, refreshed.session_id, refreshed.public_key),
        (key_id, id, group_key())
    );
    assert_eq!(refreshed.epoch, 2);
    assert_eq!(refreshed.repaired, Some(party("device")));
}
