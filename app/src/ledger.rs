//! The bookkeeping of `mpc load`, which accounts for every session it starts: the
//! [`Ledger`] of started sessions and errors the workers share, the read-back of the
//! event log against what was started and acknowledged ([`check_the_log`]), and
//! resident-memory sampling ([`Memory`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mpc_actors::{ActorError, Aggregate, SessionAggregate};
use mpc_events::{SessionError, SessionId, SessionStatus};
use mpc_store::{EventStore, StoreError, StreamName};
use serde::Serialize;
use tokio::sync::watch;
use uuid::Uuid;

use crate::acknowledged::Acknowledged;

/// The log could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot read the event log back")]
    ReadBack(#[source] StoreError),
    #[error(transparent)]
    Stream(#[from] StoreError),
    #[error("cannot fold {0}")]
    Fold(StreamName, #[source] ActorError<SessionError>),
}

/// What reading the log back found.
#[derive(Debug, Clone, Default)]
pub struct LogCheck {
    pub events_in_log: u64,
    pub acknowledged_events: u64,
    /// Acknowledged events not in the log at the stream and version acknowledged.
    pub acknowledged_missing: u64,
    /// Events in the log whose append was not acknowledged.
    pub unacknowledged_in_log: u64,
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
}

/// How one session ended, as the generator saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Still running (the drain timed out before it ended).
    Open,
    /// Completed with a signature that verifies.
    Completed,
    /// Failed or expired, or completed with a signature that does not verify: why.
    Failed(String),
}

/// One started session.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub session_id: SessionId,
    pub started_at: Instant,
    pub ended_at: Option<Instant>,
    pub outcome: Outcome,
    /// The status its stream folds to in the event store after the run.
    pub in_store: Option<SessionStatus>,
}

/// Resident memory over the run.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    /// `(seconds since start, VmRSS MiB)`.
    pub samples: Vec<(f64, f64)>,
    pub warmup_s: f64,
    pub warmup_rss_mib: f64,
    pub peak_rss_mib: f64,
    pub final_rss_mib: f64,
    /// Highest sample after the warm-up minus the last warm-up sample.
    pub growth_after_warmup_mib: f64,
    pub max_growth_mib: Option<f64>,
}

impl Memory {
    /// Memory over the run from its `samples`, growth measured after `warmup`, checked
    /// against `max_growth_mib`.
    pub fn of(samples: &[(f64, f64)], warmup: Duration, max_growth_mib: Option<f64>) -> Self {
        let warmup_s = warmup.as_secs_f64();
        let warmup_rss = samples
            .iter()
            .take_while(|(t, _)| *t <= warmup_s)
            .last()
            .or(samples.first())
            .map_or(0.0, |(_, rss)| *rss);
        let peak = samples.iter().map(|(_, rss)| *rss).fold(0.0, f64::max);
        let after = samples
            .iter()
            .filter(|(t, _)| *t > warmup_s)
            .map(|(_, rss)| *rss)
            .fold(warmup_rss, f64::max);
        Memory {
            samples: samples.to_vec(),
            warmup_s,
            warmup_rss_mib: warmup_rss,
            peak_rss_mib: peak,
            final_rss_mib: samples.last().map_or(0.0, |(_, rss)| *rss),
            growth_after_warmup_mib: after - warmup_rss,
            max_growth_mib,
        }
    }
}

/// This process's resident set size in MiB (`VmRSS` of `/proc/self/status`).
pub fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// `VmRSS` every `every` until `stopped`: `(seconds since started, MiB)`.
pub async fn sample_rss(
    every: Duration,
    started: Instant,
    mut stopped: watch::Receiver<bool>,
) -> Vec<(f64, f64)> {
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.wait_for(|s| *s) => break,
        }
        if let Some(rss) = rss_mib() {
            samples.push((started.elapsed().as_secs_f64(), rss));
        }
    }
    if let Some(rss) = rss_mib() {
        samples.push((started.elapsed().as_secs_f64(), rss));
    }
    samples
}

