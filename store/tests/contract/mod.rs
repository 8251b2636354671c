//! The event-store contract: one suite that every adapter must pass.
//!
//! Each case is a `pub async fn` taking a fresh, empty store (or, for the durability
//! case, the adapter's [`Harness`]). An adapter runs the whole suite with one line in
//! its own test file:
//!
//! ```ignore
//! mod contract;
//! contract::event_store_contract!(MyAdapterHarness);
//! ```
//!
//! where `MyAdapterHarness` implements [`Harness`] (a fresh database per test).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mpc_events::Timestamp;
use mpc_store::{
    EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamName, subscribe,
};
use tokio::sync::Barrier;
use uuid::Uuid;

/// How the suite gets stores from an adapter.
pub trait Harness: Sized + Send + Sync {
    /// A fresh, empty database used by this test only, with a store open on it.
    fn create() -> impl Future<Output = Self> + Send;
    /// The open store.
    fn store(&self) -> Arc<dyn EventStore>;
    /// Closes the store, as a process exit would, and opens the same database again.
    fn reopen(&mut self) -> impl Future<Output = ()> + Send;
}

/// Instantiates every contract case as a `#[tokio::test]` for one [`Harness`].
macro_rules! event_store_contract {
    ($harness:ty) => {
        $crate::contract::event_store_contract!(@store $harness;
            append_then_read_round_trips_every_field,
            versions_count_from_one_without_gaps,
            positions_increase_strictly_across_streams,
            a_wrong_exact_version_is_rejected_and_appends_nothing,
            exact_zero_on_an_existing_stream_is_rejected,
            a_matching_exact_version_appends,
            any_appends_to_new_and_existing_streams,
            an_empty_append_is_rejected,
            read_stream_starts_at_the_requested_version,
            an_unknown_stream_reads_as_empty,
            read_all_returns_events_after_a_position_up_to_a_limit,
            head_is_zero_when_empty_and_then_the_last_position,
            watch_head_announces_appends,
            subscribe_delivers_stored_then_new_events_in_order_once,
            subscribe_starts_after_the_given_position,
            two_concurrent_appenders_at_one_version_exactly_one_wins,
            eight_concurrent_appenders_at_one_version_exactly_one_wins,
            concurrent_any_appends_get_consecutive_versions,
            thirty_two_appenders_race_for_twenty_versions_on_one_and_many_streams,
            a_duplicate_event_id_is_rejected,
            a_batch_with_a_duplicate_event_id_appends_nothing,
        );
        $crate::contract::event_store_contract!(@harness $harness;
            events_survive_closing_and_reopening,
        );
    };
    (@store $harness:ty; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = <$harness as $crate::contract::Harness>::create().await;
                $crate::contract::$case($crate::contract::Harness::store(&harness)).await;
            }
        )+
    };
    (@harness $harness:ty; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = <$harness as $crate::contract::Harness>::create().await;
                $crate::contract::$case(harness).await;
            }
        )+
    };
}
pub(crate) use event_store_contract;

/// Upper bound for waiting on a subscription; reached only when the store is broken.
const PATIENCE: Duration = Duration::from_secs(10);

fn stream(name: &str) -> StreamName {
    StreamName::parse(name).expect("test stream names are valid")
}

fn event(n: u8) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: format!("Happened{n}"),
        schema_version: u16::from(n) + 1,
        payload: vec![n; usize::from(n) + 1],
        correlation_id: Uuid::now_v7(),
        causation_id: Uuid::now_v7(),
        occurred_at: Timestamp::from_millis(1_700_000_000_000 + i64::from(n)),
    }
}

fn versions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.version).collect()
}

fn positions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.position).collect()
}

fn assert_same_event(recorded: &RecordedEvent, appended: &NewEvent) {
    assert_eq!(recorded.event_id, appended.event_id);
    assert_eq!(recorded.event_type, appended.event_type);
    assert_eq!(recorded.schema_version, appended.schema_version);
    assert_eq!(recorded.payload, appended.payload);
    assert_eq!(recorded.correlation_id, appended.correlation_id);
    assert_eq!(recorded.causation_id, appended.causation_id);
    assert_eq!(recorded.occurred_at, appended.occurred_at);
}

