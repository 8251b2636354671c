//! Read models under at-least-once delivery (issue 7, item 3): while a writer appends
//! session histories, two runners of every projection race on one database (each
//! through a pool of its own, as two processes would), runners are killed mid-run
//! (their task aborted, whatever transaction it was in) and started again from their
//! checkpoint, and the store they read from re-delivers the last events of every
//! batch again. Afterwards every model equals its replay from position 0, the audit
//! log holds exactly one record per event and its chain verifies, and every session
//! has one status row. Runs on SQLite and PostgreSQL.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mpc_events::{
    FailureReason, KeyId, KeyPolicy, KeyRef, MessageHash, PartyOutcome, SessionEvent, SessionId,
    SessionSpec, Signature, Threshold, stream,
};
use mpc_projections::on_every_backend;
use mpc_projections::testing::samples::*;
use mpc_projections::testing::{TestBackend, TestDb, encode, runner_on};
use mpc_projections::{
    AccountsProjection, AuditLogProjection, ProjectionError, ReadModels, SessionStatusProjection,
    WorkflowsProjection, replay, verify_chain,
};
use mpc_store::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamName,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Sessions written while the runners race; each is a keygen (9 events) or a signing
/// (7 events, every third one failing instead).
const SESSIONS: usize = 60;
/// Already-delivered events the store hands out again before every new batch.
const REDELIVERED: usize = 5;
/// How often one runner is killed and started again.
const KILL_EVERY: Duration = Duration::from_millis(120);

async fn duplicates_are_applied_exactly_once(backend: TestBackend) {
    let db = TestDb::create(backend).await;
    let delivering = Arc::new(Redelivering::new(db.store()));
    let store: Arc<dyn EventStore> = delivering.clone();
    let pools = [db.models(), db.other_pool().await];
    let (stop, stopped) = watch::channel(false);

    // Two runners of each of the four projections, one per pool.
    let mut runners: Vec<(Which, ReadModels, Running)> = Vec::new();
    for models in &pools {
        for which in Which::ALL {
            let task = which
                .spawn(store.clone(), models.clone(), stopped.clone())
                .await;
            runners.push((which, models.clone(), task));
        }
    }

    // The writer: session histories, appended in small batches, interleaved.
    let writer = {
        let store = db.store();
        tokio::spawn(async move { write_histories(store).await })
    };

    // Kill one runner after another until the writer is done.
    let mut kills = 0u64;
    let mut next = 0;
    while !writer.is_finished() {
        tokio::time::sleep(KILL_EVERY).await;
        let victim = next % runners.len();
        let (which, models, task) = &mut runners[victim];
        task.abort();
        if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(5), &mut *task).await {
            panic!("{which:?} failed before it was killed: {e}");
        }
        *task = which
            .spawn(store.clone(), models.clone(), stopped.clone())
            .await;
        kills += 1;
        next += 1;
    }
    let (sessions, head) = writer.await.expect("writer task");

    // Let the survivors (and the restarted ones) reach the head, then stop them.
    for (which, models, _) in &runners {
        let runner = which.runner(store.clone(), models.clone()).await;
        assert_eq!(runner, head, "{which:?} catches up to the head");
    }
    stop.send_replace(true);
    for (which, _, task) in runners {
        let checkpoint = task
            .await
            .expect("runner task")
            .unwrap_or_else(|e| panic!("{which:?} failed: {e}"));
        assert_eq!(checkpoint, head, "{which:?} stopped at the head");
    }

    let compared = replay(db.store(), &pools[0]).await.expect("replay");
    let matching = compared.iter().filter(|c| c.matches()).count();
    let chain = verify_chain(&pools[1]).await.expect("verify the chain");
    let records = AuditLogProjection::new(pools[0].clone())
        .snapshot()
        .await
        .expect("audit records");
    let positions: Vec<u64> = records.iter().map(|r| r.position).collect();
    let rows = SessionStatusProjection::new(pools[1].clone())
        .snapshot()
        .await
        .expect("session rows");
    let (delivered, distinct) = delivering.deliveries();

    eprintln!(
        "\nread models under at-least-once delivery ({backend:?}):\n\
         | figure | value |\n|---|---:|\n\
         | events in the log | {head} |\n\
         | sessions | {sessions} |\n\
         | runners (2 per projection) | 8 |\n\
         | runners killed mid-run and restarted | {kills} |\n\
         | events delivered to runners | {delivered} |\n\
         | of which duplicates | {} |\n\
         | audit records (one per event) | {} |\n\
         | audit chain intact | {} |\n\
         | session status rows | {} |\n\
         | read models equal to their replay | {matching} of {} |",
        delivered - distinct,
        records.len(),
        chain.is_intact(),
        rows.len(),
        compared.len(),
    );
    assert!(
        kills >= 3,
        "too few runners were killed to test anything: {kills}"
    );
    assert!(
        delivered > distinct,
        "the store re-delivered nothing: {delivered} deliveries of {distinct} events"
    );
    assert_eq!(
        positions,
        (1..=head).collect::<Vec<_>>(),
        "one record per event"
    );
    assert!(chain.is_intact(), "{chain:?}");
    assert_eq!(chain.records, head);
    assert_eq!(rows.len(), sessions);
    assert_eq!(matching, compared.len(), "{compared:?}");
    assert_eq!(compared.len(), 4);
}

