//! Finished sessions' transport logs are closed without an operator: completed,
//! failed and expired sessions alike, and those that ended before the closer ran.

// The gateway's test harness: the closer runs beside a real gateway.
#[path = "../../gateway/tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{GENERATOR, PARTIES, TestGateway, envelope, keygen_body, post, start};
use mpc_api::{CreateSessionResponse, ReportRequest};
use mpc_app::transport_logs::close_finished_sessions;
use mpc_events::{PartyId, PartyOutcome, PublicKey};
use reqwest::StatusCode;

/// Creates a keygen session with `ttl_seconds`, has every party join and the device
/// post one envelope; returns the session and the parties' access tokens.
async fn session_with_a_log(
    gw: &TestGateway,
    ttl_seconds: u64,
) -> (CreateSessionResponse, Vec<String>) {
    let mut body = keygen_body();
    body["ttl_seconds"] = ttl_seconds.into();
    let created = gw.create(&body).await;
    let tokens = gw.join_all(&created, &PARTIES).await;
    let sid = created.session_id.as_str();
    let resp = post(
        gw,
        sid,
        &tokens[0],
        envelope(sid, "device", None, b"round 1").encode().unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    (created, tokens)
}

async fn report(
    gw: &TestGateway,
    created: &CreateSessionResponse,
    token: &str,
    body: &ReportRequest,
) {
    let resp = gw
        .post_json(
            &format!("/v1/sessions/{}/report", created.session_id),
            Some(token),
            &serde_json::to_value(body).unwrap(),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

async fn complete(gw: &TestGateway, created: &CreateSessionResponse, tokens: &[String]) {
    let key = PublicKey::from_slice(&hex::decode(GENERATOR).unwrap()).unwrap();
    for token in tokens {
        report(
            gw,
            created,
            token,
            &ReportRequest::completion(&PartyOutcome::PublicKey(key)),
        )
        .await;
    }
}

#[actix_web::test]
async fn every_finished_session_has_its_transport_log_closed() {
    let gw = start().await;
    // Ended before the closer runs (as while no coordinator ran).
    let (early, early_tokens) = session_with_a_log(&gw, 120).await;
    complete(&gw, &early, &early_tokens).await;

    let completed = session_with_a_log(&gw, 120).await;
    let failed = session_with_a_log(&gw, 120).await;
    let expiring = session_with_a_log(&gw, 1).await;
    let open = session_with_a_log(&gw, 120).await;
    assert_eq!(gw.transport.open_sessions(), 5);

    tokio::spawn(close_finished_sessions(
        gw.store.clone(),
        Arc::new(gw.transport.clone()),
        0,
        Duration::from_millis(100),
    ));
    complete(&gw, &completed.0, &completed.1).await;
    let failure = ReportRequest::failure(&[PartyId::parse("recovery").unwrap()], "bad proof");
    report(&gw, &failed.0, &failed.1[1], &failure).await;
    // The expiring session ends by its deadline (its actor is live since it was
    // created).
    let wait = tokio::time::timeout(Duration::from_secs(20), async {
        while gw.transport.open_sessions() > 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        wait.is_ok(),
        "{} transport logs still open, expected only the open session's",
        gw.transport.open_sessions()
    );
    let status = gw
        .get(
            &format!("/v1/sessions/{}", expiring.0.session_id),
            Some(common::ADMIN),
        )
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(status["status"], "expired");
    // The open session's log is still there and usable.
    let sid = open.0.session_id.as_str();
    let resp = post(
        &gw,
        sid,
        &open.1[1],
        envelope(sid, "server", None, b"round 1").encode().unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(gw.transport.open_sessions(), 1);
}
