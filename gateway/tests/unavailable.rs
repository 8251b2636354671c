//! An event store outage: the gateway answers 503 `store_unavailable`, records
//! nothing, and a party's `GatewayClient` reads that as "unreachable" (a call it may
//! repeat), not as a refusal. Once the store is back, the same call succeeds.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use common::{SECRET, expect_error, keygen_body, start_over};
use mpc_events::{PartyId, SessionId};
use mpc_gateway::JwtKeys;
use mpc_party::{CoordinatorClient, CoordinatorError, GatewayClient};
use mpc_store::{
    AppendOutcome, EventStore, ExpectedVersion, NewEvent, RecordedEvent, SqliteStore, StoreError,
    StreamName,
};
use reqwest::StatusCode;
use tokio::sync::watch;

/// An SQLite store that can be taken down: every call then fails as a lost
/// database connection does.
struct Outage {
    inner: SqliteStore,
    down: AtomicBool,
}

impl Outage {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Backend("connection refused".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl EventStore for Outage {
    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        self.check()?;
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check()?;
        self.inner.read_stream(stream, from_version).await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check()?;
        self.inner.read_all(after, limit).await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.head().await
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.inner.watch_head()
    }
}

#[actix_web::test]
async fn a_store_outage_answers_503_records_nothing_and_the_call_succeeds_once_it_is_back() {
    let store = Arc::new(Outage {
        inner: SqliteStore::in_memory().await.unwrap(),
        down: AtomicBool::new(false),
    });
    let gw = start_over(store.clone(), JwtKeys::hs256(SECRET).unwrap(), |_| {});
    let created = gw.create(&keygen_body()).await;
    let sid = created.session_id.as_str();
    let session: SessionId = sid.parse().unwrap();
    let server: PartyId = "server".parse().unwrap();
    let client = GatewayClient::new(&gw.base).unwrap();
    let head = store.inner.head().await.unwrap();

    store.down.store(true, Ordering::SeqCst);
    let resp = gw.join(sid, "device", &created.join_tokens["device"]).await;
    expect_error(resp, StatusCode::SERVICE_UNAVAILABLE, "store_unavailable").await;
    let seen = client
        .join(session, &server, &created.join_tokens["server"])
        .await;
    assert!(
        matches!(seen, Err(CoordinatorError::Unreachable(_))),
        "{seen:?}"
    );
    assert_eq!(store.inner.head().await.unwrap(), head, "nothing recorded");

    store.down.store(false, Ordering::SeqCst);
    let resp = gw.join(sid, "device", &created.join_tokens["device"]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let view = client
        .join(session, &server, &created.join_tokens["server"])
        .await
        .unwrap();
    assert_eq!(view.session_id, session);
    // A refusal stays a refusal: the spent token is not "unreachable".
    let again = client
        .join(session, &server, &created.join_tokens["server"])
        .await;
    assert!(
        matches!(again, Err(CoordinatorError::Refused(_))),
        "{again:?}"
    );
}
