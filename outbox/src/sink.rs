//! The sink port and its in-memory adapter.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use mpc_schemas::DomainEvent;

use crate::OutboxError;

/// Where domain events go. Every adapter passes the contract suite in
/// `tests/contract/mod.rs`.
#[async_trait]
pub trait DomainEventSink: Send + Sync {
    /// Publishes `events` in order. When it returns `Ok`, all of them are durable. When
    /// it fails, a prefix of them may be durable, never an event without every event
    /// before it.
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), OutboxError>;

    /// The source position of the last durable domain event, `None` if there is none:
    /// the relay resumes after it.
    async fn last_position(&self) -> Result<Option<u64>, OutboxError>;
}

/// A sink that keeps events in memory. Cheap to clone: clones share the events.
#[derive(Debug, Clone, Default)]
pub struct InMemoryDomainSink {
    events: Arc<Mutex<Vec<DomainEvent>>>,
}

impl InMemoryDomainSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event published so far, in order.
    pub fn published(&self) -> Vec<DomainEvent> {
        self.events().clone()
    }

    fn events(&self) -> MutexGuard<'_, Vec<DomainEvent>> {
        // Every update is one `extend`: the list stays consistent if a holder panicked.
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl DomainEventSink for InMemoryDomainSink {
    async fn publish(&self, events: &[DomainEvent]) -> Result<(), OutboxError> {
        self.events().extend_from_slice(events);
        Ok(())
    }

    async fn last_position(&self) -> Result<Option<u64>, OutboxError> {
        Ok(self.events().last().map(|e| e.position))
    }
}
