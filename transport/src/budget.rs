//! What one session may cost a transport: [`SessionBudget`], and [`Usage`], the one
//! count of it that every adapter (and a party reading its inbox) keeps.
//!
//! A participant's protocol needs a bounded number of envelopes (a few per round and
//! peer) of bounded size, so anything far beyond that is abuse: one participant
//! filling a shared log, a broker or a gateway's memory. The budget counts payload
//! bytes per session and envelopes per sender; the first envelope over either is
//! refused, and nothing of it is kept.

use std::collections::HashMap;

use mpc_events::{PartyId, SessionId};
use mpc_schemas::Envelope;

use crate::error::TransportError;

/// Limits on one session's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionBudget {
    /// Payload bytes the whole session may carry.
    pub bytes: u64,
    /// Envelopes one sender may publish in the session.
    pub envelopes_per_sender: u32,
}

impl SessionBudget {
    /// 256 MiB and 1 024 envelopes per sender. Signing payload grows as about
    /// 82 KB × t(t−1) (164 KB, 493 KB and 986 KB measured for t = 2, 3, 4 in
    /// `docs/performance.md`), so about 31 MB for the largest signer set
    /// ([`mpc_events::MAX_PARTIES`] = 20): the budget is 8× that, and 64 of the
    /// largest envelopes. A participant sends at most one envelope per round and
    /// peer (or one broadcast), so a handful of rounds at 20 parties stays far under
    /// 1 024.
    pub const DEFAULT: Self = Self {
        bytes: 256 * 1024 * 1024,
        envelopes_per_sender: 1024,
    };
}

impl Default for SessionBudget {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What one session has used of its [`SessionBudget`].
#[derive(Debug, Clone, Default)]
pub struct Usage {
    bytes: u64,
    per_sender: HashMap<PartyId, u32>,
}

impl Usage {
    /// Counts `envelope` against `budget`, or says which limit it would break and
    /// counts nothing.
    pub fn admit(
        &mut self,
        budget: &SessionBudget,
        envelope: &Envelope,
    ) -> Result<(), TransportError> {
        let session: SessionId = envelope.session_id;
        let bytes = self
            .bytes
            .saturating_add(u64::try_from(envelope.payload.len()).unwrap_or(u64::MAX));
        if bytes > budget.bytes {
            return Err(TransportError::SessionBytes {
                session,
                max: budget.bytes,
            });
        }
        let sent = self.per_sender.get(&envelope.sender).copied().unwrap_or(0);
        if sent >= budget.envelopes_per_sender {
            return Err(TransportError::SenderEnvelopes {
                session,
                sender: envelope.sender.clone(),
                max: budget.envelopes_per_sender,
            });
        }
        self.bytes = bytes;
        self.per_sender.insert(envelope.sender.clone(), sent + 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use mpc_schemas::Recipient;
    use uuid::Uuid;

    use super::*;

    fn from(sender: &str, session: SessionId, size: usize) -> Envelope {
        Envelope {
            message_id: Uuid::now_v7(),
            session_id: session,
            round: 1,
            sender: PartyId::parse(sender).unwrap(),
            recipient: Recipient::Broadcast,
            payload: vec![0; size],
            signature: [0; 64],
        }
    }

    #[test]
    fn a_sender_over_its_count_is_refused_and_others_go_on() {
        let budget = SessionBudget {
            bytes: 1_000,
            envelopes_per_sender: 2,
        };
        let session = SessionId::new();
        let mut usage = Usage::default();
        usage.admit(&budget, &from("a", session, 1)).unwrap();
        usage.admit(&budget, &from("a", session, 1)).unwrap();
        assert_eq!(
            usage.admit(&budget, &from("a", session, 1)),
            Err(TransportError::SenderEnvelopes {
                session,
                sender: PartyId::parse("a").unwrap(),
                max: 2
            })
        );
        usage.admit(&budget, &from("b", session, 1)).unwrap();
    }

    #[test]
    fn the_envelope_that_would_cross_the_bytes_is_refused_and_not_counted() {
        let budget = SessionBudget {
            bytes: 100,
            envelopes_per_sender: 10,
        };
        let session = SessionId::new();
        let mut usage = Usage::default();
        usage.admit(&budget, &from("a", session, 60)).unwrap();
        assert_eq!(
            usage.admit(&budget, &from("b", session, 41)),
            Err(TransportError::SessionBytes { session, max: 100 })
        );
        usage.admit(&budget, &from("b", session, 40)).unwrap();
        assert!(usage.admit(&budget, &from("b", session, 1)).is_err());
    }
}
