//! The Kafka adapter: envelopes travel through one topic, keyed by session id.
//!
//! # Layout
//!
//! Every envelope is one record of the topic [`KafkaConfig::topic`] (default
//! [`DEFAULT_TOPIC`]). Its key is the session id (16 bytes), its value the envelope's
//! wire bytes, and its partition is [`partition_for`] the session: a fixed hash of the
//! session id, computed by this adapter rather than left to a client partitioner, so
//! that every process knows which one partition holds a session without asking. One
//! partition per session gives the session one total order that every reader sees.
//!
//! Closing a session appends a *close marker* to the same partition: a record with the
//! session's key, an empty value and the header [`CONTROL_HEADER`] `= close`. Inboxes
//! end when they read it, in every process. The shared topic cannot drop one session's
//! records; they go with the topic's retention.
//!
//! # Producing
//!
//! One idempotent producer per transport (`enable.idempotence=true`, hence `acks=all`
//! and in-order retries). [`Transport::publish`] checks the envelope's size before
//! anything reaches librdkafka and returns once the broker has acknowledged the record.
//!
//! # Budgets
//!
//! Each transport counts what it published per session against
//! [`KafkaConfig::budget`] and refuses a publish over it. Other processes publishing
//! to the same session are not counted here (they cannot be: they write to the broker
//! directly); a party counts its inbox itself, over the envelopes whose signatures it
//! verified, so no publisher can make it read without bound. The counts of the
//! 4 096 most recent sessions are kept; a closed session's go at once.
//!
//! # Consuming
//!
//! Each inbox owns a consumer with an *explicit* assignment of its session's partition:
//! it never joins a consumer group, so no rebalancing, and commits no offsets. The
//! inbox manages its position itself and starts at an offset found by timestamp:
//! session ids are UUIDv7, so they carry the session's creation time, and no envelope
//! of a session can be older than that (less [`KafkaConfig::clock_skew`], the slack
//! allowed between the clocks of the session's creator and its publishers). The
//! broker's `ListOffsets` by timestamp gives the first record at or after that time
//! (Kafka answers exactly from its time index; tansu 0.6 answers from batch write
//! times, an earlier offset, which only means reading more). If no record is that
//! recent, the inbox starts at the high watermark read *before* the look-up, so a
//! record appended in between is not missed. A session id without a timestamp is read
//! from the start of its partition. Records of other sessions sharing the partition are
//! skipped by key without being decoded.
//!
//! So an inbox sees the session's whole log, whatever was published before it
//! subscribed or while its party was offline, and a consumer restarted later (a new
//! inbox, in this process or another) reads it all again; [`Inbox`] drops duplicate
//! message ids.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream;
use mpc_events::{PartyId, SessionId};
use mpc_schemas::{Envelope, MAX_ENVELOPE_BYTES};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

use crate::budget::{SessionBudget, Usage};
use crate::error::TransportError;
use crate::inbox::Inbox;
use crate::port::{Transport, encode_for_transport};

/// The topic envelopes go to unless configured otherwise.
pub const DEFAULT_TOPIC: &str = "mpc.envelopes";
/// Header that marks a control record (its value says which); envelopes have none.
pub const CONTROL_HEADER: &str = "mpc-control";
/// [`CONTROL_HEADER`] value of a session's close marker.
const CLOSE: &[u8] = b"close";
/// Largest record the producer sends and the topic accepts: the largest envelope plus
/// room for the key, the header and the batch framing.
const MAX_RECORD_BYTES: usize = MAX_ENVELOPE_BYTES + 64 * 1024;
/// How many sessions' publish counts one transport keeps; past that, the oldest
/// session's count (session ids are UUIDv7, ordered by creation time) is forgotten.
const OPEN_USAGE: usize = 4096;

