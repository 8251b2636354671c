//! The sink contract against [`InMemoryDomainSink`].

mod contract;

use std::sync::Arc;

use mpc_outbox::{DomainEventSink, InMemoryDomainSink};
use mpc_schemas::DomainEvent;

struct InMemoryHarness(InMemoryDomainSink);

impl contract::Harness for InMemoryHarness {
    async fn create() -> Self {
        Self(InMemoryDomainSink::new())
    }

    fn sink(&self) -> Arc<dyn DomainEventSink> {
        Arc::new(self.0.clone())
    }

    async fn reopen(&self) -> Arc<dyn DomainEventSink> {
        Arc::new(self.0.clone())
    }

    async fn published(&self) -> Vec<DomainEvent> {
        self.0.published()
    }
}

contract::sink_contract!(InMemoryHarness);