/// An error message cut to a length that groups well in a table.
pub fn short(text: &str) -> String {
    const MAX: usize = 120;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Reads the whole log back: every tracked session's stream folded to its status
/// (recorded in `sessions`), every acknowledged event at its acknowledged place, no
/// stray open sessions.
pub async fn check_the_log(
    store: &Arc<dyn EventStore>,
    acknowledged: &Acknowledged,
    keygen_session: SessionId,
    sessions: &mut [SessionRecord],
) -> Result<LogCheck, LedgerError> {
    let mut report = LogCheck::default();
    let mut in_log: HashMap<Uuid, (StreamName, u64)> = HashMap::new();
    let mut session_streams: HashSet<StreamName> = HashSet::new();
    let mut after = 0;
    loop {
        let batch = store
            .read_all(after, 1_000)
            .await
            .map_err(LedgerError::ReadBack)?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        for event in batch {
            if event.stream.category() == SessionAggregate::CATEGORY {
                session_streams.insert(event.stream.clone());
            }
            in_log.insert(event.event_id, (event.stream, event.version));
        }
    }
    report.events_in_log = in_log.len() as u64;
    let acked = acknowledged.events();
    report.acknowledged_events = acked.len() as u64;
    report.acknowledged_missing = acked
        .iter()
        .filter(|(id, place)| in_log.get(id) != Some(place))
        .count() as u64;
    report.unacknowledged_in_log =
        in_log.keys().filter(|id| !acked.contains_key(id)).count() as u64;

    let mut tracked = HashSet::new();
    for session in sessions.iter_mut() {
        let stream = StreamName::new(SessionAggregate::CATEGORY, session.session_id)?;
        tracked.insert(stream.clone());
        let status = stored_status(store, &stream).await?;
        session.in_store = status;
        match status {
            Some(status) if status.is_terminal() => report.terminal_in_store += 1,
            _ => report.open_in_store += 1,
        }
        let agrees = match (&session.outcome, status) {
            (Outcome::Completed, Some(SessionStatus::Completed)) => true,
            (Outcome::Failed(_), Some(s)) => s.is_terminal(),
            (Outcome::Open, _) => true,
            _ => false,
        };
        if !agrees {
            report.store_disagrees += 1;
        }
    }
    tracked.insert(StreamName::new(SessionAggregate::CATEGORY, keygen_session)?);
    for stream in session_streams.difference(&tracked) {
        report.untracked_sessions += 1;
        if !stored_status(store, stream)
            .await?
            .is_some_and(|s| s.is_terminal())
        {
            report.untracked_open += 1;
        }
    }
    Ok(report)
}

/// The status a session stream folds to, straight from the log (no actor, so
/// nothing is decided or expired while checking).
async fn stored_status(
    store: &Arc<dyn EventStore>,
    stream: &StreamName,
) -> Result<Option<SessionStatus>, LedgerError> {
    let (state, _) = mpc_actors::load::<SessionAggregate>(store.as_ref(), stream)
        .await
        .map_err(|e| LedgerError::Fold(stream.clone(), e))?;
    Ok(state.0.map(|s| s.status))
}

/// Every started session and every error, shared by the workers.
#[derive(Default)]
pub struct Ledger {
    sessions: Mutex<HashMap<SessionId, SessionRecord>>,
    create_errors: Mutex<BTreeMap<String, u64>>,
    party_errors: Mutex<BTreeMap<String, u64>>,
    verified: AtomicU64,
}

impl Ledger {
    pub fn start(&self, session_id: SessionId) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                session_id,
                SessionRecord {
                    session_id,
                    started_at: Instant::now(),
                    ended_at: None,
                    outcome: Outcome::Open,
                    in_store: None,
                },
            );
    }

    pub fn end(&self, session_id: SessionId, outcome: Outcome) {
        if let Some(record) = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&session_id)
        {
            if outcome != Outcome::Open {
                record.ended_at = Some(Instant::now());
            }
            record.outcome = outcome;
        }
    }

    fn count(&self, counter: &Mutex<BTreeMap<String, u64>>, error: String) {
        *counter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(short(&error))
            .or_default() += 1;
    }

    pub fn sessions(&self) -> Vec<SessionRecord> {
        let mut sessions: Vec<_> = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        sessions.sort_by_key(|s| s.started_at);
        sessions
    }

    /// `(started, completed, failed, open)` now.
    pub fn tally(&self) -> (u64, u64, u64, u64) {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let mut tally = (sessions.len() as u64, 0, 0, 0);
        for session in sessions.values() {
            match session.outcome {
                Outcome::Completed => tally.1 += 1,
                Outcome::Failed(_) => tally.2 += 1,
                Outcome::Open => tally.3 += 1,
            }
        }
        tally
    }

    /// A session could not be created: `error`.
    pub fn create_error(&self, error: String) {
        self.count(&self.create_errors, error);
    }

    /// A party's run returned `error`.
    pub fn party_error(&self, error: String) {
        self.count(&self.party_errors, error);
    }

    /// A completed session's recorded signature verified.
    pub fn verified(&self) {
        self.verified.fetch_add(1, Ordering::Relaxed);
    }

    /// How many recorded signatures verified.
    pub fn verified_count(&self) -> u64 {
        self.verified.load(Ordering::Relaxed)
    }

    pub fn create_errors(&self) -> BTreeMap<String, u64> {
        self.create_errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn party_errors(&self) -> BTreeMap<String, u64> {
        self.party_errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
