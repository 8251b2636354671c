//! Issue 7, item 3: the store and the broker restarted while `mpc load` runs on them.
//!
//! - **PostgreSQL crash-restart**: a private cluster (`initdb` into a temporary
//!   directory as the `postgres` OS user, started on a free port; the shared server
//!   on 5432 is never touched) carries the event store and read models;
//!   `pg_ctl restart -m immediate` (no shutdown checkpoint: crash recovery) hits it
//!   mid-run. Needs the PostgreSQL server binaries (`/usr/lib/postgresql/<v>/bin`,
//!   installed by `scripts/ensure-postgres.sh`): without them the test fails when
//!   `CI=true` and is skipped with the reason printed otherwise.
//! - **Broker kill -9 and restart**: a private tansu broker carries the envelopes,
//!   storing its topics and records in SQLite (`sqlite://` engine, a file in a
//!   temporary directory), so that, like a real Kafka broker with its log on disk,
//!   it comes back with every record it acknowledged. It is the build
//!   `scripts/ensure-kafka.sh durable` makes (`MPC_TEST_TANSU_DURABLE`); without it
//!   the test fails when `CI=true` and is skipped otherwise.
//!
//! Both check: every append the store acknowledged is in the log, every started
//! session is accounted for and terminal in the event store (in flight at the
//! restart: completed or failed cleanly, by their deadline at the latest), nothing
//! stays open, and the read models equal their replay. After either restart every
//! new session must complete. Each test prints its figures.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mpc_app::ledger::Outcome;
use mpc_app::load::{LoadReport, Options, execute_signalling};

/// How long after the first sessions started the component is restarted.
const RESTART_AFTER: Duration = Duration::from_secs(6);

