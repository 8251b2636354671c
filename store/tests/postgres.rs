//! The event-store contract suite against [`PostgresStore`], one fresh database per
//! test, plus what only a shared database can do: appends by one store instance (as by
//! another process) wake subscribers of another.
//!
//! Needs a PostgreSQL server: `MPC_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432`, no database name) must let us create and drop
//! databases; `scripts/ensure-postgres.sh` sets one up. Without a server every test here
//! fails: none is skipped.

mod contract;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mpc_events::Timestamp;
use mpc_store::testing::TestDatabase;
use mpc_store::{
    EventStore, ExpectedVersion, NewEvent, PostgresStore, StoreError, StreamName, subscribe,
};
use tokio::sync::Barrier;
use uuid::Uuid;

/// Upper bound for waiting on a notification; reached only when the store is broken.
const PATIENCE: Duration = Duration::from_secs(10);

struct PostgresHarness {
    // Declared before `database`, so the store is dropped before the database.
    store: PostgresStore,
    database: TestDatabase,
}

impl contract::Harness for PostgresHarness {
    async fn create() -> Self {
        let database = TestDatabase::create().await;
        let store = database.connect().await;
        Self { store, database }
    }

    fn store(&self) -> Arc<dyn EventStore> {
        Arc::new(self.store.clone())
    }

    async fn reopen(&mut self) {
        self.store.close().await;
        self.store = self.database.connect().await;
    }
}

contract::event_store_contract!(PostgresHarness);

fn stream(name: &str) -> StreamName {
    StreamName::parse(name).expect("test stream names are valid")
}

fn event(n: u8) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: format!("Happened{n}"),
        schema_version: 1,
        payload: vec![n],
        correlation_id: Uuid::now_v7(),
        causation_id: Uuid::now_v7(),
        occurred_at: Timestamp::from_millis(1_700_000_000_000 + i64::from(n)),
    }
}

