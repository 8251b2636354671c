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
//! [`run`] prints a table and writes the JSON report and an SVG chart; [`execute`] is
//! the library entry the tests call with tiny [`Options`].

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::future::try_join_all;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mpc_actors::{CommandMeta, NewSigning, SigningPayload};
use mpc_engine::{
    Dkls23Engine, KeyShare, KeygenParams, Outgoing, PartyIndex, Protocol, SignParams, Step,
    ThresholdEngine, To, verify_signature,
};
use mpc_events::{KeyId, MessageHash, PublicKey, SessionId, Signature};
use mpc_projections::{
    AccountsProjection, AuditLogProjection, ProjectionRunner, ReadModels, SessionStatusProjection,
    WorkflowsProjection,
};
use mpc_store::{EventStore, PostgresStore, SqliteStore, StreamName};
use mpc_transport::{InProcessTransport, Transport};
use serde_json::{Value, json};

use crate::stack::{SESSION_TTL, Stack, TempDatabase, kafka_transport, machine};

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

/// `mpc bench` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Smoke run: few iterations, finishes in under a minute (release build).
    #[arg(long)]
    pub quick: bool,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the SVG chart here (default: the JSON path with `.svg`, else none).
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// PostgreSQL server URL without a database name (e.g.
    /// `postgres://postgres@127.0.0.1:5432`); the user must be allowed to create
    /// databases. Without it (and `--kafka-brokers`) the PostgreSQL + Kafka stack is
    /// skipped.
    #[arg(long, env = "MPC_BENCH_POSTGRES_URL")]
    pub postgres_url: Option<String>,
    /// Kafka bootstrap brokers (`host:port,…`) for the PostgreSQL + Kafka stack.
    #[arg(long, env = "MPC_BENCH_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Measure only this part (`engine`: one 2-of-3 engine-floor keygen, then the
    /// engine-floor signings; for profiling the signing hot path).
    #[arg(long, value_parser = ["engine"])]
    pub only: Option<String>,
}

