//! Issue 7, item 6: a bounded load on loopback. `mpc load`'s library entry keeps 12
//! signing sessions in flight for 20 s on the embedded stack (SQLite file, in-process
//! transport, real DKLs23 parties), then every check of the command must pass: every
//! session accounted for in the event store, no error, no failed session, every
//! acknowledged append in the log, read models equal to their replay, and resident
//! memory growth after the warm-up under the stated bound
//! ([`DEFAULT_MAX_RSS_GROWTH_MIB`]). Alone in its test binary, so that no other test
//! shares the process whose memory it measures. No figure of speed is asserted.

use std::time::Duration;

use mpc_app::load::{DEFAULT_MAX_RSS_GROWTH_MIB, Options, execute};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_load_accounts_for_every_session_within_the_memory_bound() {
    let mut options = Options::new(12, Duration::from_secs(20));
    options.warmup = Duration::from_secs(5);
    options.session_ttl = Duration::from_secs(30);
    options.drain_timeout = Duration::from_secs(40);
    let report = execute(&options).await.expect("the load run");
    eprintln!("\n{}", report.table());

    let problems = report.problems(true);
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(report.completed > 0);
    assert_eq!(report.started, report.completed + report.failed);
    assert_eq!(report.unaccounted, 0);
    assert_eq!(report.open_in_store, 0);
    assert_eq!(report.terminal_in_store, report.started);
    assert_eq!(report.errors(), 0);
    assert_eq!(report.acknowledged_missing, 0);
    assert!(report.acknowledged_events > 0);
    assert!(report.memory.samples.len() >= 10, "{:?}", report.memory);
    assert!(report.memory.growth_after_warmup_mib <= DEFAULT_MAX_RSS_GROWTH_MIB);
}
