//! Accounts, approval workflows and data-integrity signing over HTTP.

mod common;

use common::{
    ADMIN, GENERATOR, PARTIES, TestGateway, account_body, complete_keygen, expect_error,
    get_account, set_status, start,
};
use k256::ecdsa::SigningKey;
use mpc_api::{
    AccountDto, CreateSessionResponse, CreateWorkflowResponse, IdentityDto, JoinResponse,
    KeyStateDto, KeyStatusDto, OpenAccountResponse, ParticipantDto, ThresholdDto, WorkflowDto,
};
use mpc_crypto::PartyIdentity;
use mpc_events::{AccountId, Decision, KeyRef, MessageHash, WorkflowId};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A completed 2-of-3 key held by `device`, `server`, `recovery` with these
/// identities and signing `policy`; returns its key id.
async fn completed_key(gw: &TestGateway, identities: &[PartyIdentity; 3], policy: &str) -> String {
    let participants: Vec<ParticipantDto> = PARTIES
        .iter()
        .zip(identities)
        .map(|(p, id)| ParticipantDto {
            party_id: (*p).to_owned(),
            identity: IdentityDto::from(&id.public()),
        })
        .collect();
    let created = gw
        .create(&json!({
            "kind": "keygen",
            "threshold": ThresholdDto { t: 2, n: 3 },
            "participants": participants,
            "ttl_seconds": 120,
            "policy": policy,
        }))
        .await;
    complete_keygen(gw, &created).await;
    created.session_id
}

