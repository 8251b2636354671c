//! The in-process adapter: the default when every party runs in one process.
//!
//! Each session is an append-only `Vec` of envelopes inside a `tokio::sync::watch`
//! channel: publishing pushes and wakes the session's inboxes, and each inbox keeps its
//! own cursor into the log. Nothing polls. Each log counts its [`Usage`] of the
//! transport's [`SessionBudget`], exactly: every publisher of the session goes
//! through it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use futures::stream;
use mpc_events::{PartyId, SessionId};
use mpc_schemas::Envelope;
use tokio::sync::watch;

use crate::budget::{SessionBudget, Usage};
use crate::error::TransportError;
use crate::inbox::Inbox;
use crate::port::{Transport, encode_for_transport};

/// In-memory transport. Cheap to clone: clones share the same sessions.
///
/// Closed sessions are remembered (16 bytes each) so that late publishes fail instead
/// of reopening them.
#[derive(Debug, Clone)]
pub struct InProcessTransport {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    budget: SessionBudget,
    sessions: Mutex<Sessions>,
}

#[derive(Debug, Default)]
struct Sessions {
    open: HashMap<SessionId, Arc<watch::Sender<Log>>>,
    closed: HashSet<SessionId>,
}

/// One session's log as its inboxes see it.
#[derive(Debug, Default)]
struct Log {
    envelopes: Vec<Envelope>,
    usage: Usage,
    closed: bool,
}

impl Default for InProcessTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessTransport {
    /// A transport whose sessions each get [`SessionBudget::DEFAULT`].
    pub fn new() -> Self {
        Self::with_budget(SessionBudget::DEFAULT)
    }

    /// A transport whose sessions each get `budget`; a publish over it fails with
    /// [`TransportError::SessionBytes`] or [`TransportError::SenderEnvelopes`].
    pub fn with_budget(budget: SessionBudget) -> Self {
        Self {
            inner: Arc::new(Inner {
                budget,
                sessions: Mutex::new(Sessions::default()),
            }),
        }
    }

    /// How many sessions hold a log now (opened by a publish or a subscription and
    /// not closed yet).
    pub fn open_sessions(&self) -> usize {
        self.sessions().open.len()
    }

    /// The log of an open session, created on first use.
    fn log(&self, session: SessionId) -> Result<Arc<watch::Sender<Log>>, TransportError> {
        let mut sessions = self.sessions();
        if sessions.closed.contains(&session) {
            return Err(TransportError::SessionClosed(session));
        }
        Ok(Arc::clone(sessions.open.entry(session).or_insert_with(
            || Arc::new(watch::Sender::new(Log::default())),
        )))
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        // The map stays consistent even if a holder panicked: every update is one
        // insert or remove.
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Transport for InProcessTransport {
    async fn publish(&self, envelope: &Envelope) -> Result<(), TransportError> {
        encode_for_transport(envelope)?;
        let session = envelope.session_id;
        let log = self.log(session)?;
        let budget = &self.inner.budget;
        let mut outcome = Ok(());
        log.send_if_modified(|log| {
            outcome = if log.closed {
                Err(TransportError::SessionClosed(session))
            } else {
                log.usage.admit(budget, envelope).map(|()| {
                    log.envelopes.push(envelope.clone());
                })
            };
            outcome.is_ok()
        });
        outcome
    }

    async fn subscribe(
        &self,
        session: SessionId,
        party: &PartyId,
    ) -> Result<Inbox, TransportError> {
        let cursor = Cursor {
            log: self.log(session)?.subscribe(),
            party: party.clone(),
            next: 0,
        };
        Ok(Inbox::new(
            session,
            party.clone(),
            stream::unfold(cursor, Cursor::next),
        ))
    }

    async fn ready(&self) -> Result<(), TransportError> {
        Ok(())
    }

    async fn close_session(&self, session: SessionId) -> Result<(), TransportError> {
        let log = {
            let mut sessions = self.sessions();
            sessions.closed.insert(session);
            sessions.open.remove(&session)
        };
        if let Some(log) = log {
            log.send_modify(|log| {
                log.closed = true;
                log.envelopes = Vec::new();
                log.usage = Usage::default();
            });
        }
        Ok(())
    }
}

/// One inbox's position in a session's log.
struct Cursor {
    log: watch::Receiver<Log>,
    party: PartyId,
    /// Index of the next envelope to look at.
    next: usize,
}

enum Step {
    Deliver(Envelope),
    Wait,
    End,
}

impl Cursor {
    async fn next(mut self) -> Option<(Result<Envelope, TransportError>, Self)> {
        loop {
            match self.step() {
                Step::Deliver(envelope) => return Some((Ok(envelope), self)),
                Step::End => return None,
                // A publish after `step` marked the log seen wakes this at once; an
                // error means the transport itself is gone.
                Step::Wait => self.log.changed().await.ok()?,
            }
        }
    }

    fn step(&mut self) -> Step {
        let log = self.log.borrow_and_update();
        if log.closed {
            return Step::End;
        }
        while let Some(envelope) = log.envelopes.get(self.next) {
            self.next += 1;
            if envelope.is_for(&self.party) {
                return Step::Deliver(envelope.clone());
            }
        }
        Step::Wait
    }
}

#[cfg(test)]
mod tests {
    use mpc_schemas::Recipient;
    use uuid::Uuid;

    use super::*;

    fn party(name: &str) -> PartyId {
        PartyId::parse(name).unwrap()
    }

    fn broadcast(session: SessionId) -> Envelope {
        Envelope {
            message_id: Uuid::now_v7(),
            session_id: session,
            round: 1,
            sender: party("a"),
            recipient: Recipient::Broadcast,
            payload: vec![1],
            signature: [0; 64],
        }
    }

    #[tokio::test]
    async fn a_session_over_budget_keeps_what_it_accepted() {
        let transport = InProcessTransport::with_budget(SessionBudget {
            bytes: 1_000,
            envelopes_per_sender: 3,
        });
        let session = SessionId::new();
        for _ in 0..3 {
            transport.publish(&broadcast(session)).await.unwrap();
        }
        assert_eq!(
            transport.publish(&broadcast(session)).await,
            Err(TransportError::SenderEnvelopes {
                session,
                sender: party("a"),
                max: 3
            })
        );
        transport
            .publish(&broadcast(SessionId::new()))
            .await
            .unwrap();
        let mut inbox = transport.subscribe(session, &party("b")).await.unwrap();
        for _ in 0..3 {
            assert!(inbox.next().await.unwrap().is_ok());
        }
        transport
            .publish(&Envelope {
                sender: party("c"),
                ..broadcast(session)
            })
            .await
            .unwrap();
        assert_eq!(
            inbox.next().await.unwrap().unwrap().sender,
            party("c"),
            "the refused envelope was not kept"
        );
    }

    #[tokio::test]
    async fn closing_a_session_frees_its_log() {
        let transport = InProcessTransport::new();
        let session = SessionId::new();
        transport.publish(&broadcast(session)).await.unwrap();
        let mut inbox = transport.subscribe(session, &party("b")).await.unwrap();
        transport.close_session(session).await.unwrap();
        assert_eq!(transport.open_sessions(), 0);
        assert_eq!(inbox.next().await, None, "the unread envelope is gone too");
    }

    #[tokio::test]
    async fn inboxes_end_when_the_transport_is_dropped() {
        let transport = InProcessTransport::new();
        let mut inbox = transport
            .subscribe(SessionId::new(), &party("b"))
            .await
            .unwrap();
        drop(transport);
        assert_eq!(inbox.next().await, None);
    }
}
