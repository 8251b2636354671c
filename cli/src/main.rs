//! `mpc`: the command-line entry point of the MPC signing platform.
//!
//! - `mpc demo` runs distributed key generation and threshold signing end to end on
//!   the embedded defaults (SQLite event store, in-process transport, encrypted
//!   vaults), then prints the key, the signatures and the recorded session history;
//!   `--scenario approval|data|recovery` runs the multi-person review, data signing
//!   with an HSM-backed party, or lost-device recovery and share rotation.
//! - `mpc serve` runs the coordinator: HTTP gateway, session actors, projections.
//! - `mpc party …` runs a party node (server role) or takes part in one session
//!   (client role).
//! - `mpc recovery start|list` and `mpc refresh` are the operator's commands: an
//!   account's recovery sessions, and share rotation of a key, once or on a schedule
//!   (`cli/src/operator.rs`); `mpc operator add|list|revoke` manage the operators'
//!   API keys and their roles (`cli/src/credentials.rs`).
//! - `mpc audit verify` recomputes the audit log's hash chain; `mpc replay` rebuilds
//!   every read model from position 0 and compares it with the live one.
//! - `mpc bench` measures the engine floor, the full stack, throughput, bytes and
//!   replay speed (`docs/performance.md`).
//! - `mpc load` keeps K signing sessions in flight for a fixed time, then checks that
//!   every session is accounted for in the event store, every acknowledged append is
//!   in the log, the read models equal their replay and memory stayed bounded
//!   (`docs/reliability.md`).
//!
//! Every flag can also be set by an `MPC_…` environment variable or a TOML file
//! given with `--config` (flags win over the environment, the environment over the
//! file).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use mpc_cli::{audit, bench, credentials, demo, infra, load, operator, party, serve};

#[derive(Parser)]
#[command(
    name = "mpc",
    version,
    about = "Threshold-ECDSA signing platform on an event-sourced core"
)]
struct Cli {
    /// TOML file of settings (`store_url = "postgres://…"`, `kafka_brokers = "…"`, …).
    // Declared for `--help` and validation; `config_path` reads it before this parse.
    #[allow(dead_code)]
    #[arg(long, global = true, env = "MPC_CONFIG")]
    config: Option<PathBuf>,
    /// How log lines (standard error) are written: `text` (coloured on a terminal)
    /// or `json` (one object per line, with the request's span). Their level comes
    /// from `MPC_LOG`, else `RUST_LOG`, else `warn`.
    #[arg(long, global = true, env = "MPC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run keygen and two signings end to end on embedded defaults.
    Demo(DemoArgs),
    /// Run the coordinator: HTTP gateway, session actors and projections.
    Serve(serve::ServeArgs),
    /// Run a party node or take part in one session.
    #[command(subcommand)]
    Party(party::PartyCommand),
    /// Start or list an account's recovery sessions.
    #[command(subcommand)]
    Recovery(operator::RecoveryCommand),
    /// Rotate every share of a completed key, once or on a schedule.
    Refresh(operator::RefreshArgs),
    /// Open an approval workflow and send its review requests to the approvers'
    /// nodes; show one; start its signing once approved.
    #[command(subcommand)]
    Workflow(operator::WorkflowCommand),
    /// Add, list or revoke operators' API keys (each with one role).
    #[command(subcommand)]
    Operator(credentials::OperatorCommand),
    /// Check the hash-chained audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Rebuild every read model from position 0 and compare it with the live one.
    Replay(audit::DataArgs),
    /// Measure latency, throughput, bytes and replay speed against their floors.
    Bench(bench::BenchArgs),
    /// Keep K signing sessions in flight for a fixed time; account for every one.
    Load(load::LoadArgs),
    /// Print the HTTP API's OpenAPI document (what `mpc serve` serves at
    /// `/openapi.json`), e.g. to generate a client.
    Openapi,
}

#[derive(Args)]
struct DemoArgs {
    /// Which story to run: keygen and two signings, a t-of-n approval workflow, data
    /// signing with an HSM-backed party, or lost-device recovery and share rotation.
    #[arg(long, value_enum, default_value_t = demo::Scenario::Foundation)]
    scenario: demo::Scenario,
    /// Signers needed (t); default 2, or 3 for the approval scenario.
    #[arg(long, short = 't')]
    threshold: Option<u16>,
    /// Key holders (n), 2..=20; default 3, or 5 for the approval scenario.
    #[arg(long, short = 'n')]
    parties: Option<u16>,
    /// Keep the event log and vaults here (default: a temporary directory removed at exit).
    #[arg(long, env = "MPC_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The message to sign.
    #[arg(long, default_value = "hello from the mpc demo")]
    message: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    // The config file feeds the environment before the real parse reads it.
    if let Some(path) = config_path()
        && let Err(e) = infra::apply_config_file(&path)
    {
        return fail(format_args!("{e:#}"));
    }
    let cli = Cli::parse();
    // SoftHSM2 reads its configuration when first loaded: prepare it while this
    // process still has one thread.
    let mut hsm_dir = None;
    let hsm = match &cli.command {
        Command::Demo(args) if args.scenario == demo::Scenario::Data => {
            let prepared = tempfile::tempdir()
                .map_err(anyhow::Error::from)
                .and_then(|dir| {
                    // SAFETY: no thread has been started yet.
                    let hsm = unsafe { mpc_app::softhsm::prepare_softhsm(dir.path()) }?;
                    hsm_dir = Some(dir);
                    Ok(hsm)
                });
            match prepared {
                Ok(hsm) => hsm,
                Err(e) => return fail(format_args!("cannot prepare SoftHSM2: {e:#}")),
            }
        }
        _ => None,
    };
    // One TLS crypto provider for the gateway and the HTTP client.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let filter = tracing_subscriber::EnvFilter::try_from_env("MPC_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs.json().init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(format_args!("cannot start the async runtime: {e}")),
    };
    let result = match cli.command {
        Command::Demo(args) => runtime.block_on(demo::run(demo::Options {
            scenario: args.scenario,
            hsm,
            threshold: args
                .threshold
                .unwrap_or(args.scenario.default_threshold().0),
            parties: args.parties.unwrap_or(args.scenario.default_threshold().1),
            data_dir: args.data_dir,
            message: args.message.into_bytes(),
            json: args.json,
        })),
        Command::Serve(args) => runtime.block_on(serve::run(args)),
        Command::Party(command) => runtime.block_on(party::run(command)),
        Command::Recovery(command) => runtime.block_on(operator::recovery(command)),
        Command::Refresh(args) => runtime.block_on(operator::refresh(args)),
        Command::Workflow(command) => runtime.block_on(operator::workflow(command)),
        Command::Operator(command) => runtime.block_on(credentials::run(command)),
        Command::Audit(command) => runtime.block_on(audit::run(command)),
        Command::Replay(args) => runtime.block_on(audit::replay(&args)),
        Command::Bench(args) => runtime.block_on(bench::run(args)),
        Command::Load(args) => runtime.block_on(load::run(args)),
        Command::Openapi => {
            println!("{}", mpc_gateway::ApiDoc::pretty_json());
            Ok(())
        }
    };
    drop(hsm_dir);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format_args!("{e:#}")),
    }
}

fn fail(message: std::fmt::Arguments) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// `--config FILE`/`--config=FILE` or `MPC_CONFIG`, read before clap parses.
fn config_path() -> Option<PathBuf> {
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix("--config=")) {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("MPC_CONFIG").map(PathBuf::from)
}
