//! Closing finished sessions on the transport.
//!
//! A session's envelopes stay in the transport until [`Transport::close_session`]:
//! the in-process transport keeps its whole log in memory, and with Kafka the close
//! marker is what ends remote inboxes. [`close_finished_sessions`] follows the event
//! store and closes every session that reaches a terminal state (completed, failed,
//! expired — by a report, an operator's close or its deadline) a grace period after
//! that event, so that a party still reading the last round's envelopes (a signing
//! session completes on the first verified signature) can finish. It starts at a
//! given position, so sessions that ended while no coordinator ran are closed too.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mpc_events::{SessionId, stream};
use mpc_schemas::stored::session;
use mpc_store::{EventStore, RecordedEvent, subscribe};
use mpc_transport::Transport;

/// How long a finished session's envelopes stay readable before the transport closes
/// the session.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// How long [`close_finished_sessions`] waits before reading again after a store
/// error.
const READ_RETRY: Duration = Duration::from_secs(1);

/// The session whose stream `event` ended, if it is a terminal session event.
pub fn finished_session(event: &RecordedEvent) -> Option<SessionId> {
    let terminal = session::ENDING_EVENT_TYPES.contains(&event.event_type.as_str());
    if !terminal || event.stream.category() != stream::SESSION {
        return None;
    }
    let (_, id) = event.stream.as_str().split_once('-')?;
    id.parse().ok()
}

/// Closes, `grace` after its terminal event, the transport session of every session
/// that ends after store position `after`; runs for ever. A store error is logged and
/// the events are read again from the last one seen; a failed close is logged (the
/// envelopes stay until the process ends).
pub async fn close_finished_sessions(
    store: Arc<dyn EventStore>,
    transport: Arc<dyn Transport>,
    mut after: u64,
    grace: Duration,
) {
    loop {
        let mut events = subscribe(Arc::clone(&store), after);
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    after = event.position;
                    if let Some(session) = finished_session(&event) {
                        let transport = Arc::clone(&transport);
                        tokio::spawn(async move {
                            tokio::time::sleep(grace).await;
                            if let Err(error) = transport.close_session(session).await {
                                tracing::warn!(%session, %error,
                                    "cannot close a finished session's transport log");
                            }
                        });
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, after, retry_in = ?READ_RETRY,
                        "cannot read the events of finished sessions");
                    break;
                }
            }
        }
        tokio::time::sleep(READ_RETRY).await;
    }
}