/// Where and how [`KafkaTransport`] talks to Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port[,host:port…]`.
    pub brokers: String,
    /// The topic carrying every session's envelopes; created if missing.
    pub topic: String,
    /// Partition count used when this transport creates the topic. An existing topic
    /// keeps its own count, and that is the one used for routing: never change it
    /// while sessions are open.
    pub partitions: i32,
    /// Kafka `client.id` of the producer and the inboxes' consumers.
    pub client_id: String,
    /// Producer `linger.ms`: how long a publish may wait for others to share its batch.
    pub linger_ms: u32,
    /// How much older than its session's creation time an envelope's timestamp may be
    /// (clock differences between hosts); inboxes start reading that much earlier.
    pub clock_skew: Duration,
    /// Bound for one broker round trip: topic creation, metadata and offset look-ups.
    pub request_timeout: Duration,
    /// Bound for one publish, retries included, before it fails.
    pub delivery_timeout: Duration,
    /// Consumer `fetch.wait.max.ms`: how long the broker may hold an inbox's fetch
    /// while there is nothing new. Kafka answers as soon as a record arrives, so there
    /// a larger value only saves idle requests; tansu 0.6 holds the fetch for the full
    /// wait, so there it bounds the publish-to-receive latency.
    pub fetch_wait: Duration,
    /// What this transport lets one session publish.
    pub budget: SessionBudget,
}

impl KafkaConfig {
    /// The defaults, with `brokers` as bootstrap servers.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            ..Self::default()
        }
    }
}

impl Default for KafkaConfig {
    /// A local broker (`127.0.0.1:9092`), topic [`DEFAULT_TOPIC`] with 12 partitions,
    /// client id `mpc`, 1 ms linger, 5 min of clock skew, 10 s requests, 30 s delivery,
    /// 10 ms fetch wait, [`SessionBudget::DEFAULT`].
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic: DEFAULT_TOPIC.into(),
            partitions: 12,
            client_id: "mpc".into(),
            linger_ms: 1,
            clock_skew: Duration::from_secs(300),
            request_timeout: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(30),
            fetch_wait: Duration::from_millis(10),
            budget: SessionBudget::DEFAULT,
        }
    }
}

/// The partition, out of `partitions`, that holds `session`'s envelopes: FNV-1a of the
/// session id's 16 bytes, so every process and version agrees.
pub fn partition_for(session: SessionId, partitions: i32) -> i32 {
    let hash = session
        .as_uuid()
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    let partitions = u64::try_from(partitions.max(1)).unwrap_or(1);
    i32::try_from(hash % partitions).unwrap_or(0)
}

/// Transport over a Kafka-protocol broker. Cheap to clone: clones share the producer.
///
/// Closed sessions are remembered (16 bytes each) so that this transport refuses
/// later publishes and subscribes; other processes learn of the close from the marker,
/// which ends their inboxes.
#[derive(Clone)]
pub struct KafkaTransport {
    inner: Arc<Inner>,
}

struct Inner {
    config: KafkaConfig,
    /// The topic's actual partition count.
    partitions: i32,
    producer: FutureProducer,
    sessions: Mutex<Sessions>,
}

/// What this transport knows of sessions: which it closed, and what it published to
/// the open ones.
#[derive(Default)]
struct Sessions {
    closed: HashSet<SessionId>,
    usage: BTreeMap<SessionId, Usage>,
}

impl std::fmt::Debug for KafkaTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaTransport")
            .field("config", &self.inner.config)
            .field("partitions", &self.inner.partitions)
            .finish_non_exhaustive()
    }
}