/// Runs `mpc bench`: measures, prints the table, writes JSON and SVG.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mut options = if args.quick {
        Options::quick()
    } else {
        Options::full()
    };
    options.postgres_url = args.postgres_url;
    options.kafka_brokers = args.kafka_brokers;
    if args.only.as_deref() == Some("engine") {
        // For profiling: one 2-of-3 key, then the signings.
        options.engine_only = true;
        options.engine_keygen_iterations = vec![((2, 3), 1)];
    }
    options.progress = std::io::stdout().is_terminal();
    let mut report = execute(&options).await?;
    report["mode"] = json!(if args.quick { "quick" } else { "full" });
    print!("{}", table(&report));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("JSON report: {}", path.display());
    }
    let svg = args
        .svg
        .or_else(|| args.json.as_ref().map(|p| p.with_extension("svg")));
    if let Some(path) = svg {
        std::fs::write(&path, chart(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("SVG chart: {}", path.display());
    }
    Ok(())
}

/// Measures everything `options` asks for; the report as JSON (see the module docs).
pub async fn execute(options: &Options) -> anyhow::Result<Value> {
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

async fn measure(options: &Options, progress: &ProgressBar) -> anyhow::Result<Value> {
    let started = Instant::now();
    let mut report = json!({
        "machine": machine(),
        "options": {
            "engine_sign_iterations": options.engine_sign_iterations,
            "engine_keygen_iterations": options.engine_keygen_iterations.iter()
                .map(|((t, n), i)| json!({"t": t, "n": n, "iterations": i})).collect::<Vec<_>>(),
            "stack_keygen_iterations": options.stack_keygen_iterations,
            "stack_sign_iterations": options.stack_sign_iterations,
            "concurrency": options.concurrency,
            "throughput_duration_s": options.throughput_duration.as_secs_f64(),
            "replay_events": options.replay_events,
        },
    });

    // a. Engine floor.
    let mut engine = Vec::new();
    let mut raw_sign_bytes = 0;
    let mut engine_sign_2of3 = None;
    let mut engine_keygen_2of3 = None;
    let mut shares_2of3 = Vec::new();
    ensure!(
        options
            .engine_keygen_iterations
            .iter()
            .any(|(tn, _)| *tn == (2, 3)),
        "the engine floor must include (2,3): every ratio is to it"
    );
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
        engine.push(json!({
            "t": t, "n": n,
            "keygen_ms": Summary::of(&keygen).to_json(),
            "sign_ms": Summary::of(&sign).to_json(),
            "sign_messages": stats.messages,
            "sign_payload_bytes": stats.payload_bytes,
        }));
    }
    report["engine_floor"] = json!(engine);
    let floor_sign = engine_sign_2of3.context("no 2-of-3 engine signing measured")?;
    let floor_keygen = engine_keygen_2of3.context("no 2-of-3 engine keygen measured")?;
    if options.engine_only {
        report["elapsed_s"] = json!(started.elapsed().as_secs_f64());
        return Ok(report);
    }

    // b, e. Full stack on embedded defaults, counting bytes.
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let sqlite = SqliteStore::open(&dir.path().join("events.db"))
        .await
        .context("cannot open the SQLite event store")?;
    let models = ReadModels::from(sqlite.pool().clone());
    let store: Arc<dyn EventStore> = Arc::new(sqlite);
    let embedded = Stack::new(
        "embedded",
        dir.path(),
        store.clone(),
        Arc::new(InProcessTransport::new()),
    )
    .await?;
    let stack = embedded
        .latencies(options, progress, floor_keygen, floor_sign)
        .await?;
    report["bytes_per_signature"] = bytes_report(&stack, raw_sign_bytes);
    report["full_stack_embedded"] = stack.json.clone();

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
    report["throughput"] = json!({
        "concurrent_sessions": options.concurrency,
        "duration_s": options.throughput_duration.as_secs_f64(),
        "engine_ceiling_threads": threads,
        "engine_ceiling_per_s": ceiling,
        "full_stack_per_s": sustained,
        "ratio_to_ceiling": sustained / ceiling,
        "target": ">= 0.60 of the ceiling",
        "met": sustained / ceiling >= 0.6,
    });

    // f. Replay speed on SQLite.
    report["replay_sqlite"] =
        replay_speed(&embedded, Some(stack.key), &models, options, progress).await?;
    drop(embedded);

    // c. PostgreSQL + Kafka.
    report["full_stack_postgres_kafka"] = json!({"skipped": "no --postgres-url/--kafka-brokers (MPC_BENCH_POSTGRES_URL, MPC_BENCH_KAFKA_BROKERS) given"});
    report["replay_postgres"] =
        json!({"skipped": "no --postgres-url (MPC_BENCH_POSTGRES_URL) given"});
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
    report["elapsed_s"] = json!(started.elapsed().as_secs_f64());
    Ok(report)
}

/// The PostgreSQL measurements: replay always, the full stack when Kafka is given too.
async fn postgres_runs(
    options: &Options,
    progress: &ProgressBar,
    url: &str,
    (floor_keygen, floor_sign, raw_sign_bytes): (Summary, Summary, u64),
    dir: &Path,
    report: &mut Value,
) -> anyhow::Result<()> {
    progress.set_message("connecting to PostgreSQL");
    let store: Arc<dyn EventStore> = Arc::new(
        PostgresStore::connect(url)
            .await
            .context("cannot connect to the PostgreSQL event store")?,
    );
    let models = ReadModels::connect(url)
        .await
        .context("cannot connect to the PostgreSQL read models")?;
    let transport: Arc<dyn Transport> = match &options.kafka_brokers {
        Some(brokers) => kafka_transport(brokers, "mpc.bench").await?,
        None => Arc::new(InProcessTransport::new()),
    };
    let stack = Stack::new("postgres", &dir.join("pg"), store, transport).await?;
    let mut key = None;
    if options.kafka_brokers.is_some() {
        let measured = stack
            .latencies(options, progress, floor_keygen, floor_sign)
            .await?;
        key = Some(measured.key);
        report["bytes_per_signature_postgres_kafka"] = bytes_report(&measured, raw_sign_bytes);
        report["full_stack_postgres_kafka"] = measured.json;
    } else {
        report["full_stack_postgres_kafka"] =
            json!({"skipped": "no --kafka-brokers (MPC_BENCH_KAFKA_BROKERS) given"});
    }
    report["replay_postgres"] = replay_speed(&stack, key, &models, options, progress).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// Engine floor: an in-memory driver.

/// What one in-memory run produced.
#[derive(Default)]
struct RunStats {
    messages: u64,
    /// Sum of the `Outgoing` payload sizes (each message counted once, broadcasts too).
    payload_bytes: u64,
}

struct Run<O> {
    outputs: Vec<O>,
    #[allow(dead_code)]
    stats: RunStats,
}

/// One party of an in-memory run: its index, its machine, its output once done.
type Party<O> = (PartyIndex, Box<dyn Protocol<Output = O>>, Option<O>);

/// Runs every party's machine to completion on this thread, delivering messages FIFO.
fn drive<O>(machines: Vec<(PartyIndex, Box<dyn Protocol<Output = O>>)>) -> anyhow::Result<Run<O>> {
    let members: Vec<PartyIndex> = machines.iter().map(|(i, _)| *i).collect();
    let mut machines: Vec<Party<O>> = machines.into_iter().map(|(i, m)| (i, m, None)).collect();
    let mut queue: VecDeque<(PartyIndex, mpc_engine::Incoming)> = VecDeque::new();
    let mut stats = RunStats::default();
    let mut route = |from: PartyIndex,
                     out: Vec<Outgoing>,
                     queue: &mut VecDeque<(PartyIndex, mpc_engine::Incoming)>| {
        for message in out {
            stats.messages += 1;
            stats.payload_bytes += message.payload.len() as u64;
            let (recipients, broadcast) = match message.to {
                To::All => (
                    members.iter().copied().filter(|m| *m != from).collect(),
                    true,
                ),
                To::One(to) => (vec![to], false),
            };
            for to in recipients {
                queue.push_back((
                    to,
                    mpc_engine::Incoming {
                        round: message.round,
                        from,
                        broadcast,
                        payload: message.payload.clone(),
                    },
                ));
            }
        }
    };
    for (me, machine, _) in &mut machines {
        let out = machine.start()?;
        route(*me, out, &mut queue);
    }
    while let Some((to, message)) = queue.pop_front() {
        let Some((_, machine, output)) = machines.iter_mut().find(|(i, _, _)| *i == to) else {
            bail!("message to {to}, not in the run");
        };
        if output.is_some() {
            continue;
        }
        match machine.handle(message)? {
            Step::Continue(out) => route(to, out, &mut queue),
            Step::Done {
                output: o,
                outgoing,
            } => {
                route(to, outgoing, &mut queue);
                *output = Some(o);
            }
        }
    }
    let outputs = machines
        .into_iter()
        .map(|(i, _, o)| o.with_context(|| format!("party {i} stalled")))
        .collect::<anyhow::Result<Vec<O>>>()?;
    Ok(Run { outputs, stats })
}

fn index(i: u8) -> PartyIndex {
    PartyIndex::new(i).unwrap_or_else(|_| unreachable!("bench indices are 1..=7"))
}

fn engine_keygen(t: u8, n: u8) -> anyhow::Result<Run<KeyShare>> {
    let execution_id: [u8; 32] = rand::random();
    let machines = (1..=n)
        .map(|i| {
            let params = KeygenParams {
                execution_id,
                threshold: t,
                parties: n,
                me: index(i),
            };
            Ok((index(i), Dkls23Engine.keygen(params)?))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    drive(machines)
}

/// Signs a random hash with the first `t` shares; checks the signature. Never
/// inlined, so a profiler can collect just this (`--toggle-collect=*engine_sign*`).
#[inline(never)]
fn engine_sign(shares: &[KeyShare], t: u8) -> anyhow::Result<RunStats> {
    let hash = MessageHash::from_bytes(rand::random());
    let signers: Vec<PartyIndex> = shares.iter().take(t.into()).map(|s| s.index).collect();
    let params = SignParams {
        execution_id: rand::random(),
        signers: signers.clone(),
        message_hash: hash,
    };
    let machines = shares
        .iter()
        .take(t.into())
        .map(|share| Ok((share.index, Dkls23Engine.sign(share, params.clone())?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let run = drive(machines)?;
    let public_key = shares.first().context("no shares")?.public_key;
    ensure!(
        run.outputs
            .iter()
            .all(|s| verify_signature(&public_key, &hash, s)),
        "engine signature does not verify"
    );
    Ok(run.stats)
}

/// Signatures per second with `threads` OS threads each signing back to back.
async fn engine_ceiling(
    shares: Vec<KeyShare>,
    threads: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    let shares = Arc::new(shares);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (shares, stop, done) = (shares.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || -> anyhow::Result<()> {
                while !stop.load(Ordering::Relaxed) {
                    engine_sign(&shares, 2)?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("ceiling thread panicked"))??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Latencies of one stack and the bytes of its signings.
struct StackMeasured {
    json: Value,
    wire_bytes_per_signature: f64,
    envelopes_per_signature: f64,
    event_bytes_per_signature: f64,
    events_per_signature: f64,
    stack: &'static str,
    /// The last key generated, to sign with later.
    key: (KeyId, PublicKey),
}

impl Stack {
    /// API request → two signers sign → `Completed` recorded → signature verified.
    async fn sign(
        &self,
        key_id: KeyId,
        public_key: PublicKey,
        signers: [usize; 2],
    ) -> anyhow::Result<(SessionId, Signature)> {
        self.shared().sign(key_id, public_key, signers).await
    }

    /// Keygen and signing latencies, with the bytes the signings moved and stored.
    async fn latencies(
        &self,
        options: &Options,
        progress: &ProgressBar,
        floor_keygen: Summary,
        floor_sign: Summary,
    ) -> anyhow::Result<StackMeasured> {
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
            key = Some(self.keygen().await?);
            keygen.push(started.elapsed());
        }
        let (key_id, public_key) = key.context("no keygen ran")?;
        // Warm-up: the first signing of a key loads shares and actors.
        self.sign(key_id, public_key, [0, 1]).await?;
        let (bytes_before, envelopes_before) = (
            self.transport.bytes.load(Ordering::Relaxed),
            self.transport.envelopes.load(Ordering::Relaxed),
        );
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
            let (session_id, _) = self.sign(key_id, public_key, signers).await?;
            sign.push(started.elapsed());
            sessions.push(session_id);
        }
        let wire = self.transport.bytes.load(Ordering::Relaxed) - bytes_before;
        let envelopes = self.transport.envelopes.load(Ordering::Relaxed) - envelopes_before;
        let (mut event_bytes, mut events) = (0u64, 0u64);
        for session in &sessions {
            for event in self
                .store
                .read_stream(&StreamName::new("session", session)?, 1)
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
            json: json!({
                "keygen_2of3_ms": keygen.to_json(),
                "keygen_p50_ratio_to_engine_floor": keygen.p50 / floor_keygen.p50,
                "keygen_target": "p99 <= 250 ms",
                "keygen_met": keygen.p99 <= 250.0,
                "sign_2of3_ms": sign.to_json(),
                "sign_p50_ratio_to_engine_floor": sign.p50 / floor_sign.p50,
                "sign_target_ms": target,
                "sign_target": "p50 <= 1.5 x engine floor p50 + 10 ms",
                "sign_met": sign.p50 <= target,
            }),
        })
    }

    /// Signatures per second with `concurrency` signing sessions always in flight.
    async fn throughput(
        &self,
        (key_id, public_key): (KeyId, PublicKey),
        concurrency: usize,
        duration: Duration,
        progress: &ProgressBar,
    ) -> anyhow::Result<f64> {
        progress.set_message(format!("throughput ({}): signing", self.name));
        let stack = self.shared();
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + duration;
        let started = Instant::now();
        let workers = (0..concurrency).map(|w| {
            let (stack, done) = (stack.clone(), done.clone());
            tokio::spawn(async move {
                let mut i = w;
                while Instant::now() < deadline {
                    let signers = [[0, 1], [1, 2], [0, 2]][i % 3];
                    stack.sign(key_id, public_key, signers).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                anyhow::Ok(())
            })
        });
        for worker in try_join_all(workers).await? {
            worker?;
        }
        Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
    }
}

fn bytes_report(measured: &StackMeasured, raw: u64) -> Value {
    let raw = raw as f64;
    let wire = measured.wire_bytes_per_signature;
    let log = measured.event_bytes_per_signature;
    json!({
        "stack": measured.stack,
        "raw_protocol_payload_bytes": raw,
        "wire_envelope_bytes": wire,
        "envelopes": measured.envelopes_per_signature,
        "event_log_payload_bytes": log,
        "events": measured.events_per_signature,
        "wire_overhead_ratio": (wire - raw) / raw,
        "wire_and_log_overhead_ratio": (wire + log - raw) / raw,
        "target": "transport + event-log overhead <= 0.15 above raw protocol bytes",
        "met": (wire + log - raw) / raw <= 0.15,
    })
}

// ---------------------------------------------------------------------------------
// Replay.

/// Fills the log to `options.replay_events` with cheap sessions (a signing session
/// created, then closed, without running the protocol), catches every read model up,
/// then times `mpc_projections::replay`: every model rebuilt from position 0 in a
/// scratch database and compared with the live one.
async fn replay_speed(
    stack: &Stack,
    key: Option<(KeyId, PublicKey)>,
    models: &ReadModels,
    options: &Options,
    progress: &ProgressBar,
) -> anyhow::Result<Value> {
    let (key_id, _) = match key {
        Some(key) => key,
        None => stack.keygen().await?,
    };
    let filler = stack.shared();
    loop {
        let head = stack.store.head().await?;
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
                let created = filler
                    .coordinator
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
                filler
                    .coordinator
                    .close(
                        created.session_id,
                        "bench filler".into(),
                        CommandMeta::new(),
                    )
                    .await?;
                anyhow::Ok(())
            })
        });
        for done in try_join_all(batch).await? {
            done?;
        }
    }
    progress.set_message(format!("replay ({}): catching read models up", stack.name));
    let store = stack.store.clone();
    ProjectionRunner::new(
        store.clone(),
        models.clone(),
        SessionStatusProjection::new(models.clone()),
    )
    .await?
    .catch_up()
    .await?;
    ProjectionRunner::new(
        store.clone(),
        models.clone(),
        AuditLogProjection::new(models.clone()),
    )
    .await?
    .catch_up()
    .await?;
    ProjectionRunner::new(
        store.clone(),
        models.clone(),
        AccountsProjection::new(models.clone()),
    )
    .await?
    .catch_up()
    .await?;
    ProjectionRunner::new(
        store.clone(),
        models.clone(),
        WorkflowsProjection::new(models.clone()),
    )
    .await?
    .catch_up()
    .await?;
    let events = store.head().await?;
    progress.set_message(format!(
        "replay ({}): rebuilding every read model from {events} events",
        stack.name
    ));
    let started = Instant::now();
    let compared = mpc_projections::replay(store, models).await?;
    let elapsed = started.elapsed().as_secs_f64();
    ensure!(
        compared.iter().all(|c| c.matches()),
        "a rebuilt read model differs from the live one: {compared:?}"
    );
    let per_s = events as f64 / elapsed;
    Ok(json!({
        "events": events,
        "models": compared.len(),
        "seconds": elapsed,
        "events_per_s": per_s,
        "ratio_to_target": per_s / 100_000.0,
        "target": ">= 100000 events/s (PostgreSQL)",
        "met": per_s >= 100_000.0,
    }))
}

// ---------------------------------------------------------------------------------
// Statistics and output.

/// Latency statistics in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Summary {
    n: usize,
    p50: f64,
    p99: f64,
    min: f64,
    max: f64,
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

    fn to_json(self) -> Value {
        json!({"n": self.n, "p50": self.p50, "p99": self.p99, "min": self.min, "max": self.max})
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let started = Instant::now();
    let out = f();
    (started.elapsed(), out)
}

fn f(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

fn yes(value: &Value) -> &'static str {
    match value.as_bool() {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "-",
    }
}

/// The human table.
pub fn table(report: &Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let m = &report["machine"];
    let _ = writeln!(
        out,
        "mpc bench ({}) on {} CPUs, {} GiB, {}{}",
        report["mode"].as_str().unwrap_or("library"),
        m["cpus"],
        m["memory_gib"],
        m["cpu_model"].as_str().unwrap_or("unknown CPU"),
        if m["debug_build"].as_bool() == Some(true) {
            " [DEBUG BUILD: numbers are not representative]"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "\nEngine floor (all parties on one thread, in memory)");
    let _ = writeln!(
        out,
        "  {:<7} {:>12} {:>12} {:>11} {:>11} {:>9} {:>11}",
        "(t,n)", "keygen p50", "keygen p99", "sign p50", "sign p99", "messages", "sign bytes"
    );
    for row in report["engine_floor"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  ({},{})   {:>9.1} ms {:>9.1} ms {:>8.2} ms {:>8.2} ms {:>9} {:>11}",
            row["t"],
            row["n"],
            f(&row["keygen_ms"]["p50"]),
            f(&row["keygen_ms"]["p99"]),
            f(&row["sign_ms"]["p50"]),
            f(&row["sign_ms"]["p99"]),
            row["sign_messages"],
            row["sign_payload_bytes"],
        );
    }
    for (key, title) in [
        (
            "full_stack_embedded",
            "Full stack, embedded (SQLite + in-process)",
        ),
        (
            "full_stack_postgres_kafka",
            "Full stack, PostgreSQL + Kafka",
        ),
    ] {
        let s = &report[key];
        let _ = writeln!(out, "\n{title}, 2-of-3");
        if let Some(reason) = s["skipped"].as_str() {
            let _ = writeln!(out, "  skipped: {reason}");
            continue;
        }
        if s.is_null() {
            let _ = writeln!(out, "  not measured");
            continue;
        }
        let _ = writeln!(
            out,
            "  keygen  p50 {:>8.1} ms  p99 {:>8.1} ms  ({:.2}x floor p50)  target p99 <= 250 ms: {}",
            f(&s["keygen_2of3_ms"]["p50"]),
            f(&s["keygen_2of3_ms"]["p99"]),
            f(&s["keygen_p50_ratio_to_engine_floor"]),
            yes(&s["keygen_met"]),
        );
        let _ = writeln!(
            out,
            "  signing p50 {:>8.1} ms  p99 {:>8.1} ms  ({:.2}x floor p50)  target p50 <= {:.1} ms: {}",
            f(&s["sign_2of3_ms"]["p50"]),
            f(&s["sign_2of3_ms"]["p99"]),
            f(&s["sign_p50_ratio_to_engine_floor"]),
            f(&s["sign_target_ms"]),
            yes(&s["sign_met"]),
        );
    }
    let t = &report["throughput"];
    if !t.is_null() {
        let _ = writeln!(out, "\nThroughput (embedded stack, 2-of-3 signing)");
        let _ = writeln!(
            out,
            "  {:.1} signatures/s with {} concurrent sessions vs engine ceiling {:.1}/s ({} threads): {:.2}x, target >= 0.60: {}",
            f(&t["full_stack_per_s"]),
            t["concurrent_sessions"],
            f(&t["engine_ceiling_per_s"]),
            t["engine_ceiling_threads"],
            f(&t["ratio_to_ceiling"]),
            yes(&t["met"]),
        );
    }
    let b = &report["bytes_per_signature"];
    if !b.is_null() {
        let _ = writeln!(out, "\nBytes per 2-of-3 signature");
        let _ = writeln!(
            out,
            "  raw protocol payload {:.0} B; wire envelopes {:.0} B ({:.1} envelopes, +{:.1} %); event log {:.0} B ({:.1} events)",
            f(&b["raw_protocol_payload_bytes"]),
            f(&b["wire_envelope_bytes"]),
            f(&b["envelopes"]),
            100.0 * f(&b["wire_overhead_ratio"]),
            f(&b["event_log_payload_bytes"]),
            f(&b["events"]),
        );
        let _ = writeln!(
            out,
            "  wire + log overhead +{:.1} % above raw; target <= 15 %: {}",
            100.0 * f(&b["wire_and_log_overhead_ratio"]),
            yes(&b["met"]),
        );
    }
    for (key, title) in [
        ("replay_sqlite", "Replay, SQLite"),
        ("replay_postgres", "Replay, PostgreSQL"),
    ] {
        let r = &report[key];
        if r.is_null() {
            continue;
        }
        let _ = writeln!(out, "\n{title}");
        if let Some(reason) = r["skipped"].as_str() {
            let _ = writeln!(out, "  skipped: {reason}");
            continue;
        }
        let _ = writeln!(
            out,
            "  {} events, {} read models rebuilt and compared in {:.2} s: {:.0} events/s ({:.2}x of 100 000/s{})",
            r["events"],
            r["models"],
            f(&r["seconds"]),
            f(&r["events_per_s"]),
            f(&r["ratio_to_target"]),
            if key == "replay_postgres" {
                format!(", target: {}", yes(&r["met"]))
            } else {
                ", the target is for PostgreSQL".into()
            },
        );
    }
    if let Some(elapsed) = report["elapsed_s"].as_f64() {
        let _ = writeln!(out, "\nTotal {elapsed:.1} s");
    }
    out
}

/// A minimal SVG: latency bars against the engine floor, throughput against the
/// ceiling.
pub fn chart(report: &Value) -> String {
    let mut bars: Vec<(String, f64, &str)> = Vec::new();
    let floor = report["engine_floor"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|row| row["t"] == 2 && row["n"] == 3)
        .map_or(f64::NAN, |row| f(&row["sign_ms"]["p50"]));
    bars.push(("engine floor sign p50".into(), floor, "#888"));
    for (key, label) in [
        ("full_stack_embedded", "embedded"),
        ("full_stack_postgres_kafka", "postgres+kafka"),
    ] {
        let v = f(&report[key]["sign_2of3_ms"]["p50"]);
        if v.is_finite() {
            bars.push((format!("{label} sign p50"), v, "#3b7dd8"));
            bars.push((
                format!("{label} target"),
                f(&report[key]["sign_target_ms"]),
                "#d8a03b",
            ));
        }
    }
    let mut right: Vec<(String, f64, &str)> = Vec::new();
    let t = &report["throughput"];
    if !t.is_null() {
        right.push((
            "engine ceiling".into(),
            f(&t["engine_ceiling_per_s"]),
            "#888",
        ));
        right.push((
            "60 % target".into(),
            0.6 * f(&t["engine_ceiling_per_s"]),
            "#d8a03b",
        ));
        right.push(("full stack".into(), f(&t["full_stack_per_s"]), "#3b7dd8"));
    }
    let (width, height) = (880.0, 360.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let panel = |svg: &mut String,
                 x0: f64,
                 title: &str,
                 unit: &str,
                 bars: &[(String, f64, &str)]| {
        use std::fmt::Write;
        let _ = writeln!(
            svg,
            "<text x=\"{x0}\" y=\"24\" font-size=\"14\" font-weight=\"bold\">{title}</text>"
        );
        let max = bars
            .iter()
            .map(|b| b.1)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
            .max(1e-9);
        let (top, bottom, bar_w, gap) = (50.0, 300.0, 60.0, 25.0);
        for (i, (label, value, color)) in bars.iter().enumerate() {
            let x = x0 + i as f64 * (bar_w + gap);
            let h = if value.is_finite() {
                (value / max) * (bottom - top)
            } else {
                0.0
            };
            let _ = writeln!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar_w}\" height=\"{h:.1}\" fill=\"{color}\"/>\n\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{value:.1} {unit}</text>\n\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{label}</text>",
                bottom - h,
                x + bar_w / 2.0,
                bottom - h - 4.0,
                x + bar_w / 2.0,
                bottom + 16.0 + (i % 2) as f64 * 12.0,
            );
        }
        let _ = writeln!(
            svg,
            "<line x1=\"{x0}\" y1=\"{bottom}\" x2=\"{:.1}\" y2=\"{bottom}\" stroke=\"black\"/>",
            x0 + bars.len() as f64 * (bar_w + gap)
        );
    };
    panel(
        &mut svg,
        20.0,
        "2-of-3 signing latency (ms, lower is better)",
        "ms",
        &bars,
    );
    panel(
        &mut svg,
        560.0,
        "Signatures/s (higher is better)",
        "/s",
        &right,
    );
    svg.push_str(&format!(
        "<text x=\"20\" y=\"{}\" font-size=\"10\" fill=\"#555\">mpc bench ({}), {} CPUs, {}</text>\n</svg>\n",
        height - 10.0,
        report["mode"].as_str().unwrap_or("library"),
        report["machine"]["cpus"],
        report["machine"]["cpu_model"].as_str().unwrap_or("unknown CPU"),
    ));
    svg
}
