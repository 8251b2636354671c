//! `mpc bench` in its smallest form: every section of the report is there, with
//! positive numbers or an explicit `skipped` reason; the table and chart render it.
//! Timings are never asserted (the brief's targets are benchmark goals, not tests).

use std::time::Duration;

use mpc_app::bench::{Options, execute};
use mpc_app::chart::chart;
use mpc_cli::bench::table;
use serde_json::Value;

fn tiny() -> Options {
    Options {
        engine_sign_iterations: 2,
        engine_keygen_iterations: vec![((2, 3), 1)],
        stack_keygen_iterations: 1,
        stack_sign_iterations: 2,
        concurrency: 2,
        throughput_duration: Duration::from_millis(500),
        replay_events: 60,
        postgres_url: None,
        kafka_brokers: None,
        engine_only: false,
        progress: false,
    }
}

fn positive(report: &Value, pointer: &str) -> f64 {
    let value = report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} is missing or not a number in {report:#}"));
    assert!(
        value > 0.0 && value.is_finite(),
        "{pointer} = {value}, expected a positive number"
    );
    value
}

fn skipped(report: &Value, pointer: &str) {
    let reason = report
        .pointer(&format!("{pointer}/skipped"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} is neither measured nor skipped: {report:#}"));
    assert!(!reason.is_empty(), "{pointer} skipped without a reason");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quickest_bench_reports_every_section() {
    let report = execute(&tiny()).await.expect("bench run");

    // a. Engine floor.
    let floor = report["engine_floor"].as_array().expect("engine_floor");
    assert_eq!(floor.len(), 1);
    assert_eq!(
        (floor[0]["t"].as_u64(), floor[0]["n"].as_u64()),
        (Some(2), Some(3))
    );
    for p in [
        "keygen_ms/p50",
        "keygen_ms/p99",
        "sign_ms/p50",
        "sign_ms/p99",
    ] {
        positive(&report, &format!("/engine_floor/0/{p}"));
    }
    assert_eq!(report["engine_floor"][0]["sign_ms"]["n"], 2);
    let raw = positive(&report, "/engine_floor/0/sign_payload_bytes");

    // b. Full stack, embedded.
    for p in [
        "keygen_2of3_ms/p50",
        "keygen_2of3_ms/p99",
        "sign_2of3_ms/p50",
        "sign_2of3_ms/p99",
        "sign_p50_ratio_to_engine_floor",
        "keygen_p50_ratio_to_engine_floor",
        "sign_target_ms",
    ] {
        positive(&report, &format!("/full_stack_embedded/{p}"));
    }
    assert!(report["full_stack_embedded"]["sign_met"].is_boolean());

    // c. PostgreSQL + Kafka: not given, so skipped with a reason.
    skipped(&report, "/full_stack_postgres_kafka");
    skipped(&report, "/replay_postgres");

    // d. Throughput.
    for p in [
        "engine_ceiling_per_s",
        "full_stack_per_s",
        "ratio_to_ceiling",
    ] {
        positive(&report, &format!("/throughput/{p}"));
    }

    // e. Bytes: the wire carries at least the raw payloads, and the log holds events.
    assert_eq!(
        report["bytes_per_signature"]["raw_protocol_payload_bytes"].as_f64(),
        Some(raw)
    );
    let wire = positive(&report, "/bytes_per_signature/wire_envelope_bytes");
    assert!(
        wire > raw,
        "envelopes ({wire} B) smaller than their payloads ({raw} B)"
    );
    positive(&report, "/bytes_per_signature/event_log_payload_bytes");
    positive(&report, "/bytes_per_signature/events");
    positive(&report, "/bytes_per_signature/wire_and_log_overhead_ratio");

    // f. Replay on SQLite, over at least the events asked for.
    assert!(positive(&report, "/replay_sqlite/events") >= 60.0);
    positive(&report, "/replay_sqlite/events_per_s");
    assert_eq!(report["replay_sqlite"]["models"], 4);

    // The table and the chart show it.
    let text = table(&report);
    eprintln!("{text}");
    for needle in [
        "Engine floor",
        "Throughput",
        "Bytes per",
        "Replay, SQLite",
        "skipped:",
    ] {
        assert!(text.contains(needle), "table lacks {needle:?}:\n{text}");
    }
    let svg = chart(&report);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.matches("<rect").count() >= 7, "{svg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_floor_must_include_two_of_three() {
    let mut options = tiny();
    options.engine_keygen_iterations = vec![((3, 3), 1)];
    let error = execute(&options).await.unwrap_err().to_string();
    assert!(error.contains("(2,3)"), "{error}");
}
