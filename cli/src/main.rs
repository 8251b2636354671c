//! `mpc`: the command-line entry point of the MPC signing platform.
//!
//! `mpc demo` runs distributed key generation and two threshold signings end to end
//! on the embedded defaults (SQLite event store, in-process transport, encrypted file
//! vaults), then prints the key, the signatures and the recorded session history.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use mpc_cli::demo;

#[derive(Parser)]
#[command(
    name = "mpc",
    version,
    about = "Threshold-ECDSA signing platform on an event-sourced core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run keygen and two signings end to end on embedded defaults.
    Demo(DemoArgs),
}

#[derive(Args)]
struct DemoArgs {
    /// Signers needed (t).
    #[arg(long, short = 't', default_value_t = 2)]
    threshold: u16,
    /// Key holders (n), 2..=20.
    #[arg(long, short = 'n', default_value_t = 3)]
    parties: u16,
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
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MPC_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Demo(args) => runtime.block_on(demo::run(demo::Options {
            threshold: args.threshold,
            parties: args.parties,
            data_dir: args.data_dir,
            message: args.message.into_bytes(),
            json: args.json,
        })),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