/// Whether a missing dependency fails the test (CI) or skips it (a developer machine).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Panics in CI, else prints why the test does nothing.
fn unavailable(what: &str) {
    assert!(!in_ci(), "{what} (CI=true: this test must run)");
    eprintln!("SKIPPED: {what}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The sessions started after `at` and what became of them.
fn started_after(report: &LoadReport, at: Instant) -> (usize, usize) {
    let after: Vec<_> = report
        .sessions
        .iter()
        .filter(|s| s.started_at > at)
        .collect();
    let completed = after
        .iter()
        .filter(|s| s.outcome == Outcome::Completed)
        .count();
    (after.len(), completed)
}

fn print_figures(title: &str, report: &LoadReport, restarts: &[(f64, f64)], after: (usize, usize)) {
    let restarts: Vec<String> = restarts
        .iter()
        .map(|(at, took)| format!("at {at:.1} s (took {took:.1} s)"))
        .collect();
    eprintln!(
        "\n{title}:\n\
         | figure | value |\n|---|---:|\n\
         | restarts | {} |\n\
         | sessions started | {} |\n\
         | completed | {} |\n\
         | failed cleanly (reasons) | {} {:?} |\n\
         | could not be created (store/broker down) | {} |\n\
         | open after the drain / in the store | {} / {} |\n\
         | unaccounted | {} |\n\
         | started after the restart / completed | {} / {} |\n\
         | acknowledged events / missing from the log | {} / {} |\n\
         | in the log but not acknowledged (reply lost) | {} |\n\
         | untracked session streams (open) | {} ({}) |\n\
         | read models equal to their replay | {} of {} |\n\
         | projection runner restarts | {} |\n\
         | audit records / events, chain intact | {} / {}, {} |\n\
         | RSS peak | {:.1} MiB |",
        restarts.join(", "),
        report.started,
        report.completed,
        report.failed,
        report.failed_reasons,
        report.create_errors.values().sum::<u64>(),
        report.open_in_memory,
        report.open_in_store,
        report.unaccounted,
        after.0,
        after.1,
        report.acknowledged_events,
        report.acknowledged_missing,
        report.unacknowledged_in_log,
        report.untracked_sessions,
        report.untracked_open,
        report.read_models_matching,
        report.read_models_compared,
        report.projection_restarts,
        report.audit_records,
        report.events_in_log,
        report.audit_chain_intact,
        report.memory.peak_rss_mib,
    );
    eprintln!("{}", report.table());
}

/// What every restart test asserts once the load is over.
fn assert_recovered(report: &LoadReport, after: (usize, usize)) {
    let problems = report.problems(false);
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(report.unaccounted, 0);
    assert_eq!(report.open_in_store, 0);
    assert_eq!(report.acknowledged_missing, 0);
    assert!(report.acknowledged_events > 0);
    assert!(after.0 > 0, "no session started after the restart");
    assert_eq!(
        after.1, after.0,
        "a session started after the restart did not complete"
    );
}

// ---------------------------------------------------------------------------------
// PostgreSQL.

/// A PostgreSQL cluster of this test's own, stopped and deleted on drop (even when
/// the test fails).
struct PrivateCluster {
    pg_ctl: PathBuf,
    data: PathBuf,
    port: u16,
    // Removed last, after the server stopped.
    _dir: tempfile::TempDir,
}

impl PrivateCluster {
    /// The newest installed server's binary directory.
    fn binaries() -> Option<PathBuf> {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let version = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    }

    fn start(bin: &Path) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("mpc-pg-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        run(Command::new("chown").arg("postgres:").arg(dir.path()))?;
        let data = dir.path().join("data");
        let port = free_port();
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
            .arg(&data))?;
        let cluster = Self {
            pg_ctl: bin.join("pg_ctl"),
            data,
            port,
            _dir: dir,
        };
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=100",
            cluster._dir.path().display()
        );
        cluster.pg_ctl(&["start", "-w", "-t", "60", "-o", &options, "-l"], true)?;
        Ok(cluster)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// `pg_ctl <args> [log file] -D <data>` as the `postgres` user.
    fn pg_ctl(&self, args: &[&str], log: bool) -> Result<(), String> {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(&self.pg_ctl)
            .args(args);
        if log {
            command.arg(self._dir.path().join("server.log"));
        }
        run(command.arg("-D").arg(&self.data))
    }

    /// A crash-restart: `immediate` stops without a checkpoint, the start recovers.
    fn crash_restart(&self) -> Result<(), String> {
        self.pg_ctl(
            &["restart", "-m", "immediate", "-w", "-t", "60", "-l"],
            true,
        )
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if let Err(e) = self.pg_ctl(&["stop", "-m", "immediate", "-w"], false) {
            eprintln!("stopping the private PostgreSQL: {e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crash_restart_under_load_loses_no_acknowledged_event_and_no_session() {
    let Some(bin) = PrivateCluster::binaries() else {
        unavailable(
            "no PostgreSQL server binaries under /usr/lib/postgresql/<version>/bin \
             (scripts/ensure-postgres.sh installs them)",
        );
        return;
    };
    let cluster = tokio::task::spawn_blocking(move || PrivateCluster::start(&bin))
        .await
        .expect("start task")
        .unwrap_or_else(|e| panic!("cannot start a private PostgreSQL cluster: {e}"));
    let mut options = Options::new(6, Duration::from_secs(24));
    options.postgres_url = Some(cluster.url());
    options.session_ttl = Duration::from_secs(12);
    options.drain_timeout = Duration::from_secs(30);
    options.max_rss_growth_mib = None;
    let cluster = std::sync::Arc::new(cluster);
    let (underway, load_started) = tokio::sync::oneshot::channel();
    let load = tokio::spawn(async move { execute_signalling(&options, Some(underway)).await });

    // Restart once the load is well under way (keygen done, sessions in flight).
    let load_started = load_started.await.expect("the load starts");
    tokio::time::sleep(RESTART_AFTER).await;
    let began = Instant::now();
    let restarting = cluster.clone();
    tokio::task::spawn_blocking(move || restarting.crash_restart())
        .await
        .expect("restart task")
        .unwrap_or_else(|e| panic!("pg_ctl restart: {e}"));
    let restarted = Instant::now();

    let report = load.await.expect("load task").expect("the load run");
    let after = started_after(&report, restarted);
    print_figures(
        "PostgreSQL crash-restart (pg_ctl restart -m immediate) under load",
        &report,
        &[(
            began.duration_since(load_started).as_secs_f64(),
            restarted.duration_since(began).as_secs_f64(),
        )],
        after,
    );
    assert_recovered(&report, after);
}

// ---------------------------------------------------------------------------------
// The broker.

/// A tansu broker of this test's own on a free port, storing its log in a SQLite
/// file in a temporary directory; killed on drop.
struct PrivateBroker {
    tansu: PathBuf,
    port: u16,
    child: Option<Child>,
    // Holds the broker's database; removed after the broker is killed.
    dir: tempfile::TempDir,
}

impl PrivateBroker {
    /// The tansu build with the SQLite engine (`MPC_TEST_TANSU_DURABLE`).
    fn binary() -> Option<PathBuf> {
        let tansu = PathBuf::from(std::env::var_os("MPC_TEST_TANSU_DURABLE")?);
        tansu.exists().then_some(tansu)
    }

    fn start(tansu: PathBuf) -> Self {
        let mut broker = Self {
            tansu,
            port: free_port(),
            child: None,
            dir: tempfile::Builder::new()
                .prefix("mpc-tansu-")
                .tempdir()
                .expect("a temporary directory"),
        };
        broker.spawn();
        broker
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        // `sqlite://tansu.db` names a file in the working directory.
        let child = Command::new(&self.tansu)
            .current_dir(self.dir.path())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tansu: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`, then the same broker again on the same port.
    fn kill_and_restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_kill_and_restart_under_load_loses_no_acknowledged_event_and_no_session() {
    let Some(tansu) = PrivateBroker::binary() else {
        unavailable(
            "no durable tansu build (MPC_TEST_TANSU_DURABLE; \
             `bash scripts/ensure-kafka.sh durable` builds it)",
        );
        return;
    };
    let broker = std::sync::Arc::new(std::sync::Mutex::new(PrivateBroker::start(tansu)));
    let brokers = broker.lock().expect("broker").brokers();
    let mut options = Options::new(6, Duration::from_secs(24));
    options.kafka_brokers = Some(brokers);
    options.session_ttl = Duration::from_secs(12);
    options.drain_timeout = Duration::from_secs(30);
    options.max_rss_growth_mib = None;
    let (underway, load_started) = tokio::sync::oneshot::channel();
    let load = tokio::spawn(async move { execute_signalling(&options, Some(underway)).await });

    let load_started = load_started.await.expect("the load starts");
    tokio::time::sleep(RESTART_AFTER).await;
    let began = Instant::now();
    let restarting = broker.clone();
    tokio::task::spawn_blocking(move || restarting.lock().expect("broker").kill_and_restart())
        .await
        .expect("restart task");
    let restarted = Instant::now();

    let report = load.await.expect("load task").expect("the load run");
    let after = started_after(&report, restarted);
    print_figures(
        "Broker kill -9 and restart (tansu, SQLite storage) under load",
        &report,
        &[(
            began.duration_since(load_started).as_secs_f64(),
            restarted.duration_since(began).as_secs_f64(),
        )],
        after,
    );
    assert_recovered(&report, after);
}
