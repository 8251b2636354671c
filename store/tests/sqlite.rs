//! The event-store contract suite against [`SqliteStore`], one fresh database file per
//! test.

mod contract;

use std::sync::Arc;

use mpc_store::EventStore;
use mpc_store::testing::TempSqlite;

struct SqliteHarness(TempSqlite);

impl contract::Harness for SqliteHarness {
    async fn create() -> Self {
        Self(TempSqlite::create().await)
    }

    fn store(&self) -> Arc<dyn EventStore> {
        Arc::new(self.0.store().clone())
    }

    async fn reopen(&mut self) {
        self.0.reopen().await;
    }
}

contract::event_store_contract!(SqliteHarness);
