//! The relay: tails the event store and publishes the selected domain events.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use mpc_store::{EventStore, subscribe};

use crate::{DomainEventSink, OutboxError, domain_event};

/// Recorded events mapped per published batch, unless configured otherwise.
pub const DEFAULT_BATCH: usize = 100;

/// Relays domain events from an event store to a sink.
pub struct Outbox {
    store: Arc<dyn EventStore>,
    sink: Arc<dyn DomainEventSink>,
    batch: usize,
}

impl Outbox {
    pub fn new(store: Arc<dyn EventStore>, sink: Arc<dyn DomainEventSink>) -> Self {
        Self {
            store,
            sink,
            batch: DEFAULT_BATCH,
        }
    }

    /// At most `batch` (at least 1) recorded events are mapped into one publish.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Publishes every selected event after the sink's [`DomainEventSink::last_position`]
    /// and then follows new ones, until `shutdown` completes (`Ok`) or reading,
    /// mapping or publishing fails (`Err`; run again to resume, duplicates possible).
    ///
    /// Each batch is the recorded events already available, up to the batch size; its
    /// domain events are published, and acknowledged, before the next batch is read.
    /// Shutdown is checked between batches, so a batch in flight completes.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), OutboxError> {
        let after = self.sink.last_position().await?.unwrap_or(0);
        let mut recorded = subscribe(self.store.clone(), after).ready_chunks(self.batch);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let chunk = tokio::select! {
                biased;
                () = &mut shutdown => return Ok(()),
                chunk = recorded.next() => chunk,
            };
            // `subscribe` ends only if the store drops its head watch: nothing more to read.
            let Some(chunk) = chunk else {
                return Ok(());
            };
            let mut batch = Vec::new();
            for event in chunk {
                if let Some(domain) = domain_event(self.store.as_ref(), &event?).await? {
                    batch.push(domain);
                }
            }
            if !batch.is_empty() {
                self.sink.publish(&batch).await?;
            }
        }
    }
}
