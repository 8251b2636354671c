//! The transport contract suite against [`InProcessTransport`].

mod contract;

use std::sync::Arc;

use mpc_transport::{InProcessTransport, Transport};

struct InProcessHarness(InProcessTransport);

impl contract::Harness for InProcessHarness {
    async fn create() -> Self {
        Self(InProcessTransport::new())
    }

    fn transport(&self) -> Arc<dyn Transport> {
        Arc::new(self.0.clone())
    }
}

contract::transport_contract!(InProcessHarness);
