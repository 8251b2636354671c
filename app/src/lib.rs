//! `mpc-app`: the composition layer. It builds the application services and wires
//! the adapters a process chooses; binaries (`mpc`) and integration tests call it,
//! and it owns no domain rule, format or route of its own.
//!
//! - [`services`]: the coordinator, account and approval services over one store and
//!   clock, with the join tokens of the caller's choice (the gateway's JWTs).
//! - [`process`]: running a coordinator process: resume open sessions and pending
//!   workflows, supervised projections, the outbox relay, and [`transport_logs`]
//!   (closing finished sessions' transport logs).
//! - [`stack`]: the one in-process stack (services, read models, party nodes through
//!   [`local::LocalCoordinator`], a counting transport) that `mpc demo`, `mpc bench`
//!   and `mpc load` run on, and [`stack::run_all`], the one way nodes join and run a
//!   session.
//! - [`adapters`]: opening the store, read models, transport and domain-event sink a
//!   configuration names; scratch databases and topics for measurement runs.
//! - [`party`]: a party node process: its share vault (file or PKCS#11) and identity,
//!   the [`mpc_party::PartyNode`] over the gateway and a transport, and the invitation
//!   listener of the server role; [`reviews`] and [`recoveries`], the desks where
//!   its human decides the review and recovery requests it received.
//! - [`admin`]: the client of the gateway's admin routes and of parties' invitation
//!   listeners, for the operator's commands.
//! - [`metrics`]: the process's Prometheus recorder behind `/metrics`.
//! - [`softhsm`]: SoftHSM2 tokens for PKCS#11 vaults of in-process parties.
//! - [`acknowledged`]: an event-store wrapper that records acknowledged appends;
//!   [`load`]: the bounded load generator behind `mpc load`, [`ledger`] its session and
//!   memory bookkeeping.
//! - [`bench`]: the measurements behind `mpc bench`; [`engine_floor`] its engine floor
//!   and ceiling (every party's state machine in memory); [`chart`] its SVG chart.
//!
//! May depend on every crate of the workspace except `mpc-cli`; nothing but binaries
//! and tests depends on it.

pub mod acknowledged;
pub mod adapters;
pub mod admin;
pub mod bench;
pub mod chart;
pub mod engine_floor;
mod folder;
pub mod ledger;
pub mod load;
pub mod local;
pub mod metrics;
pub mod party;
pub mod process;
pub mod recoveries;
pub mod reviews;
pub mod services;
pub mod softhsm;
pub mod stack;
pub mod transport_logs;

pub use local::LocalCoordinator;
pub use process::{CoordinatorProcess, ProcessError, resume_open_sessions, resume_open_workflows};
pub use services::Services;
pub use stack::{Stack, StackError, run_all};