impl KafkaTransport {
    /// Connects to the brokers, creates the topic if it is missing and learns its
    /// partition count. Fails with [`TransportError::Backend`] if the brokers do not
    /// answer within [`KafkaConfig::request_timeout`].
    pub async fn connect(config: KafkaConfig) -> Result<Self, TransportError> {
        let producer: FutureProducer = client_config(&config)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", config.linger_ms.to_string())
            .set("message.max.bytes", MAX_RECORD_BYTES.to_string())
            .set(
                "message.timeout.ms",
                config.delivery_timeout.as_millis().to_string(),
            )
            .create()
            .map_err(backend)?;
        create_topic(&config).await?;
        let partitions = partition_count(&producer, &config).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                partitions,
                producer,
                sessions: Mutex::new(Sessions::default()),
            }),
        })
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.inner.config
    }

    /// The partition holding `session`'s envelopes.
    pub fn partition_of(&self, session: SessionId) -> i32 {
        partition_for(session, self.inner.partitions)
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        // Every update is one insert or remove: the sets stay consistent if a holder
        // panicked.
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn refuse_if_closed(&self, session: SessionId) -> Result<(), TransportError> {
        if self.sessions().closed.contains(&session) {
            Err(TransportError::SessionClosed(session))
        } else {
            Ok(())
        }
    }

    /// Counts `envelope` against its session's budget, or refuses it (and a closed
    /// session's).
    fn admit(&self, envelope: &Envelope) -> Result<(), TransportError> {
        let session = envelope.session_id;
        let mut sessions = self.sessions();
        if sessions.closed.contains(&session) {
            return Err(TransportError::SessionClosed(session));
        }
        sessions
            .usage
            .entry(session)
            .or_default()
            .admit(&self.inner.config.budget, envelope)?;
        if sessions.usage.len() > OPEN_USAGE {
            sessions.usage.pop_first();
        }
        Ok(())
    }

    /// Appends one record to `session`'s partition and waits for the broker's ack.
    async fn append(
        &self,
        session: SessionId,
        value: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<(), TransportError> {
        let key = *session.as_uuid().as_bytes();
        let mut record = FutureRecord::to(&self.inner.config.topic)
            .partition(self.partition_of(session))
            .key(&key[..])
            .payload(value);
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        self.inner
            .producer
            .send(record, self.inner.config.delivery_timeout)
            .await
            .map(drop)
            .map_err(|(error, _)| backend(error))
    }

    /// A consumer assigned to `session`'s partition at the first offset that may hold
    /// one of its records.
    async fn consumer_for(&self, session: SessionId) -> Result<StreamConsumer, TransportError> {
        let config = &self.inner.config;
        // librdkafka wants a group id even for an explicit assignment; a fresh one per
        // inbox, never joined (no `subscribe`) and never committed to.
        let consumer: StreamConsumer = client_config(config)
            .set(
                "group.id",
                format!("{}-inbox-{}", config.client_id, Uuid::new_v4()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "fetch.wait.max.ms",
                config.fetch_wait.as_millis().to_string(),
            )
            .set("enable.partition.eof", "false")
            .create()
            .map_err(backend)?;
        let topic = config.topic.clone();
        let partition = self.partition_of(session);
        let not_before = session_start_millis(session, config.clock_skew);
        let timeout = config.request_timeout;
        // librdkafka's look-ups block: keep them off the async workers.
        tokio::task::spawn_blocking(move || {
            let start = start_offset(&consumer, &topic, partition, not_before, timeout)?;
            let mut assignment = TopicPartitionList::new();
            assignment
                .add_partition_offset(&topic, partition, start)
                .map_err(backend)?;
            consumer.assign(&assignment).map_err(backend)?;
            Ok(consumer)
        })
        .await
        .map_err(|e| TransportError::Backend(format!("offset look-up task: {e}")))?
    }
}

#[async_trait]
impl Transport for KafkaTransport {
    async fn publish(&self, envelope: &Envelope) -> Result<(), TransportError> {
        let bytes = encode_for_transport(envelope)?;
        self.admit(envelope)?;
        self.append(envelope.session_id, &bytes, None).await
    }

    async fn subscribe(
        &self,
        session: SessionId,
        party: &PartyId,
    ) -> Result<Inbox, TransportError> {
        self.refuse_if_closed(session)?;
        let reader = Reader {
            consumer: OwnedConsumer(Some(self.consumer_for(session).await?)),
            key: *session.as_uuid().as_bytes(),
        };
        Ok(Inbox::new(
            session,
            party.clone(),
            stream::unfold(reader, Reader::next),
        ))
    }

    async fn ready(&self) -> Result<(), TransportError> {
        let config = &self.inner.config;
        let (client, topic, timeout) = (
            self.inner.producer.clone(),
            config.topic.clone(),
            config.request_timeout,
        );
        tokio::task::spawn_blocking(move || client.client().fetch_metadata(Some(&topic), timeout))
            .await
            .map_err(|e| TransportError::Backend(format!("metadata look-up task: {e}")))?
            .map(drop)
            .map_err(|e| unreachable_brokers(config, &e))
    }

    async fn close_session(&self, session: SessionId) -> Result<(), TransportError> {
        {
            let mut sessions = self.sessions();
            sessions.closed.insert(session);
            sessions.usage.remove(&session);
        }
        let marker = OwnedHeaders::new().insert(Header {
            key: CONTROL_HEADER,
            value: Some(CLOSE),
        });
        self.append(session, &[], Some(marker)).await
    }
}

/// Settings shared by the producer and the consumers.
fn client_config(config: &KafkaConfig) -> ClientConfig {
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

fn backend(error: KafkaError) -> TransportError {
    TransportError::Backend(error.to_string())
}

async fn create_topic(config: &KafkaConfig) -> Result<(), TransportError> {
    let admin: AdminClient<DefaultClientContext> =
        client_config(config).create().map_err(backend)?;
    let max_record = MAX_RECORD_BYTES.to_string();
    let topic = NewTopic::new(&config.topic, config.partitions, TopicReplication::Fixed(1))
        .set("max.message.bytes", &max_record);
    let options = AdminOptions::new().request_timeout(Some(config.request_timeout));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .map_err(|e| unreachable_brokers(config, &e))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(TransportError::Backend(format!(
                    "cannot create topic {name}: {code}"
                )));
            }
        }
    }
    Ok(())
}

