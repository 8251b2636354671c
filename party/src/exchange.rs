//! One run's messages: what a party sends and accepts in a session.
//!
//! An [`Exchange`] owns the party's inbox of one session. Around the engine's
//! protocol rounds it runs two rounds of the platform's own, each a broadcast that
//! every other participant must send and that must equal this party's:
//!
//! - [`VIEW_ROUND`], before any protocol message: the execution id. A participant
//!   whose view of the session differs (the coordinator showed it other
//!   participants, keys, approvals or a repair) is named before anything
//!   secret-bearing (keygen fragments, refresh fragments, repair terms, signing
//!   messages) leaves this party.
//! - [`ATTEST_ROUND`], after a refresh stored its new share: the refreshed key's
//!   digest. A party retires its old share only once it holds every holder's
//!   attestation, so no lie about how the session ended can leave a generation with
//!   fewer than all its shares.
//!
//! What a run reads is bounded by the transport's [`SessionBudget`], counted here
//! too (a party does not rely on the bus to have counted): the bytes of every
//! envelope that arrives, and the envelopes of each sender whose signature verified.
//! A run over the bytes ends; a verified sender over its count is named.
//!
//! Every envelope is signed with its sender's identity key over session, round,
//! sender and payload, and each sender's key is the one the party checked against
//! its pinned roster: a broadcast carrying a digest is that holder's signed
//! attestation, which the coordinator relays and cannot forge.

use std::collections::{BTreeSet, VecDeque};

use mpc_crypto::{EnvelopeError, Header, Opened, PartyIdentity, SeenMessages};
use mpc_engine::{EngineError, Outgoing, PartyIndex, To};
use mpc_events::{PartyId, SessionView};
use mpc_schemas::{Envelope, Recipient};
use mpc_transport::{Inbox, SessionBudget, Transport, TransportError, Usage};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::node::PartyError;

/// The round of the view commitments (engine protocols number theirs from 1).
pub(crate) const VIEW_ROUND: u16 = 0;
/// The round of the refresh attestations (after every engine round).
pub(crate) const ATTEST_ROUND: u16 = u16::MAX;

/// Where a run is: which arrived messages are still of use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the view commitments: protocol messages of faster peers are held.
    Agreeing,
    /// Running the engine: attestations of faster peers are held.
    Protocol,
    /// Collecting attestations: only they are of use.
    Attesting,
}

impl Phase {
    fn keeps(self, round: u16) -> bool {
        match self {
            Phase::Agreeing => true,
            Phase::Protocol => round != VIEW_ROUND,
            Phase::Attesting => round == ATTEST_ROUND,
        }
    }
}

/// One party's messages of one session run.
pub(crate) struct Exchange<'a> {
    me: &'a PartyId,
    identity: &'a PartyIdentity,
    transport: &'a dyn Transport,
    view: &'a SessionView,
    inbox: Inbox,
    seen: SeenMessages,
    /// Payload bytes of every envelope that arrived, verified or not.
    arrived: u64,
    /// What each verified sender sent.
    usage: Usage,
    phase: Phase,
    /// Messages that arrived before this party reached their round, with their
    /// senders' indices.
    held: VecDeque<(u8, Opened)>,
}

impl<'a> Exchange<'a> {
    pub(crate) fn new(
        me: &'a PartyId,
        identity: &'a PartyIdentity,
        transport: &'a dyn Transport,
        view: &'a SessionView,
        inbox: Inbox,
    ) -> Self {
        Self {
            me,
            identity,
            transport,
            view,
            inbox,
            seen: SeenMessages::default(),
            arrived: 0,
            usage: Usage::default(),
            phase: Phase::Agreeing,
            held: VecDeque::new(),
        }
    }

    /// Broadcasts this party's execution id and waits for every other
    /// participant's; a different one aborts the run naming its sender. Only then
    /// may the engine's messages go out.
    pub(crate) async fn agree_on_view(
        &mut self,
        execution_id: &[u8; 32],
    ) -> Result<(), PartyError> {
        self.phase = Phase::Agreeing;
        self.agree(VIEW_ROUND, execution_id, "its view of the session")
            .await?;
        self.phase = Phase::Protocol;
        Ok(())
    }

    /// Broadcasts this party's attestation of the refreshed key (`digest`) and waits
    /// for every other participant's; a different one aborts naming its sender.
    pub(crate) async fn attest(&mut self, digest: &[u8; 32]) -> Result<(), PartyError> {
        self.phase = Phase::Attesting;
        self.agree(ATTEST_ROUND, digest, "its attestation of the refreshed key")
            .await
    }

    /// The next protocol message: one held earlier, else the next that arrives.
    pub(crate) async fn next(&mut self) -> Result<(u8, Opened), PartyError> {
        let at = self.held.iter().position(|(_, m)| is_protocol(m.round));
        if let Some(held) = at.and_then(|at| self.held.remove(at)) {
            return Ok(held);
        }
        loop {
            let (from, message) = self.receive().await?;
            if is_protocol(message.round) {
                return Ok((from, message));
            }
            self.hold(from, message);
        }
    }

