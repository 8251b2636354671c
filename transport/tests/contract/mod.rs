//! The transport contract: one suite that every adapter must pass.
//!
//! Each case is a `pub async fn` taking a fresh transport. An adapter runs the whole
//! suite with one line in its own test file:
//!
//! ```ignore
//! mod contract;
//! contract::transport_contract!(MyAdapterHarness);
//! ```
//!
//! where `MyAdapterHarness` implements [`Harness`] (e.g. owns a broker for the test).
//!
//! "Not delivered" is shown without timeouts: after the envelope that must not arrive,
//! a marker is published to the same inbox, and the marker must come first.

use std::sync::Arc;
use std::time::Duration;

use mpc_events::{PartyId, SessionId};
use mpc_schemas::{Envelope, MAX_ENVELOPE_BYTES, Recipient};
use mpc_transport::{Inbox, SessionBudget, Transport, TransportError};
use uuid::Uuid;

/// How the suite gets a transport from an adapter.
pub trait Harness: Sized + Send + Sync {
    /// A fresh transport used by this test only (plus whatever it needs, kept alive by
    /// the harness), whose sessions each get `budget`.
    fn create_with(budget: SessionBudget) -> impl Future<Output = Self> + Send;
    /// [`Harness::create_with`] the default budget.
    fn create() -> impl Future<Output = Self> + Send {
        Self::create_with(SessionBudget::DEFAULT)
    }
    /// The transport under test.
    fn transport(&self) -> Arc<dyn Transport>;
}

/// Instantiates every contract case as a `#[tokio::test]` for one [`Harness`].
macro_rules! transport_contract {
    ($harness:ty) => {
        $crate::contract::transport_contract!(@cases $harness;
            a_p2p_envelope_reaches_only_its_recipient,
            a_broadcast_reaches_everyone_but_its_sender,
            envelopes_published_before_subscribe_are_delivered,
            a_waiting_inbox_wakes_on_publish,
            order_is_preserved_per_session,
            concurrent_publishers_are_seen_in_one_order_by_everyone,
            each_inbox_reads_the_whole_log,
            a_duplicate_message_id_is_delivered_once,
            sessions_are_isolated,
            an_oversized_envelope_is_rejected,
            an_envelope_at_the_size_limit_is_delivered,
            close_session_ends_inboxes,
            a_closed_session_refuses_publish_and_subscribe,
            a_live_transport_is_ready,
        );
        $crate::contract::transport_contract!(@budget_cases $harness;
            a_sender_over_its_envelope_count_is_refused,
            a_session_over_its_bytes_is_refused,
        );
    };
    (@budget_cases $harness:ty; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = <$harness as $crate::contract::Harness>::create_with(
                    $crate::contract::TIGHT,
                )
                .await;
                $crate::contract::$case($crate::contract::Harness::transport(&harness)).await;
            }
        )+
    };
    (@cases $harness:ty; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = <$harness as $crate::contract::Harness>::create().await;
                $crate::contract::$case($crate::contract::Harness::transport(&harness)).await;
            }
        )+
    };
}
pub(crate) use transport_contract;

/// The budget of the budget cases: 3 envelopes per sender, 100 payload bytes per
/// session.
pub const TIGHT: SessionBudget = SessionBudget {
    bytes: 100,
    envelopes_per_sender: 3,
};

/// Upper bound for waiting on an inbox; reached only when the transport is broken.
const PATIENCE: Duration = Duration::from_secs(10);

fn party(name: &str) -> PartyId {
    PartyId::parse(name).expect("test party ids are valid")
}

fn envelope(session: SessionId, from: &str, to: Option<&str>, payload: &[u8]) -> Envelope {
    Envelope {
        message_id: Uuid::now_v7(),
        session_id: session,
        round: 1,
        sender: party(from),
        recipient: to.map_or(Recipient::Broadcast, |p| Recipient::Party(party(p))),
        payload: payload.to_vec(),
        signature: [0; 64],
    }
}

async fn publish(transport: &Arc<dyn Transport>, envelope: &Envelope) {
    transport.publish(envelope).await.expect("publish");
}

async fn inbox(transport: &Arc<dyn Transport>, session: SessionId, name: &str) -> Inbox {
    transport
        .subscribe(session, &party(name))
        .await
        .expect("subscribe")
}