async fn read_everything(store: &dyn EventStore) -> Vec<RecordedEvent> {
    store.read_all(0, usize::MAX).await.expect("read_all")
}

pub async fn append_then_read_round_trips_every_field(store: Arc<dyn EventStore>) {
    let s = stream("session-0190abcd");
    let appended = vec![event(1), event(2)];
    let outcome = store
        .append(&s, ExpectedVersion::Exact(0), appended.clone())
        .await
        .expect("append");
    assert_eq!(outcome.stream_version, 2);

    let read = store.read_stream(&s, 1).await.expect("read_stream");
    assert_eq!(read.len(), 2);
    for (recorded, appended) in read.iter().zip(&appended) {
        assert_eq!(recorded.stream, s);
        assert_same_event(recorded, appended);
    }
    assert_eq!(versions(&read), [1, 2]);
    assert_eq!(outcome.last_position, read[1].position);
    assert_eq!(read_everything(&*store).await, read);
}

pub async fn versions_count_from_one_without_gaps(store: Arc<dyn EventStore>) {
    let s = stream("account-1");
    let mut expected = 0;
    for batch in [1_u8, 3, 2] {
        let events = (0..batch).map(event).collect();
        let outcome = store
            .append(&s, ExpectedVersion::Exact(expected), events)
            .await
            .expect("append");
        expected += u64::from(batch);
        assert_eq!(outcome.stream_version, expected);
    }
    let read = store.read_stream(&s, 1).await.expect("read_stream");
    assert_eq!(versions(&read), (1..=6).collect::<Vec<_>>());
}

pub async fn positions_increase_strictly_across_streams(store: Arc<dyn EventStore>) {
    let (a, b) = (stream("session-a"), stream("approval-b"));
    for round in 0..3 {
        for s in [&a, &b] {
            store
                .append(
                    s,
                    ExpectedVersion::Any,
                    vec![event(round), event(round + 1)],
                )
                .await
                .expect("append");
        }
    }
    let all = read_everything(&*store).await;
    assert_eq!(all.len(), 12);
    assert!(all[0].position >= 1, "positions start at 1");
    assert!(
        all.windows(2).all(|w| w[0].position < w[1].position),
        "positions must increase strictly: {:?}",
        positions(&all)
    );
    let streams: Vec<_> = all.iter().map(|e| e.stream.as_str()).collect();
    assert_eq!(
        &streams[..4],
        ["session-a", "session-a", "approval-b", "approval-b"]
    );
}

pub async fn a_wrong_exact_version_is_rejected_and_appends_nothing(store: Arc<dyn EventStore>) {
    let s = stream("session-x");
    store
        .append(&s, ExpectedVersion::Exact(0), vec![event(1), event(2)])
        .await
        .expect("append");
    for wrong in [1, 3, 7] {
        let err = store
            .append(&s, ExpectedVersion::Exact(wrong), vec![event(3)])
            .await
            .expect_err("a wrong expected version must fail");
        match err {
            StoreError::WrongExpectedVersion {
                stream: got,
                expected,
                actual,
            } => {
                assert_eq!(got, s);
                assert_eq!(expected, ExpectedVersion::Exact(wrong));
                assert_eq!(actual, 2);
            }
            other => panic!("expected WrongExpectedVersion, got {other:?}"),
        }
    }
    assert_eq!(read_everything(&*store).await.len(), 2);
}

pub async fn exact_zero_on_an_existing_stream_is_rejected(store: Arc<dyn EventStore>) {
    let s = stream("party-device");
    store
        .append(&s, ExpectedVersion::Exact(0), vec![event(1)])
        .await
        .expect("append");
    let err = store
        .append(&s, ExpectedVersion::Exact(0), vec![event(2)])
        .await
        .expect_err("the stream exists");
    assert!(
        matches!(err, StoreError::WrongExpectedVersion { actual: 1, .. }),
        "{err:?}"
    );
    assert_eq!(store.read_stream(&s, 1).await.expect("read").len(), 1);
}

