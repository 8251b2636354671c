//! End-to-end envelopes through real party nodes: a 2-of-3 keygen and a 2-of-3
//! signing over the in-process transport, with forged envelopes injected into the
//! transport. The runs must complete with verifying signatures, the transport must
//! only ever hold ciphertext for point-to-point messages, and no forgery may reach an
//! engine (any that did would abort the run as malformed).
//!
//! Then the stored copies: the same run over a Kafka-protocol broker, coordinated by
//! the real coordinator over a file-backed event store. Neither the broker's copy of
//! the envelopes nor the coordinator's event log may contain a plaintext protocol
//! payload (the broker test needs `MPC_TEST_KAFKA_BROKERS`, default `127.0.0.1:19092`,
//! where `bash scripts/ensure-kafka.sh` starts one; without it the test fails).

use std::collections::HashMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use mpc_actors::{
    CommandMeta, Coordinator, CreatedSession, NewKeygen, NewSigning, SigningPayload, SystemClock,
};
use mpc_app::LocalCoordinator;
use mpc_crypto::{Header, PartyIdentity, verify_signature};
use mpc_engine::{
    Dkls23Engine, EngineError, Incoming, KeyShare, KeygenParams, Outgoing, Protocol, RefreshParams,
    Refreshed, ShareSlot, SignParams, Step, ThresholdEngine, To,
};
use mpc_events::{
    IdentityKey, KeyId, KeyPolicy, KeyRef, MessageHash, Participant, PartyId, PartyOutcome,
    PublicKey, SessionId, SessionSpec, SessionStatus, SessionView, Signature, Threshold, Timestamp,
};
use mpc_party::{CoordinatorClient, CoordinatorError, PartyNode};
use mpc_schemas::{Envelope, Recipient};
use mpc_store::{EventStore, RecordedEvent, SqliteStore};
use mpc_transport::{
    InProcessTransport, Inbox, KafkaConfig, KafkaTransport, SessionBudget, Transport,
    TransportError,
};
use mpc_vault::FileVault;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Hands out prepared session views and records what parties report.
#[derive(Default)]
struct TestCoordinator {
    views: Mutex<HashMap<SessionId, SessionView>>,
    completions: Mutex<Vec<(SessionId, PartyId, PartyOutcome)>>,
    failures: Mutex<Vec<(SessionId, PartyId, Vec<PartyId>)>>,
}

#[async_trait]
impl CoordinatorClient for TestCoordinator {
    async fn join(
        &self,
        session: SessionId,
        party: &PartyId,
        _token: &str,
    ) -> Result<SessionView, CoordinatorError> {
        let view = self.views.lock().unwrap().get(&session).cloned();
        let view = view.ok_or_else(|| CoordinatorError::Refused("no such session".into()))?;
        if view.index_of(party).is_none() {
            return Err(CoordinatorError::Refused(format!("{party} is not invited")));
        }
        Ok(view)
    }

    async fn wait_started(&self, _session: SessionId) -> Result<SessionStatus, CoordinatorError> {
        Ok(SessionStatus::InProgress)
    }

    async fn wait_finished(&self, _session: SessionId) -> Result<SessionStatus, CoordinatorError> {
        std::future::pending().await
    }

    async fn report_completion(
        &self,
        session: SessionId,
        party: &PartyId,
        outcome: PartyOutcome,
    ) -> Result<(), CoordinatorError> {
        self.completions
            .lock()
            .unwrap()
            .push((session, party.clone(), outcome));
        Ok(())
    }

    async fn report_failure(
        &self,
        session: SessionId,
        party: &PartyId,
        culprits: Vec<PartyId>,
        _detail: String,
    ) -> Result<(), CoordinatorError> {
        self.failures
            .lock()
            .unwrap()
            .push((session, party.clone(), culprits));
        Ok(())
    }
}

/// A transport (in-process by default), keeping a copy of everything published
/// through it.
struct RecordingTransport {
    inner: Arc<dyn Transport>,
    log: Mutex<Vec<Envelope>>,
}

