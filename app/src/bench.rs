//! `mpc bench`: the benchmark harness behind `docs/performance.md`.
//!
//! One run on one machine measures, and prints with its ratio to its floor:
//!
//! - **engine floor**: keygen and signing for (2,3), (3,5), (4,7) with every party's
//!   [`Protocol`] state machine in this process, driven on one thread by
//!   [`drive`] (messages handed over in memory, FIFO): no transport, no store, no
//!   envelope crypto. The floor is therefore the *sum* of all parties' CPU time;
//! - **full stack, embedded defaults**: 2-of-3 keygen and signing from the
//!   coordinator's API call (`Coordinator::create_*`, in process, no HTTP) to the
//!   session's `Completed` event durably appended to a SQLite file (WAL,
//!   `synchronous=FULL`) and the recorded signature verified; parties are
//!   [`PartyNode`]s with file vaults exchanging sealed envelopes over the in-process
//!   transport;
//! - the **same on PostgreSQL + Kafka** when `--postgres-url` and `--kafka-brokers`
//!   are given (a fresh database and topic per run), else reported as skipped;
//! - **throughput**: signatures per second with K concurrent signing sessions on the
//!   embedded stack, against the engine's CPU-bound ceiling (one engine signing loop
//!   per core) measured in the same run;
//! - **bytes per signature**: envelope bytes published on the transport and event
//!   payload bytes appended to the session's stream, against the raw protocol payload
//!   bytes of an engine-floor 2-of-3 signing;
//! - **replay speed**: events per second rebuilding every read model from position 0
//!   (`mpc_projections::replay`) on SQLite, and on PostgreSQL when given.
//!
//! [`execute`] measures and returns the JSON report (the tests call it with tiny
//! [`Options`]); `mpc bench` (in `mpc-cli`) prints its table and writes it and its
//! [`chart`](crate::chart::chart).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mpc_actors::{CommandMeta, CoordinatorError, NewSigning, SigningPayload};
use mpc_events::{KeyId, PublicKey, stream};
use mpc_projections::{ModelComparison, ProjectionError, ReadModels};
use mpc_store::{EventStore, PostgresStore, SqliteStore, StoreError, StreamName};
use mpc_transport::{InProcessTransport, Transport};
use serde::Serialize;
use serde_json::Value;

use crate::adapters::{AdapterError, Machine, TempDatabase, kafka_transport};
use crate::engine_floor::{FloorError, engine_ceiling, engine_keygen, engine_sign};
use crate::stack::{Holders, SESSION_TTL, Stack, StackError};
use mpc_engine::testing::RunStats;

