//! Aggregates and the actors that host them.
//!
//! An aggregate is a pair of pure functions (see [`Aggregate`]): `decide(&state,
//! command)` returns the events a command causes or a domain error, and
//! `evolve(state, &event)` folds one event into the state. Nothing here reads a clock,
//! a random source or a database inside those functions: commands carry the time.
//!
//! [`ActorRegistry`] is the async shell: one tokio task per live stream that loads the
//! stream, decides, appends with the expected version, evolves and replies, and fires
//! deadline commands (session expiry). [`Coordinator`] is the session coordinator's
//! application service on top: join tokens, signing sessions bound to completed keys,
//! and the views parties get when they join. It never sees a protocol message.
//! [`Accounts`] (accounts, their 2-of-3 keys and uniqueness of username and email)
//! and [`Approvals`] (multi-person review before signing) are the business services
//! built on it, over the [`account`] and [`workflow`] aggregates; [`Operators`]
//! keeps the operators' API-key digests and roles ([`operator`]).

pub mod account;
mod account_service;
mod aggregate;
mod approval_service;
mod coordinator;
pub mod key;
pub mod operator;
mod registry;
pub mod session;
#[cfg(test)]
mod testing;
pub mod workflow;

pub use account_service::{
    AccountServiceError, Accounts, NewAccount, OpenedAccount, StatusChange, email_claim_id,
};
pub use aggregate::{Aggregate, Clock, CommandMeta, SystemClock};
pub use approval_service::{ApprovalServiceError, Approvals, NewWorkflow};
pub use coordinator::{
    Coordinator, CoordinatorError, CreatedSession, JoinToken, KeyState, NewKeygen, NewRefresh,
    NewSigning, RandomTokens, SigningPayload, TokenIssuer,
};
pub use operator::Operators;
pub use registry::{APPEND_SECONDS, ActorError, ActorRegistry, DEFAULT_IDLE_TIMEOUT, load};
pub use session::{Session, SessionAggregate, SessionState};