impl RecordingTransport {
    fn over(inner: Arc<dyn Transport>) -> Self {
        Self {
            inner,
            log: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl Transport for RecordingTransport {
    async fn publish(&self, envelope: &Envelope) -> Result<(), TransportError> {
        self.log.lock().unwrap().push(envelope.clone());
        self.inner.publish(envelope).await
    }

    async fn subscribe(
        &self,
        session: SessionId,
        party: &PartyId,
    ) -> Result<Inbox, TransportError> {
        self.inner.subscribe(session, party).await
    }

    async fn close_session(&self, session: SessionId) -> Result<(), TransportError> {
        self.inner.close_session(session).await
    }

    async fn ready(&self) -> Result<(), TransportError> {
        self.inner.ready().await
    }
}

/// The DKLs23 engine, keeping a copy of every plaintext payload it sends.
#[derive(Default)]
struct RecordingEngine {
    p2p_plaintexts: Arc<Mutex<Vec<Vec<u8>>>>,
    broadcast_plaintexts: Arc<Mutex<Vec<Vec<u8>>>>,
}

struct RecordingProtocol<O> {
    inner: Box<dyn Protocol<Output = O>>,
    p2p_plaintexts: Arc<Mutex<Vec<Vec<u8>>>>,
    broadcast_plaintexts: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl<O> RecordingProtocol<O> {
    fn record(&self, outgoing: &[Outgoing]) {
        for m in outgoing {
            let log = match m.to {
                To::One(_) => &self.p2p_plaintexts,
                To::All => &self.broadcast_plaintexts,
            };
            log.lock().unwrap().push(m.payload.clone());
        }
    }
}

impl<O: Send> Protocol for RecordingProtocol<O> {
    type Output = O;

    fn start(&mut self) -> Result<Vec<Outgoing>, EngineError> {
        let out = self.inner.start()?;
        self.record(&out);
        Ok(out)
    }

    fn handle(&mut self, message: Incoming) -> Result<Step<O>, EngineError> {
        let step = self.inner.handle(message)?;
        match &step {
            Step::Continue(out) | Step::Done { outgoing: out, .. } => self.record(out),
        }
        Ok(step)
    }
}

impl RecordingEngine {
    fn wrap<O: Send + 'static>(
        &self,
        inner: Box<dyn Protocol<Output = O>>,
    ) -> Box<dyn Protocol<Output = O>> {
        Box::new(RecordingProtocol {
            inner,
            p2p_plaintexts: self.p2p_plaintexts.clone(),
            broadcast_plaintexts: self.broadcast_plaintexts.clone(),
        })
    }
}

impl ThresholdEngine for RecordingEngine {
    fn name(&self) -> &'static str {
        Dkls23Engine.name()
    }

    fn keygen(
        &self,
        params: KeygenParams,
    ) -> Result<Box<dyn Protocol<Output = KeyShare>>, EngineError> {
        Dkls23Engine.keygen(params).map(|p| self.wrap(p))
    }

    fn sign(
        &self,
        share: &KeyShare,
        params: SignParams,
    ) -> Result<Box<dyn Protocol<Output = Signature>>, EngineError> {
        Dkls23Engine.sign(share, params).map(|p| self.wrap(p))
    }

    fn refresh(
        &self,
        share: &KeyShare,
        params: RefreshParams,
    ) -> Result<Box<dyn Protocol<Output = Refreshed>>, EngineError> {
        Dkls23Engine.refresh(share, params).map(|p| self.wrap(p))
    }

    fn recover(
        &self,
        slot: ShareSlot,
        params: RefreshParams,
    ) -> Result<Box<dyn Protocol<Output = Refreshed>>, EngineError> {
        Dkls23Engine.recover(slot, params).map(|p| self.wrap(p))
    }
}

struct World<C> {
    coordinator: Arc<C>,
    transport: Arc<RecordingTransport>,
    engine: Arc<RecordingEngine>,
    nodes: Vec<Arc<PartyNode>>,
    _vaults: Vec<tempfile::TempDir>,
}

fn party(name: &str) -> PartyId {
    PartyId::parse(name).unwrap()
}

fn world() -> World<TestCoordinator> {
    world_over(
        Arc::new(TestCoordinator::default()),
        Arc::new(InProcessTransport::new()),
    )
}

/// Device, server and recovery nodes over `transport`, reporting to `coordinator`.
fn world_over<C: CoordinatorClient + 'static>(
    coordinator: Arc<C>,
    transport: Arc<dyn Transport>,
) -> World<C> {
    let transport = Arc::new(RecordingTransport::over(transport));
    let engine = Arc::new(RecordingEngine::default());
    let mut nodes = Vec::new();
    let mut vaults = Vec::new();
    for name in ["device", "server", "recovery"] {
        let dir = tempfile::tempdir().unwrap();
        let vault = FileVault::create(dir.path(), b"test passphrase").unwrap();
        vaults.push(dir);
        nodes.push(Arc::new(PartyNode::new(
            party(name),
            PartyIdentity::generate(),
            engine.clone(),
            Arc::new(vault),
            transport.clone(),
            coordinator.clone(),
        )));
    }
    World {
        coordinator,
        transport,
        engine,
        nodes,
        _vaults: vaults,
    }
}

fn participant(node: &PartyNode) -> Participant {
    Participant {
        party_id: node.id().clone(),
        identity: node.identity().public(),
    }
}

fn in_a_minute() -> Timestamp {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    Timestamp::from_millis(i64::try_from(now.as_millis()).unwrap() + 60_000)
}

impl World<TestCoordinator> {
    fn add_session(&self, spec: SessionSpec, signers: &[usize]) -> SessionId {
        let session_id = SessionId::new();
        let participants = signers
            .iter()
            .map(|&i| (u8::try_from(i + 1).unwrap(), participant(&self.nodes[i])))
            .collect();
        self.coordinator.views.lock().unwrap().insert(
            session_id,
            SessionView {
                session_id,
                spec,
                participants,
                status: SessionStatus::InProgress,
                expires_at: in_a_minute(),
            },
        );
        session_id
    }

