//! The threshold-engine port: what the rest of the system asks of a threshold
//! ECDSA protocol implementation, with no adapter's types in it.
//!
//! [`ThresholdEngine`] starts runs (keygen, signing, refresh, recovery of a lost
//! share); each run is a message-driven [`Protocol`] state machine that takes
//! [`Incoming`] messages and yields [`Outgoing`] ones until it finishes with its
//! output ([`KeyShare`], a signature, [`Refreshed`]). Parties are addressed by
//! their 1-based [`PartyIndex`] in the key. Every failure is an [`EngineError`];
//! parameters that do not fit the key or each other are a [`ParameterError`],
//! refused before a run starts.

use std::fmt;

use mpc_events::{MessageHash, PublicKey, Signature};
use zeroize::Zeroizing;

/// 1-based position of a party in a key (its keygen participant order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartyIndex(u8);

impl PartyIndex {
    pub fn new(i: u8) -> Result<Self, EngineError> {
        if i == 0 || i > mpc_events::MAX_PARTIES {
            return Err(EngineError::InvalidParameters(
                ParameterError::PartyOutOfRange {
                    index: i,
                    max: mpc_events::MAX_PARTIES,
                },
            ));
        }
        Ok(Self(i))
    }
    pub fn get(&self) -> u8 {
        self.0
    }
}

impl fmt::Display for PartyIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Who an outgoing message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    /// Every other party of the run (the sender keeps its own copy internally).
    All,
    /// One party; the payload is secret to it and must be encrypted in transit.
    One(PartyIndex),
}

/// A message a run wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub round: u16,
    pub to: To,
    pub payload: Vec<u8>,
}

/// A message delivered to a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub round: u16,
    pub from: PartyIndex,
    /// True when it was sent to all parties, false when sent to us alone.
    pub broadcast: bool,
    pub payload: Vec<u8>,
}

/// Result of handling one incoming message.
#[derive(Debug)]
pub enum Step<O> {
    /// Keep going; send these (possibly none) first.
    Continue(Vec<Outgoing>),
    /// The run finished with this output. `outgoing` holds this party's last
    /// messages, which peers still need: a party can finish in the same call that
    /// produces its final-round messages (when the peers' final-round messages
    /// arrived early), so send them before acting on the output.
    Done { output: O, outgoing: Vec<Outgoing> },
}

/// One party's run of one protocol. Must tolerate exact duplicates and messages of
/// later rounds arriving early (even before `start`); anything else unexpected is an
/// error that ends the run: every later call returns [`EngineError::Finished`], as
/// do `start` a second time and `handle` after [`Step::Done`].
pub trait Protocol: Send {
    type Output;
    fn start(&mut self) -> Result<Vec<Outgoing>, EngineError>;
    fn handle(&mut self, message: Incoming) -> Result<Step<Self::Output>, EngineError>;
}

/// Inputs of a distributed key generation run.
#[derive(Debug, Clone)]
pub struct KeygenParams {
    /// Fresh per run and agreed by all parties (derived from the session).
    pub execution_id: [u8; 32],
    pub threshold: u8,
    pub parties: u8,
    pub me: PartyIndex,
}

/// Inputs of a signing run.
#[derive(Debug, Clone)]
pub struct SignParams {
    pub execution_id: [u8; 32],
    /// Exactly `t` signers, including this party.
    pub signers: Vec<PartyIndex>,
    pub message_hash: MessageHash,
}

/// Inputs of a complete refresh (share rotation), optionally rebuilding a lost share first.
#[derive(Debug, Clone)]
pub struct RefreshParams {
    /// Fresh per run and agreed by all parties (derived from the session).
    pub execution_id: [u8; 32],
    /// Set when this run first rebuilds the share of `target` (lost-device recovery).
    pub repair: Option<RepairPlan>,
}

/// Who rebuilds whose share: `helpers` (at least t, sorted or not, distinct, not the
/// target) each send the target one masked term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairPlan {
    /// The share holders that rebuild the target's share.
    pub helpers: Vec<PartyIndex>,
    /// The party whose share was lost.
    pub target: PartyIndex,
}

/// Where a party that lost its share starts: the key's public facts and its own index.
#[derive(Debug, Clone)]
pub struct ShareSlot {
    /// Engine that made the key (e.g. `dkls23`).
    pub engine: String,
    /// The group key the rebuilt share must belong to.
    pub public_key: PublicKey,
    /// This party's index in the key.
    pub index: PartyIndex,
    pub threshold: u8,
    pub parties: u8,
}

/// The output of a refresh: the new share and a digest of the key's refreshed public
/// verification data (the group key and every party's verifying share), equal at
/// every honest party of the run — parties report it so the coordinator can check
/// they all ended with the same view.
pub struct Refreshed {
    /// This party's new share; the share it refreshed no longer signs with the others'.
    pub share: KeyShare,
    /// SHA-256 of the refreshed public verification data; public.
    pub digest: [u8; 32],
}

impl fmt::Debug for Refreshed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refreshed")
            .field("share", &self.share)
            .field("digest", &hex::encode(self.digest))
            .finish()
    }
}

