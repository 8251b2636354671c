//! `mpc bench`: the flags of the benchmark harness behind `docs/performance.md`, its
//! table and where it writes the JSON report and the SVG chart. The measurements
//! (engine floor, full stack, throughput, bytes, replay speed) are `mpc_app::bench`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use mpc_app::bench::{Options, execute};
use mpc_app::chart::chart;
use serde_json::{Value, json};

/// `mpc bench` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Smoke run: few iterations, finishes in under a minute (release build).
    #[arg(long)]
    pub quick: bool,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the SVG chart here (default: the JSON path with `.svg`, else none).
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// PostgreSQL server URL without a database name (e.g.
    /// `postgres://postgres@127.0.0.1:5432`); the user must be allowed to create
    /// databases. Without it (and `--kafka-brokers`) the PostgreSQL + Kafka stack is
    /// skipped.
    #[arg(long, env = "MPC_BENCH_POSTGRES_URL")]
    pub postgres_url: Option<String>,
    /// Kafka bootstrap brokers (`host:port,…`) for the PostgreSQL + Kafka stack.
    #[arg(long, env = "MPC_BENCH_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Measure only this part (`engine`: one 2-of-3 engine-floor keygen, then the
    /// engine-floor signings; for profiling the signing hot path).
    #[arg(long, value_parser = ["engine"])]
    pub only: Option<String>,
}

