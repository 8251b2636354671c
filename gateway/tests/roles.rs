//! Operators' API keys and the route × role matrix (issue 17): every `/v1` route is
//! called by every kind of caller (the four roles' API keys and a party's access
//! token). A caller the route admits gets past authorization (neither 401 nor 403);
//! any other gets 403 with a stable code and appends nothing. The expected matrix
//! is written out here, independently of the gateway's table, and must cover
//! exactly the routes the gateway serves. Then the keys' lifecycle: a key-manager
//! key creates a keygen session that a requester key may not, an auditor reads it,
//! a revoked or forged key is refused, and no key or digest is ever listed.

mod common;

use std::collections::BTreeMap;

use common::{ADMIN, PARTIES, expect_error, keygen_body, start};
use mpc_api::{CreatedOperatorDto, OperatorsDto};
use mpc_gateway::roles::{Access, ROUTES};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Who each route admits: A admin, K key-manager, R requester, U auditor, P a
/// party of the session in the path. Routes whose credential is in the body are
/// not here (they take no bearer token).
const EXPECTED: &[(&str, &str, &str)] = &[
    ("POST", "/v1/sessions", "AKR"),
    ("GET", "/v1/sessions/{id}", "AKRUP"),
    ("POST", "/v1/sessions/{id}/report", "P"),
    ("POST", "/v1/sessions/{id}/close", "AKR"),
    ("POST", "/v1/sessions/{id}/messages", "P"),
    ("GET", "/v1/sessions/{id}/messages", "P"),
    ("GET", "/v1/keys/{key_id}", "AKRU"),
    ("POST", "/v1/keys/{key_id}/refresh", "AK"),
    ("POST", "/v1/accounts", "AK"),
    ("GET", "/v1/accounts/{id}", "AKRU"),
    ("POST", "/v1/accounts/{id}/status", "AK"),
    ("POST", "/v1/accounts/{id}/keygen", "AK"),
    ("POST", "/v1/accounts/{id}/signatures", "AR"),
    ("POST", "/v1/accounts/{id}/recoveries", "AK"),
    ("GET", "/v1/accounts/{id}/recoveries", "AKRU"),
    ("POST", "/v1/workflows", "AR"),
    ("GET", "/v1/workflows/{id}", "AKRU"),
    ("POST", "/v1/workflows/{id}/signing", "AR"),
    ("POST", "/v1/data/signatures", "AR"),
    ("POST", "/v1/operators", "A"),
    ("GET", "/v1/operators", "AU"),
    ("DELETE", "/v1/operators/{id}", "A"),
];

const BODY_CREDENTIAL: &[(&str, &str)] = &[
    ("POST", "/v1/sessions/{id}/join"),
    ("POST", "/v1/workflows/{id}/decisions"),
    ("POST", "/v1/data/verify"),
];

async fn add_key(
    gw: &common::TestGateway,
    bearer: &str,
    name: &str,
    role: &str,
) -> reqwest::Response {
    gw.post_json(
        "/v1/operators",
        Some(bearer),
        &json!({"name": name, "role": role}),
    )
    .await
}

async fn new_key(gw: &common::TestGateway, name: &str, role: &str) -> CreatedOperatorDto {
    let resp = add_key(gw, ADMIN, name, role).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.unwrap()
}

#[actix_web::test]
async fn every_route_admits_exactly_its_roles() {
    // The expected matrix covers exactly the gateway's routes.
    let mut served: Vec<(String, String)> = ROUTES
        .iter()
        .filter(|(_, _, access)| *access != Access::Open)
        .map(|(m, p, _)| (m.to_string(), (*p).to_owned()))
        .collect();
    let mut expected: Vec<(String, String)> = EXPECTED
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    served.sort();
    expected.sort();
    assert_eq!(served, expected);
    let open: Vec<(String, String)> = ROUTES
        .iter()
        .filter(|(_, _, access)| *access == Access::Open)
        .map(|(m, p, _)| (m.to_string(), (*p).to_owned()))
        .collect();
    let body_credential: Vec<(String, String)> = BODY_CREDENTIAL
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(open, body_credential);

    let gw = start().await;
    let mut callers: BTreeMap<char, String> = BTreeMap::new();
    for (letter, role) in [
        ('A', "admin"),
        ('K', "key-manager"),
        ('R', "requester"),
        ('U', "auditor"),
    ] {
        callers.insert(
            letter,
            new_key(&gw, &format!("{role} key"), role).await.api_key,
        );
    }
    let session = gw.create(&keygen_body()).await;
    let party_tokens = gw.join_all(&session, &PARTIES).await;
    callers.insert('P', party_tokens[0].clone());

    let other_id = uuid::Uuid::now_v7().to_string();
    let mut checked = 0;
    for (method, pattern, admitted) in EXPECTED {
        let path = pattern
            .replace(
                "/v1/sessions/{id}",
                &format!("/v1/sessions/{}", session.session_id),
            )
            .replace("{id}", &other_id)
            .replace("{key_id}", &other_id);
        for (letter, token) in &callers {
            let head = gw.head().await;
            let resp = gw
                .http
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    gw.url(&path),
                )
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let who = format!("{letter} on {method} {pattern}");
            if admitted.contains(*letter) {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{who} must be admitted, got {status}"
                );
            } else {
                let code = match letter {
                    'P' => "forbidden",
                    _ if admitted.contains('P') && !admitted.contains('A') => "forbidden",
                    _ => "role_forbidden",
                };
                expect_error(resp, StatusCode::FORBIDDEN, code).await;
                assert_eq!(gw.head().await, head, "{who} appended events");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, EXPECTED.len() * 5);
}