/// A party's share of a threshold key: public metadata plus the engine's secret
/// state, which is zeroized when dropped and never printed.
pub struct KeyShare {
    pub engine: String,
    pub public_key: PublicKey,
    pub index: PartyIndex,
    pub threshold: u8,
    pub parties: u8,
    pub secret: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("engine", &self.engine)
            .field("public_key", &hex::encode(self.public_key.as_bytes()))
            .field("index", &self.index)
            .field("threshold", &self.threshold)
            .field("parties", &self.parties)
            .finish_non_exhaustive()
    }
}

/// Why a run was refused before it started: its parameters do not fit the key,
/// the party or each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParameterError {
    #[error("party index {index} outside 1..={max}")]
    PartyOutOfRange { index: u8, max: u8 },
    #[error(
        "threshold {threshold} of {parties} parties: need 2 <= t <= n <= {max}",
        max = mpc_events::MAX_PARTIES
    )]
    Threshold { threshold: u8, parties: u8 },
    /// A message is addressed to an index no participant of the session holds.
    #[error("no participant at index {index}")]
    NoParticipant { index: PartyIndex },
    #[error("signers contain a duplicate")]
    DuplicateSigner,
    #[error("need exactly {threshold} signers, got {got}")]
    SignerCount { threshold: u8, got: usize },
    #[error("signers do not include this party ({me})")]
    NotASigner { me: PartyIndex },
    #[error("signer {signer} outside 1..={parties}")]
    SignerOutOfRange { signer: PartyIndex, parties: u8 },
    #[error("key belongs to engine {engine:?}, not {expected}")]
    WrongEngine {
        engine: String,
        expected: &'static str,
    },
    #[error("this party ({me}) is the repair target: it runs recover, not refresh")]
    TargetRefreshes { me: PartyIndex },
    #[error("recover needs a repair plan naming this party as target")]
    NoRepairPlan,
    #[error("the repair target is {target}, not this party ({me})")]
    NotTheTarget { target: PartyIndex, me: PartyIndex },
    #[error("repair helpers contain a duplicate")]
    DuplicateHelper,
    #[error("need at least {threshold} repair helpers, got {got}")]
    TooFewHelpers { threshold: u8, got: usize },
    #[error("the repair target {target} cannot be a helper")]
    TargetIsHelper { target: PartyIndex },
    #[error("repair party {index} outside 1..={parties}")]
    RepairPartyOutOfRange { index: PartyIndex, parties: u8 },
    /// The engine refused the repair plan for this share (its own words).
    #[error("repair: {0}")]
    Repair(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("invalid protocol parameters: {0}")]
    InvalidParameters(ParameterError),
    #[error("malformed message from party {from} in round {round}: {detail}")]
    Malformed {
        from: PartyIndex,
        round: u16,
        detail: String,
    },
    #[error("unexpected message from party {from} in round {round}: {detail}")]
    Unexpected {
        from: PartyIndex,
        round: u16,
        detail: String,
    },
    #[error("party {from} sent two different messages for round {round}")]
    Equivocation { from: PartyIndex, round: u16 },
    #[error("protocol aborted: {detail}")]
    Aborted {
        /// The party the engine blames, when it can tell.
        culprit: Option<PartyIndex>,
        /// The engine requires never running with the culprit again (DKLs23 OT
        /// consistency failure).
        ban: bool,
        detail: String,
    },
    #[error("key share is unusable: {0}")]
    BadShare(String),
    #[error("run already finished")]
    Finished,
}

/// Protocols and vaults are selected at runtime by configuration.
pub trait ThresholdEngine: Send + Sync {
    /// Stable name recorded with every share (e.g. `dkls23`).
    fn name(&self) -> &'static str;

    fn keygen(
        &self,
        params: KeygenParams,
    ) -> Result<Box<dyn Protocol<Output = KeyShare>>, EngineError>;

    fn sign(
        &self,
        share: &KeyShare,
        params: SignParams,
    ) -> Result<Box<dyn Protocol<Output = Signature>>, EngineError>;

    /// A complete refresh among all n holders of `share`'s key: every share
    /// re-randomized, the group key unchanged; with `params.repair`, helpers first
    /// send the target its repair term.
    ///
    /// Every party of the key takes part; shares from before the refresh do not sign
    /// with refreshed ones, so each party must replace its old share (and erase it).
    /// With a repair, the target runs [`ThresholdEngine::recover`] instead.
    fn refresh(
        &self,
        share: &KeyShare,
        params: RefreshParams,
    ) -> Result<Box<dyn Protocol<Output = Refreshed>>, EngineError>;

    /// The target's side of a repair-and-refresh run: it holds no share, only
    /// `slot`. `params.repair` must be Some with `target == slot.index`.
    ///
    /// The target must have been authenticated out of band: helpers hand the share
    /// of `target` to whoever runs this side.
    fn recover(
        &self,
        slot: ShareSlot,
        params: RefreshParams,
    ) -> Result<Box<dyn Protocol<Output = Refreshed>>, EngineError>;
}
