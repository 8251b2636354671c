//! What every projection does with a recorded event before applying it: name the
//! entity its stream belongs to, and report a payload it cannot decode or an event
//! that contradicts the model.

use std::str::FromStr;

use mpc_schemas::SchemaError;
use mpc_store::RecordedEvent;

use crate::error::ProjectionError;

/// The id of the entity whose `<category>-<id>` stream holds `event`; a stream id
/// that does not parse is inconsistent.
pub(crate) fn entity_id<T: FromStr>(
    event: &RecordedEvent,
    category: &str,
) -> Result<T, ProjectionError> {
    event
        .stream
        .as_str()
        .strip_prefix(category)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| inconsistent(event, format!("the stream id is not a valid {category} id")))
}

/// [`ProjectionError::Inconsistent`] for `event`: it contradicts the read model.
pub(crate) fn inconsistent(event: &RecordedEvent, detail: String) -> ProjectionError {
    ProjectionError::Inconsistent {
        position: event.position,
        stream: event.stream.clone(),
        detail,
    }
}

/// [`ProjectionError::Decode`] for `event`, whose payload failed with `source`.
pub(crate) fn decode_failed(event: &RecordedEvent, source: SchemaError) -> ProjectionError {
    ProjectionError::Decode {
        position: event.position,
        stream: event.stream.clone(),
        version: event.version,
        event_type: event.event_type.clone(),
        schema_version: event.schema_version,
        source,
    }
}