    /// A 2-of-3 keygen session among the three nodes.
    fn add_keygen(&self) -> SessionId {
        let spec = SessionSpec::Keygen {
            threshold: Threshold::new(2, 3).unwrap(),
            policy: KeyPolicy::AnyRequest,
        };
        self.add_session(spec, &[0, 1, 2])
    }
}

impl<C> World<C> {
    async fn inject(&self, envelope: &Envelope) {
        self.transport.inner.publish(envelope).await.unwrap();
    }

    fn key(&self, i: usize) -> IdentityKey {
        self.nodes[i].identity().public()
    }
}

fn header(session: SessionId, round: u16, from: &str, to: Option<&str>) -> Header {
    Header {
        message_id: Uuid::now_v7(),
        session_id: session,
        round,
        sender: party(from),
        recipient: to.map_or(Recipient::Broadcast, |p| Recipient::Party(party(p))),
    }
}

/// Forgeries a party on the bus could publish into `session` (indices: 0 device,
/// 1 server, 2 recovery).
async fn inject_forgeries<C>(world: &World<C>, session: SessionId) {
    let mallory = PartyIdentity::generate();
    let garbage = vec![0x5a; 200];
    let forgeries = [
        // A non-participant, correctly signed and encrypted.
        mpc_crypto::seal(
            &mallory,
            header(session, 1, "mallory", Some("server")),
            Some(&world.key(1)),
            &garbage,
        ),
        // Claims to be the device; signed by someone else.
        mpc_crypto::seal(
            &mallory,
            header(session, 1, "device", Some("server")),
            Some(&world.key(1)),
            &garbage,
        ),
        mpc_crypto::seal(&mallory, header(session, 1, "server", None), None, &garbage),
        // Claims to come from the recipient itself.
        mpc_crypto::seal(
            world.nodes[1].identity(),
            header(session, 1, "server", Some("server")),
            Some(&world.key(1)),
            &garbage,
        ),
    ];
    for forged in forgeries {
        world.inject(&forged.unwrap()).await;
    }
}

/// A participant that signs a message its recipient cannot decrypt (sealed to
/// another key) is named: the run aborts blaming it, instead of waiting out the
/// deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_message_that_does_not_decrypt_aborts_the_run_naming_its_sender() {
    let world = world();
    let keygen = world.add_keygen();
    let sealed_to_another_key = mpc_crypto::seal(
        world.nodes[0].identity(),
        header(keygen, 1, "device", Some("recovery")),
        Some(&PartyIdentity::generate().public()),
        &[0x5a; 200],
    )
    .unwrap();
    world.inject(&sealed_to_another_key).await;
    recovery_blames_device(&world, keygen).await;
}

