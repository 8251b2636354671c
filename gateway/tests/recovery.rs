//! Account recovery sessions and on-demand share rotation over HTTP: refresh
//! sessions run to completion by parties that join and report, and every refusal
//! recording nothing.

mod common;

use common::{
    ADMIN, GENERATOR, PARTIES, TestGateway, account_body, complete_keygen, expect_error,
    get_account, identity, keygen_body, party_identity, set_status, start,
};
use mpc_api::{
    CreateSessionResponse, KeyStateDto, OpenAccountResponse, RecoveriesDto, RecoveryDto,
    ReportRequest,
};
use mpc_events::{
    AccountId, IdentityKey, KeyId, PartyId, PartyOutcome, PublicKey, RefreshDigest, SessionId,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Every party joins refresh session `created` and reports the generator (the
/// key) and one refresh digest.
async fn complete_refresh(gw: &TestGateway, created: &CreateSessionResponse) {
    let tokens = gw.join_all(created, &PARTIES).await;
    let report = serde_json::to_value(ReportRequest::completion(&PartyOutcome::Refreshed {
        public_key: PublicKey::from_slice(&hex::decode(GENERATOR).unwrap()).unwrap(),
        digest: RefreshDigest::from_bytes([7; 32]),
    }))
    .unwrap();
    for token in &tokens {
        let resp = gw
            .post_json(
                &format!("/v1/sessions/{}/report", created.session_id),
                Some(token),
                &report,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
}

async fn request_recovery(gw: &TestGateway, id: &str, body: &Value) -> reqwest::Response {
    gw.post_json(&format!("/v1/accounts/{id}/recoveries"), Some(ADMIN), body)
        .await
}

async fn recoveries(gw: &TestGateway, id: &str) -> Vec<RecoveryDto> {
    let resp = gw
        .get(&format!("/v1/accounts/{id}/recoveries"), Some(ADMIN))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json::<RecoveriesDto>().await.unwrap().recoveries
}

async fn key_state(gw: &TestGateway, key_id: &str) -> KeyStateDto {
    let resp = gw.get(&format!("/v1/keys/{key_id}"), Some(ADMIN)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

/// A `device_lost` request for new device `identity(9)`, authorized by the
/// parties at `by` (1-based, as `identity(i)`) for key `key_id` at generation
/// `epoch`.
fn lost_device(key_id: KeyId, epoch: u32, by: &[u8]) -> Value {
    lost_device_to(9, key_id, epoch, by)
}

/// [`lost_device`] for new device `identity(device)`.
fn lost_device_to(device: u8, key_id: KeyId, epoch: u32, by: &[u8]) -> Value {
    let target = PartyId::parse("device").unwrap();
    let new_device = IdentityKey::try_from(&identity(device)).unwrap();
    let authorizations: Vec<Value> = by
        .iter()
        .map(|i| {
            let signature =
                party_identity(*i).authorize_recovery(key_id, epoch, &target, &new_device);
            json!({"approver": PARTIES[usize::from(*i) - 1], "signature_hex": hex::encode(signature.as_bytes())})
        })
        .collect();
    json!({
        "kind": "device_lost",
        "device_identity": identity(device),
        "authorizations": authorizations,
        "ttl_seconds": 120,
    })
}

fn tokens_of(created: &CreateSessionResponse) -> Vec<&str> {
    created.join_tokens.keys().map(String::as_str).collect()
}

#[actix_web::test]
async fn recovery_sessions_rotate_and_repair_shares_and_refusals_record_nothing() {
    let gw = start().await;
    let resp = gw
        .post_json(
            "/v1/accounts",
            Some(ADMIN),
            &account_body("alice", "alice@example.com"),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let opened: OpenAccountResponse = resp.json().await.unwrap();
    let id = opened.account_id.as_str();
    let rotation = json!({"kind": "share_rotation"});

    // No key yet.
    let head = gw.head().await;
    let resp = request_recovery(&gw, id, &rotation).await;
    expect_error(resp, StatusCode::CONFLICT, "key_not_ready").await;
    complete_keygen(&gw, &opened.keygen).await;
    let account = get_account(&gw, id).await;
    assert_eq!(account.key_epoch, Some(1));
    assert_eq!(account.open_recovery, None);

    // Refusals, each before anything is recorded.
    let head_before = gw.head().await;
    assert!(head_before > head);
    let resp = gw
        .post_json(&format!("/v1/accounts/{id}/recoveries"), None, &rotation)
        .await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = gw
        .http
        .post(gw.url(&format!("/v1/accounts/{id}/recoveries")))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{\"kind\": ")
        .send()
        .await
        .unwrap();
    expect_error(resp, StatusCode::BAD_REQUEST, "malformed_json").await;
    let resp = request_recovery(&gw, id, &json!({"kind": "explode"})).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_body").await;
    let resp = request_recovery(&gw, id, &json!({"kind": "device_lost"})).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_body").await;
    let bad_hex = json!({
        "kind": "device_lost",
        "device_identity": {"signing": "not hex", "encryption": hex::encode([1; 32])},
        "authorizations": [],
    });
    let resp = request_recovery(&gw, id, &bad_hex).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_hex").await;
    let resp = request_recovery(
        &gw,
        id,
        &json!({"kind": "share_rotation", "ttl_seconds": 0}),
    )
    .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_ttl").await;
    let unknown = AccountId::new().to_string();
    let resp = request_recovery(&gw, &unknown, &rotation).await;
    expect_error(resp, StatusCode::NOT_FOUND, "unknown_account").await;
    let resp = request_recovery(&gw, "not-a-uuid", &rotation).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_id").await;
    let key_id = KeyId::of_keygen(opened.keygen.session_id.parse::<SessionId>().unwrap());
    let resp = request_recovery(&gw, id, &lost_device(key_id, 1, &[2, 3])).await;
    expect_error(resp, StatusCode::CONFLICT, "account_not_recovering").await;
    assert_eq!(gw.head().await, head_before);
    assert!(recoveries(&gw, id).await.is_empty());
    let resp = gw
        .get(&format!("/v1/accounts/{unknown}/recoveries"), Some(ADMIN))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "unknown_account").await;
    let resp = gw.get(&format!("/v1/accounts/{id}/recoveries"), None).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // A share rotation of the active account, one at a time.
    let resp = request_recovery(&gw, id, &rotation).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let rotating: CreateSessionResponse = resp.json().await.unwrap();
    assert_eq!(tokens_of(&rotating), ["device", "recovery", "server"]);
    let listed = recoveries(&gw, id).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].session_id, rotating.session_id);
    assert_eq!(listed[0].kind, "share_rotation");
    assert_eq!(listed[0].status, "requested");
    assert_eq!(listed[0].new_device_identity, None);
    assert_eq!(
        get_account(&gw, id).await.open_recovery.as_ref(),
        Some(&listed[0])
    );
    let head_open = gw.head().await;
    let resp = request_recovery(&gw, id, &rotation).await;
    expect_error(resp, StatusCode::CONFLICT, "recovery_open").await;
    let resp = gw
        .post_json(
            &format!("/v1/keys/{key_id}/refresh"),
            Some(ADMIN),
            &json!({}),
        )
        .await;
    expect_error(resp, StatusCode::CONFLICT, "refresh_running").await;
    assert_eq!(gw.head().await, head_open);

    complete_refresh(&gw, &rotating).await;
    let listed = recoveries(&gw, id).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, "completed");
    assert_eq!(listed[0].failure, None);
    let account = get_account(&gw, id).await;
    assert_eq!(account.key_epoch, Some(2));
    assert_eq!(account.open_recovery, None);

    // A lost device: the account must be recovering, the new identity new.
    let resp = set_status(
        &gw,
        id,
        &json!({"action": "start_recovery", "reason": "lost phone"}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let head_recovering = gw.head().await;
    let resp = request_recovery(&gw, id, &rotation).await;
    expect_error(resp, StatusCode::CONFLICT, "account_not_active").await;
    let same_identity = lost_device_to(2, key_id, 2, &[2, 3]);
    let resp = request_recovery(&gw, id, &same_identity).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "identity_not_new").await;
    // The admin token alone cannot move the device share: server's and recovery's
    // authorizations of this key's current generation are needed.
    for unauthorized in [
        lost_device(key_id, 2, &[]),
        lost_device(key_id, 2, &[3]),
        lost_device(key_id, 2, &[1, 3]),
        lost_device(key_id, 1, &[2, 3]),
        lost_device(KeyId::of_keygen(SessionId::new()), 2, &[2, 3]),
    ] {
        let resp = request_recovery(&gw, id, &unauthorized).await;
        expect_error(resp, StatusCode::BAD_REQUEST, "recovery_not_authorized").await;
    }
    let mut bad_signature = lost_device(key_id, 2, &[2, 3]);
    bad_signature["authorizations"][0]["signature_hex"] = json!("zz");
    let resp = request_recovery(&gw, id, &bad_signature).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_hex").await;
    assert_eq!(gw.head().await, head_recovering);
    assert_eq!(recoveries(&gw, id).await.len(), 1);

    let lost = lost_device(key_id, 2, &[2, 3]);
    let resp = request_recovery(&gw, id, &lost).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let repairing: CreateSessionResponse = resp.json().await.unwrap();
    assert_eq!(tokens_of(&repairing), ["device", "recovery", "server"]);
    let listed = recoveries(&gw, id).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].session_id, repairing.session_id);
    assert_eq!(listed[1].kind, "device_lost");
    assert_eq!(listed[1].status, "requested");
    assert_eq!(listed[1].new_device_identity, Some(identity(9)));
    let resp = request_recovery(&gw, id, &lost).await;
    expect_error(resp, StatusCode::CONFLICT, "recovery_open").await;

    complete_refresh(&gw, &repairing).await;
    let listed = recoveries(&gw, id).await;
    let statuses: Vec<&str> = listed.iter().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["completed", "completed"]);
    assert!(listed[0].requested_at <= listed[1].requested_at);
    let account = get_account(&gw, id).await;
    assert_eq!(account.status, "active");
    assert_eq!(account.key_epoch, Some(3));
    assert_eq!(account.share_identities["device"], identity(9));
    assert_ne!(
        account.share_identities["server"],
        account.share_identities["device"]
    );
    let key = key_state(&gw, &key_id.to_string()).await;
    assert_eq!(key.key.parties[0].identity, identity(9));
    assert_eq!(
        key.last_refresh.map(|r| (r.session_id, r.status)),
        Some((repairing.session_id, Some("completed".to_owned())))
    );
}

#[actix_web::test]
async fn keys_rotate_on_demand_one_refresh_at_a_time() {
    let gw = start().await;
    let created = gw.create(&keygen_body()).await;
    let key_id = created.session_id.clone();
    let refresh = |key: &str| format!("/v1/keys/{key}/refresh");

    let resp = gw
        .post_json(&refresh(&key_id), Some(ADMIN), &json!({}))
        .await;
    expect_error(resp, StatusCode::CONFLICT, "key_not_ready").await;
    complete_keygen(&gw, &created).await;
    let key = key_state(&gw, &key_id).await;
    assert_eq!(key.key.epoch, 1);
    assert_eq!(key.last_refresh, None);
    assert!(key.generation_at > 0);

    let head = gw.head().await;
    let resp = gw.post_json(&refresh(&key_id), None, &json!({})).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let resp = gw
        .post_json(&refresh(&key_id), Some(ADMIN), &json!({"ttl_seconds": 0}))
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_ttl").await;
    let resp = gw
        .post_json(&refresh("not-a-key"), Some(ADMIN), &json!({}))
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_id").await;
    let unknown = SessionId::new().to_string();
    let resp = gw
        .post_json(&refresh(&unknown), Some(ADMIN), &json!({}))
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "unknown_key").await;
    assert_eq!(gw.head().await, head);

    let resp = gw
        .post_json(&refresh(&key_id), Some(ADMIN), &json!({"ttl_seconds": 120}))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let rotating: CreateSessionResponse = resp.json().await.unwrap();
    assert_eq!(tokens_of(&rotating), ["device", "recovery", "server"]);
    let head = gw.head().await;
    let resp = gw
        .post_json(&refresh(&key_id), Some(ADMIN), &json!({}))
        .await;
    expect_error(resp, StatusCode::CONFLICT, "refresh_running").await;
    assert_eq!(gw.head().await, head);
    let key = key_state(&gw, &key_id).await;
    let last = key.last_refresh.unwrap();
    assert_eq!(last.session_id, rotating.session_id);
    assert_eq!(last.status.as_deref(), Some("created"));
    assert!(last.is_running().unwrap());
    let generation_at = key.generation_at;

    complete_refresh(&gw, &rotating).await;
    let key = key_state(&gw, &key_id).await;
    assert_eq!(key.key.epoch, 2);
    assert!(key.generation_at >= generation_at);
    assert_eq!(
        key.last_refresh.and_then(|r| r.status),
        Some("completed".to_owned())
    );
    let resp = gw
        .post_json(&refresh(&key_id), Some(ADMIN), &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}
