//! The `DomainEventSink` contract: what every adapter must do. Each adapter's test file
//! implements [`Harness`] and instantiates the suite with `sink_contract!(Harness)`.

use std::sync::Arc;

use mpc_events::{
    KeyId, KeyPolicy, PartyId, PublicKey, SessionId, SessionKind, Threshold, Timestamp,
};
use mpc_outbox::DomainEventSink;
use mpc_schemas::DomainEvent;
use mpc_schemas::domain::{DomainData, FailureCode, KeyGenerated, SessionFailed};
use uuid::Uuid;

/// A fresh, empty destination and ways to look at it.
pub trait Harness: Sized {
    async fn create() -> Self;
    /// The sink under test.
    fn sink(&self) -> Arc<dyn DomainEventSink>;
    /// A new sink on the same destination, as after a process restart.
    async fn reopen(&self) -> Arc<dyn DomainEventSink>;
    /// Everything the destination holds, in order, as a consumer reads it.
    async fn published(&self) -> Vec<DomainEvent>;
}

/// Domain events at the given source positions, alternating between two types.
pub fn events(positions: &[u64]) -> Vec<DomainEvent> {
    positions
        .iter()
        .map(|&position| {
            let session = SessionId::new();
            let data = if position % 2 == 0 {
                let mut key = [0x5a; 33];
                key[0] = 0x03;
                DomainData::KeyGenerated(KeyGenerated {
                    key_id: KeyId::of_keygen(session),
                    public_key: PublicKey::from_slice(&key).expect("valid key bytes"),
                    threshold: Threshold::new(2, 2).expect("valid threshold"),
                    parties: vec![party("device"), party("server")],
                    policy: KeyPolicy::AnyRequest,
                })
            } else {
                DomainData::SessionFailed(SessionFailed {
                    session_id: session,
                    kind: SessionKind::Signing,
                    reason: FailureCode::Closed,
                    detail: Some(format!("closed at {position}")),
                    culprits: vec![],
                })
            };
            DomainEvent {
                event_id: Uuid::now_v7(),
                position,
                occurred_at: Timestamp::from_millis(1_795_000_000_000 + 7 * position as i64),
                correlation_id: Uuid::new_v4(),
                data,
            }
        })
        .collect()
}

fn party(name: &str) -> PartyId {
    PartyId::parse(name).expect("valid party id")
}

pub async fn a_new_sink_has_no_last_position<H: Harness>() {
    let h = H::create().await;
    assert_eq!(h.sink().last_position().await.unwrap(), None);
    assert!(h.published().await.is_empty());
}

pub async fn published_events_arrive_in_order_and_set_the_last_position<H: Harness>() {
    let h = H::create().await;
    let sink = h.sink();
    let first = events(&[3, 8, 9]);
    sink.publish(&first).await.unwrap();
    assert_eq!(sink.last_position().await.unwrap(), Some(9));
    let second = events(&[12, 20]);
    sink.publish(&second).await.unwrap();
    assert_eq!(sink.last_position().await.unwrap(), Some(20));
    let all: Vec<_> = first.into_iter().chain(second).collect();
    assert_eq!(h.published().await, all);
}

pub async fn an_empty_batch_changes_nothing<H: Harness>() {
    let h = H::create().await;
    let sink = h.sink();
    sink.publish(&[]).await.unwrap();
    assert_eq!(sink.last_position().await.unwrap(), None);
    let batch = events(&[4]);
    sink.publish(&batch).await.unwrap();
    sink.publish(&[]).await.unwrap();
    assert_eq!(sink.last_position().await.unwrap(), Some(4));
    assert_eq!(h.published().await, batch);
}

pub async fn a_reopened_sink_knows_where_the_last_one_stopped<H: Harness>() {
    let h = H::create().await;
    let batch = events(&[5, 6, 11]);
    h.sink().publish(&batch).await.unwrap();
    let reopened = h.reopen().await;
    assert_eq!(reopened.last_position().await.unwrap(), Some(11));
    let more = events(&[14]);
    reopened.publish(&more).await.unwrap();
    assert_eq!(h.sink().last_position().await.unwrap(), Some(14));
    assert_eq!(h.published().await.len(), 4);
}

pub async fn republished_events_are_kept_as_duplicates_with_the_same_id<H: Harness>() {
    let h = H::create().await;
    let batch = events(&[1, 2]);
    h.sink().publish(&batch).await.unwrap();
    h.sink().publish(&batch[1..]).await.unwrap();
    let published = h.published().await;
    assert_eq!(published.len(), 3);
    assert_eq!(published[2].event_id, batch[1].event_id);
    assert_eq!(h.sink().last_position().await.unwrap(), Some(2));
}

/// Instantiates every contract test for a harness type.
macro_rules! sink_contract {
    ($harness:ty) => {
        mod sink_contract {
            use super::*;

            #[tokio::test]
            async fn a_new_sink_has_no_last_position() {
                contract::a_new_sink_has_no_last_position::<$harness>().await;
            }

            #[tokio::test]
            async fn published_events_arrive_in_order_and_set_the_last_position() {
                contract::published_events_arrive_in_order_and_set_the_last_position::<$harness>()
                    .await;
            }

            #[tokio::test]
            async fn an_empty_batch_changes_nothing() {
                contract::an_empty_batch_changes_nothing::<$harness>().await;
            }

            #[tokio::test]
            async fn a_reopened_sink_knows_where_the_last_one_stopped() {
                contract::a_reopened_sink_knows_where_the_last_one_stopped::<$harness>().await;
            }

            #[tokio::test]
            async fn republished_events_are_kept_as_duplicates_with_the_same_id() {
                contract::republished_events_are_kept_as_duplicates_with_the_same_id::<$harness>()
                    .await;
            }
        }
    };
}
pub(crate) use sink_contract;
