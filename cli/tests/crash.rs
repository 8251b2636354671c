//! Crash and restart (issue 7, item 2): the coordinator killed at every commit
//! boundary of a session, and a party killed after every round it published.
//!
//! Parties are real [`PartyNode`]s (file vaults, DKLs23, in-process transport). A
//! coordinator "process" is a tokio runtime of its own, holding its event store
//! (SQLite file, or a fresh PostgreSQL database when `MPC_TEST_POSTGRES_URL` is set)
//! and its [`Coordinator`], started like `mpc serve` starts one (session-status read
//! model caught up, open sessions resumed). Killing it shuts that runtime down: every
//! actor and every call in flight is dropped, as with a killed process. Its store is
//! wrapped so that once the k-th append to the session's stream has committed, every
//! later call fails: nothing more reaches the log.
//!
//! Parties reach the coordinator through [`Link`], which plays the network: a call in
//! flight when the process dies fails ("connection lost", as an HTTP request would),
//! a call made while it is down waits for the restarted one (a reconnect).
//!
//! An append is atomic, so the crash points of a session are the ends of its
//! appends: every commit boundary is tried. Each one checks that (a) every event
//! acknowledged before the crash is stored byte for byte and nothing else is, (b) the
//! session folded from the freshly opened store equals the state the dead
//! coordinator's actor held, (c) the session then ends (completed, failed or
//! expired) and (d) a new signing session on the restarted coordinator completes.
//! A last pass kills a signing session's parties together with the coordinator:
//! nobody comes back for the session, so only resuming it on start-up ends it.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mpc_actors::{
    Aggregate, CommandMeta, Coordinator, CreatedSession, NewKeygen, NewSigning, Session,
    SessionAggregate, SessionState, SigningPayload, SystemClock,
};
use mpc_app::LocalCoordinator;
use mpc_app::resume_open_sessions;
use mpc_engine::{Dkls23Engine, ThresholdEngine};
use mpc_events::{
    KeyId, KeyPolicy, Participant, PartyId, PartyOutcome, SessionId, SessionStatus, SessionView,
    Threshold, stream,
};
use mpc_party::{CoordinatorClient, CoordinatorError, PartyError, PartyIdentity, PartyNode};
use mpc_projections::{ProjectionRunner, ReadModels, SessionStatusProjection};
use mpc_schemas::Envelope;
use mpc_store::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, PostgresStore, RecordedEvent,
    SqliteStore, StoreError, StreamName,
};
use mpc_transport::{InProcessTransport, Inbox, Transport, TransportError};
use mpc_vault::{FileVault, ShareVault};
use sqlx::Connection;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Deadlines of the sessions that are crashed: short, because a session whose
/// parties cannot carry on is waited for until it expires; long enough for a normal
/// run on a loaded 2-core machine.
const SIGNING_TTL: Duration = Duration::from_secs(4);
const KEYGEN_TTL: Duration = Duration::from_secs(10);
/// Deadline of sessions that must complete (setup, calibration, the session after).
const LONG_TTL: Duration = Duration::from_secs(60);
/// How long past a deadline a test waits before calling something stuck (a guard
/// against hanging, not a measurement).
const GRACE: Duration = Duration::from_secs(30);
const PASSPHRASE: &[u8] = b"crash-test vault passphrase";

// ---------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------

#[derive(Clone)]
enum Backend {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "SQLite",
            Self::Postgres(_) => "PostgreSQL",
        }
    }

    /// A freshly opened event store and the read models beside it.
    async fn open(&self) -> (Arc<dyn EventStore>, ReadModels) {
        match self {
            Self::Sqlite(path) => {
                let store = SqliteStore::open(path).await.unwrap();
                let models = ReadModels::from(store.pool().clone());
                (Arc::new(store), models)
            }
            Self::Postgres(url) => (
                Arc::new(PostgresStore::connect(url).await.unwrap()),
                ReadModels::connect(url).await.unwrap(),
            ),
        }
    }

    /// The stream as a freshly opened store reads it.
    async fn read_stream(&self, stream: &StreamName) -> Vec<RecordedEvent> {
        match self {
            Self::Sqlite(path) => {
                let store = SqliteStore::open(path).await.unwrap();
                let events = store.read_stream(stream, 1).await.unwrap();
                store.pool().close().await;
                events
            }
            Self::Postgres(url) => {
                let store = PostgresStore::connect(url).await.unwrap();
                let events = store.read_stream(stream, 1).await.unwrap();
                store.pool().close().await;
                events
            }
        }
    }
}

