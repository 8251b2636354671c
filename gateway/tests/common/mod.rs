//! A real gateway on 127.0.0.1:0 over an in-memory SQLite store and the in-process
//! transport, and a small HTTP client for the tests.

#![allow(dead_code)] // each test binary uses a different part

use std::sync::Arc;

use k256::ecdsa::SigningKey;
use mpc_actors::{Accounts, Approvals, Clock, Coordinator, Operators, SystemClock};
use mpc_api::{
    AccountDto, CreateSessionResponse, IdentityDto, JoinResponse, ParticipantDto, ReportRequest,
    ThresholdDto,
};
use mpc_crypto::PartyIdentity;
use mpc_events::{MessageHash, PartyId, PartyOutcome, PublicKey, Signature};
use mpc_gateway::auth::JwtJoinTokens;
use mpc_gateway::{Auth, Gateway, GatewayConfig, GatewayServices, Inboxes, JwtKeys};
use mpc_schemas::envelope::SIGNATURE_BYTES;
use mpc_schemas::{Envelope, Recipient};
use mpc_store::{EventStore, SqliteStore};
use mpc_transport::InProcessTransport;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

pub const ADMIN: &str = "admin-token-for-tests-only-0123456789";
pub const SECRET: &[u8] = b"hs256-secret-for-tests-only-0123456789abcdef";
pub const ISSUER: &str = "mpc-gateway";
pub const PARTIES: [&str; 3] = ["device", "server", "recovery"];