#[actix_web::test]
async fn accounts_open_once_per_username_and_email_and_change_status() {
    let gw = start().await;
    let body = account_body("alice", "Alice@Example.com");

    let resp = gw.post_json("/v1/accounts", None, &body).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = gw.post_json("/v1/accounts", Some("wrong"), &body).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let resp = gw.post_json("/v1/accounts", Some(ADMIN), &body).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let opened: OpenAccountResponse = resp.json().await.unwrap();
    let keys: Vec<&str> = opened
        .keygen
        .join_tokens
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["device", "recovery", "server"]);

    let resp = gw
        .post_json(
            "/v1/accounts",
            Some(ADMIN),
            &account_body("alice", "other@example.com"),
        )
        .await;
    expect_error(resp, StatusCode::CONFLICT, "username_taken").await;
    let resp = gw
        .post_json(
            "/v1/accounts",
            Some(ADMIN),
            &account_body("bob", "ALICE@example.COM"),
        )
        .await;
    expect_error(resp, StatusCode::CONFLICT, "email_taken").await;
    let resp = gw
        .post_json(
            "/v1/accounts",
            Some(ADMIN),
            &account_body("carol", "not-an-email"),
        )
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_email").await;
    let mut same_parties = account_body("dave", "dave@example.com");
    same_parties["server"]["party_id"] = "device".into();
    let resp = gw
        .post_json("/v1/accounts", Some(ADMIN), &same_parties)
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "parties_not_distinct").await;
    // A refused opening released its claims: bob can open with his own email.
    let resp = gw
        .post_json(
            "/v1/accounts",
            Some(ADMIN),
            &account_body("bob", "bob@example.com"),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    let id = opened.account_id.as_str();
    let resp = gw.get(&format!("/v1/accounts/{id}"), None).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let account = get_account(&gw, id).await;
    assert_eq!(account.username, "alice");
    assert_eq!(account.email, "alice@example.com");
    assert_eq!(account.status, "active");
    let shares: Vec<(&str, &str)> = account
        .shares
        .iter()
        .map(|(r, p)| (r.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        shares,
        [
            ("device", "device"),
            ("recovery", "recovery"),
            ("server", "server")
        ]
    );
    assert_eq!(account.key_status, KeyStatusDto::Pending);
    assert_eq!(account.public_key_hex, None);
    assert_eq!(account.keygen_session_id, opened.keygen.session_id);

    let unknown = AccountId::new().to_string();
    let resp = gw
        .get(&format!("/v1/accounts/{unknown}"), Some(ADMIN))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "unknown_account").await;
    let resp = gw.get("/v1/accounts/not-a-uuid", Some(ADMIN)).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_id").await;

    let resp = set_status(&gw, id, &json!({"action": "suspend"})).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "missing_field").await;
    let resp = gw
        .post_json(
            &format!("/v1/accounts/{id}/status"),
            None,
            &json!({"action": "suspend", "reason": "fraud review"}),
        )
        .await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = set_status(&gw, id, &json!({"action": "explode", "reason": "x"})).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_body").await;
    let resp = set_status(
        &gw,
        id,
        &json!({"action": "suspend", "reason": "fraud review"}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<AccountDto>().await.unwrap().status, "suspended");
    let resp = set_status(&gw, id, &json!({"action": "suspend", "reason": "again"})).await;
    expect_error(resp, StatusCode::CONFLICT, "already_in_status").await;
    let resp = set_status(
        &gw,
        id,
        &json!({"action": "start_recovery", "reason": "lost phone"}),
    )
    .await;
    expect_error(resp, StatusCode::CONFLICT, "invalid_transition").await;
    assert_eq!(get_account(&gw, id).await.status, "suspended");
    let resp = set_status(&gw, id, &json!({"action": "reactivate", "reason": "ok"})).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "unexpected_field").await;
    let resp = set_status(&gw, id, &json!({"action": "reactivate"})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(get_account(&gw, id).await.status, "active");

    // A failed keygen shows as such and is replaced by a new session.
    let keygen_path = format!("/v1/accounts/{id}/keygen");
    let resp = gw.post_json(&keygen_path, Some(ADMIN), &json!({})).await;
    expect_error(resp, StatusCode::CONFLICT, "keygen_not_failed").await;
    let resp = gw
        .post_json(
            &format!("/v1/sessions/{}/close", opened.keygen.session_id),
            Some(ADMIN),
            &json!({"reason": "device offline"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(get_account(&gw, id).await.key_status, KeyStatusDto::Failed);
    let resp = gw.post_json(&keygen_path, None, &json!({})).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = gw
        .post_json(&keygen_path, Some(ADMIN), &json!({"ttl_seconds": 0}))
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_ttl").await;
    let resp = gw.post_json(&keygen_path, Some(ADMIN), &json!({})).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let restarted: CreateSessionResponse = resp.json().await.unwrap();
    let account = get_account(&gw, id).await;
    assert_eq!(account.keygen_session_id, restarted.session_id);
    assert_ne!(restarted.session_id, opened.keygen.session_id);
    assert_eq!(account.key_status, KeyStatusDto::Pending);

    let resp = gw
        .post_json(
            &format!("/v1/accounts/{unknown}/status"),
            Some(ADMIN),
            &json!({"action": "lock", "reason": "x"}),
        )
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "unknown_account").await;
}

#[actix_web::test]
async fn an_account_key_completes_and_signs_between_device_and_server() {
    let gw = start().await;
    let resp = gw
        .post_json(
            "/v1/accounts",
            Some(ADMIN),
            &account_body("erin", "erin@example.com"),
        )
        .await;
    let opened: OpenAccountResponse = resp.json().await.unwrap();
    let id = opened.account_id.as_str();
    let sign_path = format!("/v1/accounts/{id}/signatures");
    let message = json!({"message_hex": hex::encode(b"transfer 5")});

    let resp = gw.post_json(&sign_path, Some(ADMIN), &message).await;
    expect_error(resp, StatusCode::CONFLICT, "key_not_ready").await;

    complete_keygen(&gw, &opened.keygen).await;
    let account = get_account(&gw, id).await;
    assert_eq!(account.key_status, KeyStatusDto::Completed);
    assert_eq!(account.public_key_hex.as_deref(), Some(GENERATOR));
    assert_eq!(account.last_used_at, None);

    let resp = gw
        .post_json(
            &format!("/v1/accounts/{id}/keygen"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    expect_error(resp, StatusCode::CONFLICT, "keygen_not_failed").await;

    let resp = gw.post_json(&sign_path, None, &message).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = gw
        .post_json(
            &sign_path,
            Some(ADMIN),
            &json!({"message_hex": "00", "message_hash_hex": hex::encode([0u8; 32])}),
        )
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_payload").await;
    let resp = gw.post_json(&sign_path, Some(ADMIN), &message).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let signing: CreateSessionResponse = resp.json().await.unwrap();
    let signers: Vec<&str> = signing.join_tokens.keys().map(String::as_str).collect();
    assert_eq!(signers, ["device", "server"]);
    assert!(get_account(&gw, id).await.last_used_at.is_some());

    let resp = set_status(&gw, id, &json!({"action": "lock", "reason": "stolen"})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = gw.post_json(&sign_path, Some(ADMIN), &message).await;
    expect_error(resp, StatusCode::CONFLICT, "account_not_active").await;
}

async fn decide(
    gw: &TestGateway,
    workflow: &str,
    approver: &str,
    decision: &str,
    signature: &[u8],
) -> reqwest::Response {
    gw.post_json(
        &format!("/v1/workflows/{workflow}/decisions"),
        None,
        &json!({
            "approver": approver,
            "decision": decision,
            "signature_hex": hex::encode(signature),
        }),
    )
    .await
}

async fn get_workflow(gw: &TestGateway, id: &str) -> WorkflowDto {
    let resp = gw.get(&format!("/v1/workflows/{id}"), Some(ADMIN)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

fn decisions(w: &WorkflowDto) -> Vec<(&str, &str)> {
    w.approvers
        .iter()
        .map(|a| (a.party_id.as_str(), a.decision.as_str()))
        .collect()
}

#[actix_web::test]
async fn a_workflow_needs_t_signed_approvals_before_signing() {
    let gw = start().await;
    let ids = [
        PartyIdentity::generate(),
        PartyIdentity::generate(),
        PartyIdentity::generate(),
    ];
    let key_id = completed_key(&gw, &ids, "approved-only").await;
    let resp = gw.get(&format!("/v1/keys/{key_id}"), Some(ADMIN)).await;
    let key: Value = resp.json().await.unwrap();
    assert_eq!(key["policy"], "approved-only", "{key}");
    let payload = b"wire 1000 EUR to ACME".to_vec();
    // The key signs only what a workflow approved: a plain session is refused.
    let plain = json!({
        "kind": "signing", "key_id": key_id, "signers": ["device", "server"],
        "message_hex": hex::encode(&payload), "ttl_seconds": 60,
    });
    let resp = gw.post_json("/v1/sessions", Some(ADMIN), &plain).await;
    expect_error(resp, StatusCode::CONFLICT, "approval_required").await;
    let body =
        json!({"key_id": key_id, "title": "Q3 payment", "payload_hex": hex::encode(&payload)});

    let resp = gw.post_json("/v1/workflows", None, &body).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let mut no_title = body.clone();
    no_title["title"] = "".into();
    let resp = gw.post_json("/v1/workflows", Some(ADMIN), &no_title).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_title").await;
    let mut unknown_key = body.clone();
    unknown_key["key_id"] = AccountId::new().to_string().into();
    let resp = gw
        .post_json("/v1/workflows", Some(ADMIN), &unknown_key)
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "unknown_key").await;

    let resp = gw.post_json("/v1/workflows", Some(ADMIN), &body).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: CreateWorkflowResponse = resp.json().await.unwrap();
    assert_eq!(created.approvers, PARTIES);
    assert_eq!(created.threshold, 2);
    let payload_hash = MessageHash::from_bytes(Sha256::digest(&payload).into());
    assert_eq!(
        created.payload_hash_hex,
        hex::encode(payload_hash.as_bytes())
    );
    let wid: WorkflowId = created.workflow_id.parse().unwrap();
    let w = created.workflow_id.as_str();
    let resp = gw.get(&format!("/v1/keys/{key_id}"), Some(ADMIN)).await;
    let state: KeyStateDto = resp.json().await.unwrap();
    let key = KeyRef::try_from(&state.key).unwrap();
    let sig = |i: usize, d: Decision| {
        ids[i]
            .sign_decision(wid, &key, &payload_hash, d)
            .as_bytes()
            .to_vec()
    };

    // The device's signature claimed for the server is forged: refused, nothing recorded.
    let resp = decide(&gw, w, "server", "approve", &sig(0, Decision::Approve)).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_approval_signature").await;
    // A signature of "reject" does not carry "approve".
    let resp = decide(&gw, w, "device", "approve", &sig(0, Decision::Reject)).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_approval_signature").await;
    let resp = decide(&gw, w, "mallory", "approve", &sig(0, Decision::Approve)).await;
    expect_error(resp, StatusCode::FORBIDDEN, "not_an_approver").await;
    let resp = decide(&gw, w, "device", "approve", &[1, 2, 3]).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_length").await;
    let resp = decide(&gw, w, "device", "maybe", &sig(0, Decision::Approve)).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_body").await;
    let unchanged = get_workflow(&gw, w).await;
    assert_eq!(unchanged.status, "pending");
    assert_eq!(
        decisions(&unchanged),
        [("device", "none"), ("server", "none"), ("recovery", "none")]
    );
    assert_eq!(unchanged.payload_hex, hex::encode(&payload));
    assert_eq!(unchanged.title, "Q3 payment");

    let resp = decide(&gw, w, "device", "approve", &sig(0, Decision::Approve)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let after: WorkflowDto = resp.json().await.unwrap();
    assert_eq!(after.status, "pending");
    assert_eq!(decisions(&after)[0], ("device", "approve"));
    assert!(after.approvers[0].decided_at.is_some());
    let resp = decide(&gw, w, "device", "approve", &sig(0, Decision::Approve)).await;
    expect_error(resp, StatusCode::CONFLICT, "already_decided").await;

    let signing_path = format!("/v1/workflows/{w}/signing");
    let resp = gw.post_json(&signing_path, Some(ADMIN), &json!({})).await;
    expect_error(resp, StatusCode::CONFLICT, "workflow_not_approved").await;

    let resp = decide(&gw, w, "server", "approve", &sig(1, Decision::Approve)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let approved: WorkflowDto = resp.json().await.unwrap();
    assert_eq!(approved.status, "approved");
    assert_eq!(approved.approved_by, ["device", "server"]);
    let resp = decide(&gw, w, "recovery", "reject", &sig(2, Decision::Reject)).await;
    expect_error(resp, StatusCode::CONFLICT, "workflow_not_pending").await;

    let resp = gw.post_json(&signing_path, None, &json!({})).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = gw.post_json(&signing_path, Some(ADMIN), &json!({})).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let session: CreateSessionResponse = resp.json().await.unwrap();
    let signers: Vec<&str> = session.join_tokens.keys().map(String::as_str).collect();
    assert_eq!(signers, ["device", "server"]);
    let resp = gw
        .join(
            &session.session_id,
            "server",
            &session.join_tokens["server"],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let view = resp.json::<JoinResponse>().await.unwrap().session;
    assert_eq!(view.message_hex, Some(hex::encode(&payload)));
    let evidence = view.approval.expect("the session carries the approvals");
    assert_eq!(evidence.workflow_id, created.workflow_id);
    assert_eq!(evidence.payload_hash_hex, created.payload_hash_hex);
    let approvers: Vec<&str> = evidence
        .approvals
        .iter()
        .map(|a| a.approver.as_str())
        .collect();
    assert_eq!(approvers, ["device", "server"]);
    assert_eq!(
        evidence.approvals[0].signature_hex,
        hex::encode(sig(0, Decision::Approve))
    );

    let resp = gw.post_json(&signing_path, Some(ADMIN), &json!({})).await;
    expect_error(resp, StatusCode::CONFLICT, "approvals_used").await;
    let signing = get_workflow(&gw, w).await;
    assert_eq!(signing.status, "signing");
    assert_eq!(signing.signing_sessions, [session.session_id]);

    let unknown = WorkflowId::new().to_string();
    let resp = gw
        .get(&format!("/v1/workflows/{unknown}"), Some(ADMIN))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "unknown_workflow").await;
    let resp = decide(
        &gw,
        &unknown,
        "device",
        "approve",
        &sig(0, Decision::Approve),
    )
    .await;
    expect_error(resp, StatusCode::NOT_FOUND, "unknown_workflow").await;
    let resp = gw.get(&format!("/v1/workflows/{w}"), None).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

fn data_signature(key: &SigningKey, data: &[u8]) -> Value {
    let (sig, recovery_id) = key.sign_prehash_recoverable(Sha256::digest(data).as_slice());
    let (r, s) = sig.split_bytes();
    json!({"r_hex": hex::encode(r), "s_hex": hex::encode(s), "recovery_id": recovery_id.to_byte()})
}

#[actix_web::test]
async fn data_signatures_verify_and_tampering_is_detected() {
    let gw = start().await;
    let key = SigningKey::from_slice(&[0x42; 32]).unwrap();
    let public_key_hex = hex::encode(key.verifying_key().to_sec1_point(true).as_bytes());
    let data = b"invoice #17: 1200 EUR";
    let signature = data_signature(&key, data);

    let body = json!({"public_key_hex": public_key_hex, "data_hex": hex::encode(data), "signature": signature});
    let resp = gw.post_json("/v1/data/verify", None, &body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"valid": true}));

    let mut no_recovery_id = body.clone();
    no_recovery_id["signature"]
        .as_object_mut()
        .unwrap()
        .remove("recovery_id");
    let resp = gw.post_json("/v1/data/verify", None, &no_recovery_id).await;
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"valid": true}));

    let mut tampered = body.clone();
    tampered["data_hex"] = hex::encode(b"invoice #17: 9200 EUR").into();
    let resp = gw.post_json("/v1/data/verify", None, &tampered).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"valid": false}));

    let mut other_key = body.clone();
    other_key["public_key_hex"] = GENERATOR.into();
    let resp = gw.post_json("/v1/data/verify", None, &other_key).await;
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"valid": false}));

    let mut bad_hex = body.clone();
    bad_hex["signature"]["r_hex"] = "zz".into();
    let resp = gw.post_json("/v1/data/verify", None, &bad_hex).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_hex").await;
    let mut short = body.clone();
    short["signature"]["s_hex"] = "0102".into();
    let resp = gw.post_json("/v1/data/verify", None, &short).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_length").await;
    let mut bad_key = body.clone();
    bad_key["public_key_hex"] = hex::encode([9u8; 33]).into();
    let resp = gw.post_json("/v1/data/verify", None, &bad_key).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_public_key").await;
    // A well-formed encoding (prefix 02) of an x with no point on the curve.
    let mut off_curve = body.clone();
    let mut x = [0u8; 33];
    x[0] = 2;
    x[32] = 5;
    off_curve["public_key_hex"] = hex::encode(x).into();
    let resp = gw.post_json("/v1/data/verify", None, &off_curve).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_public_key").await;
    let mut both = body.clone();
    both["key_id"] = AccountId::new().to_string().into();
    let resp = gw.post_json("/v1/data/verify", None, &both).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_key_source").await;
    let resp = gw
        .http
        .post(gw.url("/v1/data/verify"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "malformed_json").await;
}