on_every_backend!(duplicates_are_applied_exactly_once);

// ---------------------------------------------------------------------------------
// The runners.

/// A runner's task: its checkpoint when it stopped, or why it failed.
type Running = JoinHandle<Result<u64, ProjectionError>>;

#[derive(Debug, Clone, Copy)]
enum Which {
    Status,
    Audit,
    Accounts,
    Workflows,
}

impl Which {
    const ALL: [Which; 4] = [Self::Status, Self::Audit, Self::Accounts, Self::Workflows];

    /// A runner following the store until `stopped`.
    async fn spawn(
        self,
        store: Arc<dyn EventStore>,
        models: ReadModels,
        stopped: watch::Receiver<bool>,
    ) -> Running {
        let shutdown = async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|s| *s).await;
        };
        match self {
            Self::Status => runner_on(store, models, SessionStatusProjection::new)
                .await
                .spawn(shutdown),
            Self::Audit => runner_on(store, models, AuditLogProjection::new)
                .await
                .spawn(shutdown),
            Self::Accounts => runner_on(store, models, AccountsProjection::new)
                .await
                .spawn(shutdown),
            Self::Workflows => runner_on(store, models, WorkflowsProjection::new)
                .await
                .spawn(shutdown),
        }
    }

    /// Catches a fresh runner of this projection up; its checkpoint.
    async fn runner(self, store: Arc<dyn EventStore>, models: ReadModels) -> u64 {
        let caught_up = match self {
            Self::Status => {
                runner_on(store, models, SessionStatusProjection::new)
                    .await
                    .catch_up()
                    .await
            }
            Self::Audit => {
                runner_on(store, models, AuditLogProjection::new)
                    .await
                    .catch_up()
                    .await
            }
            Self::Accounts => {
                runner_on(store, models, AccountsProjection::new)
                    .await
                    .catch_up()
                    .await
            }
            Self::Workflows => {
                runner_on(store, models, WorkflowsProjection::new)
                    .await
                    .catch_up()
                    .await
            }
        };
        caught_up.unwrap_or_else(|e| panic!("{self:?} cannot catch up: {e}"))
    }
}

/// The event store as an at-least-once channel: every non-empty `read_all` answer
/// starts with the [`REDELIVERED`] events before the requested position again.
struct Redelivering {
    inner: Arc<dyn EventStore>,
    /// Deliveries per position.
    delivered: Mutex<BTreeMap<u64, u64>>,
}

impl Redelivering {
    fn new(inner: Arc<dyn EventStore>) -> Self {
        Self {
            inner,
            delivered: Mutex::new(BTreeMap::new()),
        }
    }

    /// (events delivered, distinct events delivered).
    fn deliveries(&self) -> (u64, u64) {
        let delivered = self.delivered.lock().unwrap();
        (delivered.values().sum(), delivered.len() as u64)
    }
}