pub async fn a_matching_exact_version_appends(store: Arc<dyn EventStore>) {
    let s = stream("session-m");
    for version in 0..4 {
        let outcome = store
            .append(&s, ExpectedVersion::Exact(version), vec![event(1)])
            .await
            .expect("append at the current version");
        assert_eq!(outcome.stream_version, version + 1);
    }
}

pub async fn any_appends_to_new_and_existing_streams(store: Arc<dyn EventStore>) {
    let s = stream("session-any");
    let first = store
        .append(&s, ExpectedVersion::Any, vec![event(1)])
        .await
        .expect("append to a new stream");
    assert_eq!(first.stream_version, 1);
    let second = store
        .append(&s, ExpectedVersion::Any, vec![event(2), event(3)])
        .await
        .expect("append to an existing stream");
    assert_eq!(second.stream_version, 3);
    assert!(second.last_position > first.last_position);
    let read = store.read_stream(&s, 1).await.expect("read");
    assert_eq!(versions(&read), [1, 2, 3]);
}

pub async fn an_empty_append_is_rejected(store: Arc<dyn EventStore>) {
    let err = store
        .append(&stream("session-e"), ExpectedVersion::Any, Vec::new())
        .await
        .expect_err("nothing to append");
    assert!(matches!(err, StoreError::EmptyAppend), "{err:?}");
    assert_eq!(store.head().await.expect("head"), 0);
}

pub async fn read_stream_starts_at_the_requested_version(store: Arc<dyn EventStore>) {
    let s = stream("session-r");
    let appended: Vec<_> = (0..5).map(event).collect();
    store
        .append(&s, ExpectedVersion::Exact(0), appended.clone())
        .await
        .expect("append");
    store
        .append(
            &stream("session-other"),
            ExpectedVersion::Any,
            vec![event(9)],
        )
        .await
        .expect("append elsewhere");

    let from_three = store.read_stream(&s, 3).await.expect("read");
    assert_eq!(versions(&from_three), [3, 4, 5]);
    assert_same_event(&from_three[0], &appended[2]);
    assert_eq!(store.read_stream(&s, 0).await.expect("read").len(), 5);
    assert!(store.read_stream(&s, 6).await.expect("read").is_empty());
    assert!(
        store
            .read_stream(&s, u64::MAX)
            .await
            .expect("read")
            .is_empty()
    );
}

pub async fn an_unknown_stream_reads_as_empty(store: Arc<dyn EventStore>) {
    let read = store
        .read_stream(&stream("session-nobody"), 1)
        .await
        .expect("read");
    assert!(read.is_empty());
}

pub async fn read_all_returns_events_after_a_position_up_to_a_limit(store: Arc<dyn EventStore>) {
    for (i, name) in [(0_u8, "session-1"), (1, "session-2"), (2, "session-3")] {
        let events = (0..3).map(|n| event(n + 3 * i)).collect();
        store
            .append(&stream(name), ExpectedVersion::Any, events)
            .await
            .expect("append");
    }
    let all = read_everything(&*store).await;
    assert_eq!(all.len(), 9);

    let after = all[2].position;
    let page = store.read_all(after, 4).await.expect("read_all");
    assert_eq!(page, all[3..7]);
    let rest = store
        .read_all(page[3].position, 100)
        .await
        .expect("read_all");
    assert_eq!(rest, all[7..]);
    assert!(store.read_all(after, 0).await.expect("read_all").is_empty());
    let last = all[8].position;
    assert!(store.read_all(last, 10).await.expect("read_all").is_empty());
    assert!(
        store
            .read_all(u64::MAX, 10)
            .await
            .expect("read_all")
            .is_empty()
    );
}

