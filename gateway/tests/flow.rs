//! The whole life of a key over HTTP: keygen, then signing, to verified results.

mod common;

use common::{ADMIN, PARTIES, expect_error, group_key, keygen_body, other_key, sign, start};
use mpc_api::{JoinResponse, KeyDto, ReportRequest, SessionStatusDto};
use mpc_events::{MessageHash, PartyOutcome};
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

#[actix_web::test]
async fn keygen_then_signing_complete_over_http() {
    let gw = start().await;
    let keygen = gw.create(&keygen_body()).await;
    assert_eq!(keygen.join_tokens.len(), 3);
    let status_path = format!("/v1/sessions/{}", keygen.session_id);

    // A participant can long-poll for the start once it has joined.
    let first = gw
        .join(&keygen.session_id, "device", &keygen.join_tokens["device"])
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let device: JoinResponse = first.json().await.unwrap();
    assert_eq!(device.session.kind, "keygen");
    assert_eq!(device.session.status, "created");
    assert_eq!(device.session.participants[0].index, 1);
    assert_eq!(device.session.participants[0].party_id, "device");
    let waiter = {
        let http = gw.http.clone();
        let url = gw.url(&format!(
            "{status_path}?wait_until_not=created&timeout_ms=20000"
        ));
        let token = device.access_token.clone();
        actix_web::rt::spawn(async move {
            let resp = http.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp.json::<SessionStatusDto>().await.unwrap()
        })
    };
    let mut access = vec![device.access_token];
    access.extend(gw.join_all(&keygen, &PARTIES[1..]).await);
    let started = waiter.await.unwrap();
    assert_eq!(started.status, "in_progress");
    assert_eq!(started.joined.len(), 3);

    let report = ReportRequest::completion(&PartyOutcome::PublicKey(group_key()));
    let report = serde_json::to_value(&report).unwrap();
    let mut last = None;
    for token in &access {
        let resp = gw
            .post_json(&format!("{status_path}/report"), Some(token), &report)
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        last = Some(resp.json::<SessionStatusDto>().await.unwrap());
    }
    let done = last.unwrap();
    assert_eq!(done.status, "completed");
    assert_eq!(done.reported, ["device", "server", "recovery"]);
    let pk_hex = hex::encode(group_key().as_bytes());
    assert_eq!(done.public_key_hex.as_deref(), Some(pk_hex.as_str()));

    // The admin sees the same, and the key is now usable.
    let admin_view: SessionStatusDto = gw
        .get(&status_path, Some(ADMIN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(admin_view, done);
    let key: KeyDto = gw
        .get(&format!("/v1/keys/{}", keygen.session_id), Some(ADMIN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(key.public_key_hex, pk_hex);
    assert_eq!(key.parties.len(), 3);

    let message = b"transfer 1 BTC to bc1q...";
    let signing = gw
        .create(&json!({
            "kind": "signing",
            "key_id": keygen.session_id,
            "signers": ["server", "recovery"],
            "message_hex": hex::encode(message),
            "ttl_seconds": 60,
        }))
        .await;
    assert_eq!(signing.join_tokens.len(), 2);
    let resp = gw
        .join(
            &signing.session_id,
            "recovery",
            &signing.join_tokens["recovery"],
        )
        .await;
    let recovery: JoinResponse = resp.json().await.unwrap();
    assert_eq!(recovery.session.kind, "signing");
    assert_eq!(
        recovery.session.message_hex.as_deref(),
        Some(hex::encode(message).as_str())
    );
    let hash = MessageHash::from_bytes(Sha256::digest(message).into());
    assert_eq!(
        recovery.session.message_hash_hex.as_deref(),
        Some(hex::encode(hash.as_bytes()).as_str())
    );
    // Signers keep their keygen indices.
    let indices: Vec<u8> = recovery
        .session
        .participants
        .iter()
        .map(|p| p.index)
        .collect();
    assert_eq!(indices, [2, 3]);
    let server = gw.join_all(&signing, &["server"]).await.remove(0);

    let sig = ReportRequest::completion(&PartyOutcome::Signature(sign(&hash)));
    let resp = gw
        .post_json(
            &format!("/v1/sessions/{}/report", signing.session_id),
            Some(&server),
            &serde_json::to_value(&sig).unwrap(),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let signed: SessionStatusDto = resp.json().await.unwrap();
    assert_eq!(signed.status, "completed");
    let signature = signed.signature.unwrap();
    assert_eq!(signature.r_hex, hex::encode(sign(&hash).r()));
    assert_eq!(signed.public_key_hex.as_deref(), Some(pk_hex.as_str()));
}

#[actix_web::test]
async fn reports_are_the_callers_own_and_only_for_its_session() {
    let gw = start().await;
    let a = gw.create(&keygen_body()).await;
    let b = gw.create(&keygen_body()).await;
    let a_tokens = gw.join_all(&a, &PARTIES).await;
    gw.join_all(&b, &PARTIES).await;
    let report = serde_json::to_value(ReportRequest::completion(&PartyOutcome::PublicKey(
        group_key(),
    )))
    .unwrap();
    let head = gw.head().await;

    // A's access token does not reach session B.
    let resp = gw
        .post_json(
            &format!("/v1/sessions/{}/report", b.session_id),
            Some(&a_tokens[0]),
            &report,
        )
        .await;
    expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    // The admin token is not a party.
    let resp = gw
        .post_json(
            &format!("/v1/sessions/{}/report", a.session_id),
            Some(ADMIN),
            &report,
        )
        .await;
    expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    // A body cannot name another party: unknown fields are ignored, the token decides.
    let mut spoofed = report.clone();
    spoofed["party_id"] = json!("server");
    let path = format!("/v1/sessions/{}/report", a.session_id);
    let resp = gw.post_json(&path, Some(&a_tokens[0]), &spoofed).await;
    let status: SessionStatusDto = resp.json().await.unwrap();
    assert_eq!(status.reported, ["device"]);
    assert_eq!(gw.head().await, head + 1);
    // The same report again (a retry after a lost answer) is acknowledged and
    // records nothing; another outcome is refused.
    let resp = gw.post_json(&path, Some(&a_tokens[0]), &report).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let status: SessionStatusDto = resp.json().await.unwrap();
    assert_eq!(status.reported, ["device"]);
    assert_eq!(gw.head().await, head + 1);
    let another = serde_json::to_value(ReportRequest::completion(&PartyOutcome::PublicKey(
        other_key(),
    )))
    .unwrap();
    let resp = gw.post_json(&path, Some(&a_tokens[0]), &another).await;
    expect_error(resp, StatusCode::CONFLICT, "already_reported").await;
    assert_eq!(gw.head().await, head + 1);
}

#[actix_web::test]
async fn a_reported_failure_fails_the_session_and_close_ends_another() {
    let gw = start().await;
    let a = gw.create(&keygen_body()).await;
    let tokens = gw.join_all(&a, &PARTIES).await;
    let failure = serde_json::to_value(ReportRequest::failure(
        &[mpc_events::PartyId::parse("recovery").unwrap()],
        "bad proof in round 2",
    ))
    .unwrap();
    let resp = gw
        .post_json(
            &format!("/v1/sessions/{}/report", a.session_id),
            Some(&tokens[1]),
            &failure,
        )
        .await;
    let status: SessionStatusDto = resp.json().await.unwrap();
    assert_eq!(status.status, "failed");
    let f = status.failure.unwrap();
    assert_eq!(f.reason, "party_aborted");
    assert_eq!(f.parties, ["recovery"]);

    let b = gw.create(&keygen_body()).await;
    let path = format!("/v1/sessions/{}/close", b.session_id);
    let resp = gw
        .post_json(&path, Some(&tokens[0]), &json!({"reason": "x"}))
        .await;
    expect_error(resp, StatusCode::FORBIDDEN, "forbidden").await;
    let resp = gw
        .post_json(&path, Some(ADMIN), &json!({"reason": "operator"}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let closed: SessionStatusDto = resp.json().await.unwrap();
    assert_eq!(closed.status, "failed");
    assert_eq!(closed.failure.unwrap().reason, "closed");
    let head = gw.head().await;
    let resp = gw
        .post_json(&path, Some(ADMIN), &json!({"reason": "again"}))
        .await;
    expect_error(resp, StatusCode::CONFLICT, "session_ended").await;
    let resp = gw
        .join(&b.session_id, "device", &b.join_tokens["device"])
        .await;
    expect_error(resp, StatusCode::CONFLICT, "not_joinable").await;
    assert_eq!(gw.head().await, head);
}
