//! The `mpc` binary's commands as a library, so that tests can drive them directly.
//!
//! - [`demo`]: keygen and two signings end to end on embedded defaults.
//!
//! The binary (`src/main.rs`) only parses arguments and prints errors; the in-process
//! coordinator client that connects party nodes to the coordinator lives in `local`.

pub mod demo;
mod local;