/// A participant that floods a party with validly signed envelopes over a bus that
/// does not count them (a compromised broker) is named once it passes the budget the
/// party counts itself, and the run ends at once instead of reading without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_flooding_signed_envelopes_is_named_by_the_party_itself() {
    let uncounting_bus = InProcessTransport::with_budget(SessionBudget {
        envelopes_per_sender: u32::MAX,
        ..SessionBudget::DEFAULT
    });
    let world = world_over(
        Arc::new(TestCoordinator::default()),
        Arc::new(uncounting_bus),
    );
    let keygen = world.add_keygen();
    for _ in 0..=SessionBudget::DEFAULT.envelopes_per_sender {
        let flood = mpc_crypto::seal(
            world.nodes[0].identity(),
            header(keygen, 1, "device", Some("recovery")),
            Some(&world.key(2)),
            &[0x5a; 16],
        )
        .unwrap();
        world.inject(&flood).await;
    }
    let detail = recovery_blames_device(&world, keygen).await;
    assert!(
        detail.contains("device already sent 1024 envelopes"),
        "{detail}"
    );
}

/// Runs recovery's part of `keygen`, which must abort before its deadline naming the
/// device (index 1) and tell the coordinator so; returns the abort's detail.
async fn recovery_blames_device(world: &World<TestCoordinator>, keygen: SessionId) -> String {
    let recovery = world.nodes[2].clone();
    let err = tokio::time::timeout(Duration::from_secs(60), recovery.keygen(keygen, "token"))
        .await
        .expect("the run ends before its deadline")
        .unwrap_err();
    let mpc_party::PartyError::Engine(EngineError::Aborted {
        culprit: Some(culprit),
        detail,
        ..
    }) = &err
    else {
        panic!("expected an abort naming a culprit, got {err}");
    };
    assert_eq!(culprit.get(), 1, "{err}");
    let failures = world.coordinator.failures.lock().unwrap().clone();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].1, party("recovery"));
    assert_eq!(failures[0].2, vec![party("device")]);
    detail.clone()
}