#[actix_web::test]
async fn api_keys_carry_their_role_until_revoked() {
    let gw = start().await;
    let manager = new_key(&gw, "key manager", "key-manager").await;
    let requester = new_key(&gw, "ci signer", "requester").await;
    let auditor = new_key(&gw, "auditor", "auditor").await;
    assert!(manager.api_key.starts_with("mpc_"));
    assert_eq!(
        manager.operator.credential_id.replace('-', ""),
        manager.api_key[4..36],
        "the key names its credential"
    );

    // The requester may not start a keygen (its route admits it for signing);
    // nothing is appended. The key manager may; the auditor reads the session.
    let head = gw.head().await;
    let resp = gw
        .post_json("/v1/sessions", Some(&requester.api_key), &keygen_body())
        .await;
    expect_error(resp, StatusCode::FORBIDDEN, "role_forbidden").await;
    assert_eq!(gw.head().await, head);
    let resp = gw
        .post_json("/v1/sessions", Some(&manager.api_key), &keygen_body())
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: mpc_api::CreateSessionResponse = resp.json().await.unwrap();
    let resp = gw
        .get(
            &format!("/v1/sessions/{}", created.session_id),
            Some(&auditor.api_key),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);

    // Only admin adds keys; names of active keys are unique; bad input is 400.
    let head = gw.head().await;
    expect_error(
        add_key(&gw, &manager.api_key, "mine", "admin").await,
        StatusCode::FORBIDDEN,
        "role_forbidden",
    )
    .await;
    expect_error(
        add_key(&gw, ADMIN, "ci signer", "auditor").await,
        StatusCode::CONFLICT,
        "name_taken",
    )
    .await;
    expect_error(
        add_key(&gw, ADMIN, "", "auditor").await,
        StatusCode::BAD_REQUEST,
        "invalid_name",
    )
    .await;
    let resp = add_key(&gw, ADMIN, "x", "root").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(gw.head().await, head, "refused additions appended events");

    // A forged key (a real credential id, another secret) is refused.
    let forged = format!("{}{}", &requester.api_key[..37], "0".repeat(64));
    assert_ne!(forged, requester.api_key);
    let resp = gw.get("/v1/operators", Some(&forged)).await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_api_key").await;

    // The listing names every key and role, never a key or a digest.
    let resp = gw.get("/v1/operators", Some(&auditor.api_key)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    for key in [&manager.api_key, &requester.api_key, &auditor.api_key] {
        assert!(!text.contains(&key[37..]), "a key's secret is listed");
    }
    let listed: OperatorsDto = serde_json::from_str(&text).unwrap();
    let names: Vec<&str> = listed.operators.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["key manager", "ci signer", "auditor"]);

    // Revoked: refused at once, listed with its revocation time, not revocable twice.
    let revoke = |bearer: &str, id: &str| {
        gw.http
            .delete(gw.url(&format!("/v1/operators/{id}")))
            .bearer_auth(bearer.to_owned())
            .send()
    };
    let id = requester.operator.credential_id.as_str();
    expect_error(
        revoke(&auditor.api_key, id).await.unwrap(),
        StatusCode::FORBIDDEN,
        "role_forbidden",
    )
    .await;
    let resp = revoke(ADMIN, id).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = gw
        .post_json("/v1/data/signatures", Some(&requester.api_key), &json!({}))
        .await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_api_key").await;
    expect_error(
        revoke(ADMIN, id).await.unwrap(),
        StatusCode::CONFLICT,
        "already_revoked",
    )
    .await;
    let unknown = uuid::Uuid::now_v7().to_string();
    expect_error(
        revoke(ADMIN, &unknown).await.unwrap(),
        StatusCode::NOT_FOUND,
        "unknown_credential",
    )
    .await;
    let listed: OperatorsDto = gw
        .get("/v1/operators", Some(ADMIN))
        .await
        .json()
        .await
        .unwrap();
    let revoked = listed
        .operators
        .iter()
        .find(|o| o.credential_id == id)
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    // Its name is free again; the new key is another key.
    let again = new_key(&gw, "ci signer", "requester").await;
    assert_ne!(again.api_key, requester.api_key);
}

/// Rates per credential, by role: a requester key over its rate gets 429 with
/// `Retry-After` and its call is not read; another requester key, and a role
/// without a limit, are not slowed by it.
#[actix_web::test]
async fn a_credential_over_its_roles_rate_gets_429_with_retry_after() {
    let gw = common::start_configured(
        mpc_gateway::JwtKeys::hs256(common::SECRET).unwrap(),
        |config| config.rate_limits = vec!["requester=3".parse().unwrap()],
    )
    .await;
    let first = new_key(&gw, "first", "requester").await;
    let second = new_key(&gw, "second", "requester").await;
    let auditor = new_key(&gw, "auditor", "auditor").await;
    let call = async |key: &str| {
        gw.get(
            &format!("/v1/workflows/{}", uuid::Uuid::now_v7()),
            Some(key),
        )
        .await
    };
    for _ in 0..3 {
        assert_eq!(call(&first.api_key).await.status(), StatusCode::NOT_FOUND);
    }
    let head = gw.head().await;
    let resp = gw
        .post_json("/v1/workflows", Some(&first.api_key), &json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry_after), "Retry-After {retry_after}");
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(gw.head().await, head);
    assert_eq!(call(&second.api_key).await.status(), StatusCode::NOT_FOUND);
    for _ in 0..10 {
        assert_eq!(call(&auditor.api_key).await.status(), StatusCode::NOT_FOUND);
    }
}
