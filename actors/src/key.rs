//! The key aggregate: the order of a key's refreshes, as pure functions.
//!
//! Stream `key-<keygen session id>`. Each refresh session of the key is recorded
//! here before it is created, and only after the previous one was seen settled
//! (`after` names it), so refreshes of one key never overlap. The key's current
//! generation is folded by the coordinator from the keygen session and the
//! recorded refresh sessions that completed.

use mpc_events::{KeyCommand, KeyError, KeyEvent, SessionId, Timestamp, stream};
use mpc_schemas::{Encoded, SchemaError};

use crate::aggregate::Aggregate;

/// The refresh sessions recorded for a key, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyLineage {
    pub refreshes: Vec<(SessionId, Timestamp)>,
}

impl KeyLineage {
    /// The latest recorded refresh session.
    pub fn last(&self) -> Option<SessionId> {
        self.refreshes.last().map(|(id, _)| *id)
    }
}

/// Marker type implementing [`Aggregate`] for key streams.
pub struct KeyAggregate;

impl Aggregate for KeyAggregate {
    type State = KeyLineage;
    type Command = KeyCommand;
    type Event = KeyEvent;
    type Error = KeyError;
    const CATEGORY: &'static str = stream::KEY;

    fn decide(state: &KeyLineage, command: KeyCommand) -> Result<Vec<KeyEvent>, KeyError> {
        decide(state, command)
    }

    fn evolve(state: KeyLineage, event: &KeyEvent) -> KeyLineage {
        evolve(state, event)
    }

    fn encode(event: &KeyEvent) -> Result<Encoded, SchemaError> {
        mpc_schemas::stored::account::encode_key(event)
    }

    fn decode(event_type: &str, version: u16, payload: &[u8]) -> Result<KeyEvent, SchemaError> {
        mpc_schemas::stored::account::decode_key(event_type, version, payload)
    }

    fn occurred_at(event: &KeyEvent) -> Timestamp {
        event.at()
    }
}

/// The events `command` causes, or why it is refused. Pure.
pub fn decide(state: &KeyLineage, command: KeyCommand) -> Result<Vec<KeyEvent>, KeyError> {
    let KeyCommand::ScheduleRefresh {
        session_id,
        after,
        now,
    } = command;
    if state.refreshes.iter().any(|(id, _)| *id == session_id) {
        return Err(KeyError::SessionAlreadyRecorded(session_id));
    }
    if let Some(last) = state.last()
        && after != Some(last)
    {
        return Err(KeyError::RefreshRaced(last));
    }
    Ok(vec![KeyEvent::RefreshScheduled {
        session_id,
        at: now,
    }])
}

/// Folds one event into the state. Total.
pub fn evolve(mut state: KeyLineage, event: &KeyEvent) -> KeyLineage {
    let KeyEvent::RefreshScheduled { session_id, at } = event;
    state.refreshes.push((*session_id, *at));
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    fn session(n: u128) -> SessionId {
        SessionId::from_uuid(uuid::Uuid::from_u128(n))
    }

    fn schedule(n: u128, after: Option<u128>) -> KeyCommand {
        KeyCommand::ScheduleRefresh {
            session_id: session(n),
            after: after.map(session),
            now: Timestamp::from_millis(n as i64),
        }
    }

    fn scheduled(n: u128) -> KeyEvent {
        KeyEvent::RefreshScheduled {
            session_id: session(n),
            at: Timestamp::from_millis(n as i64),
        }
    }

    #[test]
    fn the_first_refresh_of_a_key_is_recorded() {
        given::<KeyAggregate>([])
            .when(schedule(1, None))
            .then([scheduled(1)]);
    }

    #[test]
    fn a_refresh_after_the_last_one_is_recorded() {
        given::<KeyAggregate>([scheduled(1)])
            .when(schedule(2, Some(1)))
            .then([scheduled(2)]);
    }

    #[test]
    fn a_refresh_that_did_not_see_the_last_one_is_refused() {
        given::<KeyAggregate>([scheduled(1), scheduled(2)])
            .when(schedule(3, Some(1)))
            .then_err(KeyError::RefreshRaced(session(2)));
        given::<KeyAggregate>([scheduled(1)])
            .when(schedule(3, None))
            .then_err(KeyError::RefreshRaced(session(1)));
    }

    #[test]
    fn a_session_is_recorded_once() {
        given::<KeyAggregate>([scheduled(1)])
            .when(schedule(1, Some(1)))
            .then_err(KeyError::SessionAlreadyRecorded(session(1)));
    }
}