async fn run_keygen(world: &World<TestCoordinator>, session: SessionId) -> PublicKey {
    let runs = world.nodes.iter().map(|node| {
        let node = node.clone();
        tokio::spawn(async move { node.keygen(session, "token").await })
    });
    let mut keys = Vec::new();
    for run in runs.collect::<Vec<_>>() {
        keys.push(run.await.unwrap().expect("keygen completes"));
    }
    assert!(keys.windows(2).all(|w| w[0] == w[1]));
    keys[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_and_signing_complete_through_signed_encrypted_envelopes_despite_forgeries() {
    let world = world();
    let threshold = Threshold::new(2, 3).unwrap();

    let keygen = world.add_keygen();
    inject_forgeries(&world, keygen).await;
    let public_key = tokio::time::timeout(Duration::from_secs(60), run_keygen(&world, keygen))
        .await
        .expect("keygen finishes in time");

    let message = b"pay 1 BTC to bc1q-test".to_vec();
    let message_hash = MessageHash::from_bytes(Sha256::digest(&message).into());
    let spec = SessionSpec::Signing {
        key: KeyRef {
            key_id: KeyId::of_keygen(keygen),
            public_key,
            threshold,
            epoch: 1,
            parties: world.nodes.iter().map(|n| participant(n)).collect(),
        },
        message_hash,
        message: Some(message),
        approval: None,
    };
    let signing = world.add_session(spec, &[0, 1]);
    inject_forgeries(&world, signing).await;
    // Replays of the keygen's envelopes into the signing session: re-addressed to the
    // new session, so their signatures no longer verify.
    let keygen_envelopes: Vec<Envelope> = world.transport.log.lock().unwrap().clone();
    for envelope in keygen_envelopes {
        world
            .inject(&Envelope {
                session_id: signing,
                ..envelope
            })
            .await;
    }
    let signers = world.nodes[..2].iter().map(|node| {
        let node = node.clone();
        tokio::spawn(async move { node.participate(signing, "token").await })
    });
    let mut signatures = Vec::new();
    for run in signers.collect::<Vec<_>>() {
        let outcome = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("signing finishes in time")
            .unwrap()
            .expect("signing completes");
        let PartyOutcome::Signature(signature) = outcome else {
            panic!("a signing session yields a signature, got {outcome:?}");
        };
        signatures.push(signature);
    }

    // (a) The signatures verify.
    for signature in &signatures {
        assert!(verify_signature(&public_key, &message_hash, signature));
    }
    assert!(world.coordinator.failures.lock().unwrap().is_empty());
    assert_eq!(world.coordinator.completions.lock().unwrap().len(), 5);

    // (b) The transport only ever held ciphertext for point-to-point messages, and
    // each of them opens, for its recipient, to a plaintext the engine sent.
    let plaintexts = world.engine.p2p_plaintexts.lock().unwrap().clone();
    let log = world.transport.log.lock().unwrap().clone();
    let by_id: HashMap<&PartyId, &PartyNode> =
        world.nodes.iter().map(|n| (n.id(), n.as_ref())).collect();
    let mut p2p = 0;
    for envelope in &log {
        let Recipient::Party(to) = &envelope.recipient else {
            continue;
        };
        p2p += 1;
        for plaintext in plaintexts.iter().filter(|p| p.len() >= 16) {
            assert!(
                !envelope
                    .payload
                    .windows(plaintext.len())
                    .any(|w| w == plaintext.as_slice()),
                "a point-to-point plaintext appeared in transit"
            );
        }
        let (recipient, sender) = (by_id[to], by_id[&envelope.sender]);
        let opened = mpc_crypto::open(
            envelope,
            envelope.session_id,
            recipient.id(),
            recipient.identity(),
            &sender.identity().public(),
        )
        .unwrap();
        assert!(plaintexts.iter().any(|p| p == opened.payload.as_slice()));
    }
    assert!(p2p > 0 && plaintexts.iter().any(|p| p.len() >= 16));
    assert_eq!(p2p, plaintexts.len(), "every p2p message went out sealed");
}

// The stored copies. The same nodes over a Kafka-protocol broker, coordinated by the
// real coordinator over a file-backed event store: afterwards, the broker's copy of
// the envelopes and the coordinator's event log are read back independently of the
// run, and searched for every plaintext the engines sent.

/// How long the broker gets to answer one request of the test's own reader.
const BROKER_PATIENCE: Duration = Duration::from_secs(10);

/// A topic of this test's own on the test broker (`MPC_TEST_KAFKA_BROKERS`, default
/// `127.0.0.1:19092`), after checking that the broker answers. Without a broker the
/// test fails; it never skips.
fn kafka_config() -> KafkaConfig {
    let brokers =
        std::env::var("MPC_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into());
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
        topic: format!("mpc-party-test-{}", Uuid::new_v4()),
        partitions: 3,
        client_id: "mpc-party-tests".into(),
        ..KafkaConfig::new(brokers)
    }
}

/// Every record value the broker holds in `config.topic`, read by a consumer of the
/// test's own from the start of every partition until `expected` records arrived, then
/// for a little longer to catch any beyond them. Blocking.
fn stored_records(config: &KafkaConfig, expected: usize) -> Vec<Vec<u8>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", format!("mpc-party-tests-{}", Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("a consumer of the test broker");
    let metadata = consumer
        .fetch_metadata(Some(&config.topic), BROKER_PATIENCE)
        .expect("the topic's metadata");
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == config.topic)
        .expect("the topic exists");
    let mut assignment = TopicPartitionList::new();
    for partition in topic.partitions() {
        assignment
            .add_partition_offset(&config.topic, partition.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).expect("assignment");
    let mut records = Vec::new();
    let deadline = Instant::now() + 3 * BROKER_PATIENCE;
    let mut settle: Option<Instant> = None;
    while settle.is_none_or(|until| Instant::now() < until) {
        assert!(
            Instant::now() < deadline,
            "the broker served {} of the {expected} records published",
            records.len()
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("a record from the broker");
            records.push(message.payload().unwrap_or_default().to_vec());
        }
        if settle.is_none() && records.len() >= expected {
            settle = Some(Instant::now() + Duration::from_secs(1));
        }
    }
    records
}

/// `plaintext` as a stored copy could hold it: raw, in hex (either case), in base64
/// (standard or URL-safe, at each of the three alignments it could start at inside a
/// longer encoding) and as a JSON array of numbers (serde's default for bytes).
fn encodings(plaintext: &[u8]) -> Vec<Vec<u8>> {
    const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let hex = hex::encode(plaintext);
    let mut forms = vec![
        plaintext.to_vec(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
    ];
    for skip in 0..3 {
        let standard: Vec<u8> = plaintext[skip..]
            .chunks_exact(3)
            .flat_map(|c| {
                let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
                [18, 12, 6, 0].map(|shift| STANDARD[((n >> shift) & 63) as usize])
            })
            .collect();
        let url_safe = standard
            .iter()
            .map(|&c| match c {
                b'+' => b'-',
                b'/' => b'_',
                c => c,
            })
            .collect();
        forms.push(standard);
        forms.push(url_safe);
    }
    let numbers: Vec<String> = plaintext.iter().map(u8::to_string).collect();
    forms.push(numbers.join(",").into_bytes());
    forms
}

/// Whether `needle` occurs anywhere in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether `haystack` holds `plaintext` in any of its [`encodings`].
fn holds(haystack: &[u8], plaintext: &[u8]) -> bool {
    encodings(plaintext)
        .iter()
        .any(|form| contains(haystack, form))
}

/// Runs `created` to completion with the nodes at `parties`, each joining with its own
/// token, and waits for the coordinator to record the session completed.
async fn run_session(
    world: &World<LocalCoordinator>,
    created: &CreatedSession,
    parties: &[usize],
) -> Vec<PartyOutcome> {
    let session = created.session_id;
    let runs: Vec<_> = parties
        .iter()
        .map(|&i| {
            let node = world.nodes[i].clone();
            let token = created.join_tokens[node.id()].expose().to_owned();
            tokio::spawn(async move { node.participate(session, &token).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for run in runs {
        let outcome = tokio::time::timeout(Duration::from_secs(90), run)
            .await
            .expect("the run finishes in time")
            .unwrap()
            .expect("the run completes");
        outcomes.push(outcome);
    }
    let recorded = world
        .coordinator
        .0
        .wait_for(session, |s| s.status == SessionStatus::Completed)
        .await
        .unwrap();
    assert_eq!(recorded.status, SessionStatus::Completed);
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_brokers_and_the_coordinators_stored_copies_hold_no_plaintext_protocol_payload() {
    let config = kafka_config();
    let kafka = KafkaTransport::connect(config.clone())
        .await
        .expect("connect to the test broker");
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(
        SqliteStore::open(&dir.path().join("events.db"))
            .await
            .unwrap(),
    );
    let coordinator = Arc::new(Coordinator::new(store.clone(), Arc::new(SystemClock)));
    let world = world_over(
        Arc::new(LocalCoordinator(coordinator.clone())),
        Arc::new(kafka),
    );
    let ttl = Duration::from_secs(300);

    // A 2-of-3 keygen and one signing, through the coordinator and the broker.
    let threshold = Threshold::new(2, 3).unwrap();
    let keygen = coordinator
        .create_keygen(
            NewKeygen {
                policy: KeyPolicy::AnyRequest,
                threshold,
                participants: world.nodes.iter().map(|n| participant(n)).collect(),
                ttl,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    let outcomes = run_session(&world, &keygen, &[0, 1, 2]).await;
    let PartyOutcome::PublicKey(public_key) = outcomes[0] else {
        panic!(
            "a keygen session yields a public key, got {:?}",
            outcomes[0]
        );
    };
    assert!(
        outcomes
            .iter()
            .all(|o| *o == PartyOutcome::PublicKey(public_key))
    );

    let message = b"pay 1 BTC to bc1q-test".to_vec();
    let message_hash = MessageHash::from_bytes(Sha256::digest(&message).into());
    let signing = coordinator
        .create_signing(
            NewSigning {
                key_id: KeyId::of_keygen(keygen.session_id),
                signers: world.nodes[..2].iter().map(|n| n.id().clone()).collect(),
                payload: SigningPayload::Message(message.clone()),
                ttl,
            },
            CommandMeta::new(),
        )
        .await
        .unwrap();
    for outcome in run_session(&world, &signing, &[0, 1]).await {
        let PartyOutcome::Signature(signature) = outcome else {
            panic!("a signing session yields a signature, got {outcome:?}");
        };
        assert!(verify_signature(&public_key, &message_hash, &signature));
    }

    let long_enough = |log: &Mutex<Vec<Vec<u8>>>| -> Vec<Vec<u8>> {
        let log = log.lock().unwrap();
        log.iter().filter(|p| p.len() >= 16).cloned().collect()
    };
    let p2p = long_enough(&world.engine.p2p_plaintexts);
    let broadcasts = long_enough(&world.engine.broadcast_plaintexts);
    assert!(!p2p.is_empty() && !broadcasts.is_empty());
    let p2p_sent = world.engine.p2p_plaintexts.lock().unwrap().len();

    // (a) The broker's copy, read back raw from the start of the topic.
    let published = world.transport.log.lock().unwrap().clone();
    let expected = published.len();
    let records = tokio::task::spawn_blocking(move || stored_records(&config, expected))
        .await
        .unwrap();
    assert_eq!(
        records.len(),
        published.len(),
        "the broker holds exactly what was published"
    );
    let mut stored_p2p = 0;
    for record in &records {
        let envelope = Envelope::decode(record).expect("the broker holds envelopes");
        assert!(published.contains(&envelope));
        if !matches!(envelope.recipient, Recipient::Party(_)) {
            continue;
        }
        stored_p2p += 1;
        for plaintext in &p2p {
            assert!(
                !holds(record, plaintext),
                "the broker holds a point-to-point plaintext ({} bytes) in session {}",
                plaintext.len(),
                envelope.session_id
            );
        }
    }
    assert_eq!(stored_p2p, p2p_sent, "every p2p message is in the broker");
    // Broadcasts are signed plaintext by design: the same search finds every one.
    for plaintext in &broadcasts {
        assert!(records.iter().any(|r| contains(r, plaintext)));
    }

    // (b) The coordinator's event log, read back whole.
    let mut events = Vec::new();
    loop {
        let after = events.last().map_or(0, |e: &RecordedEvent| e.position);
        let batch = store.read_all(after, 256).await.unwrap();
        if batch.is_empty() {
            break;
        }
        events.extend(batch);
    }
    assert!(events.len() >= 2 * 2 + 3 * 2, "creations, joins, reports");
    for event in &events {
        for plaintext in p2p.iter().chain(&broadcasts) {
            assert!(
                !holds(&event.payload, plaintext),
                "event {} at position {} holds a protocol plaintext ({} bytes)",
                event.event_type,
                event.position,
                plaintext.len()
            );
        }
    }
    // What the coordinator does record (the message, hex-encoded in the session's
    // spec) is found by the same search.
    assert!(events.iter().any(|e| holds(&e.payload, &message)));
}