pub async fn head_is_zero_when_empty_and_then_the_last_position(store: Arc<dyn EventStore>) {
    assert_eq!(store.head().await.expect("head"), 0);
    let outcome = store
        .append(
            &stream("session-h"),
            ExpectedVersion::Any,
            vec![event(1), event(2)],
        )
        .await
        .expect("append");
    assert_eq!(store.head().await.expect("head"), outcome.last_position);
    let outcome = store
        .append(&stream("session-i"), ExpectedVersion::Any, vec![event(3)])
        .await
        .expect("append");
    assert_eq!(store.head().await.expect("head"), outcome.last_position);
}

pub async fn watch_head_announces_appends(store: Arc<dyn EventStore>) {
    let mut head = store.watch_head();
    assert_eq!(*head.borrow_and_update(), 0);
    let outcome = store
        .append(&stream("session-w"), ExpectedVersion::Any, vec![event(1)])
        .await
        .expect("append");
    tokio::time::timeout(PATIENCE, head.changed())
        .await
        .expect("the head must be announced")
        .expect("the store is alive");
    assert_eq!(*head.borrow_and_update(), outcome.last_position);
}

async fn next_event(
    events: &mut (impl futures::Stream<Item = Result<RecordedEvent, StoreError>> + Unpin),
) -> RecordedEvent {
    tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("an event must arrive")
        .expect("subscriptions do not end")
        .expect("no read error")
}

pub async fn subscribe_delivers_stored_then_new_events_in_order_once(store: Arc<dyn EventStore>) {
    let (a, b) = (stream("session-s"), stream("account-s"));
    let stored: Vec<_> = (0..3).map(event).collect();
    store
        .append(&a, ExpectedVersion::Any, stored.clone())
        .await
        .expect("append");

    let mut events = subscribe(Arc::clone(&store), 0);
    let mut seen = Vec::new();
    for appended in &stored {
        let got = next_event(&mut events).await;
        assert_same_event(&got, appended);
        seen.push(got);
    }

    // Appends from another task while the subscriber waits, across two streams.
    let writer = {
        let store = Arc::clone(&store);
        let (a, b) = (a.clone(), b.clone());
        tokio::spawn(async move {
            let mut appended = Vec::new();
            for n in 0..20_u8 {
                let e = event(n);
                let s = if n % 2 == 0 { &a } else { &b };
                store
                    .append(s, ExpectedVersion::Any, vec![e.clone()])
                    .await
                    .expect("append");
                appended.push(e);
                tokio::task::yield_now().await;
            }
            appended
        })
    };
    for _ in 0..20 {
        seen.push(next_event(&mut events).await);
    }
    let appended = writer.await.expect("writer task");
    for (got, sent) in seen[3..].iter().zip(&appended) {
        assert_same_event(got, sent);
    }
    assert!(seen.windows(2).all(|w| w[0].position < w[1].position));
    let ids: HashSet<_> = seen.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), 23, "no duplicates");
    assert_eq!(seen, read_everything(&*store).await);

    // Nothing more until something is appended.
    let extra = event(99);
    store
        .append(&a, ExpectedVersion::Any, vec![extra.clone()])
        .await
        .expect("append");
    assert_same_event(&next_event(&mut events).await, &extra);
}

pub async fn subscribe_starts_after_the_given_position(store: Arc<dyn EventStore>) {
    let s = stream("session-p");
    store
        .append(&s, ExpectedVersion::Any, (0..5).map(event).collect())
        .await
        .expect("append");
    let all = read_everything(&*store).await;
    let mut events = subscribe(Arc::clone(&store), all[1].position);
    for expected in &all[2..] {
        assert_eq!(&next_event(&mut events).await, expected);
    }
}

/// `tasks` appenders race at the same expected version; returns how many won.
async fn race_at_version(
    store: &Arc<dyn EventStore>,
    s: &StreamName,
    version: u64,
    tasks: u8,
) -> usize {
    let start = Arc::new(Barrier::new(usize::from(tasks)));
    let racers: Vec<_> = (0..tasks)
        .map(|i| {
            let (store, s, start) = (Arc::clone(store), s.clone(), Arc::clone(&start));
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
            Err(other) => panic!("a losing appender must get WrongExpectedVersion, got {other:?}"),
        }
    }
    wins
}

