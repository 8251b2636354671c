//! The Kafka adapter: one single-partition topic of JSON domain events.
//!
//! Every domain event is one record of partition 0 of [`KafkaSinkConfig::topic`]
//! (default [`DEFAULT_TOPIC`]): key = the event id (hyphenated UUID text), value = the
//! `mpc.domain-event/v1` JSON, headers [`EVENT_ID_HEADER`], [`TYPE_HEADER`] and
//! [`SCHEMA_HEADER`]. One partition gives consumers one total order, and lets the
//! relay find where it stopped by reading the partition's last record.
//!
//! The producer is idempotent (`enable.idempotence=true`, hence `acks=all` and no
//! duplicates or reordering from its own retries). A batch is sent one record at a
//! time, each after the previous one's acknowledgement: a failure can then leave only
//! a prefix of the batch in the topic. (Sent all at once, record *k* could time out
//! while *k+1* lands, and resuming after *k+1* would lose *k*.) Domain events are
//! few, so the per-record round trip is the price of never losing one.

use std::time::Duration;

use async_trait::async_trait;
use mpc_schemas::{DomainEvent, domain};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;
use uuid::Uuid;

use crate::{DomainEventSink, OutboxError};

/// The topic domain events go to unless configured otherwise.
pub const DEFAULT_TOPIC: &str = "mpc.domain-events";
/// Header carrying the event id (the dedupe key), as the record key does.
pub const EVENT_ID_HEADER: &str = "mpc-event-id";
/// Header carrying the domain event type, e.g. `signature.produced`.
pub const TYPE_HEADER: &str = "mpc-type";
/// Header carrying the schema, `mpc.domain-event/v1`.
pub const SCHEMA_HEADER: &str = "mpc-schema";
/// The only partition of the topic.
const PARTITION: i32 = 0;

/// Where and how [`KafkaDomainSink`] talks to Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSinkConfig {
    /// Bootstrap brokers, `host:port[,host:port…]`.
    pub brokers: String,
    /// The topic; created with one partition if missing. An existing topic must have
    /// exactly one.
    pub topic: String,
    /// Kafka `client.id`.
    pub client_id: String,
    /// Bound for one broker round trip: topic creation, metadata, offsets, a fetch.
    pub request_timeout: Duration,
    /// Bound for one record's delivery, retries included.
    pub delivery_timeout: Duration,
}

impl KafkaSinkConfig {
    /// Topic [`DEFAULT_TOPIC`], client id `mpc-outbox`, 10 s requests, 30 s delivery.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic: DEFAULT_TOPIC.into(),
            client_id: "mpc-outbox".into(),
            request_timeout: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(30),
        }
    }
}

/// Publishes domain events to a single-partition Kafka topic. Cheap to clone.
#[derive(Clone)]
pub struct KafkaDomainSink {
    config: KafkaSinkConfig,
    producer: FutureProducer,
}

impl std::fmt::Debug for KafkaDomainSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaDomainSink")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KafkaDomainSink {
    /// Connects, creates the topic with one partition if it is missing, and checks that
    /// it has exactly one.
    pub async fn connect(config: KafkaSinkConfig) -> Result<Self, OutboxError> {
        let producer: FutureProducer = client_config(&config)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                config.delivery_timeout.as_millis().to_string(),
            )
            .create()
            .map_err(backend)?;
        create_topic(&config).await?;
        let sink = Self { config, producer };
        sink.check_single_partition().await?;
        Ok(sink)
    }

    pub fn config(&self) -> &KafkaSinkConfig {
        &self.config
    }

    async fn check_single_partition(&self) -> Result<(), OutboxError> {
        let deadline = tokio::time::Instant::now() + self.config.request_timeout;
        loop {
            let (client, topic, timeout) = (
                self.producer.clone(),
                self.config.topic.clone(),
                self.config.request_timeout,
            );
            let metadata = tokio::task::spawn_blocking(move || {
                client.client().fetch_metadata(Some(&topic), timeout)
            })
            .await
            .map_err(|e| OutboxError::Sink(format!("metadata look-up task: {e}")))?
            .map_err(backend)?;
            let count = metadata
                .topics()
                .iter()
                .find(|t| t.name() == self.config.topic && t.error().is_none())
                .map_or(0, |t| t.partitions().len());
            match count {
                1 => return Ok(()),
                0 if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                0 => {
                    return Err(OutboxError::Sink(format!(
                        "topic {} has no partitions after creation",
                        self.config.topic
                    )));
                }
                n => {
                    return Err(OutboxError::Sink(format!(
                        "topic {} has {n} partitions; domain events need exactly one",
                        self.config.topic
                    )));
                }
            }
        }
    }
}