/// Runs `mpc bench`: measures, prints the table, writes JSON and SVG.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mut options = if args.quick {
        Options::quick()
    } else {
        Options::full()
    };
    options.postgres_url = args.postgres_url;
    options.kafka_brokers = args.kafka_brokers;
    if args.only.as_deref() == Some("engine") {
        // For profiling: one 2-of-3 key, then the signings.
        options.engine_only = true;
        options.engine_keygen_iterations = vec![((2, 3), 1)];
    }
    options.progress = std::io::stdout().is_terminal();
    let mut report = execute(&options).await?;
    report["mode"] = json!(if args.quick { "quick" } else { "full" });
    print!("{}", table(&report));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("JSON report: {}", path.display());
    }
    let svg = args
        .svg
        .or_else(|| args.json.as_ref().map(|p| p.with_extension("svg")));
    if let Some(path) = svg {
        std::fs::write(&path, chart(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("SVG chart: {}", path.display());
    }
    Ok(())
}

fn f(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

fn yes(value: &Value) -> &'static str {
    match value.as_bool() {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "-",
    }
}

/// The human table.
pub fn table(report: &Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let m = &report["machine"];
    let _ = writeln!(
        out,
        "mpc bench ({}) on {} CPUs, {} GiB, {}{}",
        report["mode"].as_str().unwrap_or("library"),
        m["cpus"],
        m["memory_gib"],
        m["cpu_model"].as_str().unwrap_or("unknown CPU"),
        if m["debug_build"].as_bool() == Some(true) {
            " [DEBUG BUILD: numbers are not representative]"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "\nEngine floor (all parties on one thread, in memory)");
    let _ = writeln!(
        out,
        "  {:<7} {:>12} {:>12} {:>11} {:>11} {:>9} {:>11}",
        "(t,n)", "keygen p50", "keygen p99", "sign p50", "sign p99", "messages", "sign bytes"
    );
    for row in report["engine_floor"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  ({},{})   {:>9.1} ms {:>9.1} ms {:>8.2} ms {:>8.2} ms {:>9} {:>11}",
            row["t"],
            row["n"],
            f(&row["keygen_ms"]["p50"]),
            f(&row["keygen_ms"]["p99"]),
            f(&row["sign_ms"]["p50"]),
            f(&row["sign_ms"]["p99"]),
            row["sign_messages"],
            row["sign_payload_bytes"],
        );
    }
    for (key, title) in [
        (
            "full_stack_embedded",
            "Full stack, embedded (SQLite + in-process)",
        ),
        (
            "full_stack_postgres_kafka",
            "Full stack, PostgreSQL + Kafka",
        ),
    ] {
        let s = &report[key];
        let _ = writeln!(out, "\n{title}, 2-of-3");
        if let Some(reason) = s["skipped"].as_str() {
            let _ = writeln!(out, "  skipped: {reason}");
            continue;
        }
        if s.is_null() {
            let _ = writeln!(out, "  not measured");
            continue;
        }
        let _ = writeln!(
            out,
            "  keygen  p50 {:>8.1} ms  p99 {:>8.1} ms  ({:.2}x floor p50)  target p99 <= 250 ms: {}",
            f(&s["keygen_2of3_ms"]["p50"]),
            f(&s["keygen_2of3_ms"]["p99"]),
            f(&s["keygen_p50_ratio_to_engine_floor"]),
            yes(&s["keygen_met"]),
        );
        let _ = writeln!(
            out,
            "  signing p50 {:>8.1} ms  p99 {:>8.1} ms  ({:.2}x floor p50)  target p50 <= {:.1} ms: {}",
            f(&s["sign_2of3_ms"]["p50"]),
            f(&s["sign_2of3_ms"]["p99"]),
            f(&s["sign_p50_ratio_to_engine_floor"]),
            f(&s["sign_target_ms"]),
            yes(&s["sign_met"]),
        );
    }
    let t = &report["throughput"];
    if !t.is_null() {
        let _ = writeln!(out, "\nThroughput (embedded stack, 2-of-3 signing)");
        let _ = writeln!(
            out,
            "  {:.1} signatures/s with {} concurrent sessions vs engine ceiling {:.1}/s ({} threads): {:.2}x, target >= 0.60: {}",
            f(&t["full_stack_per_s"]),
            t["concurrent_sessions"],
            f(&t["engine_ceiling_per_s"]),
            t["engine_ceiling_threads"],
            f(&t["ratio_to_ceiling"]),
            yes(&t["met"]),
        );
    }
    let b = &report["bytes_per_signature"];
    if !b.is_null() {
        let _ = writeln!(out, "\nBytes per 2-of-3 signature");
        let _ = writeln!(
            out,
            "  raw protocol payload {:.0} B; wire envelopes {:.0} B ({:.1} envelopes, +{:.1} %); event log {:.0} B ({:.1} events)",
            f(&b["raw_protocol_payload_bytes"]),
            f(&b["wire_envelope_bytes"]),
            f(&b["envelopes"]),
            100.0 * f(&b["wire_overhead_ratio"]),
            f(&b["event_log_payload_bytes"]),
            f(&b["events"]),
        );
        let _ = writeln!(
            out,
            "  wire + log overhead +{:.1} % above raw; target <= 15 %: {}",
            100.0 * f(&b["wire_and_log_overhead_ratio"]),
            yes(&b["met"]),
        );
    }
    for (key, title) in [
        ("replay_sqlite", "Replay, SQLite"),
        ("replay_postgres", "Replay, PostgreSQL"),
    ] {
        let r = &report[key];
        if r.is_null() {
            continue;
        }
        let _ = writeln!(out, "\n{title}");
        if let Some(reason) = r["skipped"].as_str() {
            let _ = writeln!(out, "  skipped: {reason}");
            continue;
        }
        let _ = writeln!(
            out,
            "  {} events, {} read models rebuilt and compared in {:.2} s: {:.0} events/s ({:.2}x of 100 000/s{})",
            r["events"],
            r["models"],
            f(&r["seconds"]),
            f(&r["events_per_s"]),
            f(&r["ratio_to_target"]),
            if key == "replay_postgres" {
                format!(", target: {}", yes(&r["met"]))
            } else {
                ", the target is for PostgreSQL".into()
            },
        );
    }
    if let Some(elapsed) = report["elapsed_s"].as_f64() {
        let _ = writeln!(out, "\nTotal {elapsed:.1} s");
    }
    out
}
