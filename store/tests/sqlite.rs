//! The event-store contract suite against [`SqliteStore`], one fresh database file per
//! test.

mod contract;

use std::path::PathBuf;
use std::sync::Arc;

use mpc_store::{EventStore, SqliteStore};
use tempfile::TempDir;

struct SqliteHarness {
    // Declared before `dir`, so the store closes before the directory is removed.
    store: SqliteStore,
    path: PathBuf,
    _dir: TempDir,
}

impl contract::Harness for SqliteHarness {
    async fn create() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("events.sqlite");
        let store = SqliteStore::open(&path).await.expect("open the store");
        Self {
            store,
            path,
            _dir: dir,
        }
    }

    fn store(&self) -> Arc<dyn EventStore> {
        Arc::new(self.store.clone())
    }

    async fn reopen(&mut self) {
        self.store.close().await;
        self.store = SqliteStore::open(&self.path)
            .await
            .expect("reopen the store");
    }
}

contract::event_store_contract!(SqliteHarness);
