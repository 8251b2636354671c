//! The sink contract against [`KafkaDomainSink`] on a real Kafka-protocol broker, and
//! what only Kafka records show (key, headers, single partition).
//!
//! The broker comes from `MPC_TEST_KAFKA_BROKERS` (default `127.0.0.1:19092`, where
//! `bash scripts/ensure-kafka.sh` starts one). Without a broker these tests fail; they
//! never skip. Each test uses its own topic.

mod contract;

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpc_outbox::{
    DomainEventSink, EVENT_ID_HEADER, KafkaDomainSink, KafkaSinkConfig, SCHEMA_HEADER, TYPE_HEADER,
};
use mpc_schemas::{DomainEvent, domain};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(10);

fn brokers() -> String {
    std::env::var("MPC_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

/// A config for a topic of this test's own, after checking that the broker answers.
fn config() -> KafkaSinkConfig {
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
    KafkaSinkConfig {
        topic: format!("mpc-outbox-test-{}", Uuid::new_v4()),
        client_id: "mpc-outbox-tests".into(),
        request_timeout: Duration::from_secs(5),
        delivery_timeout: Duration::from_secs(10),
        ..KafkaSinkConfig::new(brokers)
    }
}

/// One record as a consumer sees it.
struct Record {
    key: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    value: Vec<u8>,
}

/// Every record of the topic's partition 0, read with an explicit assignment.
async fn records(config: &KafkaSinkConfig) -> Vec<Record> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("group.id", format!("mpc-outbox-test-{}", Uuid::new_v4()))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let (low, high) = consumer
            .fetch_watermarks(&config.topic, 0, PATIENCE)
            .unwrap();
        let mut out = Vec::new();
        if high <= low {
            return out;
        }
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&config.topic, 0, Offset::Offset(low))
            .unwrap();
        consumer.assign(&assignment).unwrap();
        let deadline = Instant::now() + PATIENCE;
        while out.len() < usize::try_from(high - low).unwrap() {
            assert!(
                Instant::now() < deadline,
                "read {} of {}",
                out.len(),
                high - low
            );
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = message.unwrap();
            let headers = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Record {
                key: message.key().unwrap_or_default().to_vec(),
                headers,
                value: message.payload().unwrap_or_default().to_vec(),
            });
        }
        out
    })
    .await
    .unwrap()
}

struct KafkaHarness {
    config: KafkaSinkConfig,
    sink: KafkaDomainSink,
}

impl contract::Harness for KafkaHarness {
    async fn create() -> Self {
        let config = config();
        let sink = KafkaDomainSink::connect(config.clone()).await.unwrap();
        Self { config, sink }
    }

    fn sink(&self) -> Arc<dyn DomainEventSink> {
        Arc::new(self.sink.clone())
    }

    async fn reopen(&self) -> Arc<dyn DomainEventSink> {
        Arc::new(KafkaDomainSink::connect(self.config.clone()).await.unwrap())
    }

    async fn published(&self) -> Vec<DomainEvent> {
        records(&self.config)
            .await
            .iter()
            .map(|r| domain::decode(&r.value).unwrap())
            .collect()
    }
}

contract::sink_contract!(KafkaHarness);

#[tokio::test]
async fn records_are_keyed_by_event_id_with_type_and_schema_headers() {
    let config = config();
    let sink = KafkaDomainSink::connect(config.clone()).await.unwrap();
    let events = contract::events(&[2, 3]);
    sink.publish(&events).await.unwrap();
    let records = records(&config).await;
    assert_eq!(records.len(), 2);
    for (record, event) in records.iter().zip(&events) {
        let id = event.event_id.hyphenated().to_string();
        assert_eq!(record.key, id.as_bytes());
        let header = |name: &str| {
            record
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no header {name}"))
        };
        assert_eq!(header(EVENT_ID_HEADER), id.as_bytes());
        assert_eq!(header(TYPE_HEADER), event.event_type().as_bytes());
        assert_eq!(header(SCHEMA_HEADER), domain::SCHEMA.as_bytes());
        assert_eq!(record.value, domain::encode(event).unwrap());
    }
}

#[tokio::test]
async fn a_topic_with_several_partitions_is_refused() {
    let config = config();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .unwrap();
    let topic = NewTopic::new(&config.topic, 3, TopicReplication::Fixed(1));
    admin
        .create_topics([&topic], &AdminOptions::new())
        .await
        .unwrap()
        .into_iter()
        .for_each(|r| {
            r.unwrap();
        });
    let error = KafkaDomainSink::connect(config).await.unwrap_err();
    assert!(error.to_string().contains("3 partitions"), "{error}");
}
