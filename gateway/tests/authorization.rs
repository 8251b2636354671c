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
