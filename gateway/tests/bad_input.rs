//! Bad requests get a 4xx JSON error with a stable code and append nothing.

mod common;

use common::{ADMIN, PARTIES, TestGateway, expect_error, keygen_body, start};
use reqwest::StatusCode;
use serde_json::json;

async fn unchanged<F: std::future::Future<Output = reqwest::Response>>(
    gw: &TestGateway,
    request: F,
    status: StatusCode,
    code: &str,
) {
    let head = gw.head().await;
    expect_error(request.await, status, code).await;
    assert_eq!(gw.head().await, head, "{code} appended events");
}

fn raw_post(
    gw: &TestGateway,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    gw.http
        .post(gw.url(path))
        .bearer_auth(ADMIN)
        .header("content-type", content_type)
        .body(body)
}

#[actix_web::test]
async fn malformed_oversized_and_mistyped_bodies_are_refused() {
    let gw = start().await;
    let send = |b: reqwest::RequestBuilder| async move { b.send().await.unwrap() };
    unchanged(
        &gw,
        send(raw_post(
            &gw,
            "/v1/sessions",
            "application/json",
            b"{\"kind\": ".to_vec(),
        )),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    unchanged(
        &gw,
        send(raw_post(
            &gw,
            "/v1/sessions",
            "application/json",
            b"{\"kind\": \"teleport\"}".to_vec(),
        )),
        StatusCode::BAD_REQUEST,
        "invalid_body",
    )
    .await;
    unchanged(
        &gw,
        send(raw_post(&gw, "/v1/sessions", "text/plain", b"{}".to_vec())),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let mut huge = keygen_body();
    huge["padding"] = json!("x".repeat(100 * 1024));
    unchanged(
        &gw,
        send(raw_post(
            &gw,
            "/v1/sessions",
            "application/json",
            serde_json::to_vec(&huge).unwrap(),
        )),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
}

#[actix_web::test]
async fn invalid_sessions_are_refused_with_domain_codes() {
    let gw = start().await;
    let mut bad_threshold = keygen_body();
    bad_threshold["threshold"] = json!({"t": 1, "n": 3});
    unchanged(
        &gw,
        gw.post_json("/v1/sessions", Some(ADMIN), &bad_threshold),
        StatusCode::BAD_REQUEST,
        "invalid_threshold",
    )
    .await;
    let mut duplicate = keygen_body();
    duplicate["participants"][1]["party_id"] = json!("device");
    unchanged(
        &gw,
        gw.post_json("/v1/sessions", Some(ADMIN), &duplicate),
        StatusCode::BAD_REQUEST,
        "duplicate_party",
    )
    .await;
    let mut too_few = keygen_body();
    too_few["participants"].as_array_mut().unwrap().pop();
    unchanged(
        &gw,
        gw.post_json("/v1/sessions", Some(ADMIN), &too_few),
        StatusCode::BAD_REQUEST,
        "participant_count",
    )
    .await;
    let mut bad_party = keygen_body();
    bad_party["participants"][0]["party_id"] = json!("no spaces please");
    unchanged(
        &gw,
        gw.post_json("/v1/sessions", Some(ADMIN), &bad_party),
        StatusCode::BAD_REQUEST,
        "invalid_party_id",
    )
    .await;
    let mut bad_hex = keygen_body();
    bad_hex["participants"][0]["identity"]["signing"] = json!("xyz");
    unchanged(
        &gw,
        gw.post_json("/v1/sessions", Some(ADMIN), &bad_hex),
        StatusCode::BAD_REQUEST,
        "invalid_hex",
    )
    .await;
    let unknown_key = json!({
        "kind": "signing", "key_id": uuid::Uuid::now_v7(), "signers": ["device", "server"],
        "message_hex": "00", "ttl_seconds": 60,
    });
    unchanged(
        &gw,
        gw.post_json("/v1/sessions", Some(ADMIN), &unknown_key),
        StatusCode::NOT_FOUND,
        "unknown_key",
    )
    .await;
    let both = json!({
        "kind": "signing", "key_id": uuid::Uuid::now_v7(), "signers": ["device", "server"],
        "message_hex": "00", "message_hash_hex": hex::encode([0u8; 32]), "ttl_seconds": 60,
    });
    unchanged(
        &gw,
        gw.post_json("/v1/sessions", Some(ADMIN), &both),
        StatusCode::BAD_REQUEST,
        "invalid_payload",
    )
    .await;

    // A key whose keygen has not completed cannot sign.
    let pending = gw.create(&keygen_body()).await;
    let not_ready = json!({
        "kind": "signing", "key_id": pending.session_id, "signers": ["device", "server"],
        "message_hex": "00", "ttl_seconds": 60,
    });
    unchanged(
        &gw,
        gw.post_json("/v1/sessions", Some(ADMIN), &not_ready),
        StatusCode::CONFLICT,
        "key_not_ready",
    )
    .await;
}

#[actix_web::test]
async fn missing_forged_and_misplaced_credentials_are_refused() {
    let gw = start().await;
    unchanged(
        &gw,
        gw.post_json("/v1/sessions", None, &keygen_body()),
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    unchanged(
        &gw,
        gw.post_json("/v1/sessions", Some("not-the-admin-token"), &keygen_body()),
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let s = gw.create(&keygen_body()).await;
    let access = gw.join_all(&s, &PARTIES).await;
    unchanged(
        &gw,
        gw.post_json("/v1/sessions", Some(&access[0]), &keygen_body()),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    // A join token is not an access token.
    let other = gw.create(&keygen_body()).await;
    let status = format!("/v1/sessions/{}", other.session_id);
    unchanged(
        &gw,
        gw.get(&status, Some(&other.join_tokens["device"])),
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    unchanged(
        &gw,
        gw.get(&status, Some(&access[0])),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let basic = async {
        gw.http
            .get(gw.url(&status))
            .basic_auth("admin", Some(ADMIN))
            .send()
            .await
            .unwrap()
    };
    unchanged(&gw, basic, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[actix_web::test]
async fn unknown_sessions_ids_and_routes_are_refused() {
    let gw = start().await;
    let unknown = uuid::Uuid::now_v7();
    unchanged(
        &gw,
        gw.get(&format!("/v1/sessions/{unknown}"), Some(ADMIN)),
        StatusCode::NOT_FOUND,
        "unknown_session",
    )
    .await;
    unchanged(
        &gw,
        gw.get("/v1/sessions/not-a-uuid", Some(ADMIN)),
        StatusCode::BAD_REQUEST,
        "invalid_id",
    )
    .await;
    unchanged(
        &gw,
        gw.post_json(
            &format!("/v1/sessions/{unknown}/close"),
            Some(ADMIN),
            &json!({"reason": "x"}),
        ),
        StatusCode::NOT_FOUND,
        "unknown_session",
    )
    .await;
    unchanged(
        &gw,
        gw.get(&format!("/v1/keys/{unknown}"), Some(ADMIN)),
        StatusCode::NOT_FOUND,
        "unknown_key",
    )
    .await;
    unchanged(
        &gw,
        gw.get("/v1/nothing-here", None),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    unchanged(
        &gw,
        gw.get(
            &format!("/v1/sessions/{unknown}?wait_until_not=sleeping"),
            Some(ADMIN),
        ),
        StatusCode::BAD_REQUEST,
        "invalid_value",
    )
    .await;
    unchanged(
        &gw,
        gw.get(
            &format!("/v1/sessions/{unknown}?timeout_ms=-4"),
            Some(ADMIN),
        ),
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    let close = json!({"reason": "r".repeat(2000)});
    let s = gw.create(&keygen_body()).await;
    unchanged(
        &gw,
        gw.post_json(
            &format!("/v1/sessions/{}/close", s.session_id),
            Some(ADMIN),
            &close,
        ),
        StatusCode::BAD_REQUEST,
        "text_too_long",
    )
    .await;
}
