//! The process's Prometheus recorder: installed once, it collects what every crate
//! records through the `metrics` facade (the gateway's requests, the session actors'
//! lifecycle and event-store appends, a party's sessions) and renders it for a
//! `/metrics` route. Latencies are histograms in seconds with fixed buckets (so
//! they aggregate across processes), from 1 ms to 5 minutes.

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets of every `…_seconds` metric.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

/// The process's recorder, installed on first use.
static RECORDER: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
#[error("cannot install the metrics recorder: {0}")]
pub struct MetricsError(String);

/// Renders the process's metrics in the Prometheus text format.
pub type MetricsRender = mpc_gateway::MetricsRender;

/// Installs the recorder (once per process: later calls share it) and answers
/// a renderer of everything recorded since.
pub fn install() -> Result<MetricsRender, MetricsError> {
    let handle = RECORDER
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .map_err(|e| e.to_string())?
                .install_recorder()
                .map_err(|e| e.to_string())?;
            describe();
            Ok(handle)
        })
        .clone()
        .map_err(MetricsError)?;
    Ok(Arc::new(move || handle.render()))
}

/// Help texts and units of the platform's own metrics.
fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        mpc_gateway::metrics::REQUESTS_TOTAL,
        "HTTP requests by method, route pattern and status"
    );
    describe_histogram!(
        mpc_gateway::metrics::REQUEST_SECONDS,
        Unit::Seconds,
        "HTTP request latency by method and route pattern"
    );
    describe_counter!(
        mpc_actors::session::SESSIONS_TOTAL,
        "Sessions by kind and outcome: created, then completed, failed or expired"
    );
    describe_histogram!(
        mpc_actors::session::SESSION_SECONDS,
        Unit::Seconds,
        "Time from a session's creation to its end, by kind, outcome and t-of-n"
    );
    describe_histogram!(
        mpc_actors::APPEND_SECONDS,
        Unit::Seconds,
        "Event-store append latency by stream category"
    );
    describe_counter!(
        crate::party::PARTY_SESSIONS_TOTAL,
        "Sessions this party node took part in, by outcome (completed or the refusal/abort)"
    );
    describe_histogram!(
        crate::party::PARTY_SESSION_SECONDS,
        Unit::Seconds,
        "Time this party node spent in a session, from invitation to outcome"
    );
}
