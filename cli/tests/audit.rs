//! `mpc audit verify` and `mpc replay` as real processes on a data directory the demo
//! filled (read models and event log in `events.db`).

use std::path::Path;
use std::process::{Command, Output};

use indicatif::ProgressBar;
use mpc_cli::demo::{Options, execute};
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
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("session_status") && lines[0].contains(" matches (3 rows"));
    assert!(lines[1].starts_with("audit_log") && lines[1].contains(" matches ("));

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