async fn recv(inbox: &mut Inbox) -> Envelope {
    tokio::time::timeout(PATIENCE, inbox.next())
        .await
        .expect("an envelope must arrive")
        .expect("the inbox must not end")
        .expect("no transport error")
}

async fn assert_ended(inbox: &mut Inbox) {
    let next = tokio::time::timeout(PATIENCE, inbox.next())
        .await
        .expect("the inbox must end");
    assert!(
        next.is_none(),
        "expected the end of the inbox, got {next:?}"
    );
}

pub async fn a_p2p_envelope_reaches_only_its_recipient(transport: Arc<dyn Transport>) {
    let session = SessionId::new();
    let (mut a, mut b, mut c) = (
        inbox(&transport, session, "a").await,
        inbox(&transport, session, "b").await,
        inbox(&transport, session, "c").await,
    );
    let to_b = envelope(session, "a", Some("b"), b"for b");
    publish(&transport, &to_b).await;
    let marker_c = envelope(session, "b", Some("c"), b"marker c");
    let marker_a = envelope(session, "b", Some("a"), b"marker a");
    publish(&transport, &marker_c).await;
    publish(&transport, &marker_a).await;

    assert_eq!(recv(&mut b).await, to_b);
    assert_eq!(
        recv(&mut c).await,
        marker_c,
        "c must not see a's envelope to b"
    );
    assert_eq!(
        recv(&mut a).await,
        marker_a,
        "the sender does not get its p2p back"
    );
}

pub async fn a_broadcast_reaches_everyone_but_its_sender(transport: Arc<dyn Transport>) {
    let session = SessionId::new();
    let (mut a, mut b, mut c) = (
        inbox(&transport, session, "a").await,
        inbox(&transport, session, "b").await,
        inbox(&transport, session, "c").await,
    );
    let all = envelope(session, "a", None, b"hello all");
    publish(&transport, &all).await;
    let marker = envelope(session, "b", Some("a"), b"marker");
    publish(&transport, &marker).await;

    assert_eq!(recv(&mut b).await, all);
    assert_eq!(recv(&mut c).await, all);
    assert_eq!(
        recv(&mut a).await,
        marker,
        "a must not get its own broadcast"
    );
}

pub async fn envelopes_published_before_subscribe_are_delivered(transport: Arc<dyn Transport>) {
    let session = SessionId::new();
    let early = [
        envelope(session, "a", Some("b"), b"1"),
        envelope(session, "c", None, b"2"),
    ];
    for e in &early {
        publish(&transport, e).await;
    }
    let mut b = inbox(&transport, session, "b").await;
    let late = envelope(session, "a", Some("b"), b"3");
    publish(&transport, &late).await;
    assert_eq!(recv(&mut b).await, early[0]);
    assert_eq!(recv(&mut b).await, early[1]);
    assert_eq!(recv(&mut b).await, late);
}

pub async fn a_waiting_inbox_wakes_on_publish(transport: Arc<dyn Transport>) {
    let session = SessionId::new();
    let mut b = inbox(&transport, session, "b").await;
    let waiting = tokio::spawn(async move { recv(&mut b).await });
    tokio::task::yield_now().await;
    let e = envelope(session, "a", Some("b"), b"wake up");
    publish(&transport, &e).await;
    assert_eq!(waiting.await.expect("receiver task"), e);
}

pub async fn order_is_preserved_per_session(transport: Arc<dyn Transport>) {
    let session = SessionId::new();
    let mut c = inbox(&transport, session, "c").await;
    let mut sent = Vec::new();
    for round in 0..60_u16 {
        let from = ["a", "b", "d"][usize::from(round % 3)];
        let to = if round % 2 == 0 { None } else { Some("c") };
        let e = Envelope {
            round,
            ..envelope(session, from, to, &round.to_be_bytes())
        };
        publish(&transport, &e).await;
        sent.push(e);
    }
    for e in &sent {
        assert_eq!(&recv(&mut c).await, e);
    }
}

