//! The actor shell: one tokio task per live stream.
//!
//! An actor loads its stream, folds it with `evolve`, then serves commands one at a
//! time: `decide`, append with the expected version, `evolve`, publish the new state
//! on a watch channel, reply. If another writer got there first (wrong expected
//! version) it reloads and decides again. When the aggregate names a deadline the
//! actor decides the aggregate's deadline command at that time by itself; with no
//! deadline ahead it stops after an idle timeout (the log keeps its state).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mpc_schemas::SchemaError;
use mpc_store::{EventStore, ExpectedVersion, NewEvent, StoreError, StreamName};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::aggregate::{Aggregate, Clock, CommandMeta};

/// The histogram of event-store append latency, by stream category.
pub const APPEND_SECONDS: &str = "mpc_event_store_append_seconds";
/// How many times a command is re-decided after losing an append race.
const MAX_CONFLICT_RETRIES: usize = 5;
/// How long an actor with nothing scheduled stays in memory without commands.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ActorError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Domain(E),
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    #[error("stored event cannot be read: {0}")]
    Schema(#[from] SchemaError),
    #[error("actor stopped")]
    Stopped,
}

type Reply<A> =
    oneshot::Sender<Result<Vec<<A as Aggregate>::Event>, ActorError<<A as Aggregate>::Error>>>;

struct Request<A: Aggregate> {
    command: A::Command,
    meta: CommandMeta,
    reply: Reply<A>,
}

struct Handle<A: Aggregate> {
    inbox: mpsc::Sender<Request<A>>,
    state: watch::Receiver<A::State>,
}

impl<A: Aggregate> Clone for Handle<A> {
    fn clone(&self) -> Self {
        Self {
            inbox: self.inbox.clone(),
            state: self.state.clone(),
        }
    }
}

/// Spawns and finds the actors of one aggregate type.
///
/// An actor with no deadline ahead (e.g. a finished session) stops after being idle
/// for the idle timeout; its state lives on in the log and the next command loads it
/// again, so memory stays bounded by the number of active streams.
pub struct ActorRegistry<A: Aggregate> {
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    idle_timeout: Duration,
    live: Mutex<HashMap<String, Handle<A>>>,
    _aggregate: PhantomData<A>,
}

impl<A: Aggregate> ActorRegistry<A> {
    pub fn new(store: Arc<dyn EventStore>, clock: Arc<dyn Clock>) -> Self {
        Self::with_idle_timeout(store, clock, DEFAULT_IDLE_TIMEOUT)
    }

    pub fn with_idle_timeout(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            store,
            clock,
            idle_timeout,
            live: Mutex::new(HashMap::new()),
            _aggregate: PhantomData,
        }
    }

    /// How many actors are in memory now.
    pub fn live_actors(&self) -> usize {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.values().filter(|h| !h.inbox.is_closed()).count()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Sends `command` to the actor of stream `category-id` and waits for its events.
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
        meta: CommandMeta,
    ) -> Result<Vec<A::Event>, ActorError<A::Error>> {
        let (reply, answer) = oneshot::channel();
        let mut request = Request {
            command,
            meta,
            reply,
        };
        // An actor may stop for idleness between lookup and send; the second
        // attempt finds it closed and starts a fresh one.
        for _ in 0..2 {
            let handle = self.handle(id).await?;
            match handle.inbox.send(request).await {
                Ok(()) => return answer.await.map_err(|_| ActorError::Stopped)?,
                Err(mpsc::error::SendError(returned)) => request = returned,
            }
        }
        Err(ActorError::Stopped)
    }

    /// The current state of stream `category-id`.
    pub async fn state(&self, id: &str) -> Result<A::State, ActorError<A::Error>> {
        Ok(self.handle(id).await?.state.borrow().clone())
    }

    /// A receiver that sees every new state of stream `category-id`.
    pub async fn watch(&self, id: &str) -> Result<watch::Receiver<A::State>, ActorError<A::Error>> {
        Ok(self.handle(id).await?.state)
    }

    async fn handle(&self, id: &str) -> Result<Handle<A>, ActorError<A::Error>> {
        if let Some(h) = self.lookup(id) {
            return Ok(h);
        }
        let stream = StreamName::new(A::CATEGORY, id)?;
        let (state, version) = load::<A>(self.store.as_ref(), &stream).await?;
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = live.get(id).filter(|h| !h.inbox.is_closed()) {
            return Ok(h.clone());
        }
        let (inbox_tx, inbox_rx) = mpsc::channel(64);
        let (state_tx, state_rx) = watch::channel(state);
        let actor = Actor::<A> {
            store: self.store.clone(),
            clock: self.clock.clone(),
            idle_timeout: self.idle_timeout,
            stream,
            version,
            state: state_tx,
        };
        tokio::spawn(actor.run(inbox_rx));
        let handle = Handle {
            inbox: inbox_tx,
            state: state_rx,
        };
        live.retain(|_, h| !h.inbox.is_closed());
        live.insert(id.to_owned(), handle.clone());
        Ok(handle)
    }

    fn lookup(&self, id: &str) -> Option<Handle<A>> {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.get(id).filter(|h| !h.inbox.is_closed()).cloned()
    }
}

