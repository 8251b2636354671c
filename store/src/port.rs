//! The event-store port: [`EventStore`] (append with an expected version,
//! `(stream, version)` unique, a global position ordering everything; read a stream,
//! read all from a position, watch the head) and its vocabulary ([`StreamName`],
//! [`NewEvent`], [`RecordedEvent`], [`StoreError`]). The SQLite and PostgreSQL
//! adapters pass one contract suite (`store/tests/contract`).
use std::fmt;

use async_trait::async_trait;
use mpc_events::Timestamp;
use tokio::sync::watch;
use uuid::Uuid;

/// `category-id`, e.g. `session-0190…`, `party-device`. Category: lowercase ASCII
/// letters; id: 1–128 characters of `[A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamName(String);

impl StreamName {
    pub fn new(category: &str, id: impl fmt::Display) -> Result<Self, StoreError> {
        Self::parse(format!("{category}-{id}"))
    }

    pub fn parse(s: impl Into<String>) -> Result<Self, StoreError> {
        let s = s.into();
        let valid = s.split_once('-').is_some_and(|(category, id)| {
            !category.is_empty()
                && category.bytes().all(|b| b.is_ascii_lowercase())
                && (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
        if valid {
            Ok(Self(s))
        } else {
            Err(StoreError::InvalidStreamName(s))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn category(&self) -> &str {
        self.0.split_once('-').map_or("", |(c, _)| c)
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the writer believes the stream's version (its number of events) to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the version is.
    Any,
    /// The stream must have exactly this many events (`Exact(0)`: it must not exist).
    Exact(u64),
}

/// An event to append. The payload is already encoded by `mpc-schemas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u16,
    pub payload: Vec<u8>,
    pub correlation_id: Uuid,
    pub causation_id: Uuid,
    pub occurred_at: Timestamp,
}

/// An event as stored: the appended event plus where it landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Global order over all streams; starts at 1, strictly increasing.
    pub position: u64,
    pub stream: StreamName,
    /// 1-based version within the stream; no gaps.
    pub version: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u16,
    pub payload: Vec<u8>,
    pub correlation_id: Uuid,
    pub causation_id: Uuid,
    pub occurred_at: Timestamp,
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The stream's version after the append.
    pub stream_version: u64,
    /// Global position of the last appended event.
    pub last_position: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("stream {stream} is at version {actual}, expected {expected:?}")]
    WrongExpectedVersion {
        stream: StreamName,
        expected: ExpectedVersion,
        actual: u64,
    },
    #[error("invalid stream name {0:?}: expected category-id")]
    InvalidStreamName(String),
    #[error("an append needs at least one event")]
    EmptyAppend,
    #[error("event {0} is already stored")]
    DuplicateEventId(Uuid),
    #[error("event store backend: {0}")]
    Backend(String),
}

/// The event-store port. Every adapter passes the contract suite in
/// `tests/contract/mod.rs`.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends `events` atomically if the stream is at `expected`.
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError>;

    /// Events of one stream with version >= `from_version` (1-based), in order.
    async fn read_stream(
        &self,
        stream: &StreamName,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Up to `limit` events with position > `after`, in position order.
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The highest position stored so far (0 when empty).
    async fn head(&self) -> Result<u64, StoreError>;

    /// A receiver that changes whenever the head moves (no polling).
    fn watch_head(&self) -> watch::Receiver<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_are_category_dash_id() {
        for good in [
            "session-0190abcd-ef01-7000-8000-000000000000",
            "party-device",
            "account-a.b_c-D9",
            "approval-1",
        ] {
            let name = StreamName::parse(good).unwrap();
            assert_eq!(name.as_str(), good);
        }
        let name = StreamName::new("party", "server").unwrap();
        assert_eq!(name.as_str(), "party-server");
        assert_eq!(name.category(), "party");
    }

    #[test]
    fn malformed_stream_names_are_rejected() {
        let too_long = format!("session-{}", "x".repeat(129));
        for bad in [
            "",
            "session",
            "session-",
            "-id",
            "Session-1",
            "sess1on-1",
            "session-a b",
            "session-ä",
            "session-a/b",
            too_long.as_str(),
        ] {
            assert!(
                matches!(StreamName::parse(bad), Err(StoreError::InvalidStreamName(s)) if s == bad),
                "{bad:?} must be rejected"
            );
        }
        assert!(StreamName::new("party", "").is_err());
        assert!(StreamName::parse(format!("session-{}", "x".repeat(128))).is_ok());
    }
}