pub async fn concurrent_publishers_are_seen_in_one_order_by_everyone(
    transport: Arc<dyn Transport>,
) {
    let session = SessionId::new();
    let (mut x, mut y) = (
        inbox(&transport, session, "x").await,
        inbox(&transport, session, "y").await,
    );
    let publishers: Vec<_> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|from| {
            let transport = Arc::clone(&transport);
            tokio::spawn(async move {
                let mut sent = Vec::new();
                for n in 0..25_u8 {
                    let e = envelope(session, from, None, &[n]);
                    transport.publish(&e).await.expect("publish");
                    sent.push(e);
                }
                sent
            })
        })
        .collect();
    let mut sent = Vec::new();
    for publisher in publishers {
        sent.push(publisher.await.expect("publisher task"));
    }
    let mut seen_x = Vec::new();
    let mut seen_y = Vec::new();
    for _ in 0..100 {
        seen_x.push(recv(&mut x).await);
        seen_y.push(recv(&mut y).await);
    }
    assert_eq!(seen_x, seen_y, "everyone sees one order");
    for from_one in &sent {
        let order: Vec<_> = seen_x
            .iter()
            .filter(|e| e.sender == from_one[0].sender)
            .cloned()
            .collect();
        assert_eq!(&order, from_one, "each publisher's order is kept");
    }
}

pub async fn each_inbox_reads_the_whole_log(transport: Arc<dyn Transport>) {
    let session = SessionId::new();
    let first = envelope(session, "a", Some("b"), b"1");
    publish(&transport, &first).await;
    let mut one = inbox(&transport, session, "b").await;
    assert_eq!(recv(&mut one).await, first);
    let mut two = inbox(&transport, session, "b").await;
    assert_eq!(
        recv(&mut two).await,
        first,
        "a new inbox starts at the beginning"
    );
    let second = envelope(session, "a", Some("b"), b"2");
    publish(&transport, &second).await;
    assert_eq!(recv(&mut one).await, second);
    assert_eq!(recv(&mut two).await, second);
}

pub async fn a_duplicate_message_id_is_delivered_once(transport: Arc<dyn Transport>) {
    let session = SessionId::new();
    let mut b = inbox(&transport, session, "b").await;
    let original = envelope(session, "a", Some("b"), b"once");
    publish(&transport, &original).await;
    publish(&transport, &original).await;
    let replay = Envelope {
        payload: b"replayed with other bytes".to_vec(),
        ..original.clone()
    };
    publish(&transport, &replay).await;
    let marker = envelope(session, "a", Some("b"), b"marker");
    publish(&transport, &marker).await;

    assert_eq!(recv(&mut b).await, original);
    assert_eq!(recv(&mut b).await, marker, "duplicates must be dropped");
    let mut late = inbox(&transport, session, "b").await;
    assert_eq!(recv(&mut late).await, original);
    assert_eq!(recv(&mut late).await, marker);
}

pub async fn sessions_are_isolated(transport: Arc<dyn Transport>) {
    let (one, two) = (SessionId::new(), SessionId::new());
    let in_one = envelope(one, "a", Some("b"), b"one");
    publish(&transport, &in_one).await;
    let broadcast_one = envelope(one, "a", None, b"one for all");
    publish(&transport, &broadcast_one).await;
    let mut b_two = inbox(&transport, two, "b").await;
    let in_two = envelope(two, "a", Some("b"), b"two");
    publish(&transport, &in_two).await;

    assert_eq!(recv(&mut b_two).await, in_two);
    let mut b_one = inbox(&transport, one, "b").await;
    assert_eq!(recv(&mut b_one).await, in_one);
    assert_eq!(recv(&mut b_one).await, broadcast_one);

    transport.close_session(one).await.expect("close");
    let after = envelope(two, "c", Some("b"), b"still open");
    publish(&transport, &after).await;
    assert_eq!(
        recv(&mut b_two).await,
        after,
        "closing one session leaves others"
    );
}