/// Why a benchmark run could not finish.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("the engine floor must include (2,3): every ratio is to it")]
    NoFloor,
    #[error("no keygen ran")]
    NoKeygen,
    #[error(transparent)]
    Floor(#[from] FloorError),
    #[error("a measurement task stopped")]
    Task(#[from] tokio::task::JoinError),
    #[error("cannot create a temporary directory")]
    TempDir(#[source] std::io::Error),
    #[error("cannot open the SQLite event store")]
    SqliteStore(#[source] StoreError),
    #[error("cannot connect to the PostgreSQL event store")]
    PostgresStore(#[source] StoreError),
    #[error("cannot connect to the PostgreSQL read models")]
    PostgresModels(#[source] ProjectionError),
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error(transparent)]
    Coordinator(#[from] CoordinatorError),
    #[error("a rebuilt read model differs from the live one: {0:?}")]
    ReplayDiffers(Vec<ModelComparison>),
}

const MESSAGE: &[u8] = b"mpc bench";

/// What to measure and how much.
#[derive(Debug, Clone)]
pub struct Options {
    /// Iterations of each engine-floor signing.
    pub engine_sign_iterations: usize,
    /// The engine-floor sizes (t, n), each with its keygen iterations; must include
    /// (2,3). DKLs23 keygen costs ~0.7 s CPU per pair of parties: (4,7) ~15 s.
    pub engine_keygen_iterations: Vec<((u8, u8), usize)>,
    /// Full-stack 2-of-3 keygens and signings (per stack).
    pub stack_keygen_iterations: usize,
    pub stack_sign_iterations: usize,
    /// Concurrent signing sessions of the throughput run.
    pub concurrency: usize,
    /// How long the throughput run and the ceiling run each last.
    pub throughput_duration: Duration,
    /// Events to have in the log before timing replay (sessions created and closed).
    pub replay_events: u64,
    /// PostgreSQL server URL (no database name); a fresh database is created per run.
    pub postgres_url: Option<String>,
    /// Kafka bootstrap brokers; a fresh topic is created per run.
    pub kafka_brokers: Option<String>,
    /// Measure only the engine floor (for profiling).
    pub engine_only: bool,
    /// Show progress bars (only when stdout is a terminal).
    pub progress: bool,
}

impl Options {
    /// `--quick`: a smoke run that finishes in well under a minute in release builds.
    pub fn quick() -> Self {
        Self {
            engine_sign_iterations: 10,
            engine_keygen_iterations: vec![((2, 3), 2), ((3, 5), 1), ((4, 7), 1)],
            stack_keygen_iterations: 2,
            stack_sign_iterations: 10,
            concurrency: 4,
            throughput_duration: Duration::from_secs(3),
            replay_events: 2_000,
            postgres_url: None,
            kafka_brokers: None,
            engine_only: false,
            progress: true,
        }
    }

    /// The default run: enough iterations for a stable p50 and a meaningful p99.
    pub fn full() -> Self {
        Self {
            engine_sign_iterations: 50,
            engine_keygen_iterations: vec![((2, 3), 10), ((3, 5), 3), ((4, 7), 2)],
            stack_keygen_iterations: 10,
            stack_sign_iterations: 50,
            concurrency: 8,
            throughput_duration: Duration::from_secs(15),
            replay_events: 20_000,
            ..Self::quick()
        }
    }
}

/// Measures everything `options` asks for; the report as JSON (see the module docs).
pub async fn execute(options: &Options) -> Result<Value, BenchError> {
    let progress = if options.progress {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    progress.enable_steady_tick(Duration::from_millis(100));
    let result = measure(options, &progress).await;
    progress.finish_and_clear();
    result
}

async fn measure(options: &Options, progress: &ProgressBar) -> Result<Value, BenchError> {
    let started = Instant::now();
    let mut report = BenchReport {
        machine: Machine::detect(),
        options: OptionsReport {
            engine_sign_iterations: options.engine_sign_iterations,
            engine_keygen_iterations: options
                .engine_keygen_iterations
                .iter()
                .map(|&((t, n), iterations)| SizeIterations { t, n, iterations })
                .collect(),
            stack_keygen_iterations: options.stack_keygen_iterations,
            stack_sign_iterations: options.stack_sign_iterations,
            concurrency: options.concurrency,
            throughput_duration_s: options.throughput_duration.as_secs_f64(),
            replay_events: options.replay_events,
        },
        engine_floor: Vec::new(),
        full_stack_embedded: None,
        bytes_per_signature: None,
        throughput: None,
        replay_sqlite: None,
        full_stack_postgres_kafka: None,
        bytes_per_signature_postgres_kafka: None,
        replay_postgres: None,
        elapsed_s: 0.0,
    };

    // a. Engine floor.
    let mut raw_sign_bytes = 0;
    let mut engine_sign_2of3 = None;
    let mut engine_keygen_2of3 = None;
    let mut shares_2of3 = Vec::new();
    if !options
        .engine_keygen_iterations
        .iter()
        .any(|(tn, _)| *tn == (2, 3))
    {
        return Err(BenchError::NoFloor);
    }
    for &((t, n), iterations) in &options.engine_keygen_iterations {
        let iterations = iterations.max(1);
        let mut keygen = Vec::new();
        let mut shares = Vec::new();
        for i in 0..iterations {
            progress.set_message(format!(
                "engine floor: keygen ({t},{n}) {}/{iterations}",
                i + 1
            ));
            let (elapsed, out) = tokio::task::block_in_place(|| timed(|| engine_keygen(t, n)));
            keygen.push(elapsed);
            shares = out?.outputs;
        }
        let mut sign = Vec::new();
        let mut stats = RunStats::default();
        for i in 0..options.engine_sign_iterations.max(1) {
            progress.set_message(format!(
                "engine floor: signing ({t},{n}) {}/{}",
                i + 1,
                options.engine_sign_iterations
            ));
            let (elapsed, out) = tokio::task::block_in_place(|| timed(|| engine_sign(&shares, t)));
            sign.push(elapsed);
            stats = out?;
        }
        if (t, n) == (2, 3) {
            raw_sign_bytes = stats.payload_bytes;
            engine_sign_2of3 = Some(Summary::of(&sign));
            engine_keygen_2of3 = Some(Summary::of(&keygen));
            shares_2of3 = std::mem::take(&mut shares);
        }
        report.engine_floor.push(FloorRow {
            t,
            n,
            keygen_ms: Summary::of(&keygen),
            sign_ms: Summary::of(&sign),
            sign_messages: stats.messages,
            sign_payload_bytes: stats.payload_bytes,
        });
    }
    let (Some(floor_sign), Some(floor_keygen)) = (engine_sign_2of3, engine_keygen_2of3) else {
        return Err(BenchError::NoFloor);
    };
    if options.engine_only {
        report.elapsed_s = started.elapsed().as_secs_f64();
        return Ok(report.to_json());
    }

    // b, e. Full stack on embedded defaults, counting bytes.
    let dir = tempfile::tempdir().map_err(BenchError::TempDir)?;
    let sqlite = SqliteStore::open(&dir.path().join("events.db"))
        .await
        .map_err(BenchError::SqliteStore)?;
    let models = ReadModels::from(sqlite.pool().clone());
    let store: Arc<dyn EventStore> = Arc::new(sqlite);
    let embedded = BenchStack::new(
        "embedded",
        Stack::new(
            dir.path(),
            store,
            models,
            Arc::new(InProcessTransport::new()),
        ),
    )
    .await?;
    let stack = embedded
        .latencies(options, progress, floor_keygen, floor_sign)
        .await?;
    report.bytes_per_signature = Some(bytes_report(&stack, raw_sign_bytes));
    report.full_stack_embedded = Some(stack.report.clone());

    // d. Throughput vs the engine's CPU-bound ceiling, in the same run.
    progress.set_message("throughput: engine ceiling");
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let ceiling = engine_ceiling(shares_2of3, threads, options.throughput_duration).await?;
    progress.set_message(format!(
        "throughput: {} concurrent signing sessions (embedded stack)",
        options.concurrency
    ));
    let sustained = embedded
        .throughput(
            stack.key,
            options.concurrency,
            options.throughput_duration,
            progress,
        )
        .await?;
    report.throughput = Some(Throughput {
        concurrent_sessions: options.concurrency,
        duration_s: options.throughput_duration.as_secs_f64(),
        engine_ceiling_threads: threads,
        engine_ceiling_per_s: ceiling,
        full_stack_per_s: sustained,
        ratio_to_ceiling: sustained / ceiling,
        target: ">= 0.60 of the ceiling",
        met: sustained / ceiling >= 0.6,
    });

    // f. Replay speed on SQLite.
    report.replay_sqlite = Some(replay_speed(&embedded, Some(stack.key), options, progress).await?);
    drop(embedded);

    // c. PostgreSQL + Kafka.
    report.full_stack_postgres_kafka = Some(Section::Skipped {
        skipped: "no --postgres-url/--kafka-brokers (MPC_BENCH_POSTGRES_URL, MPC_BENCH_KAFKA_BROKERS) given",
    });
    report.replay_postgres = Some(Section::Skipped {
        skipped: "no --postgres-url (MPC_BENCH_POSTGRES_URL) given",
    });
    if let Some(server) = &options.postgres_url {
        let database = TempDatabase::create(server).await?;
        let result = postgres_runs(
            options,
            progress,
            &database.url,
            (floor_keygen, floor_sign, raw_sign_bytes),
            dir.path(),
            &mut report,
        )
        .await;
        database.drop_it().await;
        result?;
    }
    report.elapsed_s = started.elapsed().as_secs_f64();
    Ok(report.to_json())
}

/// The PostgreSQL measurements: replay always, the full stack when Kafka is given too.
async fn postgres_runs(
    options: &Options,
    progress: &ProgressBar,
    url: &str,
    (floor_keygen, floor_sign, raw_sign_bytes): (Summary, Summary, u64),
    dir: &Path,
    report: &mut BenchReport,
) -> Result<(), BenchError> {
    progress.set_message("connecting to PostgreSQL");
    let store: Arc<dyn EventStore> = Arc::new(
        PostgresStore::connect(url)
            .await
            .map_err(BenchError::PostgresStore)?,
    );
    let models = ReadModels::connect(url)
        .await
        .map_err(BenchError::PostgresModels)?;
    let transport: Arc<dyn Transport> = match &options.kafka_brokers {
        Some(brokers) => kafka_transport(brokers, "mpc.bench").await?,
        None => Arc::new(InProcessTransport::new()),
    };
    let stack = BenchStack::new(
        "postgres",
        Stack::new(&dir.join("pg"), store, models, transport),
    )
    .await?;
    let mut key = None;
    if options.kafka_brokers.is_some() {
        let measured = stack
            .latencies(options, progress, floor_keygen, floor_sign)
            .await?;
        key = Some(measured.key);
        report.bytes_per_signature_postgres_kafka = Some(bytes_report(&measured, raw_sign_bytes));
        report.full_stack_postgres_kafka = Some(Section::Measured(measured.report));
    } else {
        report.full_stack_postgres_kafka = Some(Section::Skipped {
            skipped: "no --kafka-brokers (MPC_BENCH_KAFKA_BROKERS) given",
        });
    }
    report.replay_postgres = Some(Section::Measured(
        replay_speed(&stack, key, options, progress).await?,
    ));
    Ok(())
}

/// Everything one run measured; its JSON form is what [`execute`] returns.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub machine: Machine,
    pub options: OptionsReport,
    pub engine_floor: Vec<FloorRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_stack_embedded: Option<StackReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_signature: Option<BytesReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Throughput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_sqlite: Option<ReplayReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_stack_postgres_kafka: Option<Section<StackReport>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_per_signature_postgres_kafka: Option<BytesReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_postgres: Option<Section<ReplayReport>>,
    pub elapsed_s: f64,
}

impl BenchReport {
    fn to_json(&self) -> Value {
        serde_json::to_value(self)
            .unwrap_or_else(|e| unreachable!("a bench report is plain data: {e}"))
    }
}

/// A part that was measured, or why not.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Section<T> {
    Measured(T),
    Skipped { skipped: &'static str },
}

/// What the run was asked to do.
#[derive(Debug, Clone, Serialize)]
pub struct OptionsReport {
    pub engine_sign_iterations: usize,
    pub engine_keygen_iterations: Vec<SizeIterations>,
    pub stack_keygen_iterations: usize,
    pub stack_sign_iterations: usize,
    pub concurrency: usize,
    pub throughput_duration_s: f64,
    pub replay_events: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SizeIterations {
    pub t: u8,
    pub n: u8,
    pub iterations: usize,
}

/// One (t, n) of the engine floor.
#[derive(Debug, Clone, Serialize)]
pub struct FloorRow {
    pub t: u8,
    pub n: u8,
    pub keygen_ms: Summary,
    pub sign_ms: Summary,
    pub sign_messages: u64,
    pub sign_payload_bytes: u64,
}

/// Full-stack 2-of-3 latencies against the engine floor.
#[derive(Debug, Clone, Serialize)]
pub struct StackReport {
    pub keygen_2of3_ms: Summary,
    pub keygen_p50_ratio_to_engine_floor: f64,
    pub keygen_target: &'static str,
    pub keygen_met: bool,
    pub sign_2of3_ms: Summary,
    pub sign_p50_ratio_to_engine_floor: f64,
    pub sign_target_ms: f64,
    pub sign_target: &'static str,
    pub sign_met: bool,
}

/// Signatures per second against the engine's ceiling.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub concurrent_sessions: usize,
    pub duration_s: f64,
    pub engine_ceiling_threads: usize,
    pub engine_ceiling_per_s: f64,
    pub full_stack_per_s: f64,
    pub ratio_to_ceiling: f64,
    pub target: &'static str,
    pub met: bool,
}

/// Bytes moved and stored per signature against the raw protocol bytes.
#[derive(Debug, Clone, Serialize)]
pub struct BytesReport {
    pub stack: &'static str,
    pub raw_protocol_payload_bytes: f64,
    pub wire_envelope_bytes: f64,
    pub envelopes: f64,
    pub event_log_payload_bytes: f64,
    pub events: f64,
    pub wire_overhead_ratio: f64,
    pub wire_and_log_overhead_ratio: f64,
    pub target: &'static str,
    pub met: bool,
}

/// Rebuilding every read model from position 0.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    pub events: u64,
    pub models: usize,
    pub seconds: f64,
    pub events_per_s: f64,
    pub ratio_to_target: f64,
    pub target: &'static str,
    pub met: bool,
}

/// Latencies of one stack and the bytes of its signings.
struct StackMeasured {
    report: StackReport,
    wire_bytes_per_signature: f64,
    envelopes_per_signature: f64,
    event_bytes_per_signature: f64,
    events_per_signature: f64,
    stack: &'static str,
    /// The last key generated, to sign with later.
    key: (KeyId, PublicKey),
}

/// The 2-of-3 holders of one stack, named for the report.
struct BenchStack {
    name: &'static str,
    holders: Holders,
}

impl BenchStack {
    async fn new(name: &'static str, stack: Stack) -> Result<Self, StackError> {
        Ok(Self {
            name,
            holders: Holders::new(stack).await?,
        })
    }

    /// Keygen and signing latencies, with the bytes the signings moved and stored.
    async fn latencies(
        &self,
        options: &Options,
        progress: &ProgressBar,
        floor_keygen: Summary,
        floor_sign: Summary,
    ) -> Result<StackMeasured, BenchError> {
        let mut keygen = Vec::new();
        let mut key = None;
        let iterations = options.stack_keygen_iterations.max(1);
        for i in 0..iterations {
            progress.set_message(format!(
                "full stack ({}): 2-of-3 keygen {}/{iterations}",
                self.name,
                i + 1
            ));
            let started = Instant::now();
            key = Some(self.holders.keygen().await?);
            keygen.push(started.elapsed());
        }
        let (key_id, public_key) = key.ok_or(BenchError::NoKeygen)?;
        // Warm-up: the first signing of a key loads shares and actors.
        self.holders.sign((key_id, public_key), [0, 1]).await?;
        let transport = &self.holders.stack.transport;
        let (bytes_before, envelopes_before) = (transport.bytes(), transport.envelopes());
        let mut sign = Vec::new();
        let mut sessions = Vec::new();
        let iterations = options.stack_sign_iterations.max(1);
        for i in 0..iterations {
            progress.set_message(format!(
                "full stack ({}): 2-of-3 signing {}/{iterations}",
                self.name,
                i + 1
            ));
            let signers = [[0, 1], [1, 2], [0, 2]][i % 3];
            let started = Instant::now();
            let (session_id, _) = self.holders.sign((key_id, public_key), signers).await?;
            sign.push(started.elapsed());
            sessions.push(session_id);
        }
        let wire = transport.bytes() - bytes_before;
        let envelopes = transport.envelopes() - envelopes_before;
        let (mut event_bytes, mut events) = (0u64, 0u64);
        for session in &sessions {
            for event in self
                .holders
                .stack
                .store
                .read_stream(&StreamName::new(stream::SESSION, session)?, 1)
                .await?
            {
                event_bytes += event.payload.len() as u64;
                events += 1;
            }
        }
        let count = sessions.len() as f64;
        let keygen = Summary::of(&keygen);
        let sign = Summary::of(&sign);
        let target = 1.5 * floor_sign.p50 + 10.0;
        Ok(StackMeasured {
            stack: self.name,
            key: (key_id, public_key),
            wire_bytes_per_signature: wire as f64 / count,
            envelopes_per_signature: envelopes as f64 / count,
            event_bytes_per_signature: event_bytes as f64 / count,
            events_per_signature: events as f64 / count,
            report: StackReport {
                keygen_2of3_ms: keygen,
                keygen_p50_ratio_to_engine_floor: keygen.p50 / floor_keygen.p50,
                keygen_target: "p99 <= 250 ms",
                keygen_met: keygen.p99 <= 250.0,
                sign_2of3_ms: sign,
                sign_p50_ratio_to_engine_floor: sign.p50 / floor_sign.p50,
                sign_target_ms: target,
                sign_target: "p50 <= 1.5 x engine floor p50 + 10 ms",
                sign_met: sign.p50 <= target,
            },
        })
    }

    /// Signatures per second with `concurrency` signing sessions always in flight.
    async fn throughput(
        &self,
        (key_id, public_key): (KeyId, PublicKey),
        concurrency: usize,
        duration: Duration,
        progress: &ProgressBar,
    ) -> Result<f64, StackError> {
        progress.set_message(format!("throughput ({}): signing", self.name));
        let stack = self.holders.clone();
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + duration;
        let started = Instant::now();
        let workers = (0..concurrency).map(|w| {
            let (stack, done) = (stack.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = w;
                while Instant::now() < deadline {
                    let signers = [[0, 1], [1, 2], [0, 2]][i % 3];
                    stack.sign((key_id, public_key), signers).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                Ok::<_, StackError>(())
            })
        });
        for worker in try_join_all(workers).await? {
            worker?;
        }
        Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
    }
}

fn bytes_report(measured: &StackMeasured, raw: u64) -> BytesReport {
    let raw = raw as f64;
    let wire = measured.wire_bytes_per_signature;
    let log = measured.event_bytes_per_signature;
    BytesReport {
        stack: measured.stack,
        raw_protocol_payload_bytes: raw,
        wire_envelope_bytes: wire,
        envelopes: measured.envelopes_per_signature,
        event_log_payload_bytes: log,
        events: measured.events_per_signature,
        wire_overhead_ratio: (wire - raw) / raw,
        wire_and_log_overhead_ratio: (wire + log - raw) / raw,
        target: "transport + event-log overhead <= 0.15 above raw protocol bytes",
        met: (wire + log - raw) / raw <= 0.15,
    }
}

// ---------------------------------------------------------------------------------
// Replay.

/// Fills the log to `options.replay_events` with cheap sessions (a signing session
/// created, then closed, without running the protocol), catches every read model up,
/// then times `mpc_projections::replay`: every model rebuilt from position 0 in a
/// scratch database and compared with the live one.
async fn replay_speed(
    stack: &BenchStack,
    key: Option<(KeyId, PublicKey)>,
    options: &Options,
    progress: &ProgressBar,
) -> Result<ReplayReport, BenchError> {
    let (key_id, _) = match key {
        Some(key) => key,
        None => stack.holders.keygen().await?,
    };
    let filler = stack.holders.clone();
    loop {
        let head = filler.stack.store.head().await?;
        if head >= options.replay_events {
            break;
        }
        progress.set_message(format!(
            "replay ({}): filling the log {head}/{} events",
            stack.name, options.replay_events
        ));
        let batch = (0..16).map(|_| {
            let filler = filler.clone();
            tokio::spawn(async move {
                let coordinator = &filler.stack.services.coordinator;
                let created = coordinator
                    .create_signing(
                        NewSigning {
                            key_id,
                            signers: filler.nodes[..2].iter().map(|n| n.id().clone()).collect(),
                            payload: SigningPayload::Message(MESSAGE.to_vec()),
                            ttl: SESSION_TTL,
                        },
                        CommandMeta::new(),
                    )
                    .await?;
                coordinator
                    .close(
                        created.session_id,
                        "bench filler".into(),
                        CommandMeta::new(),
                    )
                    .await?;
                Ok::<_, CoordinatorError>(())
            })
        });
        for done in try_join_all(batch).await? {
            done?;
        }
    }
    progress.set_message(format!("replay ({}): catching read models up", stack.name));
    let (store, models) = (&stack.holders.stack.store, &stack.holders.stack.models);
    stack.holders.stack.catch_up_read_models().await?;
    let events = store.head().await?;
    progress.set_message(format!(
        "replay ({}): rebuilding every read model from {events} events",
        stack.name
    ));
    let started = Instant::now();
    let compared = mpc_projections::replay(store.clone(), models).await?;
    let elapsed = started.elapsed().as_secs_f64();
    if !compared.iter().all(|c| c.matches()) {
        return Err(BenchError::ReplayDiffers(compared));
    }
    let per_s = events as f64 / elapsed;
    Ok(ReplayReport {
        events,
        models: compared.len(),
        seconds: elapsed,
        events_per_s: per_s,
        ratio_to_target: per_s / 100_000.0,
        target: ">= 100000 events/s (PostgreSQL)",
        met: per_s >= 100_000.0,
    })
}

// ---------------------------------------------------------------------------------
// Statistics and output.

/// Latency statistics in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    fn of(samples: &[Duration]) -> Self {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            if ms.is_empty() {
                return 0.0;
            }
            // Nearest rank.
            let rank = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len());
            ms[rank - 1]
        };
        Self {
            n: ms.len(),
            p50: at(0.5),
            p99: at(0.99),
            min: ms.first().copied().unwrap_or(0.0),
            max: ms.last().copied().unwrap_or(0.0),
        }
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let started = Instant::now();
    let out = f();
    (started.elapsed(), out)
}