#[async_trait]
impl DomainEventSink for KafkaDomainSink {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), OutboxError> {
        for event in events {
            let value = domain::encode(event)?;
            let key = event.event_id.hyphenated().to_string();
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: EVENT_ID_HEADER,
                    value: Some(key.as_bytes()),
                })
                .insert(Header {
                    key: TYPE_HEADER,
                    value: Some(event.event_type().as_bytes()),
                })
                .insert(Header {
                    key: SCHEMA_HEADER,
                    value: Some(domain::SCHEMA.as_bytes()),
                });
            let record = FutureRecord::to(&self.config.topic)
                .partition(PARTITION)
                .key(key.as_bytes())
                .payload(&value)
                .headers(headers);
            self.producer
                .send(record, self.config.delivery_timeout)
                .await
                .map_err(|(error, _)| backend(error))?;
        }
        Ok(())
    }

    async fn last_position(&self) -> Result<Option<u64>, OutboxError> {
        let config = self.config.clone();
        // librdkafka's look-ups and polls block: keep them off the async workers.
        tokio::task::spawn_blocking(move || last_position(&config))
            .await
            .map_err(|e| OutboxError::Sink(format!("last-record look-up task: {e}")))?
    }
}

/// The `position` of the partition's last record, read with an explicit assignment
/// (no consumer group). Only that field is read, so a record of a type this version
/// does not know still tells where to resume.
fn last_position(config: &KafkaSinkConfig) -> Result<Option<u64>, OutboxError> {
    #[derive(Deserialize)]
    struct Position {
        position: u64,
    }

    // librdkafka wants a group id even for an explicit assignment; a fresh one, never
    // joined and never committed to.
    let consumer: BaseConsumer = client_config(config)
        .set(
            "group.id",
            format!("{}-resume-{}", config.client_id, Uuid::new_v4()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(backend)?;
    let (low, high) = consumer
        .fetch_watermarks(&config.topic, PARTITION, config.request_timeout)
        .map_err(backend)?;
    if high <= low {
        return Ok(None);
    }
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&config.topic, PARTITION, Offset::Offset(high - 1))
        .map_err(backend)?;
    consumer.assign(&assignment).map_err(backend)?;
    let deadline = std::time::Instant::now() + config.request_timeout;
    while std::time::Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.map_err(backend)?;
        let position: Position = serde_json::from_slice(message.payload().unwrap_or_default())
            .map_err(|e| {
                OutboxError::Sink(format!(
                    "record at offset {} of {} has no position: {e}",
                    message.offset(),
                    config.topic
                ))
            })?;
        return Ok(Some(position.position));
    }
    Err(OutboxError::Sink(format!(
        "the last record of {} (offset {}) did not arrive within {:?}",
        config.topic,
        high - 1,
        config.request_timeout
    )))
}

fn client_config(config: &KafkaSinkConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("client.id", &config.client_id)
        .set(
            "socket.timeout.ms",
            config.request_timeout.as_millis().to_string(),
        );
    client
}

fn backend(error: KafkaError) -> OutboxError {
    OutboxError::Sink(error.to_string())
}

async fn create_topic(config: &KafkaSinkConfig) -> Result<(), OutboxError> {
    let admin: AdminClient<DefaultClientContext> =
        client_config(config).create().map_err(backend)?;
    let topic = NewTopic::new(&config.topic, 1, TopicReplication::Fixed(1));
    let options = AdminOptions::new().request_timeout(Some(config.request_timeout));
    let results = admin.create_topics([&topic], &options).await.map_err(|e| {
        OutboxError::Sink(format!(
            "Kafka brokers {} did not answer: {e}",
            config.brokers
        ))
    })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(OutboxError::Sink(format!(
                    "cannot create topic {name}: {code}"
                )));
            }
        }
    }
    Ok(())
}