pub async fn an_oversized_envelope_is_rejected(transport: Arc<dyn Transport>) {
    let session = SessionId::new();
    let mut b = inbox(&transport, session, "b").await;
    let huge = Envelope {
        payload: vec![7; MAX_ENVELOPE_BYTES],
        ..envelope(session, "a", Some("b"), b"")
    };
    match transport.publish(&huge).await {
        Err(TransportError::TooLarge { size, max }) => {
            assert_eq!(max, MAX_ENVELOPE_BYTES);
            assert!(size > max);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let marker = envelope(session, "a", Some("b"), b"marker");
    publish(&transport, &marker).await;
    assert_eq!(
        recv(&mut b).await,
        marker,
        "the oversized envelope must not arrive"
    );
}

pub async fn an_envelope_at_the_size_limit_is_delivered(transport: Arc<dyn Transport>) {
    let session = SessionId::new();
    let mut largest = envelope(session, "a", Some("b"), b"");
    let overhead = largest.encode().expect("encode").len() + 8;
    largest.payload = vec![9; MAX_ENVELOPE_BYTES - overhead];
    let size = largest.encode().expect("encode").len();
    assert!(size <= MAX_ENVELOPE_BYTES && size + 16 > MAX_ENVELOPE_BYTES);
    publish(&transport, &largest).await;
    let mut b = inbox(&transport, session, "b").await;
    assert_eq!(recv(&mut b).await, largest);
}

pub async fn close_session_ends_inboxes(transport: Arc<dyn Transport>) {
    let session = SessionId::new();
    let mut b = inbox(&transport, session, "b").await;
    let mut c = inbox(&transport, session, "c").await;
    let e = envelope(session, "a", Some("b"), b"before close");
    publish(&transport, &e).await;
    assert_eq!(recv(&mut b).await, e);
    let waiting = tokio::spawn(async move {
        assert_ended(&mut c).await;
    });
    tokio::task::yield_now().await;

    transport.close_session(session).await.expect("close");
    assert_ended(&mut b).await;
    waiting.await.expect("a waiting inbox ends too");
}

pub async fn a_closed_session_refuses_publish_and_subscribe(transport: Arc<dyn Transport>) {
    let session = SessionId::new();
    publish(&transport, &envelope(session, "a", Some("b"), b"1")).await;
    transport.close_session(session).await.expect("close");
    transport
        .close_session(session)
        .await
        .expect("closing twice is fine");
    assert_eq!(
        transport
            .publish(&envelope(session, "a", Some("b"), b"late"))
            .await,
        Err(TransportError::SessionClosed(session))
    );
    match transport.subscribe(session, &party("b")).await {
        Err(TransportError::SessionClosed(s)) => assert_eq!(s, session),
        other => panic!("expected SessionClosed, got {other:?}"),
    }
}

pub async fn a_sender_over_its_envelope_count_is_refused(transport: Arc<dyn Transport>) {
    let (session, other) = (SessionId::new(), SessionId::new());
    let mut b = inbox(&transport, session, "b").await;
    for _ in 0..TIGHT.envelopes_per_sender {
        publish(&transport, &envelope(session, "a", Some("b"), b"1")).await;
    }
    assert_eq!(
        transport
            .publish(&envelope(session, "a", Some("b"), b"one too many"))
            .await,
        Err(TransportError::SenderEnvelopes {
            session,
            sender: party("a"),
            max: TIGHT.envelopes_per_sender
        })
    );
    publish(
        &transport,
        &envelope(other, "a", Some("b"), b"another session"),
    )
    .await;
    let marker = envelope(session, "c", Some("b"), b"marker");
    publish(&transport, &marker).await;
    for _ in 0..TIGHT.envelopes_per_sender {
        assert_eq!(recv(&mut b).await.payload, b"1");
    }
    assert_eq!(
        recv(&mut b).await,
        marker,
        "the refused envelope must not arrive; other senders go on"
    );
}

pub async fn a_session_over_its_bytes_is_refused(transport: Arc<dyn Transport>) {
    let session = SessionId::new();
    let mut b = inbox(&transport, session, "b").await;
    let bytes = usize::try_from(TIGHT.bytes).expect("small");
    let most = envelope(session, "a", None, &vec![1; bytes - 10]);
    publish(&transport, &most).await;
    assert_eq!(
        transport
            .publish(&envelope(session, "c", None, &[2; 11]))
            .await,
        Err(TransportError::SessionBytes {
            session,
            max: TIGHT.bytes
        })
    );
    let last = envelope(session, "c", None, &[3; 10]);
    publish(&transport, &last).await;
    assert_eq!(recv(&mut b).await, most);
    assert_eq!(
        recv(&mut b).await,
        last,
        "the refused envelope must not arrive; what still fits goes on"
    );
}

/// A transport whose backend answers is ready, and stays ready while in use.
pub async fn a_live_transport_is_ready(transport: Arc<dyn Transport>) {
    transport.ready().await.expect("a live transport is ready");
    let session = SessionId::new();
    publish(&transport, &envelope(session, "a", Some("b"), b"x")).await;
    transport
        .ready()
        .await
        .expect("still ready after a publish");
}
