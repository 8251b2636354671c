//! API authorization matrix (issue 7, item 4): with valid tokens, a party cannot
//! read another session's inbox, post as another sender or into another session,
//! report for another session or as the admin, report twice, or join twice; a join
//! token is not an access token. Every refusal has its status and error code and
//! appends nothing. The JWT attacks themselves are in `jwt.rs`; the finer inbox and
//! report checks in `inbox.rs` and `flow.rs`.

mod common;

use common::{
    ADMIN, PARTIES, envelope, expect_error, group_key, keygen_body, other_key, post, start,
};
use mpc_api::{InboxResponse, ReportRequest};
use mpc_events::PartyOutcome;
use reqwest::{Response, StatusCode};

#[actix_web::test]
async fn api_authorization_matrix() {
    let gw = start().await;
    let s = gw.create(&keygen_body()).await;
    let other = gw.create(&keygen_body()).await;
    let sid = s.session_id.as_str();
    let tokens = gw.join_all(&s, &PARTIES).await;
    let other_tokens = gw.join_all(&other, &PARTIES).await;
    // device → server, secret to server.
    let secret = envelope(sid, "device", Some("server"), b"for server only");
    let resp = post(&gw, sid, &tokens[0], secret.encode().unwrap()).await;
    assert!(resp.status().is_success(), "{}", resp.status());

    let inbox = format!("/v1/sessions/{sid}/messages");
    let report_path = format!("/v1/sessions/{sid}/report");
    let report = serde_json::to_value(ReportRequest::completion(&PartyOutcome::PublicKey(
        group_key(),
    )))
    .unwrap();
    // The device reports once, legitimately: a report of another outcome must be
    // refused (the same report again is a retry, acknowledged without effect).
    let resp = gw.post_json(&report_path, Some(&tokens[0]), &report).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let another_report = serde_json::to_value(ReportRequest::completion(&PartyOutcome::PublicKey(
        other_key(),
    )))
    .unwrap();

    let forbidden = StatusCode::FORBIDDEN;
    let mut rows: Vec<(&str, StatusCode, &str)> = Vec::new();
    let mut check = async |name: &'static str, resp: Response, status, code| {
        let head = gw.head().await;
        expect_error(resp, status, code).await;
        assert_eq!(gw.head().await, head, "{name} appended events");
        rows.push((name, status, code));
    };
    check(
        "another session's party reads this session's inbox",
        gw.get(&inbox, Some(&other_tokens[1])).await,
        forbidden,
        "forbidden",
    )
    .await;
    check(
        "the admin token reads a party's inbox",
        gw.get(&inbox, Some(ADMIN)).await,
        forbidden,
        "forbidden",
    )
    .await;
    check(
        "no token reads an inbox",
        gw.get(&inbox, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    check(
        "a join token used as an access token",
        gw.get(&inbox, Some(&s.join_tokens["recovery"])).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let spoofed = envelope(sid, "server", Some("recovery"), b"x");
    check(
        "device posts an envelope as server",
        post(&gw, sid, &tokens[0], spoofed.encode().unwrap()).await,
        forbidden,
        "sender_mismatch",
    )
    .await;
    check(
        "another session's party posts into this session",
        post(&gw, sid, &other_tokens[0], secret.encode().unwrap()).await,
        forbidden,
        "forbidden",
    )
    .await;
    check(
        "another session's party reports for this session",
        gw.post_json(&report_path, Some(&other_tokens[1]), &report)
            .await,
        forbidden,
        "forbidden",
    )
    .await;
    check(
        "the admin token reports as a party",
        gw.post_json(&report_path, Some(ADMIN), &report).await,
        forbidden,
        "forbidden",
    )
    .await;
    check(
        "a party reports a second, different outcome",
        gw.post_json(&report_path, Some(&tokens[0]), &another_report)
            .await,
        StatusCode::CONFLICT,
        "already_reported",
    )
    .await;
    check(
        "a party joins twice",
        gw.join(sid, "server", &s.join_tokens["server"]).await,
        forbidden,
        "already_joined",
    )
    .await;

    // Within the session, the token decides whose inbox is read: recovery does not
    // get server's point-to-point message, server does.
    let read = async |token: &str| -> InboxResponse {
        let resp = gw.get(&inbox, Some(token)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    };
    assert!(read(&tokens[2]).await.messages.is_empty());
    assert_eq!(read(&tokens[1]).await.messages.len(), 1);
    rows.push((
        "recovery reads its inbox: server's message is not in it",
        StatusCode::OK,
        "(filtered)",
    ));

    println!("\nAPI authorization\n| attempt | refused with |\n|---|---|");
    for (name, status, code) in &rows {
        println!("| {name} | {} {code} |", status.as_u16());
    }
    println!(
        "tried {0}, rejected {0} ({1} refused with an error, 1 filtered: the other \
         party's message is not returned)",
        rows.len(),
        rows.len() - 1
    );
    assert_eq!(rows.len(), 11);
}

/// Authenticate before validating: on every route that takes a bearer token, a
/// caller without one, or with a forged one, gets 401 whatever its path and body,
/// never a 400 describing what would have been valid; nothing is appended. Routes
/// whose credential is in the body (join, decisions, verify) still validate it.
#[actix_web::test]
async fn unauthenticated_callers_get_401_before_their_input_is_read() {
    let gw = start().await;
    let head = gw.head().await;
    let routes = [
        ("POST", "/v1/sessions"),
        ("GET", "/v1/sessions/not-a-uuid"),
        ("POST", "/v1/sessions/not-a-uuid/report"),
        ("POST", "/v1/sessions/not-a-uuid/close"),
        ("POST", "/v1/sessions/not-a-uuid/messages"),
        (
            "GET",
            "/v1/sessions/not-a-uuid/messages?cursor=zz&wait_ms=x",
        ),
        ("GET", "/v1/keys/not-a-uuid"),
        ("POST", "/v1/keys/not-a-uuid/refresh"),
        ("POST", "/v1/accounts"),
        ("GET", "/v1/accounts/not-a-uuid"),
        ("POST", "/v1/accounts/not-a-uuid/status"),
        ("POST", "/v1/accounts/not-a-uuid/keygen"),
        ("POST", "/v1/accounts/not-a-uuid/signatures"),
        ("POST", "/v1/accounts/not-a-uuid/recoveries"),
        ("GET", "/v1/accounts/not-a-uuid/recoveries"),
        ("POST", "/v1/workflows"),
        ("GET", "/v1/workflows/not-a-uuid"),
        ("POST", "/v1/workflows/not-a-uuid/signing"),
        ("POST", "/v1/data/signatures"),
        ("POST", "/v1/operators"),
        ("GET", "/v1/operators"),
        ("DELETE", "/v1/operators/not-a-uuid"),
    ];
    let guessed_key = format!("mpc_{}_{}", uuid::Uuid::now_v7().simple(), "ab".repeat(32));
    for (method, path) in routes {
        for token in [
            None,
            Some("forged.jwt.token"),
            Some("admin-token-guess-0123456789"),
            Some(guessed_key.as_str()),
        ] {
            let mut request = gw
                .http
                .request(method.parse().unwrap(), gw.url(path))
                .header("content-type", "application/json")
                .body("{\"unknown\": ");
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}: {body}"
            );
            assert!(
                ["unauthorized", "invalid_token", "invalid_api_key"]
                    .contains(&body["code"].as_str().unwrap()),
                "{method} {path}: {body}"
            );
        }
    }
    assert_eq!(gw.head().await, head, "a refused call appended events");

    // The admin token reaches validation; routes with their credential in the body
    // validate it without a bearer.
    let resp = gw
        .http
        .post(gw.url("/v1/sessions/not-a-uuid/close"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{\"unknown\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    for path in [
        "/v1/sessions/not-a-uuid/join",
        "/v1/workflows/not-a-uuid/decisions",
        "/v1/data/verify",
    ] {
        let resp = gw
            .http
            .post(gw.url(path))
            .header("content-type", "application/json")
            .body("{\"unknown\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
    }
}
