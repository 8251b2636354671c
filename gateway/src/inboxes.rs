//! The inboxes of parties that read theirs over HTTP, kept open between polls.
//!
//! A poll (`GET /v1/sessions/{id}/messages?after=N`) resumes the caller's one open
//! [`Inbox`] of the session from where the previous poll left it, so a poll costs
//! what is new, not the whole log again, and on Kafka each party and session holds
//! one consumer, not one per poll. A poll that asks for an earlier position (a client
//! that lost an answer and asks again) reopens the inbox and skips to it; one that
//! asks for a later position (the gateway restarted) skips ahead.
//!
//! An inbox not polled for [`Inboxes::IDLE`] is dropped when the next one opens, and
//! a session's are dropped when it is closed or its log ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::FutureExt;
use mpc_events::{PartyId, SessionId};
use mpc_schemas::Envelope;
use mpc_transport::{Inbox, Transport, TransportError};
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::timeout_at;

/// One party's open inbox of one session and how far its polls have read.
pub(crate) struct Reader {
    inbox: Option<Inbox>,
    /// Envelopes of the inbox the caller has been given.
    position: u64,
}

/// What a poll found before its deadline.
pub(crate) enum Found {
    /// The first envelope after the asked position.
    Envelope(Envelope),
    /// Nothing before the deadline; poll again.
    Nothing,
    /// The session's log is closed.
    Ended,
}

impl Reader {
    /// Moves to `after` and waits until `deadline` for the envelope after it.
    pub(crate) async fn first_after(
        &mut self,
        transport: &dyn Transport,
        session: SessionId,
        party: &PartyId,
        after: u64,
        deadline: tokio::time::Instant,
    ) -> Result<Found, TransportError> {
        if self.inbox.is_none() || after < self.position {
            self.inbox = Some(transport.subscribe(session, party).await?);
            self.position = 0;
        }
        // Here `position <= after`: read up to and including envelope `after + 1`.
        loop {
            let Some(inbox) = self.inbox.as_mut() else {
                return Ok(Found::Ended);
            };
            let next = match timeout_at(deadline, inbox.next()).await {
                Err(_) => return Ok(Found::Nothing),
                Ok(None) => {
                    self.inbox = None;
                    return Ok(Found::Ended);
                }
                Ok(Some(Err(error))) => {
                    self.inbox = None;
                    return Err(error);
                }
                Ok(Some(Ok(envelope))) => envelope,
            };
            self.position += 1;
            if self.position > after {
                return Ok(Found::Envelope(next));
            }
        }
    }

    /// The next envelope if one is already there (no waiting).
    pub(crate) fn ready(&mut self) -> Option<Result<Envelope, TransportError>> {
        let next = self.inbox.as_mut()?.next().now_or_never()??;
        match &next {
            Ok(_) => self.position += 1,
            Err(_) => self.inbox = None,
        }
        Some(next)
    }

    /// How many envelopes the caller has been given.
    pub(crate) fn position(&self) -> u64 {
        self.position
    }
}

type Key = (SessionId, PartyId);
/// Each open reader and when it was last polled.
type Open = HashMap<Key, (Arc<AsyncMutex<Reader>>, Instant)>;

/// Every open [`Reader`], by session and party.
#[derive(Default)]
pub struct Inboxes {
    open: Mutex<Open>,
}

impl Inboxes {
    /// How long an inbox stays open without a poll.
    pub const IDLE: Duration = Duration::from_secs(120);

    /// `party`'s reader of `session`, opened (lazily, by its first poll) if need be.
    pub(crate) fn reader(&self, session: SessionId, party: &PartyId) -> Arc<AsyncMutex<Reader>> {
        let now = Instant::now();
        let mut open = self.open();
        let key = (session, party.clone());
        if let Some((reader, used)) = open.get_mut(&key) {
            *used = now;
            return Arc::clone(reader);
        }
        open.retain(|_, (_, used)| now.duration_since(*used) < Self::IDLE);
        let reader = Arc::new(AsyncMutex::new(Reader {
            inbox: None,
            position: 0,
        }));
        open.insert(key, (Arc::clone(&reader), now));
        reader
    }

    /// Drops `session`'s inboxes (closed, or its log ended).
    pub(crate) fn forget(&self, session: SessionId) {
        self.open().retain(|(s, _), _| *s != session);
    }

    /// How many inboxes are open: one per party and session being polled.
    pub fn open_count(&self) -> usize {
        self.open().len()
    }

    fn open(&self) -> MutexGuard<'_, Open> {
        // Every update is one insert or retain: the map stays consistent.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
