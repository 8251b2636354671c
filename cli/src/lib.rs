//! The `mpc` binary's commands as a library, so that tests can drive them directly.
//!
//! - [`demo`]: keygen and two signings end to end on embedded defaults (the
//!   scenarios); [`demo_report`]: their typed report.
//! - [`serve`]: the coordinator process (gateway, actors, projections).
//! - [`party`]: `mpc party` (flags, secrets, output) over `mpc_app::party`.
//! - [`infra`]: adapters chosen by configuration.
//! - [`audit`]: `mpc audit verify` and `mpc replay`, checking read models against the log.
//! - [`bench`]: `mpc bench`, the benchmark harness (engine floor, full stack, throughput,
//!   bytes, replay) behind `docs/performance.md`.
//! - [`load`]: `mpc load`, the bounded load generator that accounts for every session
//!   and bounds memory growth (`docs/reliability.md`).
//! - [`operator`]: `mpc recovery start|list` and `mpc refresh`, the operator's
//!   recovery and share-rotation commands over the gateway's operator API.
//! - [`credentials`]: `mpc operator add|list|revoke`, the operators' API keys.
//!
//! The binary (`src/main.rs`) only parses arguments and prints errors. The wiring
//! (services, the coordinator process, the in-process stack) is `mpc_app`'s.

pub mod audit;
pub mod bench;
pub mod credentials;
pub mod demo;
pub mod demo_report;
pub mod infra;
pub mod load;
pub mod operator;
pub mod party;
pub mod serve;
