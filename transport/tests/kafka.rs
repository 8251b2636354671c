//! The transport contract suite, and what only a Kafka log must show, against
//! [`KafkaTransport`] on a real Kafka-protocol broker.
//!
//! The broker comes from `MPC_TEST_KAFKA_BROKERS` (default `127.0.0.1:19092`, where
//! `bash scripts/ensure-kafka.sh` starts one). Without a broker these tests fail; they
//! never skip. Each test uses its own topic.

mod contract;

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mpc_events::{PartyId, SessionId};
use mpc_schemas::{Envelope, MAX_ENVELOPE_BYTES, Recipient};
use mpc_transport::{Inbox, KafkaConfig, KafkaTransport, SessionBudget, Transport, TransportError};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(10);

fn brokers() -> String {
    std::env::var("MPC_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

/// A config for a topic of this test's own, after checking that the broker answers.
fn config(partitions: i32) -> KafkaConfig {
    let brokers = brokers();
    let reachable = brokers
        .split(',')
        .filter_map(|b| b.to_socket_addrs().ok())
        .flatten()
        .any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    assert!(
        reachable,
        "no Kafka-protocol broker at {brokers} (MPC_TEST_KAFKA_BROKERS): \
         start one with `bash scripts/ensure-kafka.sh`"
    );
    KafkaConfig {
        topic: format!("mpc-test-{}", Uuid::new_v4()),
        partitions,
        client_id: "mpc-transport-tests".into(),
        request_timeout: Duration::from_secs(5),
        delivery_timeout: Duration::from_secs(10),
        ..KafkaConfig::new(brokers)
    }
}

async fn connect(config: &KafkaConfig) -> KafkaTransport {
    KafkaTransport::connect(config.clone())
        .await
        .expect("connect to the test broker")
}

struct KafkaHarness(KafkaTransport);

impl contract::Harness for KafkaHarness {
    async fn create_with(budget: SessionBudget) -> Self {
        Self(
            connect(&KafkaConfig {
                budget,
                ..config(3)
            })
            .await,
        )
    }

    fn transport(&self) -> Arc<dyn Transport> {
        Arc::new(self.0.clone())
    }
}

contract::transport_contract!(KafkaHarness);

fn party(name: &str) -> PartyId {
    PartyId::parse(name).expect("test party ids are valid")
}

fn envelope(session: SessionId, to: &str, payload: &[u8]) -> Envelope {
    Envelope {
        message_id: Uuid::now_v7(),
        session_id: session,
        round: 1,
        sender: party("a"),
        recipient: Recipient::Party(party(to)),
        payload: payload.to_vec(),
        signature: [0; 64],
    }
}

async fn recv(inbox: &mut Inbox) -> Envelope {
    tokio::time::timeout(PATIENCE, inbox.next())
        .await
        .expect("an envelope must arrive")
        .expect("the inbox must not end")
        .expect("no transport error")
}

/// Publishes `count` numbered envelopes for `b`.
async fn publish_numbered(
    transport: &KafkaTransport,
    session: SessionId,
    numbers: std::ops::Range<u32>,
) -> Vec<Envelope> {
    let mut sent = Vec::new();
    for n in numbers {
        let e = envelope(session, "b", &n.to_be_bytes());
        transport.publish(&e).await.expect("publish");
        sent.push(e);
    }
    sent
}

/// Low and high watermark of `partition`, asked with a client of the test's own.
fn watermarks(config: &KafkaConfig, partition: i32) -> (i64, i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .expect("consumer");
    consumer
        .fetch_watermarks(&config.topic, partition, PATIENCE)
        .expect("watermarks")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_elsewhere_receives_what_was_published_before() {
    // One partition: the session shares it with traffic of other sessions.
    let config = config(1);
    let publisher = connect(&config).await;
    let session = SessionId::new();
    publish_numbered(&publisher, SessionId::new(), 0..5).await;
    let sent = publish_numbered(&publisher, session, 0..5).await;
    publish_numbered(&publisher, SessionId::new(), 0..5).await;

    let elsewhere = connect(&config).await;
    let mut b = elsewhere.subscribe(session, &party("b")).await.unwrap();
    for e in &sent {
        assert_eq!(&recv(&mut b).await, e);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_id_without_a_timestamp_is_read_from_the_partition_start() {
    let config = config(1);
    let transport = connect(&config).await;
    let session = SessionId::from_uuid(Uuid::new_v4());
    let sent = publish_numbered(&transport, session, 0..3).await;
    let mut b = transport.subscribe(session, &party("b")).await.unwrap();
    for e in &sent {
        assert_eq!(&recv(&mut b).await, e);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_consumer_receives_the_whole_session_once() {
    let config = config(2);
    let first = connect(&config).await;
    let session = SessionId::new();
    let mut sent = publish_numbered(&first, session, 0..6).await;
    let mut b = first.subscribe(session, &party("b")).await.unwrap();
    for e in &sent[..3] {
        assert_eq!(&recv(&mut b).await, e);
    }
    drop(b);
    drop(first);

    // While b is offline: more envelopes, and a retried one (same message id).
    let second = connect(&config).await;
    sent.extend(publish_numbered(&second, session, 6..9).await);
    second.publish(&sent[4]).await.unwrap();
    let marker = envelope(session, "b", b"marker");
    second.publish(&marker).await.unwrap();

    let restarted = connect(&config).await;
    let mut b = restarted.subscribe(session, &party("b")).await.unwrap();
    for e in &sent {
        assert_eq!(&recv(&mut b).await, e);
    }
    assert_eq!(recv(&mut b).await, marker, "no duplicate before the marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_holds_over_200_envelopes() {
    let config = config(3);
    let transport = connect(&config).await;
    let session = SessionId::new();
    let mut b = connect(&config)
        .await
        .subscribe(session, &party("b"))
        .await
        .unwrap();
    let sent = publish_numbered(&transport, session, 0..200).await;
    for e in &sent {
        assert_eq!(&recv(&mut b).await, e);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_envelope_never_reaches_the_broker() {
    let config = config(1);
    let transport = connect(&config).await;
    let session = SessionId::new();
    let huge = Envelope {
        payload: vec![7; MAX_ENVELOPE_BYTES],
        ..envelope(session, "b", b"")
    };
    let before = watermarks(&config, 0);
    assert!(matches!(
        transport.publish(&huge).await,
        Err(TransportError::TooLarge { .. })
    ));
    assert_eq!(watermarks(&config, 0), before, "nothing was appended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_session_ends_its_inboxes_in_other_processes() {
    let config = config(2);
    let (here, elsewhere) = (connect(&config).await, connect(&config).await);
    let session = SessionId::new();
    let mut b = elsewhere.subscribe(session, &party("b")).await.unwrap();
    let e = envelope(session, "b", b"last");
    here.publish(&e).await.unwrap();
    here.close_session(session).await.unwrap();
    assert_eq!(recv(&mut b).await, e);
    let end = tokio::time::timeout(PATIENCE, b.next()).await;
    assert_eq!(end, Ok(None), "the close marker ends the inbox");
}

/// An inbox's start offset comes from the broker's `ListOffsets` by timestamp. Kafka
/// answers exactly (the first record at or after the time); tansu 0.6 answers from
/// batch write times, which may be earlier. Either is safe as long as the answer is
/// never *after* the first record at or after the time, which this checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_found_by_timestamp_never_skip_a_later_record() {
    let config = config(1);
    connect(&config).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .expect("producer");
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let minute = 60_000;
    for minutes_ago in [30, 20, 10] {
        producer
            .send(
                FutureRecord::<[u8], [u8]>::to(&config.topic)
                    .partition(0)
                    .payload(&[1][..])
                    .timestamp(now - minutes_ago * minute),
                PATIENCE,
            )
            .await
            .expect("produce");
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .expect("consumer");
    let offset_at = |millis| {
        let mut query = TopicPartitionList::new();
        query
            .add_partition_offset(&config.topic, 0, Offset::Offset(millis))
            .unwrap();
        let found = consumer
            .offsets_for_times(query, PATIENCE)
            .expect("look-up");
        found.find_partition(&config.topic, 0).unwrap().offset()
    };
    for (target, first_at_or_after) in [(40, 0), (25, 1), (15, 2), (5, 3)] {
        let found = offset_at(now - target * minute);
        let safe = match found {
            Offset::Offset(offset) => offset <= first_at_or_after,
            // "No record at or after the time": only true past the last one.
            Offset::End => first_at_or_after == 3,
            _ => false,
        };
        assert!(
            safe,
            "{target} min ago: found {found:?}, first record at or after: {first_at_or_after}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_fails_connect_with_its_address() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = listener.local_addr().unwrap();
    drop(listener);
    let config = KafkaConfig {
        request_timeout: Duration::from_secs(2),
        ..KafkaConfig::new(closed_port.to_string())
    };
    match KafkaTransport::connect(config).await {
        Err(TransportError::Backend(message)) => {
            assert!(message.contains(&closed_port.to_string()), "{message}");
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
}
