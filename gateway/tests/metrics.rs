//! `GET /metrics`: the Prometheus text of a process that installed a recorder. A
//! session's lifecycle and every HTTP request are counted, routes by their
//! pattern (never the path a caller sent), and a gateway given no renderer says so.
//! One test per binary: the recorder is process-wide.

mod common;

use common::{ADMIN, SECRET, complete_keygen, keygen_body, start, start_configured};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use mpc_gateway::JwtKeys;
use reqwest::StatusCode;
use std::sync::Arc;

/// The value of the sample `name` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix('{')?;
        let (label_set, value) = rest.rsplit_once("} ")?;
        labels
            .iter()
            .all(|(k, v)| label_set.split(',').any(|l| l == format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

#[actix_web::test]
async fn sessions_and_requests_are_counted_by_kind_outcome_and_route_pattern() {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &[0.01, 0.1, 1.0, 10.0])
        .unwrap()
        .install_recorder()
        .unwrap();
    let gw = start_configured(JwtKeys::hs256(SECRET).unwrap(), |config| {
        config.metrics = Some(Arc::new(move || handle.render()));
    })
    .await;

    let created = gw.create(&keygen_body()).await;
    complete_keygen(&gw, &created).await;
    let session = created.session_id.clone();
    let unauthenticated = gw.get(&format!("/v1/sessions/{session}"), None).await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        gw.get("/no/such/route", None).await.status(),
        StatusCode::NOT_FOUND
    );
    let invented = gw
        .http
        .request(
            reqwest::Method::from_bytes(b"BREWCOFFEE").unwrap(),
            gw.url("/health"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(invented.status(), StatusCode::METHOD_NOT_ALLOWED);

    let response = gw.get("/metrics", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let keygen = |outcome| {
        sample(
            &text,
            "mpc_sessions_total",
            &[("kind", "keygen"), ("outcome", outcome)],
        )
    };
    assert_eq!(keygen("created"), Some(1.0), "{text}");
    assert_eq!(keygen("completed"), Some(1.0), "{text}");
    assert_eq!(keygen("failed"), None, "{text}");
    assert_eq!(
        sample(
            &text,
            "mpc_session_duration_seconds_count",
            &[
                ("kind", "keygen"),
                ("outcome", "completed"),
                ("threshold", "2-of-3")
            ],
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "mpc_event_store_append_seconds_count",
            &[("category", "session")]
        )
        .is_some_and(|n| n >= 5.0),
        "created, three joins, started, three reports, completed: {text}"
    );
    let requests = |method, route, status| {
        sample(
            &text,
            "http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(requests("POST", "/v1/sessions", "201"), Some(1.0), "{text}");
    assert_eq!(
        requests("POST", "/v1/sessions/{id}/report", "200"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        requests("GET", "/v1/sessions/{id}", "401"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(requests("GET", "unmatched", "404"), Some(1.0), "{text}");
    assert_eq!(requests("other", "/health", "405"), Some(1.0), "{text}");
    assert!(
        !text.contains(&session)
            && !text.contains("/no/such/route")
            && !text.contains("BREWCOFFEE")
            && !text.contains(ADMIN),
        "a caller's path, ids or credentials became label values: {text}"
    );
    assert!(
        sample(
            &text,
            "http_request_duration_seconds_bucket",
            &[
                ("method", "POST"),
                ("route", "/v1/sessions"),
                ("le", "+Inf")
            ],
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );

    let bare = start().await;
    let response = bare.get("/metrics", None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "metrics_disabled");
}
