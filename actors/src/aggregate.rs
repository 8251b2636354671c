//! The aggregate port: what a business rule set must provide to be hosted by the
//! actor shell ([`crate::ActorRegistry`]). `decide` and `evolve` are pure and
//! synchronous (time comes in the command); `encode`/`decode` map events to their
//! stored payloads in `mpc-schemas`. Implementations: sessions, keys, accounts,
//! uniqueness claims and approval workflows.
use mpc_events::Timestamp;
use mpc_schemas::SchemaError;
use uuid::Uuid;

/// An event-sourced aggregate: pure decisions over a state folded from events.
pub trait Aggregate: Send + Sync + 'static {
    type State: Default + Clone + Send + Sync + 'static;
    type Command: Clone + Send + 'static;
    type Event: Clone + Send + Sync + 'static;
    type Error: std::error::Error + Clone + Send + Sync + 'static;

    /// Stream category, e.g. `session` for `session-<id>` streams.
    const CATEGORY: &'static str;

    /// The events `command` causes in `state`, or why it is refused.
    fn decide(state: &Self::State, command: Self::Command)
    -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state. Total: never fails, never panics.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// When the actor must act by itself next, and the command it then decides.
    fn deadline(_state: &Self::State) -> Option<Timestamp> {
        None
    }
    fn deadline_command(_now: Timestamp) -> Option<Self::Command> {
        None
    }

    /// Reports `events`, just appended, with the state they led to (metrics). The
    /// default reports nothing; never fails.
    fn observe(_state: &Self::State, _events: &[Self::Event]) {}

    fn encode(event: &Self::Event) -> Result<mpc_schemas::Encoded, SchemaError>;
    fn decode(event_type: &str, version: u16, payload: &[u8]) -> Result<Self::Event, SchemaError>;
    fn occurred_at(event: &Self::Event) -> Timestamp;
}

/// Correlation and causation ids stamped on every event a command causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandMeta {
    pub correlation_id: Uuid,
    pub causation_id: Uuid,
}

impl CommandMeta {
    /// A new correlation chain started by this command.
    pub fn new() -> Self {
        let id = Uuid::now_v7();
        Self {
            correlation_id: id,
            causation_id: id,
        }
    }
}

impl Default for CommandMeta {
    fn default() -> Self {
        Self::new()
    }
}

/// The only place the shells read time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Timestamp::from_millis(ms)
    }
}