/// Two stores on one database share nothing in-process, like two processes.
async fn two_stores(database: &TestDatabase) -> [PostgresStore; 2] {
    [database.connect().await, database.connect().await]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_through_one_store_wakes_a_subscriber_of_another() {
    let database = TestDatabase::create().await;
    let [writer, reader] = two_stores(&database).await;
    let reader: Arc<dyn EventStore> = Arc::new(reader);
    let mut head = reader.watch_head();
    let mut events = subscribe(Arc::clone(&reader), 0);

    let appended = event(1);
    let outcome = writer
        .append(
            &stream("session-cross"),
            ExpectedVersion::Exact(0),
            vec![appended.clone()],
        )
        .await
        .expect("append");
    let got = tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("the other store's subscriber must be woken")
        .expect("subscriptions do not end")
        .expect("no read error");
    assert_eq!(got.event_id, appended.event_id);
    assert_eq!(got.position, outcome.last_position);
    tokio::time::timeout(PATIENCE, head.wait_for(|&h| h == outcome.last_position))
        .await
        .expect("the other store's head must move")
        .expect("the store is alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_appenders_across_two_stores_at_one_version_exactly_one_wins() {
    let database = TestDatabase::create().await;
    let stores = two_stores(&database).await;
    let s = stream("session-race");
    for version in 0..10_u64 {
        let start = Arc::new(Barrier::new(8));
        let racers: Vec<_> = (0..8_u8)
            .map(|i| {
                let store = stores[usize::from(i % 2)].clone();
                let (s, start) = (s.clone(), Arc::clone(&start));
                tokio::spawn(async move {
                    start.wait().await;
                    store
                        .append(&s, ExpectedVersion::Exact(version), vec![event(i)])
                        .await
                })
            })
            .collect();
        let mut wins = 0;
        for racer in racers {
            match racer.await.expect("racer task") {
                Ok(outcome) => {
                    assert_eq!(outcome.stream_version, version + 1);
                    wins += 1;
                }
                Err(StoreError::WrongExpectedVersion { actual, .. }) => {
                    assert_eq!(actual, version + 1, "a loser sees the winner's append");
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(wins, 1, "round {version}");
    }
    let read = stores[1].read_stream(&s, 1).await.expect("read");
    assert_eq!(
        read.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    let ids: HashSet<_> = read.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), 10);
}

/// Positions must become visible in order: a subscriber that saw position n never sees
/// a smaller one later, so it misses nothing even while both stores append at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_misses_nothing_while_two_stores_append_concurrently() {
    const WRITERS: u8 = 8;
    const APPENDS: u8 = 25;
    let database = TestDatabase::create().await;
    let stores = two_stores(&database).await;
    let reader: Arc<dyn EventStore> = Arc::new(stores[1].clone());
    let mut events = subscribe(Arc::clone(&reader), 0);

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = stores[usize::from(w % 2)].clone();
            tokio::spawn(async move {
                let s = stream(&format!("session-w{w}"));
                for n in 0..APPENDS {
                    store
                        .append(&s, ExpectedVersion::Any, vec![event(n), event(n)])
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    let total = usize::from(WRITERS) * usize::from(APPENDS) * 2;
    let mut seen = Vec::with_capacity(total);
    while seen.len() < total {
        let got = tokio::time::timeout(PATIENCE, events.next())
            .await
            .expect("an event must arrive")
            .expect("subscriptions do not end")
            .expect("no read error");
        seen.push(got);
    }
    for writer in writers {
        writer.await.expect("writer task");
    }
    assert!(seen.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(
        seen,
        reader.read_all(0, usize::MAX).await.expect("read_all")
    );
}

/// The `(stream, version)` constraint is the last guard against a writer that bypasses
/// the append lock; it reads as a wrong expected version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_taken_behind_the_stores_back_is_a_wrong_expected_version() {
    let database = TestDatabase::create().await;
    let store = database.connect().await;
    let mut rogue = store.pool().begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO events (stream, version, event_id, event_type, schema_version, payload, \
         correlation_id, causation_id, occurred_at) \
         VALUES ('session-rogue', 1, gen_random_uuid(), 'T', 1, '', gen_random_uuid(), \
         gen_random_uuid(), 0)",
    )
    .execute(&mut *rogue)
    .await
    .expect("insert without the lock");
    let append = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append(
                    &stream("session-rogue"),
                    ExpectedVersion::Exact(0),
                    vec![event(1)],
                )
                .await
        })
    };
    // Wait until the append has read version 0 and blocks on the uncommitted row's index
    // entry, so that it is the constraint, not the version check, that stops it.
    tokio::time::timeout(PATIENCE, async {
        loop {
            let blocked: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock' \
                 AND wait_event = 'transactionid'",
            )
            .fetch_one(store.pool())
            .await
            .expect("read pg_stat_activity");
            if blocked > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the append must block on the uncommitted row");
    rogue.commit().await.expect("commit");
    let err = append
        .await
        .expect("append task")
        .expect_err("the version is taken");
    assert!(
        matches!(
            err,
            StoreError::WrongExpectedVersion {
                actual: 1,
                expected: ExpectedVersion::Exact(0),
                ..
            }
        ),
        "{err:?}"
    );
}

/// Losing the listening connection loses notifications; the store listens again and
/// re-reads the head, so its subscribers still see every append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_head_catches_up_after_the_listening_connection_is_killed() {
    let database = TestDatabase::create().await;
    let [writer, reader] = two_stores(&database).await;
    let mut head = reader.watch_head();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(writer.pool())
    .await
    .expect("terminate the listeners");
    assert_eq!(killed, [true, true], "both stores listen");

    let mut last = 0;
    for n in 0..5 {
        last = writer
            .append(&stream("session-k"), ExpectedVersion::Any, vec![event(n)])
            .await
            .expect("append")
            .last_position;
    }
    tokio::time::timeout(PATIENCE, head.wait_for(|&h| h == last))
        .await
        .expect("the reader's head must catch up after reconnecting")
        .expect("the store is alive");
}
