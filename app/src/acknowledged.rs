//! An event store wrapper that records every event whose append it acknowledged, and
//! where (`mpc load` checks afterwards that each one is in the log at that place).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use mpc_store::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamName,
};
use tokio::sync::watch;
use uuid::Uuid;

/// The event store, recording every event whose append it acknowledged and where.
pub struct Acknowledged {
    inner: Arc<dyn EventStore>,
    events: Mutex<HashMap<Uuid, (StreamName, u64)>>,
    appends: AtomicU64,
}

impl Acknowledged {
    pub fn new(inner: Arc<dyn EventStore>) -> Self {
        Self {
            inner,
            events: Mutex::new(HashMap::new()),
            appends: AtomicU64::new(0),
        }
    }

    /// Every acknowledged event: its stream and version.
    pub fn events(&self) -> HashMap<Uuid, (StreamName, u64)> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many appends were acknowledged.
    pub fn appends(&self) -> u64 {
        self.appends.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl EventStore for Acknowledged {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        let outcome = self.inner.append(stream, expected, events).await?;
        let first = outcome.stream_version + 1 - ids.len() as u64;
        let mut acked = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        for (i, id) in ids.into_iter().enumerate() {
            acked.insert(id, (stream.clone(), first + i as u64));
        }
        self.appends.fetch_add(1, Ordering::Relaxed);
        Ok(outcome)
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from_version).await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, limit).await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        self.inner.head().await
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.inner.watch_head()
    }
}
