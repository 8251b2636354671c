//! `mpc load`: a bounded load generator that accounts for every session.
//!
//! It wires the same stack as `mpc bench` (a coordinator, three party nodes with file
//! vaults, the four read-model projections) on the embedded defaults (SQLite file,
//! in-process transport) or on PostgreSQL and/or Kafka, makes one 2-of-3 key with a
//! real DKLs23 keygen, then keeps `concurrency` signing sessions in flight for a fixed
//! time. Afterwards it drains (waits for every started session to end, bounded by the
//! session deadline) and checks, against the event store rather than its own memory:
//!
//! - every started session is accounted for: `started == completed + failed`, none
//!   still open in memory or in the log (each session's stream is read back and
//!   folded), the log agrees with what the generator saw, and no session stream
//!   exists that the generator did not start;
//! - every append the store acknowledged is in the log, at the stream and version it
//!   was acknowledged at (the store is wrapped to record them);
//! - every completed session's recorded signature verifies;
//! - every read model, caught up, equals a rebuild from position 0
//!   ([`mpc_projections::replay`]) and the audit log holds one record per event with an
//!   intact hash chain;
//! - the process's resident memory (`VmRSS`, sampled every second) grows by at most
//!   [`DEFAULT_MAX_RSS_GROWTH_MIB`] after the warm-up;
//! - the live actors left are at most those of sessions that ended (or could not be
//!   created) within the actors' idle timeout, plus the key's two.
//!
//! Finished sessions' transport logs are freed (`Transport::close_session`) once the
//! session ended, as an operator's close does in the gateway: the in-process
//! transport otherwise keeps every envelope of every session.
//!
//! `mpc load` (in `mpc-cli`) parses the flags and calls [`execute`], which the fault
//! tests also call while they restart PostgreSQL or the broker underneath it.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use mpc_actors::{CommandMeta, DEFAULT_IDLE_TIMEOUT, NewSigning, SigningPayload};
use mpc_crypto::verify_signature;
use mpc_events::{KeyId, PartyOutcome, PublicKey, SessionId, SessionStatus, Signature};
use mpc_projections::{ProjectionError, ReadModels, Supervisor, replay, verify_chain};
use mpc_store::{EventStore, PostgresStore, SqliteStore, StoreError};
use mpc_transport::{InProcessTransport, Transport};
use serde::Serialize;
use tokio::sync::{oneshot, watch};

use crate::acknowledged::Acknowledged;
use crate::adapters::{AdapterError, Machine, TempDatabase, kafka_transport};
use crate::ledger::{
    Ledger, LedgerError, Memory, Outcome, SessionRecord, check_the_log, rss_mib, sample_rss, short,
};
use crate::process::supervise_read_models;
use crate::stack::{CountingTransport, Holders, Stack, StackError, message_hash, run_all};

