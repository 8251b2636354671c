//! `mpc load`: the flags of the bounded load generator, its printed report and its
//! verdict. The generator itself (K concurrent signing sessions for a fixed time,
//! every session accounted for in the event store) is `mpc_app::load`; see
//! `docs/reliability.md`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use mpc_app::load::{DEFAULT_MAX_RSS_GROWTH_MIB, Options, execute};

use crate::operator::parse_every;

/// `mpc load` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// Signing sessions kept in flight.
    #[arg(long, short = 'c', default_value_t = 8)]
    pub concurrency: usize,
    /// How long new sessions are started (`<n>s`, `<n>m`, `<n>h`).
    #[arg(long, default_value = "60s", value_parser = parse_every)]
    pub duration: Duration,
    /// Warm-up before memory growth is measured (default: a fifth of the run, at
    /// most 30 s).
    #[arg(long, value_parser = parse_every)]
    pub warmup: Option<Duration>,
    /// Deadline of each signing session.
    #[arg(long, default_value = "60s", value_parser = parse_every)]
    pub session_ttl: Duration,
    /// Fail the run if resident memory grows by more than this after the warm-up.
    #[arg(long, default_value_t = DEFAULT_MAX_RSS_GROWTH_MIB)]
    pub max_rss_growth_mib: f64,
    /// PostgreSQL server URL without a database name (a fresh database is created and
    /// dropped); default: an SQLite file in a temporary directory.
    #[arg(long, env = "MPC_LOAD_POSTGRES_URL")]
    pub postgres_url: Option<String>,
    /// Kafka bootstrap brokers (`host:port,…`; a fresh topic); default: in-process.
    #[arg(long, env = "MPC_LOAD_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs `mpc load`: prints progress and the report; fails if any check fails.
pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let mut options = Options::new(args.concurrency, args.duration);
    if let Some(warmup) = args.warmup {
        options.warmup = warmup;
    }
    options.session_ttl = args.session_ttl;
    options.drain_timeout = args.session_ttl + Duration::from_secs(30);
    options.postgres_url = args.postgres_url;
    options.kafka_brokers = args.kafka_brokers;
    options.max_rss_growth_mib = Some(args.max_rss_growth_mib);
    options.progress_every = Some(Duration::from_secs(10));
    let report = execute(&options).await?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("JSON report: {}", path.display());
    }
    let problems = report.problems(true);
    if !problems.is_empty() {
        bail!(
            "the load run failed {} check(s):\n  - {}",
            problems.len(),
            problems.join("\n  - ")
        );
    }
    println!("every check passed");
    Ok(())
}