/// A fresh PostgreSQL database on the server `MPC_TEST_POSTGRES_URL` names, or
/// `None` when it is unset.
async fn postgres_database() -> Option<(String, String)> {
    let server = std::env::var("MPC_TEST_POSTGRES_URL").ok()?;
    let server = server.trim_end_matches('/').to_owned();
    let name = format!("mpc_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| panic!("no PostgreSQL at {server}: {e}"));
    // The name is ours (a uuid), not input.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    Some((server, name))
}

async fn drop_postgres_database(server: &str, name: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(&format!("{server}/postgres")).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
    }
}

// ---------------------------------------------------------------------------
// The store that dies
// ---------------------------------------------------------------------------

/// An event store that dies once the `crash_after`-th append to `stream` has
/// committed: that append still returns its outcome, every later call fails.
struct CrashingStore {
    inner: Arc<dyn EventStore>,
    stream: StreamName,
    crash_after: Option<usize>,
    /// The events of every committed append to `stream`, one entry per append.
    commits: Mutex<Vec<Vec<NewEvent>>>,
    crashed: watch::Sender<bool>,
}

impl CrashingStore {
    fn new(inner: Arc<dyn EventStore>, stream: StreamName, crash_after: Option<usize>) -> Self {
        Self {
            inner,
            stream,
            crash_after,
            commits: Mutex::new(Vec::new()),
            crashed: watch::Sender::new(false),
        }
    }

    fn is_crashed(&self) -> bool {
        *self.crashed.borrow()
    }

    fn commits(&self) -> Vec<Vec<NewEvent>> {
        self.commits.lock().unwrap().clone()
    }