fn unreachable_brokers(config: &KafkaConfig, error: &KafkaError) -> TransportError {
    TransportError::Backend(format!(
        "Kafka brokers {} did not answer: {error}",
        config.brokers
    ))
}

/// The topic's partition count, once its metadata shows every partition (a topic just
/// created may take a moment to appear).
async fn partition_count(
    producer: &FutureProducer,
    config: &KafkaConfig,
) -> Result<i32, TransportError> {
    let deadline = tokio::time::Instant::now() + config.request_timeout;
    loop {
        let (client, topic, timeout) = (
            producer.clone(),
            config.topic.clone(),
            config.request_timeout,
        );
        let metadata = tokio::task::spawn_blocking(move || {
            client.client().fetch_metadata(Some(&topic), timeout)
        })
        .await
        .map_err(|e| TransportError::Backend(format!("metadata look-up task: {e}")))?
        .map_err(|e| unreachable_brokers(config, &e))?;
        let count = metadata
            .topics()
            .iter()
            .find(|t| t.name() == config.topic && t.error().is_none())
            .map_or(0, |t| t.partitions().len());
        if count > 0 {
            return i32::try_from(count)
                .map_err(|_| TransportError::Backend(format!("{count} partitions")));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TransportError::Backend(format!(
                "topic {} has no partitions after creation",
                config.topic
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Milliseconds since the epoch before which `session` can have no envelope, if its id
/// carries a creation time.
fn session_start_millis(session: SessionId, clock_skew: Duration) -> Option<i64> {
    let (seconds, nanos) = session.as_uuid().get_timestamp()?.to_unix();
    let created = i64::try_from(seconds)
        .ok()?
        .checked_mul(1000)?
        .checked_add(i64::from(nanos / 1_000_000))?;
    Some(created.saturating_sub(i64::try_from(clock_skew.as_millis()).unwrap_or(i64::MAX)))
}

/// The first offset of `partition` that may hold a record at or after `not_before`.
///
/// The high watermark is read *before* the timestamp look-up: if the look-up finds no
/// such record, every later record has an offset at or above that watermark, so
/// starting there cannot miss one published in between.
fn start_offset(
    consumer: &StreamConsumer,
    topic: &str,
    partition: i32,
    not_before: Option<i64>,
    timeout: Duration,
) -> Result<Offset, TransportError> {
    let Some(not_before) = not_before else {
        return Ok(Offset::Beginning);
    };
    let (_, high) = consumer
        .fetch_watermarks(topic, partition, timeout)
        .map_err(backend)?;
    let mut query = TopicPartitionList::new();
    query
        .add_partition_offset(topic, partition, Offset::Offset(not_before))
        .map_err(backend)?;
    let found = consumer
        .offsets_for_times(query, timeout)
        .map_err(backend)?;
    let element = found
        .find_partition(topic, partition)
        .ok_or_else(|| TransportError::Backend("no answer for the partition".into()))?;
    element.error().map_err(backend)?;
    Ok(match element.offset() {
        Offset::Offset(offset) => Offset::Offset(offset),
        _ => Offset::Offset(high),
    })
}

/// An inbox's reading position in its session's partition.
struct Reader {
    consumer: OwnedConsumer,
    /// The session's record key.
    key: [u8; 16],
}

/// An inbox's consumer, destroyed off the async workers when the inbox is dropped.
///
/// Destroying a librdkafka client blocks until its internal threads have noticed and
/// ended, which takes about 100 ms. Done in place, that would stall the task dropping
/// the inbox (a party that just finished its run and is about to report) and the
/// runtime worker under it; so the consumer goes to tokio's blocking pool instead.
struct OwnedConsumer(Option<StreamConsumer>);

impl Drop for OwnedConsumer {
    fn drop(&mut self) {
        let Some(consumer) = self.0.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn_blocking(move || drop(consumer));
        }
    }
}

/// What one record means to an inbox.
enum Record {
    Envelope(Result<Envelope, TransportError>),
    Close,
    /// Another session's record, or a control record this version does not know.
    Skip,
}

impl Reader {
    async fn next(self) -> Option<(Result<Envelope, TransportError>, Self)> {
        loop {
            // The consumer is only taken out when the reader is dropped.
            let record = match self.consumer.0.as_ref()?.recv().await {
                Ok(message) => self.classify(&message),
                // The broker went away (restart, network): librdkafka reconnects and
                // resumes fetching on its own, so the inbox waits instead of ending
                // the party's run. A broker that never comes back ends the run at the
                // session's deadline.
                Err(KafkaError::MessageConsumption(code)) if code != RDKafkaErrorCode::Fatal => {
                    tracing::warn!(
                        session = %Uuid::from_bytes(self.key),
                        error = %code,
                        "broker error while reading an inbox; waiting for the broker"
                    );
                    Record::Skip
                }
                Err(error) => Record::Envelope(Err(backend(error))),
            };
            match record {
                Record::Envelope(envelope) => return Some((envelope, self)),
                Record::Close => return None,
                Record::Skip => {}
            }
        }
    }

    fn classify(&self, message: &BorrowedMessage<'_>) -> Record {
        if message.key() != Some(&self.key[..]) {
            return Record::Skip;
        }
        let control = message.headers().and_then(|headers| {
            headers
                .iter()
                .find(|header| header.key == CONTROL_HEADER)
                .map(|header| header.value)
        });
        match control {
            Some(Some(CLOSE)) => Record::Close,
            Some(_) => Record::Skip,
            None => Record::Envelope(
                Envelope::decode(message.payload().unwrap_or_default()).map_err(|e| {
                    TransportError::Backend(format!(
                        "undecodable envelope at offset {} of partition {}: {e}",
                        message.offset(),
                        message.partition()
                    ))
                }),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_in_range() {
        let session = SessionId::from_uuid(Uuid::from_u128(42));
        assert_eq!(partition_for(session, 12), partition_for(session, 12));
        assert_eq!(partition_for(session, 1), 0);
        let spread: HashSet<_> = (0..200)
            .map(|_| partition_for(SessionId::new(), 12))
            .collect();
        assert!(spread.iter().all(|p| (0..12).contains(p)));
        assert!(
            spread.len() > 6,
            "sessions spread over partitions: {spread:?}"
        );
    }

    #[test]
    fn inboxes_start_a_clock_skew_before_the_session_was_created() {
        let session = SessionId::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let start = session_start_millis(session, Duration::from_secs(60)).unwrap();
        let expected = i64::try_from(now).unwrap() - 60_000;
        assert!((start - expected).abs() < 5_000, "{start} vs {expected}");
        let untimed = SessionId::from_uuid(Uuid::from_u128(42));
        assert_eq!(session_start_millis(untimed, Duration::ZERO), None);
    }
}