async fn assert_gapless(store: &Arc<dyn EventStore>, s: &StreamName, len: usize) {
    let read = store.read_stream(s, 1).await.expect("read");
    assert_eq!(versions(&read), (1..=len as u64).collect::<Vec<_>>());
    let ids: HashSet<_> = read.iter().map(|e| e.event_id).collect();
    assert_eq!(ids.len(), len, "no duplicate events");
    assert_eq!(read_everything(&**store).await.len(), len);
}

pub async fn two_concurrent_appenders_at_one_version_exactly_one_wins(store: Arc<dyn EventStore>) {
    let s = stream("session-race2");
    for version in 0..10 {
        assert_eq!(
            race_at_version(&store, &s, version, 2).await,
            1,
            "round {version}"
        );
    }
    assert_gapless(&store, &s, 10).await;
}

pub async fn eight_concurrent_appenders_at_one_version_exactly_one_wins(
    store: Arc<dyn EventStore>,
) {
    let s = stream("session-race8");
    for version in 0..10 {
        assert_eq!(
            race_at_version(&store, &s, version, 8).await,
            1,
            "round {version}"
        );
    }
    assert_gapless(&store, &s, 10).await;
}

pub async fn concurrent_any_appends_get_consecutive_versions(store: Arc<dyn EventStore>) {
    let s = stream("session-anyrace");
    let writers: Vec<_> = (0..8_u8)
        .map(|w| {
            let (store, s) = (Arc::clone(&store), s.clone());
            tokio::spawn(async move {
                for n in 0..5 {
                    store
                        .append(&s, ExpectedVersion::Any, vec![event(w * 5 + n), event(n)])
                        .await
                        .expect("Any never conflicts");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer task");
    }
    assert_gapless(&store, &s, 80).await;
}

/// The heavier race: 32 appenders at the same expected version, 20 rounds on one
/// stream; then 16 streams raced at once, 8 appenders each for 10 rounds. Every round
/// has exactly one winner, every stream's versions are 1..=rounds, and the global
/// positions of everything stored are 1..=events (no gap, no duplicate).
pub async fn thirty_two_appenders_race_for_twenty_versions_on_one_and_many_streams(
    store: Arc<dyn EventStore>,
) {
    const ONE_STREAM: (u8, u64) = (32, 20);
    const STREAMS: usize = 16;
    const MANY: (u8, u64) = (8, 10);
    let mut tried = 0usize;
    let mut winners = 0usize;
    let one = stream("session-race32");
    for version in 0..ONE_STREAM.1 {
        let wins = race_at_version(&store, &one, version, ONE_STREAM.0).await;
        assert_eq!(wins, 1, "round {version} of 32 appenders");
        tried += usize::from(ONE_STREAM.0);
        winners += wins;
    }
    let streams: Vec<_> = (0..STREAMS)
        .map(|i| {
            let (store, s) = (Arc::clone(&store), stream(&format!("session-many{i}")));
            tokio::spawn(async move {
                let mut wins = Vec::new();
                for version in 0..MANY.1 {
                    wins.push(race_at_version(&store, &s, version, MANY.0).await);
                }
                (s, wins)
            })
        })
        .collect();
    let mut names = vec![one.clone()];
    for task in streams {
        let (s, wins) = task.await.expect("stream task");
        for (round, won) in wins.iter().enumerate() {
            assert_eq!(*won, 1, "{s} round {round}");
        }
        tried += usize::from(MANY.0) * wins.len();
        winners += wins.iter().sum::<usize>();
        names.push(s);
    }
    let mut version_gaps = 0;
    for s in &names {
        let read = store.read_stream(s, 1).await.expect("read");
        let expected = if *s == one { ONE_STREAM.1 } else { MANY.1 };
        if versions(&read) != (1..=expected).collect::<Vec<_>>() {
            version_gaps += 1;
        }
    }
    let all = read_everything(&*store).await;
    let events = all.len() as u64;
    let position_gaps = positions(&all)
        .iter()
        .zip(1..)
        .filter(|(position, expected)| **position != *expected)
        .count();
    let ids: HashSet<_> = all.iter().map(|e| e.event_id).collect();
    eprintln!(
        "\nconcurrent appends at one expected version:\n\
         | figure | value |\n|---|---:|\n\
         | appends tried | {tried} |\n\
         | winners | {winners} |\n\
         | losers (wrong expected version) | {} |\n\
         | rounds with other than one winner | 0 |\n\
         | streams with a version gap | {version_gaps} |\n\
         | events stored | {events} |\n\
         | global position gaps | {position_gaps} |",
        tried - winners
    );
    let rounds = ONE_STREAM.1 + STREAMS as u64 * MANY.1;
    assert_eq!(winners as u64, rounds);
    assert_eq!(events, rounds);
    assert_eq!(ids.len() as u64, events, "no duplicate events");
    assert_eq!(version_gaps, 0);
    assert_eq!(positions(&all), (1..=events).collect::<Vec<_>>());
}

pub async fn a_duplicate_event_id_is_rejected(store: Arc<dyn EventStore>) {
    let first = event(1);
    let s = stream("session-d");
    store
        .append(&s, ExpectedVersion::Any, vec![first.clone()])
        .await
        .expect("append");
    for target in [s.clone(), stream("session-elsewhere")] {
        let again = NewEvent {
            payload: b"different".to_vec(),
            ..first.clone()
        };
        let err = store
            .append(&target, ExpectedVersion::Any, vec![again])
            .await
            .expect_err("the event id is taken");
        assert!(
            matches!(err, StoreError::DuplicateEventId(id) if id == first.event_id),
            "{err:?}"
        );
    }
    assert_eq!(read_everything(&*store).await.len(), 1);
}

pub async fn a_batch_with_a_duplicate_event_id_appends_nothing(store: Arc<dyn EventStore>) {
    let s = stream("session-batch");
    let stored = event(1);
    store
        .append(&s, ExpectedVersion::Exact(0), vec![stored.clone()])
        .await
        .expect("append");
    let err = store
        .append(
            &s,
            ExpectedVersion::Exact(1),
            vec![event(2), stored.clone()],
        )
        .await
        .expect_err("the second event is a duplicate");
    assert!(
        matches!(err, StoreError::DuplicateEventId(id) if id == stored.event_id),
        "{err:?}"
    );

    let twice = event(3);
    let err = store
        .append(
            &s,
            ExpectedVersion::Exact(1),
            vec![twice.clone(), twice.clone()],
        )
        .await
        .expect_err("the batch repeats an event id");
    assert!(
        matches!(err, StoreError::DuplicateEventId(id) if id == twice.event_id),
        "{err:?}"
    );

    assert_eq!(
        read_everything(&*store).await.len(),
        1,
        "batches are atomic"
    );
    store
        .append(&s, ExpectedVersion::Exact(1), vec![event(4)])
        .await
        .expect("the stream is still at version 1");
}

pub async fn events_survive_closing_and_reopening<H: Harness>(mut harness: H) {
    let s = stream("session-durable");
    let appended: Vec<_> = (0..4).map(event).collect();
    let outcome = harness
        .store()
        .append(&s, ExpectedVersion::Exact(0), appended.clone())
        .await
        .expect("append");
    let before = read_everything(&*harness.store()).await;

    harness.reopen().await;
    let store = harness.store();
    assert_eq!(read_everything(&*store).await, before);
    assert_eq!(store.head().await.expect("head"), outcome.last_position);
    assert_eq!(*store.watch_head().borrow(), outcome.last_position);
    let after = store
        .append(&s, ExpectedVersion::Exact(4), vec![event(5)])
        .await
        .expect("append after reopening");
    assert_eq!(after.stream_version, 5);
    assert!(after.last_position > outcome.last_position);
}
