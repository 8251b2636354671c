//! `mpc audit verify` and `mpc replay`: checking the read models against the event
//! log.
//!
//! Both read the event log named by `--store-url` and the read models beside it: with
//! `--store-url` (PostgreSQL) the read models are in that same database; else the event
//! log is `events.db` in the data directory (which must then exist) and the read models
//! are `read-models.db` there when it exists (the `mpc serve` layout), else `events.db`
//! (the `mpc demo` layout, where the read models share the event log's file).
//!
//! - `mpc audit verify` catches the audit log up with the event log, recomputes its
//!   hash chain and prints `audit chain intact: N records`; a broken chain fails the
//!   command with the first broken link's position.
//! - `mpc replay` catches every live read model up, rebuilds each from position 0
//!   into a scratch database (SQLite: in memory; PostgreSQL: a temporary schema of the
//!   same database, dropped afterwards; the live models are never reset) and prints,
//!   per model, `matches` or `differs (…)`; any difference fails the command.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use mpc_projections::{AuditLogProjection, ProjectionRunner, ReadModels, verify_chain};
use mpc_store::EventStore;

use mpc_app::adapters;

use crate::infra::StoreArgs;

/// The read-model file of the `mpc serve` layout.
pub const READ_MODELS_FILE: &str = "read-models.db";
/// The event-log file of the embedded layout (and the demo's read models).
pub const EVENTS_FILE: &str = "events.db";

/// `mpc audit …`.
#[derive(Subcommand, Debug, Clone)]
pub enum AuditCommand {
    /// Catch the audit log up, recompute its hash chain and report the first broken link.
    Verify(DataArgs),
}

/// Where the event log and the read models are.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Data directory: without --store-url, read models in `read-models.db` if it
    /// exists, else in `events.db`.
    #[arg(long, env = "MPC_DATA_DIR", default_value = "mpc-data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Runs `mpc audit …`.
pub async fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify(args) => verify(&args).await,
    }
}

/// The read-model database of `data_dir`: `read-models.db` when it exists, else
/// `events.db`.
pub fn read_models_path(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let serve_layout = data_dir.join(READ_MODELS_FILE);
    if serve_layout.exists() {
        return Ok(serve_layout);
    }
    let embedded = data_dir.join(EVENTS_FILE);
    if embedded.exists() {
        return Ok(embedded);
    }
    bail!(
        "no read models in {}: neither {READ_MODELS_FILE} nor {EVENTS_FILE} exists",
        data_dir.display()
    )
}

/// The event store and the live read-model database of `args`.
async fn open(args: &DataArgs) -> anyhow::Result<(std::sync::Arc<dyn EventStore>, ReadModels)> {
    let url = args.store.store_url.as_deref();
    let sqlite_file = match url {
        Some(_) => None,
        None => {
            let models = read_models_path(&args.data_dir)?;
            if !args.data_dir.join(EVENTS_FILE).exists() {
                bail!(
                    "no event log at {} (give --store-url for PostgreSQL)",
                    args.data_dir.join(EVENTS_FILE).display()
                );
            }
            Some(models)
        }
    };
    let read_models = adapters::open_read_models(url, || sqlite_file.unwrap_or_default()).await?;
    let store = adapters::open_store(url, &args.data_dir).await?;
    Ok((store, read_models))
}

/// `mpc audit verify`.
pub async fn verify(args: &DataArgs) -> anyhow::Result<()> {
    let (store, read_models) = open(args).await?;
    let runner = ProjectionRunner::new(
        store,
        read_models.clone(),
        AuditLogProjection::new(read_models.clone()),
    )
    .await?;
    runner
        .catch_up()
        .await
        .context("cannot catch the audit log up with the event log")?;
    let report = verify_chain(&read_models).await?;
    match (&report.first_broken, report.head) {
        (Some(link), _) => bail!("audit chain broken at {link}"),
        (None, head) => {
            println!("audit chain intact: {} records", report.records);
            if let Some(head) = head {
                println!("chain head {}", hex::encode(head));
            }
            Ok(())
        }
    }
}

/// `mpc replay`.
pub async fn replay(args: &DataArgs) -> anyhow::Result<()> {
    let (store, read_models) = open(args).await?;
    let models = mpc_projections::replay(store, &read_models).await?;
    let mut differing = 0;
    for model in &models {
        match &model.first_difference {
            None => println!(
                "{:<16} matches ({} rows at position {})",
                model.model, model.live_rows, model.checkpoint
            ),
            Some(difference) => {
                differing += 1;
                println!(
                    "{:<16} differs ({} live rows, {} rebuilt, at position {}; first difference: {difference})",
                    model.model, model.live_rows, model.rebuilt_rows, model.checkpoint
                );
            }
        }
    }
    read_models.close().await;
    if differing > 0 {
        bail!("{differing} read model(s) differ from their rebuild from position 0");
    }
    Ok(())
}
