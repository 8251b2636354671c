//! A catch-up-then-live subscription over any [`EventStore`].

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use tokio::sync::watch;

use crate::port::{EventStore, RecordedEvent, StoreError};

/// Events fetched per [`EventStore::read_all`] call.
pub const SUBSCRIBE_BATCH: usize = 500;

/// Every event with position > `after`, in position order, first those already stored
/// and then new ones as they are appended; the stream never ends on its own.
///
/// It reads in batches of [`SUBSCRIBE_BATCH`] and, once caught up, waits on
/// [`EventStore::watch_head`] (no polling). The head is marked seen *before* each read,
/// so an append that lands between a read and the wait wakes the wait at once.
///
/// A read error is yielded once and ends the stream: resubscribe from the position of
/// the last event you processed.
pub fn subscribe(
    store: Arc<dyn EventStore>,
    after: u64,
) -> BoxStream<'static, Result<RecordedEvent, StoreError>> {
    let state = Subscription {
        head: store.watch_head(),
        store,
        after,
        buffered: VecDeque::new(),
        failed: false,
    };
    stream::unfold(state, Subscription::next).boxed()
}

struct Subscription {
    store: Arc<dyn EventStore>,
    head: watch::Receiver<u64>,
    /// Position of the last event read from the store.
    after: u64,
    buffered: VecDeque<RecordedEvent>,
    failed: bool,
}

impl Subscription {
    async fn next(mut self) -> Option<(Result<RecordedEvent, StoreError>, Self)> {
        loop {
            if let Some(event) = self.buffered.pop_front() {
                return Some((Ok(event), self));
            }
            if self.failed {
                return None;
            }
            self.head.mark_unchanged();
            match self.store.read_all(self.after, SUBSCRIBE_BATCH).await {
                Ok(batch) => match batch.last() {
                    Some(last) => {
                        self.after = last.position;
                        self.buffered.extend(batch);
                    }
                    // Caught up. The sender lives as long as the store, which we hold,
                    // so `changed` only fails if the adapter drops it: end quietly then.
                    None => self.head.changed().await.ok()?,
                },
                Err(e) => {
                    self.failed = true;
                    return Some((Err(e), self));
                }
            }
        }
    }
}
