//! A party's inbox of one session: the delivery rules of the port (session,
//! addressee, once per message id), applied in one place to whatever stream of the
//! session's log an adapter provides.

use std::collections::HashSet;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::ready;
use futures::stream::{BoxStream, Stream, StreamExt, TryStreamExt};
use mpc_events::{PartyId, SessionId};
use mpc_schemas::Envelope;

use crate::error::TransportError;

/// One party's view of one session: the envelopes addressed to it, in publish order,
/// each message id once.
///
/// Adapters build every inbox with [`Inbox::new`], which applies the port's delivery
/// rules to whatever the adapter's log yields, so no adapter can forget them.
pub struct Inbox {
    session: SessionId,
    party: PartyId,
    envelopes: BoxStream<'static, Result<Envelope, TransportError>>,
}

impl Inbox {
    /// Wraps an adapter's stream of a session's log. The inbox keeps only envelopes of
    /// `session` that [`Envelope::is_for`] `party`, and drops any envelope whose
    /// message id it has already yielded (at-least-once logs deliver duplicates).
    /// Errors pass through unchanged.
    pub fn new<S>(session: SessionId, party: PartyId, log: S) -> Self
    where
        S: Stream<Item = Result<Envelope, TransportError>> + Send + 'static,
    {
        let mut seen = HashSet::new();
        let addressee = party.clone();
        let envelopes = log
            .try_filter(move |envelope| {
                ready(
                    envelope.session_id == session
                        && envelope.is_for(&addressee)
                        && seen.insert(envelope.message_id),
                )
            })
            .boxed();
        Self {
            session,
            party,
            envelopes,
        }
    }

    /// The next envelope; `None` once the session is closed (or the transport is gone).
    pub async fn next(&mut self) -> Option<Result<Envelope, TransportError>> {
        self.envelopes.next().await
    }

    pub fn session(&self) -> SessionId {
        self.session
    }

    pub fn party(&self) -> &PartyId {
        &self.party
    }
}

impl Stream for Inbox {
    type Item = Result<Envelope, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.envelopes.poll_next_unpin(cx)
    }
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("session", &self.session)
            .field("party", &self.party)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use futures::stream;
    use mpc_schemas::Recipient;
    use uuid::Uuid;

    use super::*;

    fn party(name: &str) -> PartyId {
        PartyId::parse(name).unwrap()
    }

    fn envelope(session: SessionId, id: u128, recipient: Recipient) -> Envelope {
        Envelope {
            message_id: Uuid::from_u128(id),
            session_id: session,
            round: 1,
            sender: party("a"),
            recipient,
            payload: id.to_be_bytes().to_vec(),
            signature: [0; 64],
        }
    }

    #[tokio::test]
    async fn an_inbox_keeps_its_own_envelopes_once_and_passes_errors() {
        let (session, other) = (SessionId::new(), SessionId::new());
        let to_b = Recipient::Party(party("b"));
        let log = vec![
            Ok(envelope(session, 1, to_b.clone())),
            Ok(envelope(session, 2, Recipient::Party(party("c")))),
            Ok(envelope(other, 3, to_b.clone())),
            Ok(envelope(session, 1, to_b.clone())),
            Err(TransportError::Backend("hiccup".into())),
            Ok(envelope(session, 4, Recipient::Broadcast)),
            Ok(envelope(session, 4, Recipient::Broadcast)),
        ];
        let mut inbox = Inbox::new(session, party("b"), stream::iter(log));
        assert_eq!(inbox.session(), session);
        assert_eq!(inbox.party(), &party("b"));
        let got: Vec<_> = (&mut inbox).collect().await;
        assert_eq!(
            got,
            vec![
                Ok(envelope(session, 1, to_b)),
                Err(TransportError::Backend("hiccup".into())),
                Ok(envelope(session, 4, Recipient::Broadcast)),
            ]
        );
        assert_eq!(inbox.next().await, None);
    }

    #[tokio::test]
    async fn a_sender_never_receives_its_own_broadcast() {
        let session = SessionId::new();
        let log = stream::iter([Ok(envelope(session, 1, Recipient::Broadcast))]);
        let mut inbox = Inbox::new(session, party("a"), log);
        assert_eq!(inbox.next().await, None);
    }
}
