//! `mpc audit verify` and `mpc replay` as real processes on a data directory the demo
//! filled (read models and event log in `events.db`), and on a PostgreSQL event store
//! holding the same events (read models in that database).
//!
//! The PostgreSQL case needs `MPC_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432`) whose user may create databases.

use std::path::Path;
use std::process::{Command, Output};

use indicatif::ProgressBar;
use mpc_cli::demo::{Options, Scenario, execute};
use mpc_store::{EventStore, ExpectedVersion, NewEvent, PostgresStore, SqliteStore};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

fn mpc(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpc"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("MPC_STORE_URL")
        .env_remove("MPC_CONFIG")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn sql(db: &Path, statement: &str) {
    let mut conn = SqliteConnectOptions::new()
        .filename(db)
        .connect()
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_audit_log_verifies_replays_and_reports_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        scenario: Scenario::Foundation,
        hsm: None,
        threshold: 2,
        parties: 3,
        data_dir: Some(dir.path().to_owned()),
        message: b"audit me".to_vec(),
        json: false,
    };
    let report = execute(&options, &ProgressBar::hidden()).await.unwrap();
    let events: u64 = report.history.iter().map(|(_, e)| e.len() as u64).sum();
    assert_eq!(report.audit_records, events);
    let head = hex::encode(report.audit_head.expect("a chain head"));
    let json = mpc_cli::demo::to_json(&report);
    assert_eq!(json["audit_head"], head.as_str());
    assert_eq!(json["audit_records"], events);

    let out = mpc(&["audit", "verify"], dir.path());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("audit chain intact: {events} records")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("chain head {head}")), "{stdout}");

    let out = mpc(&["replay"], dir.path());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let lines: Vec<_> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0].starts_with("session_status") && lines[0].contains(" matches (3 rows"));
    assert!(lines[1].starts_with("audit_log") && lines[1].contains(" matches ("));
    assert!(lines[2].starts_with("accounts") && lines[2].contains(" matches ("));
    assert!(lines[3].starts_with("approval_workflows") && lines[3].contains(" matches ("));

    sql(
        &dir.path().join("events.db"),
        "UPDATE audit_log SET actor = 'mallory' WHERE position = 4",
    )
    .await;
    let out = mpc(&["audit", "verify"], dir.path());
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        stderr.contains("audit chain broken at position 4:"),
        "{stderr}"
    );

    let out = mpc(&["replay"], dir.path());
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("session_status") && stdout.contains(" matches ("));
    assert!(
        stdout.contains("audit_log")
            && stdout.contains("differs (")
            && stdout.contains("position 4:"),
        "{stdout}"
    );
}

/// `mpc audit verify` and `mpc replay` with `--store-url`: the read models are built
/// in the event store's PostgreSQL database, none in the data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_postgres_store_the_read_models_live_in_that_database() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        scenario: Scenario::Foundation,
        hsm: None,
        threshold: 2,
        parties: 3,
        data_dir: Some(dir.path().join("demo")),
        message: b"audit me in postgres".to_vec(),
        json: false,
    };
    execute(&options, &ProgressBar::hidden()).await.unwrap();
    let demo = SqliteStore::open(&dir.path().join("demo").join("events.db"))
        .await
        .unwrap();
    let events = demo.read_all(0, usize::MAX).await.unwrap();

    let server = std::env::var("MPC_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let server = server.trim_end_matches('/');
    let name = format!("mpc_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| panic!("no PostgreSQL at {server}: {e}"));
    // The name is ours (a uuid), not input.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = format!("{server}/{name}");
    let store = PostgresStore::connect(&url).await.unwrap();
    for event in &events {
        let copy = NewEvent {
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            payload: event.payload.clone(),
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            occurred_at: event.occurred_at,
        };
        store
            .append(
                &event.stream,
                ExpectedVersion::Exact(event.version - 1),
                vec![copy],
            )
            .await
            .unwrap();
    }

    let data_dir = dir.path().join("coordinator");
    let with_url = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--store-url", url.as_str()]);
        mpc(&all, &data_dir)
    };
    let out = with_url(&["audit", "verify"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("audit chain intact: {} records", events.len())),
        "{stdout}"
    );
    let out = with_url(&["replay"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("session_status") && stdout.contains(" matches (3 rows"));
    assert!(!data_dir.join("read-models.db").exists());
    assert!(!data_dir.join("events.db").exists());

    sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE position = 4")
        .execute(store.pool())
        .await
        .unwrap();
    let out = with_url(&["audit", "verify"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(
        stderr.contains("audit chain broken at position 4:"),
        "{stderr}"
    );

    store.close().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();
}

#[test]
fn verify_without_any_data_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = mpc(&["audit", "verify"], dir.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no read models in"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("events.db").exists());
}