#[async_trait]
impl EventStore for Redelivering {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from_version).await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let fresh = self.inner.read_all(after, limit).await?;
        if fresh.is_empty() {
            return Ok(fresh);
        }
        let from = after.saturating_sub(REDELIVERED as u64);
        let mut batch = self.inner.read_all(from, (after - from) as usize).await?;
        batch.extend(fresh);
        let mut delivered = self.delivered.lock().unwrap();
        for event in &batch {
            *delivered.entry(event.position).or_default() += 1;
        }
        Ok(batch)
    }

    async fn head(&self) -> Result<u64, StoreError> {
        self.inner.head().await
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.inner.watch_head()
    }
}

// ---------------------------------------------------------------------------------
// The histories.

/// Appends [`SESSIONS`] session histories, a few events per append, round-robin over
/// the sessions; returns (sessions, the head).
async fn write_histories(store: Arc<dyn EventStore>) -> (usize, u64) {
    let keygen = SessionId::new();
    let mut histories: Vec<(SessionId, Vec<SessionEvent>)> = Vec::new();
    for n in 0..SESSIONS {
        let ms = 1_000 * i64::try_from(n).unwrap();
        if n == 0 {
            histories.push((keygen, keygen_history(keygen, ms)));
            continue;
        }
        let id = SessionId::new();
        histories.push((
            id,
            signing_history(id, KeyId::of_keygen(keygen), ms, n % 3 == 0),
        ));
    }
    let mut head = 0;
    let mut versions = vec![0u64; histories.len()];
    let mut remaining = true;
    while remaining {
        remaining = false;
        for (i, (id, events)) in histories.iter().enumerate() {
            let from = usize::try_from(versions[i]).unwrap();
            if from >= events.len() {
                continue;
            }
            remaining = true;
            let to = (from + 2).min(events.len());
            let batch = encode(
                &events[from..to],
                mpc_schemas::stored::session::encode,
                SessionEvent::at,
            );
            let stream = StreamName::new(stream::SESSION, id).unwrap();
            head = store
                .append(&stream, ExpectedVersion::Exact(versions[i]), batch)
                .await
                .expect("append")
                .last_position;
            versions[i] = to as u64;
        }
        tokio::task::yield_now().await;
    }
    (histories.len(), head)
}

fn keygen_history(id: SessionId, ms: i64) -> Vec<SessionEvent> {
    let spec = SessionSpec::Keygen {
        threshold: Threshold::new(2, 3).unwrap(),
        policy: KeyPolicy::AnyRequest,
    };
    let key = PartyOutcome::PublicKey(group_key());
    vec![
        created(id, spec, participants(), ms),
        joined("device", ms + 1),
        joined("server", ms + 2),
        joined("recovery", ms + 3),
        SessionEvent::SessionStarted { at: at(ms + 3) },
        reported("device", key.clone(), ms + 4),
        reported("server", key.clone(), ms + 5),
        reported("recovery", key.clone(), ms + 6),
        SessionEvent::SessionCompleted {
            outcome: key,
            at: at(ms + 6),
        },
    ]
}

fn signing_history(id: SessionId, key_id: KeyId, ms: i64, fails: bool) -> Vec<SessionEvent> {
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
    let signature = PartyOutcome::Signature(Signature::new(&[0xab; 32], &[0xcd; 32], 1).unwrap());
    let mut events = vec![
        created(id, spec, participants()[..2].to_vec(), ms),
        joined("device", ms + 1),
        joined("server", ms + 2),
        SessionEvent::SessionStarted { at: at(ms + 2) },
    ];
    if fails {
        events.push(SessionEvent::SessionFailed {
            reason: FailureReason::PartyAborted {
                reported_by: party("server"),
                culprits: vec![party("device")],
                detail: "bad proof".into(),
            },
            at: at(ms + 3),
        });
    } else {
        events.extend([
            reported("device", signature.clone(), ms + 3),
            reported("server", signature.clone(), ms + 4),
            SessionEvent::SessionCompleted {
                outcome: signature,
                at: at(ms + 4),
            },
        ]);
    }
    events
}