pub struct TestGateway {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn EventStore>,
    pub transport: InProcessTransport,
    /// The inboxes the gateway keeps open between polls.
    pub inboxes: Arc<Inboxes>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

pub async fn start() -> TestGateway {
    start_with(JwtKeys::hs256(SECRET).unwrap()).await
}

pub async fn start_with(keys: JwtKeys) -> TestGateway {
    start_configured(keys, |_| {}).await
}

pub async fn start_configured(
    keys: JwtKeys,
    adjust: impl FnOnce(&mut GatewayConfig),
) -> TestGateway {
    let store: Arc<dyn EventStore> = Arc::new(SqliteStore::in_memory().await.unwrap());
    start_over(store, keys, adjust)
}

/// A gateway over `store`.
pub fn start_over(
    store: Arc<dyn EventStore>,
    keys: JwtKeys,
    adjust: impl FnOnce(&mut GatewayConfig),
) -> TestGateway {
    start_on(store, keys, adjust, InProcessTransport::new())
}

/// A gateway over `store` carrying envelopes on `transport`.
pub fn start_on(
    store: Arc<dyn EventStore>,
    keys: JwtKeys,
    adjust: impl FnOnce(&mut GatewayConfig),
    transport: InProcessTransport,
) -> TestGateway {
    let mut config = GatewayConfig::new("127.0.0.1:0".parse().unwrap());
    config.workers = Some(1);
    adjust(&mut config);
    let auth = Arc::new(Auth::new(keys, ISSUER.to_owned(), ADMIN).unwrap());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let coordinator = Arc::new(Coordinator::with_token_issuer(
        store.clone(),
        clock.clone(),
        Arc::new(JwtJoinTokens(auth.clone())),
    ));
    let gateway = Gateway::new(
        config,
        GatewayServices {
            accounts: Arc::new(Accounts::new(
                store.clone(),
                clock.clone(),
                coordinator.clone(),
            )),
            approvals: Arc::new(Approvals::new(
                store.clone(),
                clock.clone(),
                coordinator.clone(),
            )),
            operators: Arc::new(Operators::new(store.clone(), clock)),
            coordinator,
            transport: Arc::new(transport.clone()),
            store: store.clone(),
            auth,
        },
    );
    let inboxes = gateway.state().inboxes.clone();
    let (addr, server) = gateway.start().unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    TestGateway {
        base: format!("http://{addr}"),
        http: {
            // reqwest's rustls needs a process-wide provider (aws-lc, as the server).
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            reqwest::Client::new()
        },
        store,
        transport,
        inboxes,
        handle,
    }
}

/// Party `i`'s identity keys, the same in every call (so tests can sign with them).
pub fn party_identity(i: u8) -> PartyIdentity {
    let secret: Vec<u8> = [1].into_iter().chain([i; 32]).chain([i + 50; 32]).collect();
    PartyIdentity::from_secret_bytes(&secret).unwrap()
}

/// Party `i`'s public identity, as the API carries it.
pub fn identity(i: u8) -> IdentityDto {
    IdentityDto::from(&party_identity(i).public())
}

pub fn keygen_body() -> Value {
    let participants: Vec<ParticipantDto> = PARTIES
        .iter()
        .zip(1u8..)
        .map(|(p, i)| ParticipantDto {
            party_id: (*p).to_owned(),
            identity: identity(i),
        })
        .collect();
    json!({
        "kind": "keygen",
        "threshold": ThresholdDto { t: 2, n: 3 },
        "participants": participants,
        "ttl_seconds": 120,
    })
}

pub fn group_signing_key() -> SigningKey {
    SigningKey::from_slice(&[0x11; 32]).unwrap()
}

pub fn group_key() -> PublicKey {
    PublicKey::from_slice(
        group_signing_key()
            .verifying_key()
            .to_sec1_point(true)
            .as_bytes(),
    )
    .unwrap()
}

/// A valid key other than [`group_key`].
pub fn other_key() -> PublicKey {
    let key = SigningKey::from_slice(&[0x22; 32]).unwrap();
    PublicKey::from_slice(key.verifying_key().to_sec1_point(true).as_bytes()).unwrap()
}

pub fn sign(hash: &MessageHash) -> Signature {
    let (sig, recovery_id) = group_signing_key().sign_prehash_recoverable(hash.as_bytes());
    let (r, s) = sig.split_bytes();
    Signature::new(&r, &s, recovery_id.to_byte()).unwrap()
}

impl TestGateway {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn head(&self) -> u64 {
        self.store.head().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, bearer: Option<&str>, body: &Value) -> Response {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap()
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Response {
        let mut req = self.http.get(self.url(path));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap()
    }

    pub async fn create(&self, body: &Value) -> CreateSessionResponse {
        let resp = self.post_json("/v1/sessions", Some(ADMIN), body).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        resp.json().await.unwrap()
    }

    pub async fn join(&self, session: &str, party: &str, token: &str) -> Response {
        self.post_json(
            &format!("/v1/sessions/{session}/join"),
            None,
            &json!({"party_id": party, "token": token}),
        )
        .await
    }

    /// Closes `session` as the operator; asserts it was closed.
    pub async fn close(&self, session: &str) {
        let resp = self
            .post_json(
                &format!("/v1/sessions/{session}/close"),
                Some(ADMIN),
                &json!({"reason": "test over"}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }

    /// Joins every party; returns each party's access token in `PARTIES` order.
    pub async fn join_all(&self, created: &CreateSessionResponse, parties: &[&str]) -> Vec<String> {
        let mut tokens = Vec::new();
        for party in parties {
            let resp = self
                .join(&created.session_id, party, &created.join_tokens[*party])
                .await;
            assert_eq!(resp.status(), StatusCode::OK);
            let joined: JoinResponse = resp.json().await.unwrap();
            tokens.push(joined.access_token);
        }
        tokens
    }
}

/// The secp256k1 generator: a valid curve point every party reports as the key.
pub const GENERATOR: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

/// An account of `device`, `server` and `recovery` with identities 1, 2 and 3.
pub fn account_body(username: &str, email: &str) -> Value {
    json!({
        "username": username,
        "email": email,
        "phone": "+15551234567",
        "device": {"party_id": "device", "identity": identity(1)},
        "server": {"party_id": "server", "identity": identity(2)},
        "recovery": {"party_id": "recovery", "identity": identity(3)},
        "ttl_seconds": 120,
    })
}

/// Every party joins `created` and reports the generator as the group key.
pub async fn complete_keygen(gw: &TestGateway, created: &CreateSessionResponse) {
    let tokens = gw.join_all(created, &PARTIES).await;
    let report = serde_json::to_value(ReportRequest::completion(&PartyOutcome::PublicKey(
        PublicKey::from_slice(&hex::decode(GENERATOR).unwrap()).unwrap(),
    )))
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

/// The account as `GET /v1/accounts/{id}` answers it.
pub async fn get_account(gw: &TestGateway, id: &str) -> AccountDto {
    let resp = gw.get(&format!("/v1/accounts/{id}"), Some(ADMIN)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

/// `POST /v1/accounts/{id}/status` as the operator.
pub async fn set_status(gw: &TestGateway, id: &str, body: &Value) -> reqwest::Response {
    gw.post_json(&format!("/v1/accounts/{id}/status"), Some(ADMIN), body)
        .await
}

/// Asserts the status and the error code of a refusal; returns the message.
pub async fn expect_error(resp: Response, status: StatusCode, code: &str) -> String {
    assert_eq!(resp.status(), status, "wrong status for expected {code}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], code, "body: {body}");
    body["message"].as_str().unwrap().to_owned()
}

/// An envelope with a dummy signature (the gateway does not verify signatures:
/// parties do).
pub fn envelope(session: &str, from: &str, to: Option<&str>, payload: &[u8]) -> Envelope {
    Envelope {
        message_id: uuid::Uuid::new_v4(),
        session_id: session.parse().unwrap(),
        round: 1,
        sender: PartyId::parse(from).unwrap(),
        recipient: to.map_or(Recipient::Broadcast, |p| {
            Recipient::Party(PartyId::parse(p).unwrap())
        }),
        payload: payload.to_vec(),
        signature: [7; SIGNATURE_BYTES],
    }
}

/// Posts an encoded envelope to the session's inbox endpoint as `token`.
pub async fn post(
    gw: &TestGateway,
    session: &str,
    token: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    gw.http
        .post(gw.url(&format!("/v1/sessions/{session}/messages")))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap()
}
