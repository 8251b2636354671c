//! The `mpc` binary's commands as a library, so that tests can drive them directly.
//!
//! - [`demo`]: keygen and two signings end to end on embedded defaults.
//! - [`serve`]: the coordinator process (gateway, actors, projections).
//! - [`party`]: the party node process (server role) and one-shot client role.
//! - [`infra`]: adapters chosen by configuration.
//! - [`audit`]: `mpc audit verify` and `mpc replay`, checking read models against the log.
//! - [`bench`]: `mpc bench`, the benchmark harness (engine floor, full stack, throughput,
//!   bytes, replay) behind `docs/performance.md`.
//! - [`load`]: `mpc load`, the bounded load generator that accounts for every session
//!   and bounds memory growth (`docs/reliability.md`).
//! - [`operator`]: `mpc recovery start|list` and `mpc refresh`, the operator's
//!   recovery and share-rotation commands over the gateway's admin API.
//!
//! The binary (`src/main.rs`) only parses arguments and prints errors; the in-process
//! coordinator client that connects party nodes to the coordinator is [`local`].

pub mod audit;
pub mod bench;
pub mod demo;
pub mod infra;
pub mod load;
pub mod local;
pub mod operator;
pub mod party;
pub mod serve;
mod stack;