    /// Seals each message (signed; point-to-point ones encrypted to the recipient's
    /// registered key) and publishes it.
    pub(crate) async fn send(&mut self, messages: Vec<Outgoing>) -> Result<(), PartyError> {
        for m in messages {
            let plaintext = Zeroizing::new(m.payload);
            let (recipient, recipient_key) = match m.to {
                To::All => (Recipient::Broadcast, None),
                To::One(i) => {
                    let p = self
                        .view
                        .party_at(i.get())
                        .ok_or(EngineError::InvalidParameters(
                            mpc_engine::ParameterError::NoParticipant { index: i },
                        ))?;
                    (Recipient::Party(p.party_id.clone()), Some(&p.identity))
                }
            };
            let header = Header {
                message_id: Uuid::now_v7(),
                session_id: self.view.session_id,
                round: m.round,
                sender: self.me.clone(),
                recipient,
            };
            let envelope = mpc_crypto::seal(self.identity, header, recipient_key, &plaintext)
                .map_err(|e| match (e, m.to) {
                    // A peer registered a key nobody can encrypt to: blame it.
                    (EnvelopeError::Encrypt, To::One(i)) => {
                        PartyError::Engine(EngineError::Aborted {
                            culprit: Some(i),
                            ban: false,
                            detail: format!("party {i} registered an unusable encryption key"),
                        })
                    }
                    (e, _) => e.into(),
                })?;
            self.transport.publish(&envelope).await?;
        }
        Ok(())
    }

    async fn agree(
        &mut self,
        round: u16,
        value: &[u8; 32],
        what: &'static str,
    ) -> Result<(), PartyError> {
        self.send(vec![Outgoing {
            to: To::All,
            round,
            payload: value.to_vec(),
        }])
        .await?;
        let mut missing: BTreeSet<u8> = self
            .view
            .participants
            .iter()
            .filter(|(_, p)| p.party_id != *self.me)
            .map(|(i, _)| *i)
            .collect();
        let mut early = std::mem::take(&mut self.held);
        while !missing.is_empty() {
            let at = early.iter().position(|(_, m)| m.round == round);
            let (from, message) = match at.and_then(|at| early.remove(at)) {
                Some(held) => held,
                None => self.receive().await?,
            };
            if message.round != round {
                self.hold(from, message);
                continue;
            }
            if !message.broadcast || message.payload.as_slice() != value {
                return Err(EngineError::Aborted {
                    culprit: PartyIndex::new(from).ok(),
                    ban: false,
                    detail: format!(
                        "{} sent {what}, and it differs from this party's",
                        message.sender
                    ),
                }
                .into());
            }
            missing.remove(&from);
        }
        for (from, message) in early {
            self.hold(from, message);
        }
        Ok(())
    }

    fn hold(&mut self, from: u8, message: Opened) {
        if self.phase.keeps(message.round) {
            self.held.push_back((from, message));
        }
    }

    /// The next envelope that verifies (signature first), is for this run and
    /// decrypts, with its sender's index. Envelopes that fail are dropped with a
    /// warning (a forger on the bus cannot end a run), except a participant's
    /// signed one this party cannot decrypt, which aborts the run naming it. Past the
    /// [`SessionBudget`] the run ends: naming a verified sender over its count, or,
    /// over the bytes, naming nobody (unverified senders may be forged).
    async fn receive(&mut self) -> Result<(u8, Opened), PartyError> {
        let budget = SessionBudget::DEFAULT;
        loop {
            let envelope = match self.inbox.next().await {
                Some(envelope) => envelope?,
                None => return Err(PartyError::Timeout),
            };
            self.arrived = self
                .arrived
                .saturating_add(u64::try_from(envelope.payload.len()).unwrap_or(u64::MAX));
            if self.arrived > budget.bytes {
                return Err(TransportError::SessionBytes {
                    session: self.view.session_id,
                    max: budget.bytes,
                }
                .into());
            }
            match self.accept(&envelope) {
                Ok(accepted) => {
                    if let Err(over) = self.usage.admit(&budget, &envelope) {
                        return Err(EngineError::Aborted {
                            culprit: PartyIndex::new(accepted.0).ok(),
                            ban: false,
                            detail: over.to_string(),
                        }
                        .into());
                    }
                    return Ok(accepted);
                }
                // The sender's signature verified before decryption: the sender
                // sealed a body this party cannot open, itself or because its view
                // showed another key for this party.
                Err(EnvelopeError::Undecryptable) => {
                    return Err(EngineError::Aborted {
                        culprit: self
                            .view
                            .index_of(&envelope.sender)
                            .and_then(|i| PartyIndex::new(i).ok()),
                        ban: false,
                        detail: format!(
                            "{} sent a signed message this party cannot decrypt",
                            envelope.sender
                        ),
                    }
                    .into());
                }
                Err(error) => tracing::warn!(
                    party = %self.me,
                    session = %self.view.session_id,
                    sender = %envelope.sender,
                    message_id = %envelope.message_id,
                    round = envelope.round,
                    %error,
                    "dropped an envelope"
                ),
            }
        }
    }

    /// Verifies (signature first), checks and decrypts one arrived envelope: its
    /// sender must be another participant, its session and recipient ours, and its
    /// message id new in this run.
    fn accept(&mut self, envelope: &Envelope) -> Result<(u8, Opened), EnvelopeError> {
        let (from, sender) = self
            .view
            .participants
            .iter()
            .find(|(_, p)| p.party_id == envelope.sender)
            .ok_or_else(|| EnvelopeError::UnknownSender(envelope.sender.clone()))?;
        let opened = mpc_crypto::open(
            envelope,
            self.view.session_id,
            self.me,
            self.identity,
            &sender.identity,
        )?;
        self.seen.admit(opened.message_id)?;
        Ok((*from, opened))
    }
}

fn is_protocol(round: u16) -> bool {
    round != VIEW_ROUND && round != ATTEST_ROUND
}