    fn alive(&self) -> Result<(), StoreError> {
        if self.is_crashed() {
            Err(StoreError::Backend(
                "the coordinator process is dead".into(),
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl EventStore for CrashingStore {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.alive()?;
        let outcome = self.inner.append(stream, expected, events.clone()).await?;
        if *stream == self.stream {
            let mut commits = self.commits.lock().unwrap();
            commits.push(events);
            if Some(commits.len()) == self.crash_after {
                self.crashed.send_replace(true);
            }
        }
        Ok(outcome)
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.alive()?;
        self.inner.read_stream(stream, from_version).await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.alive()?;
        self.inner.read_all(after, limit).await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        self.alive()?;
        self.inner.head().await
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.inner.watch_head()
    }
}

// ---------------------------------------------------------------------------
// Coordinator processes and the link to them
// ---------------------------------------------------------------------------

/// One coordinator process: its own runtime, store and coordinator.
struct Process {
    runtime: tokio::runtime::Runtime,
    up: Arc<Up>,
    /// How many open sessions it resumed when it started.
    resumed: usize,
}

/// What the link needs of a running process.
struct Up {
    handle: tokio::runtime::Handle,
    coordinator: Arc<Coordinator>,
    store: Arc<CrashingStore>,
}

impl Process {
    /// Starts a coordinator like `mpc serve` does: store opened, session-status read
    /// model caught up, open sessions resumed.
    async fn start(backend: &Backend, stream: StreamName, crash_after: Option<usize>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let backend = backend.clone();
        let (coordinator, store, resumed) = runtime
            .spawn(async move {
                let (inner, models) = backend.open().await;
                let store = Arc::new(CrashingStore::new(inner, stream, crash_after));
                let runner = ProjectionRunner::new(
                    store.clone(),
                    models.clone(),
                    SessionStatusProjection::new(models),
                )
                .await
                .unwrap();
                runner.catch_up().await.unwrap();
                let coordinator = Arc::new(Coordinator::new(store.clone(), Arc::new(SystemClock)));
                let resumed = resume_open_sessions(&coordinator, runner.projection())
                    .await
                    .unwrap();
                (coordinator, store, resumed)
            })
            .await
            .unwrap();
        let up = Arc::new(Up {
            handle: runtime.handle().clone(),
            coordinator,
            store,
        });
        Self {
            runtime,
            up,
            resumed,
        }
    }

    /// Kills the process: its runtime shuts down, dropping every actor and every
    /// call in flight.
    async fn kill(self) {
        let Self { runtime, up, .. } = self;
        tokio::task::spawn_blocking(move || runtime.shutdown_timeout(Duration::from_secs(10)))
            .await
            .unwrap();
        drop(up);
    }
}

/// How parties and the operator reach whichever coordinator process is up.
struct Link {
    up: watch::Sender<Option<Arc<Up>>>,
}

impl Link {
    fn new() -> Self {
        Self {
            up: watch::Sender::new(None),
        }
    }

    fn connect(&self, process: &Process) {
        self.up.send_replace(Some(process.up.clone()));
    }

    fn disconnect(&self) {
        self.up.send_replace(None);
    }

    /// Runs `call` in the running process; waits while none is up (or the one up
    /// has died and is not yet replaced); fails if the process dies meanwhile.
    async fn call<T, F, Fut>(&self, call: F) -> Result<T, CoordinatorError>
    where
        F: FnOnce(Arc<Coordinator>) -> Fut,
        Fut: Future<Output = Result<T, CoordinatorError>> + Send + 'static,
        T: Send + 'static,
    {
        let mut rx = self.up.subscribe();
        let up = loop {
            let current = rx.borrow_and_update().clone();
            if let Some(up) = current.filter(|up| !up.store.is_crashed()) {
                break up;
            }
            rx.changed()
                .await
                .map_err(|_| CoordinatorError::Unreachable("no coordinator".to_owned()))?;
        };
        up.handle
            .spawn(call(up.coordinator.clone()))
            .await
            .map_err(|_| {
                CoordinatorError::Unreachable("connection to the coordinator lost".to_owned())
            })?
    }
}

/// The coordinator's refusal, as a client sees it.
fn refused(e: impl ToString) -> CoordinatorError {
    CoordinatorError::Refused(e.to_string())
}

#[async_trait]
impl CoordinatorClient for Link {
    async fn join(
        &self,
        session: SessionId,
        party: &PartyId,
        token: &str,
    ) -> Result<SessionView, CoordinatorError> {
        let (party, token) = (party.clone(), token.to_owned());
        self.call(move |c| async move { LocalCoordinator(c).join(session, &party, &token).await })
            .await
    }

    async fn wait_started(&self, session: SessionId) -> Result<SessionStatus, CoordinatorError> {
        self.call(move |c| async move { LocalCoordinator(c).wait_started(session).await })
            .await
    }

    async fn wait_finished(&self, session: SessionId) -> Result<SessionStatus, CoordinatorError> {
        self.call(move |c| async move { LocalCoordinator(c).wait_finished(session).await })
            .await
    }

    async fn report_completion(
        &self,
        session: SessionId,
        party: &PartyId,
        outcome: PartyOutcome,
    ) -> Result<(), CoordinatorError> {
        let party = party.clone();
        self.call(move |c| async move {
            LocalCoordinator(c)
                .report_completion(session, &party, outcome)
                .await
        })
        .await
    }

    async fn report_failure(
        &self,
        session: SessionId,
        party: &PartyId,
        culprits: Vec<PartyId>,
        detail: String,
    ) -> Result<(), CoordinatorError> {
        let party = party.clone();
        self.call(move |c| async move {
            LocalCoordinator(c)
                .report_failure(session, &party, culprits, detail)
                .await
        })
        .await
    }
}

// ---------------------------------------------------------------------------
// The transport that freezes a party
// ---------------------------------------------------------------------------

/// The in-process transport, with one party that freezes (never returns from a
/// publish again) once it has published its `count`-th message of round `round`
/// in the armed session: the moment it is killed.
struct FreezingTransport {
    inner: InProcessTransport,
    victim: PartyId,
    plan: Mutex<FreezePlan>,
    frozen: watch::Sender<bool>,
}

#[derive(Default)]
struct FreezePlan {
    session: Option<SessionId>,
    freeze_at: Option<(u16, usize)>,
    published: BTreeMap<u16, usize>,
}

impl FreezingTransport {
    fn new(victim: PartyId) -> Self {
        Self {
            inner: InProcessTransport::new(),
            victim,
            plan: Mutex::new(FreezePlan::default()),
            frozen: watch::Sender::new(false),
        }
    }

    /// Counts the victim's publishes in `session`, freezing it at `freeze_at`.
    fn arm(&self, session: SessionId, freeze_at: Option<(u16, usize)>) {
        *self.plan.lock().unwrap() = FreezePlan {
            session: Some(session),
            freeze_at,
            published: BTreeMap::new(),
        };
        self.frozen.send_replace(false);
    }

    /// How many messages the victim published per round in the armed session.
    fn published(&self) -> BTreeMap<u16, usize> {
        self.plan.lock().unwrap().published.clone()
    }
}

#[async_trait]
impl Transport for FreezingTransport {
    async fn publish(&self, envelope: &Envelope) -> Result<(), TransportError> {
        let freeze = {
            let mut plan = self.plan.lock().unwrap();
            if envelope.sender == self.victim && plan.session == Some(envelope.session_id) {
                let count = plan.published.entry(envelope.round).or_default();
                *count += 1;
                let count = *count;
                plan.freeze_at == Some((envelope.round, count))
            } else {
                false
            }
        };
        self.inner.publish(envelope).await?;
        if freeze {
            self.frozen.send_replace(true);
            std::future::pending::<()>().await;
        }
        Ok(())
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

// ---------------------------------------------------------------------------
// Parties and sessions
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Keygen,
    Signing,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Keygen => "keygen 2-of-3",
            Self::Signing => "signing 2-of-3",
        }
    }

    fn ttl(self) -> Duration {
        match self {
            Self::Keygen => KEYGEN_TTL,
            Self::Signing => SIGNING_TTL,
        }
    }
}

/// Three parties with file vaults under `dir`, connected through `link` and
/// `transport`.
struct Parties {
    dir: PathBuf,
    link: Arc<Link>,
    transport: Arc<dyn Transport>,
    engine: Arc<dyn ThresholdEngine>,
    nodes: Vec<Arc<PartyNode>>,
}

impl Parties {
    async fn new(dir: &Path, link: Arc<Link>, transport: Arc<dyn Transport>) -> Self {
        let mut parties = Self {
            dir: dir.to_path_buf(),
            link,
            transport,
            engine: Arc::new(Dkls23Engine),
            nodes: Vec::new(),
        };
        for name in ["p1", "p2", "p3"] {
            let id = PartyId::parse(name).unwrap();
            let vault_dir = parties.vault_dir(&id);
            let vault = tokio::task::spawn_blocking(move || {
                FileVault::create(&vault_dir, PASSPHRASE).unwrap()
            })
            .await
            .unwrap();
            let node = parties.node(id, PartyIdentity::generate(), Arc::new(vault));
            parties.nodes.push(node);
        }
        parties
    }

    fn vault_dir(&self, id: &PartyId) -> PathBuf {
        self.dir.join(format!("vault-{id}"))
    }

    fn node(
        &self,
        id: PartyId,
        identity: PartyIdentity,
        vault: Arc<dyn ShareVault>,
    ) -> Arc<PartyNode> {
        Arc::new(PartyNode::new(
            id,
            identity,
            self.engine.clone(),
            vault,
            self.transport.clone(),
            self.link.clone(),
        ))
    }

    /// The party restarted: a new node over the same identity and the vault
    /// reopened from disk.
    async fn restart(&mut self, index: usize) -> Arc<PartyNode> {
        let old = self.nodes[index].clone();
        let vault_dir = self.vault_dir(old.id());
        let vault =
            tokio::task::spawn_blocking(move || FileVault::open(&vault_dir, PASSPHRASE).unwrap())
                .await
                .unwrap();
        let identity = PartyIdentity::from_secret_bytes(&old.identity().to_secret_bytes()).unwrap();
        let node = self.node(old.id().clone(), identity, Arc::new(vault));
        self.nodes[index] = node.clone();
        node
    }

    /// What the party's vault holds, read from disk.
    async fn vault_contents(&self, index: usize) -> Vec<mpc_vault::ShareMeta> {
        let vault_dir = self.vault_dir(self.nodes[index].id());
        tokio::task::spawn_blocking(move || {
            FileVault::open(&vault_dir, PASSPHRASE)
                .unwrap()
                .list()
                .unwrap()
        })
        .await
        .unwrap()
    }

    fn participants(&self) -> Vec<Participant> {
        self.nodes
            .iter()
            .map(|n| Participant {
                party_id: n.id().clone(),
                identity: n.identity().public(),
            })
            .collect()
    }

    /// Creates session `id` through the link: a keygen among all three, or a
    /// signing by the first two with `key`.
    async fn create(
        &self,
        id: SessionId,
        kind: Kind,
        key: KeyId,
        signers: [usize; 2],
        ttl: Duration,
    ) -> Result<CreatedSession, CoordinatorError> {
        match kind {
            Kind::Keygen => {
                let request = NewKeygen {
                    policy: KeyPolicy::AnyRequest,
                    threshold: Threshold::new(2, 3).unwrap(),
                    participants: self.participants(),
                    ttl,
                };
                self.link
                    .call(move |c| async move {
                        c.create_keygen_as(id, request, CommandMeta::new())
                            .await
                            .map_err(refused)
                    })
                    .await
            }
            Kind::Signing => {
                let request = NewSigning {
                    key_id: key,
                    signers: signers.map(|i| self.nodes[i].id().clone()).to_vec(),
                    payload: SigningPayload::Message(format!("crash test {id}").into_bytes()),
                    ttl,
                };
                self.link
                    .call(move |c| async move {
                        c.create_signing_as(id, request, None, CommandMeta::new())
                            .await
                            .map_err(refused)
                    })
                    .await
            }
        }
    }

    /// Every invited node runs its side of `created`.
    fn run(&self, created: &CreatedSession) -> Vec<(PartyId, PartyTask)> {
        self.nodes
            .iter()
            .filter_map(|node| {
                let token = created.join_tokens.get(node.id())?.expose().to_owned();
                let (party, node, id) = (node.id().clone(), node.clone(), created.session_id);
                let task = tokio::spawn(async move { node.participate(id, &token).await });
                Some((party, task))
            })
            .collect()
    }

    /// Waits for the session's end through the link; `None` if it does not end
    /// within its deadline and [`GRACE`].
    async fn wait_end(&self, id: SessionId, ttl: Duration) -> Option<Session> {
        let end = self.link.call(move |c| async move {
            c.wait_for(id, |s| s.status.is_terminal())
                .await
                .map_err(refused)
        });
        tokio::time::timeout(ttl + GRACE, end)
            .await
            .ok()
            .and_then(Result::ok)
            .filter(|s| s.status.is_terminal())
    }

    /// A fresh signing session with `key` by `signers` that must complete: the
    /// system still works.
    async fn sign_afterwards(&self, key: KeyId, signers: [usize; 2]) {
        let id = SessionId::new();
        let created = self
            .create(id, Kind::Signing, key, signers, LONG_TTL)
            .await
            .unwrap_or_else(|e| panic!("the session after the crash was refused: {e}"));
        let tasks = self.run(&created);
        let results = settle(tasks, LONG_TTL).await;
        for (party, result) in &results {
            assert_eq!(result, "done", "{party} in the session after the crash");
        }
        let session = self.wait_end(id, LONG_TTL).await;
        assert_eq!(
            session.map(|s| s.status),
            Some(SessionStatus::Completed),
            "the signing session after the crash did not complete"
        );
    }
}

type PartyTask = JoinHandle<Result<PartyOutcome, PartyError>>;

/// Waits for every party task (each ends by its session's deadline at the latest);
/// what each one ended with, shortly.
async fn settle(tasks: Vec<(PartyId, PartyTask)>, ttl: Duration) -> Vec<(PartyId, String)> {
    let mut results = Vec::new();
    for (party, task) in tasks {
        let result = match tokio::time::timeout(ttl + GRACE, task).await {
            Err(_) => "still running".to_owned(),
            Ok(Err(e)) if e.is_cancelled() => "killed".to_owned(),
            Ok(Err(e)) => format!("task {e}"),
            Ok(Ok(Ok(_))) => "done".to_owned(),
            Ok(Ok(Err(e))) => e.to_string(),
        };
        results.push((party, result));
    }
    results
}

fn session_stream(id: SessionId) -> StreamName {
    StreamName::new(stream::SESSION, id).unwrap()
}

/// The session as `evolve` folds the recorded events.
fn fold(events: &[RecordedEvent]) -> SessionState {
    events.iter().fold(SessionState::default(), |state, e| {
        let event = SessionAggregate::decode(&e.event_type, e.schema_version, &e.payload).unwrap();
        SessionAggregate::evolve(state, &event)
    })
}

/// How a session ended, for the tables.
fn outcome(session: &Option<Session>) -> String {
    match session {
        None => "LOST (still open)".to_owned(),
        Some(s) => match (&s.status, &s.failure) {
            (SessionStatus::Failed, Some(reason)) => format!("failed: {reason}"),
            (status, _) => status.to_string(),
        },
    }
}

fn parties_line(results: &[(PartyId, String)]) -> String {
    if results.is_empty() {
        return "none ran (no join tokens)".to_owned();
    }
    results
        .iter()
        .map(|(p, r)| format!("{p}: {r}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Default)]
struct Tally {
    tried: usize,
    completed: usize,
    failed: usize,
    lost: usize,
}

impl Tally {
    fn count(&mut self, session: &Option<Session>) {
        self.tried += 1;
        match session.as_ref().map(|s| s.status) {
            Some(SessionStatus::Completed) => self.completed += 1,
            Some(s) if s.is_terminal() => self.failed += 1,
            _ => self.lost += 1,
        }
    }
}

/// The summary table; `planned` is how many boundaries (or rounds) there are.
fn summary(title: &str, rows: &[(String, usize, Tally)]) -> String {
    let mut out = format!(
        "\n{title}\n\n| session | boundaries | tried | completed | cleanly failed | lost |\n\
         |---|---:|---:|---:|---:|---:|\n"
    );
    for (name, planned, t) in rows {
        out += &format!(
            "| {name} | {planned} | {} | {} | {} | {} |\n",
            t.tried, t.completed, t.failed, t.lost
        );
    }
    out
}

// ---------------------------------------------------------------------------
// Coordinator crash at every commit boundary
// ---------------------------------------------------------------------------

struct CoordinatorCrash {
    backend: Backend,
    link: Arc<Link>,
    parties: Parties,
    /// The key every signing session uses.
    key: KeyId,
}

impl CoordinatorCrash {
    /// Runs one session of `kind` on a coordinator that does not crash; returns the
    /// session id and its commits (the events of each append).
    async fn normal_run(&self, kind: Kind) -> (SessionId, Vec<Vec<NewEvent>>) {
        let id = SessionId::new();
        let process = Process::start(&self.backend, session_stream(id), None).await;
        self.link.connect(&process);
        let created = self
            .parties
            .create(id, kind, self.key, [0, 1], LONG_TTL)
            .await
            .unwrap();
        let results = settle(self.parties.run(&created), LONG_TTL).await;
        for (party, result) in &results {
            assert_eq!(result, "done", "{party} in the normal {} run", kind.name());
        }
        let session = self.parties.wait_end(id, LONG_TTL).await;
        assert_eq!(session.map(|s| s.status), Some(SessionStatus::Completed));
        let commits = process.up.store.commits();
        self.link.disconnect();
        process.kill().await;
        (id, commits)
    }

    /// Watches the log (not the coordinator, which would load the session's actor
    /// by asking) until the session has ended; `None` if it does not end within its
    /// deadline and [`GRACE`].
    async fn wait_end_in_log(&self, stream: &StreamName, ttl: Duration) -> Option<Session> {
        let watched = async {
            loop {
                let state = fold(&self.backend.read_stream(stream).await);
                if let Some(session) = state.0.filter(|s| s.status.is_terminal()) {
                    return session;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::time::timeout(ttl + GRACE, watched).await.ok()
    }

    /// Kills the coordinator right after the `k`-th commit of a `kind` session (and
    /// the session's parties with it when `parties_die`: nobody comes back for the
    /// session), restarts it and follows the session to its end. Returns the table
    /// row.
    async fn crash_at(&self, kind: Kind, k: usize, parties_die: bool, tally: &mut Tally) -> String {
        let id = SessionId::new();
        let stream = session_stream(id);
        let ttl = kind.ttl();
        let doomed = Process::start(&self.backend, stream.clone(), Some(k)).await;
        self.link.connect(&doomed);
        let mut seen = self
            .link
            .call(move |c| async move { c.watch(id).await.map_err(refused) })
            .await
            .unwrap();
        let created = self.parties.create(id, kind, self.key, [0, 1], ttl).await;
        let tasks = match &created {
            Ok(created) => self.parties.run(created),
            Err(_) => Vec::new(),
        };
        let mut crashed = doomed.up.store.crashed.subscribe();
        tokio::time::timeout(ttl + GRACE, crashed.wait_for(|c| *c))
            .await
            .unwrap_or_else(|_| panic!("{} never reached commit {k}", kind.name()))
            .unwrap();

        // The process dies: nothing it held in memory survives but what it wrote.
        self.link.disconnect();
        if parties_die {
            for (_, task) in &tasks {
                task.abort();
            }
        }
        let acknowledged: Vec<NewEvent> = doomed.up.store.commits().concat();
        doomed.kill().await;
        let at_crash = seen.borrow_and_update().clone();

        // (a) Every acknowledged event is stored, byte for byte, and nothing else.
        let stored = self.backend.read_stream(&stream).await;
        let as_appended: Vec<NewEvent> = stored
            .iter()
            .map(|e| NewEvent {
                event_id: e.event_id,
                event_type: e.event_type.clone(),
                schema_version: e.schema_version,
                payload: e.payload.clone(),
                correlation_id: e.correlation_id,
                causation_id: e.causation_id,
                occurred_at: e.occurred_at,
            })
            .collect();
        assert_eq!(
            as_appended,
            acknowledged,
            "{} crash after commit {k}: the log is not what was acknowledged",
            kind.name()
        );
        // (b) Replayed state equals the state the dead coordinator held.
        assert_eq!(
            fold(&stored),
            at_crash,
            "{} crash after commit {k}: replayed state differs",
            kind.name()
        );
        let last = stored
            .last()
            .map_or("", |e| e.event_type.as_str())
            .to_owned();

        // Restart; (c) the session ends.
        let restarted = Process::start(&self.backend, stream.clone(), None).await;
        let was_open = at_crash.0.as_ref().is_some_and(|s| !s.status.is_terminal());
        assert!(
            !was_open || restarted.resumed >= 1,
            "the restarted coordinator did not resume the open session"
        );
        self.link.connect(&restarted);
        let results = settle(tasks, ttl).await;
        let session = self.wait_end_in_log(&stream, ttl).await;
        tally.count(&session);

        // (d) The system still works: a new signing session completes, with the new
        // key when the keygen completed.
        let key = match (kind, session.as_ref().map(|s| s.status)) {
            (Kind::Keygen, Some(SessionStatus::Completed)) => KeyId::of_keygen(id),
            _ => self.key,
        };
        self.parties.sign_afterwards(key, [1, 2]).await;
        self.link.disconnect();
        restarted.kill().await;
        format!(
            "| {k} | {} events, last {last} | {} | {} |",
            stored.len(),
            outcome(&session),
            parties_line(&results)
        )
    }
}

async fn coordinator_crash_at_every_boundary(backend: Backend, dir: &Path) {
    let link = Arc::new(Link::new());
    let transport: Arc<dyn Transport> = Arc::new(InProcessTransport::new());
    let parties = Parties::new(dir, link.clone(), transport).await;
    let mut world = CoordinatorCrash {
        backend,
        link,
        parties,
        key: KeyId::of_keygen(SessionId::new()),
    };
    // The key, and the commits of a normal keygen and a normal signing.
    let (keygen, keygen_commits) = world.normal_run(Kind::Keygen).await;
    world.key = KeyId::of_keygen(keygen);
    let (_, signing_commits) = world.normal_run(Kind::Signing).await;

    let mut rows = Vec::new();
    let mut report = String::new();
    for (kind, parties_die, commits) in [
        (Kind::Signing, false, &signing_commits),
        (Kind::Keygen, false, &keygen_commits),
        (Kind::Signing, true, &signing_commits),
    ] {
        let name = if parties_die {
            format!("{}, parties killed too", kind.name())
        } else {
            kind.name().to_owned()
        };
        let events: usize = commits.iter().map(Vec::len).sum();
        let shape = commits
            .iter()
            .map(|c| {
                c.iter()
                    .map(|e| e.event_type.as_str())
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect::<Vec<_>>()
            .join(", ");
        report += &format!(
            "\ncoordinator crash, {}, {name}: {} commits ({events} events): {shape}\n\n\
             | crash after commit | log at the crash | session | parties |\n|---:|---|---|---|\n",
            world.backend.name(),
            commits.len()
        );
        let mut tally = Tally::default();
        for k in 1..=commits.len() {
            report += &world.crash_at(kind, k, parties_die, &mut tally).await;
            report.push('\n');
        }
        rows.push((name, commits.len(), tally));
    }
    report += &summary(
        &format!("coordinator crash, {}:", world.backend.name()),
        &rows,
    );
    // One block, so that tests running in parallel do not interleave their tables.
    println!("{report}");
    for (name, planned, tally) in &rows {
        assert_eq!(tally.tried, *planned, "{name}: every boundary is tried");
        assert_eq!(tally.lost, 0, "{name}: sessions lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_killed_at_every_commit_boundary_loses_no_session_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::Sqlite(dir.path().join("events.db"));
    coordinator_crash_at_every_boundary(backend, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_killed_at_every_commit_boundary_loses_no_session_postgres() {
    let Some((server, name)) = postgres_database().await else {
        println!("MPC_TEST_POSTGRES_URL is not set: the PostgreSQL case did not run");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::Postgres(format!("{server}/{name}"));
    coordinator_crash_at_every_boundary(backend, dir.path()).await;
    drop_postgres_database(&server, &name).await;
}

// ---------------------------------------------------------------------------
// Party crash at every round
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_killed_after_every_round_loses_no_session() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::Sqlite(dir.path().join("events.db"));
    let link = Arc::new(Link::new());
    let victim = 0;
    let transport = Arc::new(FreezingTransport::new(PartyId::parse("p1").unwrap()));
    let mut parties = Parties::new(dir.path(), link.clone(), transport.clone()).await;
    let process = Process::start(&backend, session_stream(SessionId::new()), None).await;
    link.connect(&process);

    // The key, then a normal signing to learn how many messages the victim
    // publishes in each round.
    let keygen = SessionId::new();
    let created = parties
        .create(
            keygen,
            Kind::Keygen,
            KeyId::of_keygen(keygen),
            [0, 1],
            LONG_TTL,
        )
        .await
        .unwrap();
    for (party, result) in settle(parties.run(&created), LONG_TTL).await {
        assert_eq!(result, "done", "{party} in the keygen");
    }
    let key = KeyId::of_keygen(keygen);
    let calibration = SessionId::new();
    transport.arm(calibration, None);
    let created = parties
        .create(calibration, Kind::Signing, key, [0, 1], LONG_TTL)
        .await
        .unwrap();
    for (party, result) in settle(parties.run(&created), LONG_TTL).await {
        assert_eq!(result, "done", "{party} in the normal signing");
    }
    let rounds = transport.published();
    assert!(!rounds.is_empty(), "the victim published nothing");
    let vault_before = parties.vault_contents(victim).await;

    let mut report = format!(
        "\nparty crash, signing 2-of-3, p1 killed after publishing each round \
         (messages per round: {rounds:?})\n\n\
         | killed after round | session | p2 | p1 restarted, joins again |\n|---:|---|---|---|\n"
    );
    let mut tally = Tally::default();
    for (&round, &count) in &rounds {
        let id = SessionId::new();
        transport.arm(id, Some((round, count)));
        let created = parties
            .create(id, Kind::Signing, key, [0, 1], SIGNING_TTL)
            .await
            .unwrap();
        let mut tasks = parties.run(&created);
        let mut frozen = transport.frozen.subscribe();
        tokio::time::timeout(SIGNING_TTL + GRACE, frozen.wait_for(|f| *f))
            .await
            .unwrap_or_else(|_| panic!("p1 never finished publishing round {round}"))
            .unwrap();
        let (_, killed) = tasks.remove(victim);
        killed.abort();
        assert!(killed.await.is_err_and(|e| e.is_cancelled()));

        let restarted = parties.restart(victim).await;
        let token = created.join_tokens[restarted.id()].expose().to_owned();
        let rejoined = match restarted.participate(id, &token).await {
            Ok(_) => "rejoined and finished".to_owned(),
            Err(e) => format!("refused: {e}"),
        };
        let others = settle(tasks, SIGNING_TTL).await;
        let session = parties.wait_end(id, SIGNING_TTL).await;
        tally.count(&session);
        assert_eq!(
            parties.vault_contents(victim).await,
            vault_before,
            "p1's vault changed"
        );
        // The restarted party's share still signs, and the system still works.
        transport.arm(SessionId::new(), None);
        parties.sign_afterwards(key, [0, 1]).await;
        report += &format!(
            "| {round} | {} | {} | {rejoined} |\n",
            outcome(&session),
            parties_line(&others)
        );
    }
    let (tried, lost) = (tally.tried, tally.lost);
    report += &summary(
        "party crash (p1 killed after each round, restarted over its vault):",
        &[("signing 2-of-3".to_owned(), rounds.len(), tally)],
    );
    println!("{report}");
    assert_eq!(tried, rounds.len(), "every round is tried");
    assert_eq!(lost, 0, "sessions lost");
    link.disconnect();
    process.kill().await;
}