#[actix_web::test]
async fn data_is_signed_through_a_session_whose_signers_see_it() {
    let gw = start().await;
    let ids = [
        PartyIdentity::generate(),
        PartyIdentity::generate(),
        PartyIdentity::generate(),
    ];
    let key_id = completed_key(&gw, &ids, "any-request").await;
    let data = b"{\"record\": 42}";
    let body =
        json!({"key_id": key_id, "signers": ["device", "recovery"], "data_hex": hex::encode(data)});

    let resp = gw.post_json("/v1/data/signatures", None, &body).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = gw
        .post_json("/v1/data/signatures", Some("not-the-admin"), &body)
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let mut unknown = body.clone();
    unknown["key_id"] = AccountId::new().to_string().into();
    let resp = gw
        .post_json("/v1/data/signatures", Some(ADMIN), &unknown)
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "unknown_key").await;

    let resp = gw
        .post_json("/v1/data/signatures", Some(ADMIN), &body)
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let session: CreateSessionResponse = resp.json().await.unwrap();
    let resp = gw
        .join(
            &session.session_id,
            "recovery",
            &session.join_tokens["recovery"],
        )
        .await;
    let view = resp.json::<JoinResponse>().await.unwrap().session;
    assert_eq!(view.message_hex, Some(hex::encode(data)));
    assert_eq!(
        view.message_hash_hex,
        Some(hex::encode(Sha256::digest(data)))
    );

    // Verification by key id looks the completed key up: its public key is the
    // generator, whose secret scalar is 1.
    let mut one = [0u8; 32];
    one[31] = 1;
    let generator_key = SigningKey::from_slice(&one).unwrap();
    let by_key = json!({
        "key_id": key_id,
        "data_hex": hex::encode(data),
        "signature": data_signature(&generator_key, data),
    });
    let resp = gw.post_json("/v1/data/verify", None, &by_key).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"valid": true}));
    let mut tampered = by_key.clone();
    tampered["data_hex"] = hex::encode(b"{\"record\": 43}").into();
    let resp = gw.post_json("/v1/data/verify", None, &tampered).await;
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"valid": false}));
}
