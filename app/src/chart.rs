//! The SVG chart of an `mpc bench` report: 2-of-3 signing latency of each stack
//! against the engine floor and its target, and signatures per second against the
//! engine's ceiling.

use serde_json::Value;

fn f(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

/// A minimal SVG of `report` (the JSON report of `mpc bench`): latency bars against
/// the engine floor, throughput against the ceiling.
pub fn chart(report: &Value) -> String {
    let mut bars: Vec<(String, f64, &str)> = Vec::new();
    let floor = report["engine_floor"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|row| row["t"] == 2 && row["n"] == 3)
        .map_or(f64::NAN, |row| f(&row["sign_ms"]["p50"]));
    bars.push(("engine floor sign p50".into(), floor, "#888"));
    for (key, label) in [
        ("full_stack_embedded", "embedded"),
        ("full_stack_postgres_kafka", "postgres+kafka"),
    ] {
        let v = f(&report[key]["sign_2of3_ms"]["p50"]);
        if v.is_finite() {
            bars.push((format!("{label} sign p50"), v, "#3b7dd8"));
            bars.push((
                format!("{label} target"),
                f(&report[key]["sign_target_ms"]),
                "#d8a03b",
            ));
        }
    }
    let mut right: Vec<(String, f64, &str)> = Vec::new();
    let t = &report["throughput"];
    if !t.is_null() {
        right.push((
            "engine ceiling".into(),
            f(&t["engine_ceiling_per_s"]),
            "#888",
        ));
        right.push((
            "60 % target".into(),
            0.6 * f(&t["engine_ceiling_per_s"]),
            "#d8a03b",
        ));
        right.push(("full stack".into(), f(&t["full_stack_per_s"]), "#3b7dd8"));
    }
    let (width, height) = (880.0, 360.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let panel = |svg: &mut String,
                 x0: f64,
                 title: &str,
                 unit: &str,
                 bars: &[(String, f64, &str)]| {
        use std::fmt::Write;
        let _ = writeln!(
            svg,
            "<text x=\"{x0}\" y=\"24\" font-size=\"14\" font-weight=\"bold\">{title}</text>"
        );
        let max = bars
            .iter()
            .map(|b| b.1)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
            .max(1e-9);
        let (top, bottom, bar_w, gap) = (50.0, 300.0, 60.0, 25.0);
        for (i, (label, value, color)) in bars.iter().enumerate() {
            let x = x0 + i as f64 * (bar_w + gap);
            let h = if value.is_finite() {
                (value / max) * (bottom - top)
            } else {
                0.0
            };
            let _ = writeln!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar_w}\" height=\"{h:.1}\" fill=\"{color}\"/>\n\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{value:.1} {unit}</text>\n\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{label}</text>",
                bottom - h,
                x + bar_w / 2.0,
                bottom - h - 4.0,
                x + bar_w / 2.0,
                bottom + 16.0 + (i % 2) as f64 * 12.0,
            );
        }
        let _ = writeln!(
            svg,
            "<line x1=\"{x0}\" y1=\"{bottom}\" x2=\"{:.1}\" y2=\"{bottom}\" stroke=\"black\"/>",
            x0 + bars.len() as f64 * (bar_w + gap)
        );
    };
    panel(
        &mut svg,
        20.0,
        "2-of-3 signing latency (ms, lower is better)",
        "ms",
        &bars,
    );
    panel(
        &mut svg,
        560.0,
        "Signatures/s (higher is better)",
        "/s",
        &right,
    );
    svg.push_str(&format!(
        "<text x=\"20\" y=\"{}\" font-size=\"10\" fill=\"#555\">mpc bench ({}), {} CPUs, {}</text>\n</svg>\n",
        height - 10.0,
        report["mode"].as_str().unwrap_or("library"),
        report["machine"]["cpus"],
        report["machine"]["cpu_model"].as_str().unwrap_or("unknown CPU"),
    ));
    svg
}