/// The state `stream` folds to and its version, read straight from the log: no actor
/// is started, so nothing is decided (no deadline fires) while reading.
pub async fn load<A: Aggregate>(
    store: &dyn EventStore,
    stream: &StreamName,
) -> Result<(A::State, u64), ActorError<A::Error>> {
    let recorded = store.read_stream(stream, 1).await?;
    let mut state = A::State::default();
    for r in &recorded {
        let event = A::decode(&r.event_type, r.schema_version, &r.payload)?;
        state = A::evolve(state, &event);
    }
    Ok((state, recorded.last().map_or(0, |r| r.version)))
}

struct Actor<A: Aggregate> {
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    idle_timeout: Duration,
    stream: StreamName,
    version: u64,
    state: watch::Sender<A::State>,
}

impl<A: Aggregate> Actor<A> {
    async fn run(mut self, mut inbox: mpsc::Receiver<Request<A>>) {
        loop {
            let deadline = A::deadline(&self.state.borrow());
            let wait = deadline.map_or(self.idle_timeout, |d| {
                // One extra millisecond so the deadline command never runs early.
                let ms = d.as_millis() - self.clock.now().as_millis() + 1;
                Duration::from_millis(u64::try_from(ms).unwrap_or(0))
            });
            tokio::select! {
                request = inbox.recv() => {
                    let Some(Request { command, meta, reply }) = request else { return };
                    let result = self.handle(command, meta).await;
                    let _ = reply.send(result);
                }
                () = tokio::time::sleep(wait) => {
                    if deadline.is_none() {
                        // Idle with nothing scheduled: stop, but answer what is queued.
                        inbox.close();
                        while let Some(Request { command, meta, reply }) = inbox.recv().await {
                            let _ = reply.send(self.handle(command, meta).await);
                        }
                        return;
                    }
                    if let Some(command) = A::deadline_command(self.clock.now())
                        && let Err(e) = self.handle(command, CommandMeta::new()).await
                    {
                        tracing::warn!(stream = %self.stream, error = %e, "deadline command failed");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }
        }
    }

    async fn handle(
        &mut self,
        command: A::Command,
        meta: CommandMeta,
    ) -> Result<Vec<A::Event>, ActorError<A::Error>> {
        let mut attempt = 0;
        loop {
            let events =
                A::decide(&self.state.borrow(), command.clone()).map_err(ActorError::Domain)?;
            if events.is_empty() {
                return Ok(events);
            }
            let new_events = events
                .iter()
                .map(|e| {
                    let encoded = A::encode(e)?;
                    Ok(NewEvent {
                        event_id: Uuid::now_v7(),
                        event_type: encoded.event_type.to_owned(),
                        schema_version: encoded.schema_version,
                        payload: encoded.payload,
                        correlation_id: meta.correlation_id,
                        causation_id: meta.causation_id,
                        occurred_at: A::occurred_at(e),
                    })
                })
                .collect::<Result<Vec<_>, SchemaError>>()?;
            let started = std::time::Instant::now();
            let appended = self
                .store
                .append(
                    &self.stream,
                    ExpectedVersion::Exact(self.version),
                    new_events,
                )
                .await;
            metrics::histogram!(APPEND_SECONDS, "category" => A::CATEGORY)
                .record(started.elapsed().as_secs_f64());
            match appended {
                Ok(outcome) => {
                    self.version = outcome.stream_version;
                    self.state.send_modify(|s| {
                        *s = events
                            .iter()
                            .fold(std::mem::take(s), |s, e| A::evolve(s, e));
                    });
                    A::observe(&self.state.borrow(), &events);
                    return Ok(events);
                }
                Err(StoreError::WrongExpectedVersion { .. }) if attempt < MAX_CONFLICT_RETRIES => {
                    attempt += 1;
                    let (state, version) = load::<A>(self.store.as_ref(), &self.stream).await?;
                    self.version = version;
                    self.state.send_replace(state);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
