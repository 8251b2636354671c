//! The transport contract suite against [`InProcessTransport`].

mod contract;

use std::sync::Arc;

use mpc_transport::{InProcessTransport, SessionBudget, Transport};

struct InProcessHarness(InProcessTransport);

impl contract::Harness for InProcessHarness {
    async fn create_with(budget: SessionBudget) -> Self {
        Self(InProcessTransport::with_budget(budget))
    }

    fn transport(&self) -> Arc<dyn Transport> {
        Arc::new(self.0.clone())
    }
}

contract::transport_contract!(InProcessHarness);