/// Why a load run could not be set up or checked (what happens during the load is in
/// its report).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the load needs at least one concurrent session")]
    NoConcurrency,
    #[error("cannot create a temporary directory")]
    TempDir(#[source] std::io::Error),
    #[error(transparent)]
    Adapter(#[from] AdapterError),
    #[error("cannot connect to the PostgreSQL event store")]
    PostgresStore(#[source] StoreError),
    #[error("cannot open the SQLite event store")]
    SqliteStore(#[source] StoreError),
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error("the load's keygen failed")]
    Keygen(#[source] StackError),
    #[error("the memory sampler panicked")]
    Sampler,
    #[error("a projection task panicked")]
    ProjectionPanicked,
    #[error("a projection stopped on an error a restart cannot cure")]
    Projection(#[source] ProjectionError),
    #[error("cannot replay the read models")]
    Replay(#[source] ProjectionError),
    #[error("cannot verify the audit chain")]
    Chain(#[source] ProjectionError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Default bound on resident-memory growth after the warm-up. What may legitimately
/// grow during a run: the generator's own ledger (one entry per session and per
/// acknowledged event, ~1 KiB per session), the actors of sessions that ended within
/// the idle timeout (60 s of sessions), SQLite's page cache (2 MiB per pooled
/// connection once the file is large enough) and the allocator's per-thread arenas.
/// Together that is well under 64 MiB for runs of minutes at this machine's rate; a
/// leak of one envelope log (~10 KiB) per session exceeds it within ~6 500 sessions.
pub const DEFAULT_MAX_RSS_GROWTH_MIB: f64 = 64.0;
/// Actors that every signing session keeps alive: the key's stream and its keygen
/// session (read for the key's current generation).
const KEY_ACTORS: u64 = 2;
/// The message every session signs (a random suffix follows).
const MESSAGE: &[u8] = b"mpc load";
/// Pause after a session could not even be created (e.g. the store is down).
const CREATE_BACKOFF: Duration = Duration::from_millis(250);
/// First pause before a projection runner stopped by a store outage starts again.
const PROJECTION_BACKOFF: Duration = Duration::from_millis(500);
/// Longest such pause.
const MAX_PROJECTION_BACKOFF: Duration = Duration::from_secs(2);

/// What to run and for how long.
#[derive(Debug, Clone)]
pub struct Options {
    /// Signing sessions kept in flight.
    pub concurrency: usize,
    /// How long new sessions are started.
    pub duration: Duration,
    /// Memory samples before this are the warm-up; growth is measured from its end.
    pub warmup: Duration,
    /// Each signing session's deadline: a session that cannot finish (its store or
    /// broker went away) expires then.
    pub session_ttl: Duration,
    /// How long the drain waits for the sessions still running when `duration` ends.
    pub drain_timeout: Duration,
    /// PostgreSQL server URL (no database name); a fresh database per run, dropped
    /// afterwards. `None`: an SQLite file in a temporary directory.
    pub postgres_url: Option<String>,
    /// Kafka bootstrap brokers; a fresh topic per run. `None`: in-process transport.
    pub kafka_brokers: Option<String>,
    /// The resident-memory growth bound checked by [`LoadReport::problems`]; `None`
    /// reports growth without checking it.
    pub max_rss_growth_mib: Option<f64>,
    /// How often resident memory is sampled.
    pub sample_interval: Duration,
    /// Print a progress line to stderr this often (`None`: quiet).
    pub progress_every: Option<Duration>,
}

impl Options {
    /// `concurrency` sessions for `duration` on the embedded stack, with defaults for
    /// the rest (warm-up a fifth of the run, at most 30 s; 60 s session deadline).
    pub fn new(concurrency: usize, duration: Duration) -> Self {
        let session_ttl = Duration::from_secs(60);
        Self {
            concurrency,
            duration,
            warmup: (duration / 5).min(Duration::from_secs(30)),
            session_ttl,
            drain_timeout: session_ttl + Duration::from_secs(30),
            postgres_url: None,
            kafka_brokers: None,
            max_rss_growth_mib: Some(DEFAULT_MAX_RSS_GROWTH_MIB),
            sample_interval: Duration::from_secs(1),
            progress_every: None,
        }
    }
}

// ---------------------------------------------------------------------------------
// The report.

/// Everything a run measured and checked.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub machine: Machine,
    pub stack: String,
    pub concurrency: usize,
    pub duration_s: f64,
    pub session_ttl_s: f64,
    pub elapsed_s: f64,
    pub drain_s: f64,
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    /// Why sessions failed, with counts.
    pub failed_reasons: BTreeMap<String, u64>,
    /// Started but not ended when the drain gave up.
    pub open_in_memory: u64,
    /// `started - completed - failed - open_in_memory`: must be 0.
    pub unaccounted: u64,
    /// Sessions that could not be created, by error.
    pub create_errors: BTreeMap<String, u64>,
    /// Party runs that returned an error, by error (their session's outcome is
    /// counted above).
    pub party_errors: BTreeMap<String, u64>,
    pub signatures_verified: u64,
    /// Started sessions whose stream folds to a terminal status.
    pub terminal_in_store: u64,
    /// Started sessions whose stream is missing or not terminal.
    pub open_in_store: u64,
    /// Sessions whose stored status is not what the generator saw.
    pub store_disagrees: u64,
    /// Session streams in the log that no acknowledged create started (excluding the
    /// keygen session), and how many of them are not terminal.
    pub untracked_sessions: u64,
    pub untracked_open: u64,
    pub events_in_log: u64,
    pub acknowledged_appends: u64,
    pub acknowledged_events: u64,
    /// Acknowledged events not in the log at the stream and version acknowledged.
    pub acknowledged_missing: u64,
    /// Events in the log whose append was not acknowledged: the commit went through
    /// but its reply was lost (the connection broke), so the writer saw an error. Not
    /// a loss; the writer's next append finds the stream moved on and reloads.
    pub unacknowledged_in_log: u64,
    pub read_models_compared: usize,
    pub read_models_matching: usize,
    pub read_model_differences: Vec<String>,
    pub projection_restarts: u64,
    pub audit_records: u64,
    pub audit_chain_intact: bool,
    pub memory: Memory,
    pub live_actors_at_end: usize,
    /// Sessions that ended within the actors' idle timeout before the end.
    pub recently_ended: u64,
    #[serde(skip)]
    pub sessions: Vec<SessionRecord>,
}

impl LoadReport {
    /// The checks that failed, each as a sentence; empty when all pass. `strict`
    /// also counts failed sessions and errors (a plain run has none; a run with a
    /// restarted store or broker expects some while it is down).
    pub fn problems(&self, strict: bool) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, text: String| {
            if !ok {
                problems.push(text);
            }
        };
        check(self.started > 0, "no session started".into());
        check(
            self.unaccounted == 0,
            format!("{} started sessions are unaccounted for", self.unaccounted),
        );
        check(
            self.open_in_memory == 0,
            format!(
                "{} sessions were still open after the drain",
                self.open_in_memory
            ),
        );
        check(
            self.open_in_store == 0,
            format!(
                "{} sessions are not terminal in the event store",
                self.open_in_store
            ),
        );
        check(
            self.store_disagrees == 0,
            format!(
                "{} sessions ended differently in the event store",
                self.store_disagrees
            ),
        );
        check(
            self.untracked_open == 0,
            format!(
                "{} unacknowledged sessions stay open in the log",
                self.untracked_open
            ),
        );
        check(
            self.acknowledged_missing == 0,
            format!(
                "{} acknowledged events are missing from the log",
                self.acknowledged_missing
            ),
        );
        check(
            self.signatures_verified == self.completed,
            format!(
                "{} of {} completed sessions have a verified signature",
                self.signatures_verified, self.completed
            ),
        );
        check(
            self.read_models_matching == self.read_models_compared && self.read_models_compared > 0,
            format!(
                "{} of {} read models equal their replay: {:?}",
                self.read_models_matching, self.read_models_compared, self.read_model_differences
            ),
        );
        check(
            self.audit_chain_intact && self.audit_records == self.events_in_log,
            format!(
                "audit log: {} records for {} events, chain intact: {}",
                self.audit_records, self.events_in_log, self.audit_chain_intact
            ),
        );
        let refused: u64 = self.create_errors.values().sum();
        check(
            self.live_actors_at_end as u64 <= self.recently_ended + refused + KEY_ACTORS,
            format!(
                "{} actors live at the end, but only {} sessions ended within the idle \
                 timeout and {refused} could not be created",
                self.live_actors_at_end, self.recently_ended
            ),
        );
        if let Some(bound) = self.memory.max_growth_mib {
            check(
                self.memory.growth_after_warmup_mib <= bound,
                format!(
                    "resident memory grew {:.1} MiB after the warm-up (bound {bound:.1} MiB)",
                    self.memory.growth_after_warmup_mib
                ),
            );
        }
        if strict {
            check(
                self.failed == 0,
                format!("{} sessions failed: {:?}", self.failed, self.failed_reasons),
            );
            let errors: u64 = self
                .create_errors
                .values()
                .chain(self.party_errors.values())
                .sum();
            check(
                errors == 0,
                format!(
                    "{errors} errors: create {:?}, party {:?}",
                    self.create_errors, self.party_errors
                ),
            );
        }
        problems
    }

    /// Errors of every kind.
    pub fn errors(&self) -> u64 {
        self.create_errors
            .values()
            .chain(self.party_errors.values())
            .sum()
    }

    /// The human report.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "mpc load: {} concurrent 2-of-3 signing sessions for {:.0} s on {} ({} CPUs, {}{})",
            self.concurrency,
            self.duration_s,
            self.stack,
            m.cpus,
            m.cpu_model.as_deref().unwrap_or("unknown CPU"),
            if m.debug_build { ", debug build" } else { "" }
        );
        let mut row = |name: &str, value: String| {
            let _ = writeln!(out, "  {name:<42} {value}");
        };
        row("sessions started", self.started.to_string());
        row(
            "  completed (signature verified)",
            format!("{} ({})", self.completed, self.signatures_verified),
        );
        row(
            "  failed",
            format!("{} {:?}", self.failed, self.failed_reasons),
        );
        row("  open after the drain", self.open_in_memory.to_string());
        row("  unaccounted", self.unaccounted.to_string());
        row(
            "sessions that could not be created",
            format!(
                "{} {:?}",
                self.create_errors.values().sum::<u64>(),
                self.create_errors
            ),
        );
        row(
            "party runs that returned an error",
            format!(
                "{} {:?}",
                self.party_errors.values().sum::<u64>(),
                self.party_errors
            ),
        );
        row(
            "terminal in the event store",
            format!("{} of {}", self.terminal_in_store, self.started),
        );
        row("open in the event store", self.open_in_store.to_string());
        row(
            "store disagrees with the generator",
            self.store_disagrees.to_string(),
        );
        row(
            "untracked session streams (open)",
            format!("{} ({})", self.untracked_sessions, self.untracked_open),
        );
        row("events in the log", self.events_in_log.to_string());
        row(
            "acknowledged appends / events",
            format!(
                "{} / {}",
                self.acknowledged_appends, self.acknowledged_events
            ),
        );
        row(
            "acknowledged but missing",
            self.acknowledged_missing.to_string(),
        );
        row(
            "in the log but not acknowledged",
            self.unacknowledged_in_log.to_string(),
        );
        row(
            "read models equal to their replay",
            format!(
                "{} of {}",
                self.read_models_matching, self.read_models_compared
            ),
        );
        row(
            "projection runner restarts",
            self.projection_restarts.to_string(),
        );
        row(
            "audit records / chain intact",
            format!("{} / {}", self.audit_records, self.audit_chain_intact),
        );
        let mem = &self.memory;
        row(
            "RSS after warm-up",
            format!("{:.1} MiB (at {:.0} s)", mem.warmup_rss_mib, mem.warmup_s),
        );
        row(
            "RSS peak / final",
            format!("{:.1} / {:.1} MiB", mem.peak_rss_mib, mem.final_rss_mib),
        );
        row(
            "RSS growth after warm-up",
            match mem.max_growth_mib {
                Some(bound) => format!(
                    "{:.1} MiB (bound {bound:.1} MiB)",
                    mem.growth_after_warmup_mib
                ),
                None => format!("{:.1} MiB (not checked)", mem.growth_after_warmup_mib),
            },
        );
        row(
            "live actors at the end",
            format!(
                "{} ({} sessions ended within the {} s idle timeout)",
                self.live_actors_at_end,
                self.recently_ended,
                DEFAULT_IDLE_TIMEOUT.as_secs()
            ),
        );
        row(
            "throughput",
            format!(
                "{:.2} signatures/s",
                self.completed as f64 / self.duration_s.max(1e-9)
            ),
        );
        row(
            "elapsed (drain)",
            format!("{:.1} s ({:.1} s)", self.elapsed_s, self.drain_s),
        );
        out
    }
}

// ---------------------------------------------------------------------------------
// The run.

/// Runs the load described by `options` and checks the outcome (see the module
/// docs). Setup failures (no database, no broker, a failed keygen) are errors; what
/// happens during the load is in the report.
pub async fn execute(options: &Options) -> Result<LoadReport, LoadError> {
    execute_signalling(options, None).await
}

/// [`execute`], telling `underway` when the keygen is done and the first sessions
/// start (so a fault test can wait for that before restarting a component).
pub async fn execute_signalling(
    options: &Options,
    underway: Option<oneshot::Sender<Instant>>,
) -> Result<LoadReport, LoadError> {
    if options.concurrency == 0 {
        return Err(LoadError::NoConcurrency);
    }
    let dir = tempfile::tempdir().map_err(LoadError::TempDir)?;
    let database = match &options.postgres_url {
        Some(server) => Some(TempDatabase::create(server).await?),
        None => None,
    };
    let result = load(
        options,
        dir.path(),
        database.as_ref().map(|d| d.url.as_str()),
        underway,
    )
    .await;
    if let Some(database) = database {
        database.drop_it().await;
    }
    result
}

async fn load(
    options: &Options,
    dir: &std::path::Path,
    postgres: Option<&str>,
    underway: Option<oneshot::Sender<Instant>>,
) -> Result<LoadReport, LoadError> {
    let (store, models, store_name): (Arc<dyn EventStore>, ReadModels, &str) = match postgres {
        Some(url) => {
            let store = PostgresStore::connect(url)
                .await
                .map_err(LoadError::PostgresStore)?;
            let models = ReadModels::from(store.pool().clone());
            (Arc::new(store), models, "PostgreSQL")
        }
        None => {
            let store = SqliteStore::open(&dir.join("events.db"))
                .await
                .map_err(LoadError::SqliteStore)?;
            let models = ReadModels::from(store.pool().clone());
            (Arc::new(store), models, "SQLite")
        }
    };
    let (transport, transport_name): (Arc<dyn Transport>, &str) = match &options.kafka_brokers {
        Some(brokers) => (kafka_transport(brokers, "mpc.load").await?, "Kafka"),
        None => (Arc::new(InProcessTransport::new()), "in-process"),
    };
    let acknowledged = Arc::new(Acknowledged::new(store.clone()));
    let stack = Holders::new(Stack::new(
        dir,
        acknowledged.clone(),
        models.clone(),
        transport,
    ))
    .await?;

    let (stop_projections, projections_stopped) = watch::channel(false);
    let stopped = || {
        let mut stopped = projections_stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    // Restarted after a store outage, as in `mpc serve`.
    let supervisor = Supervisor::with_delays(PROJECTION_BACKOFF, MAX_PROJECTION_BACKOFF);
    let projections = supervise_read_models(&supervisor, &store, &models, stopped);

    let (key_id, public_key) = stack.keygen().await.map_err(LoadError::Keygen)?;
    let keygen_session = key_id.keygen_session();

    let started = Instant::now();
    let ledger = Arc::new(Ledger::default());
    let (stop_sampling, sampling_stopped) = watch::channel(false);
    let sampler = tokio::spawn(sample_rss(
        options.sample_interval,
        started,
        sampling_stopped,
    ));
    let reporter = options.progress_every.map(|every| {
        tokio::spawn(print_progress(
            every,
            started,
            ledger.clone(),
            stack.clone(),
        ))
    });

    let end = started + options.duration;
    let mut workers: Vec<_> = (0..options.concurrency)
        .map(|w| {
            tokio::spawn(worker(
                w,
                stack.clone(),
                ledger.clone(),
                stack.stack.transport.clone(),
                (key_id, public_key),
                (options.session_ttl, end),
            ))
        })
        .collect();
    if let Some(underway) = underway {
        let _ = underway.send(started);
    }
    let drain_started = Instant::now();
    let drained = tokio::time::timeout(
        options.duration + options.drain_timeout,
        join_all(workers.iter_mut()),
    )
    .await;
    if drained.is_err() {
        for worker in &workers {
            worker.abort();
        }
    }
    let drain_s = drain_started.elapsed().as_secs_f64() - options.duration.as_secs_f64();
    let elapsed_s = started.elapsed().as_secs_f64();
    let live_actors_at_end = stack.stack.services.coordinator.live_actors();
    let _ = stop_sampling.send(true);
    let samples = sampler.await.map_err(|_| LoadError::Sampler)?;
    if let Some(reporter) = reporter {
        reporter.abort();
    }

    let mut report = LoadReport {
        machine: Machine::detect(),
        stack: format!("{store_name} + {transport_name}"),
        concurrency: options.concurrency,
        duration_s: options.duration.as_secs_f64(),
        session_ttl_s: options.session_ttl.as_secs_f64(),
        elapsed_s,
        drain_s: drain_s.max(0.0),
        started: 0,
        completed: 0,
        failed: 0,
        failed_reasons: BTreeMap::new(),
        open_in_memory: 0,
        unaccounted: 0,
        create_errors: ledger.create_errors(),
        party_errors: ledger.party_errors(),
        signatures_verified: ledger.verified_count(),
        terminal_in_store: 0,
        open_in_store: 0,
        store_disagrees: 0,
        untracked_sessions: 0,
        untracked_open: 0,
        events_in_log: 0,
        acknowledged_appends: acknowledged.appends(),
        acknowledged_events: 0,
        acknowledged_missing: 0,
        unacknowledged_in_log: 0,
        read_models_compared: 0,
        read_models_matching: 0,
        read_model_differences: Vec::new(),
        projection_restarts: 0,
        audit_records: 0,
        audit_chain_intact: false,
        memory: Memory::of(&samples, options.warmup, options.max_rss_growth_mib),
        live_actors_at_end,
        recently_ended: 0,
        sessions: ledger.sessions(),
    };
    let now = Instant::now();
    for session in &report.sessions {
        report.started += 1;
        match &session.outcome {
            Outcome::Open => report.open_in_memory += 1,
            Outcome::Completed => report.completed += 1,
            Outcome::Failed(reason) => {
                report.failed += 1;
                *report.failed_reasons.entry(reason.clone()).or_default() += 1;
            }
        }
        if session
            .ended_at
            .is_some_and(|at| now.duration_since(at) <= DEFAULT_IDLE_TIMEOUT)
        {
            report.recently_ended += 1;
        }
    }
    report.unaccounted = report.started - report.completed - report.failed - report.open_in_memory;

    let log = check_the_log(&store, &acknowledged, keygen_session, &mut report.sessions).await?;
    report.events_in_log = log.events_in_log;
    report.acknowledged_events = log.acknowledged_events;
    report.acknowledged_missing = log.acknowledged_missing;
    report.unacknowledged_in_log = log.unacknowledged_in_log;
    report.terminal_in_store = log.terminal_in_store;
    report.open_in_store = log.open_in_store;
    report.store_disagrees = log.store_disagrees;
    report.untracked_sessions = log.untracked_sessions;
    report.untracked_open = log.untracked_open;

    let _ = stop_projections.send(true);
    for projection in join_all(projections.into_iter().map(|(_, task)| task)).await {
        projection
            .map_err(|_| LoadError::ProjectionPanicked)?
            .map_err(LoadError::Projection)?;
    }
    report.projection_restarts = supervisor.restarts();
    let compared = replay(store.clone(), &models)
        .await
        .map_err(LoadError::Replay)?;
    report.read_models_compared = compared.len();
    report.read_models_matching = compared.iter().filter(|c| c.matches()).count();
    report.read_model_differences = compared
        .iter()
        .filter_map(|c| {
            c.first_difference
                .as_ref()
                .map(|d| format!("{}: {d}", c.model))
        })
        .collect();
    let chain = verify_chain(&models).await.map_err(LoadError::Chain)?;
    report.audit_records = chain.records;
    report.audit_chain_intact = chain.is_intact();
    Ok(report)
}

/// One of the `concurrency` workers: sessions one after the other until `end`,
/// rotating the signer pairs; each finished session's transport log is freed.
async fn worker(
    first: usize,
    stack: Holders,
    ledger: Arc<Ledger>,
    transport: Arc<CountingTransport>,
    key: (KeyId, PublicKey),
    (ttl, end): (Duration, Instant),
) {
    let mut i = first;
    while Instant::now() < end {
        let signers = [[0, 1], [1, 2], [0, 2]][i % 3];
        i += 1;
        let Some(session) = one_session(&stack, &ledger, key, signers, ttl).await else {
            tokio::time::sleep(CREATE_BACKOFF).await;
            continue;
        };
        // In the background: with a broker away this waits for the delivery
        // timeout, and the next session need not.
        let transport = transport.clone();
        tokio::spawn(async move {
            if let Err(error) = transport.close_session(session).await {
                tracing::warn!(%session, %error, "cannot free a session's transport log");
            }
        });
    }
}

/// Creates one signing session, has its two signers run it and waits for it to end.
/// `None` if it could not be created (recorded as a create error); else its id, once
/// it ended or its deadline and a grace period passed.
async fn one_session(
    stack: &Holders,
    ledger: &Ledger,
    (key_id, public_key): (KeyId, PublicKey),
    signers: [usize; 2],
    ttl: Duration,
) -> Option<SessionId> {
    let message = [MESSAGE, &rand::random::<[u8; 16]>()].concat();
    let nodes: Vec<_> = signers.iter().map(|i| stack.nodes[*i].clone()).collect();
    let coordinator = &stack.stack.services.coordinator;
    let created = coordinator
        .create_signing(
            NewSigning {
                key_id,
                signers: nodes.iter().map(|n| n.id().clone()).collect(),
                payload: SigningPayload::Message(message.clone()),
                ttl,
            },
            CommandMeta::new(),
        )
        .await;
    let created = match created {
        Ok(created) => created,
        Err(e) => {
            ledger.create_error(e.to_string());
            return None;
        }
    };
    let session_id = created.session_id;
    ledger.start(session_id);
    if let Err(e) = run_all(&nodes, &created).await {
        ledger.party_error(chain(&e));
    }
    // The session ends by its deadline at the latest (the actor expires it, retrying
    // while the store is away); the grace period covers an outage at that moment.
    let ended = tokio::time::timeout(
        ttl + Duration::from_secs(30),
        coordinator.wait_for(session_id, |s| s.status.is_terminal()),
    )
    .await;
    let outcome = match ended {
        Err(_) => Outcome::Open,
        Ok(Err(e)) => Outcome::Failed(format!("cannot follow the session: {e}")),
        Ok(Ok(session)) => match (&session.status, &session.outcome) {
            (SessionStatus::Completed, Some(PartyOutcome::Signature(signature))) => {
                if verifies(&public_key, &message, signature) {
                    ledger.verified();
                    Outcome::Completed
                } else {
                    Outcome::Failed("recorded signature does not verify".into())
                }
            }
            (SessionStatus::Expired, _) => Outcome::Failed("expired".into()),
            (status, _) => Outcome::Failed(match &session.failure {
                Some(failure) => short(&failure.to_string()),
                None => format!("ended {status}"),
            }),
        },
    };
    ledger.end(session_id, outcome);
    Some(session_id)
}

fn verifies(public_key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
    verify_signature(public_key, &message_hash(message), signature)
}

/// An error and its sources, `: `-separated.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn print_progress(every: Duration, started: Instant, ledger: Arc<Ledger>, stack: Holders) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let (begun, completed, failed, open) = ledger.tally();
        let errors: u64 = ledger
            .create_errors()
            .values()
            .chain(ledger.party_errors().values())
            .sum();
        let _ = writeln!(
            std::io::stderr(),
            "[{:>5.0} s] started {begun}, completed {completed}, failed {failed}, in flight {open}, errors {errors}, RSS {:.1} MiB, live actors {}",
            started.elapsed().as_secs_f64(),
            rss_mib().unwrap_or(f64::NAN),
            stack.stack.services.coordinator.live_actors(),
        );
    }
}
