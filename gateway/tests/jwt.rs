//! Join tokens are JWTs with one allowed algorithm, our issuer and audience, a
//! validity window, and a binding to one party of one session; each works once.
//! Every refused join leaves the event store as it was.

mod common;

use common::{ISSUER, PARTIES, SECRET, TestGateway, expect_error, keygen_body, start, start_with};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mpc_gateway::JwtKeys;
use mpc_gateway::auth::Claims;
use reqwest::StatusCode;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims(session: &str, party: &str) -> Claims {
    Claims {
        iss: ISSUER.to_owned(),
        aud: "mpc-join".to_owned(),
        sub: party.to_owned(),
        sid: session.to_owned(),
        jti: uuid::Uuid::new_v4().to_string(),
        iat: now(),
        nbf: now(),
        exp: now() + 300,
    }
}

fn forge(alg: Algorithm, key: &[u8], claims: &Claims) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(key)).unwrap()
}

fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn unsigned(claims: &Claims) -> String {
    let header = b64url(br#"{"alg":"none","typ":"JWT"}"#);
    let body = b64url(&serde_json::to_vec(claims).unwrap());
    format!("{header}.{body}.")
}

async fn refused(
    gw: &TestGateway,
    session: &str,
    party: &str,
    token: &str,
    status: StatusCode,
    code: &str,
) {
    let head = gw.head().await;
    let resp = gw.join(session, party, token).await;
    expect_error(resp, status, code).await;
    assert_eq!(
        gw.head().await,
        head,
        "a refused join ({code}) appended events"
    );
}

#[actix_web::test]
async fn forged_misdirected_and_stale_join_tokens_are_refused() {
    let gw = start().await;
    let s = gw.create(&keygen_body()).await;
    let other = gw.create(&keygen_body()).await;
    let sid = s.session_id.as_str();
    let good = claims(sid, "device");
    let unauthorized = StatusCode::UNAUTHORIZED;
    let forbidden = StatusCode::FORBIDDEN;

    refused(
        &gw,
        sid,
        "device",
        &unsigned(&good),
        unauthorized,
        "invalid_token",
    )
    .await;
    refused(
        &gw,
        sid,
        "device",
        &forge(Algorithm::HS512, SECRET, &good),
        unauthorized,
        "invalid_token",
    )
    .await;
    refused(
        &gw,
        sid,
        "device",
        &forge(Algorithm::HS384, SECRET, &good),
        unauthorized,
        "invalid_token",
    )
    .await;
    refused(
        &gw,
        sid,
        "device",
        &forge(
            Algorithm::HS256,
            b"another-secret-of-thirty-two-bytes!!",
            &good,
        ),
        unauthorized,
        "invalid_token",
    )
    .await;
    refused(
        &gw,
        sid,
        "device",
        "not.a.jwt",
        unauthorized,
        "invalid_token",
    )
    .await;

    let mut wrong_aud = good.clone();
    wrong_aud.aud = "mpc-party".into();
    refused(
        &gw,
        sid,
        "device",
        &forge(Algorithm::HS256, SECRET, &wrong_aud),
        unauthorized,
        "invalid_token",
    )
    .await;
    let mut wrong_iss = good.clone();
    wrong_iss.iss = "someone-else".into();
    refused(
        &gw,
        sid,
        "device",
        &forge(Algorithm::HS256, SECRET, &wrong_iss),
        unauthorized,
        "invalid_token",
    )
    .await;
    let mut expired = good.clone();
    expired.iat = now() - 900;
    expired.nbf = now() - 900;
    expired.exp = now() - 600;
    refused(
        &gw,
        sid,
        "device",
        &forge(Algorithm::HS256, SECRET, &expired),
        unauthorized,
        "token_expired",
    )
    .await;
    let mut early = good.clone();
    early.nbf = now() + 600;
    refused(
        &gw,
        sid,
        "device",
        &forge(Algorithm::HS256, SECRET, &early),
        unauthorized,
        "token_not_yet_valid",
    )
    .await;

    // Correctly signed, right party and session, but not the token the session
    // recorded: the coordinator's digest check refuses it.
    refused(
        &gw,
        sid,
        "device",
        &forge(Algorithm::HS256, SECRET, &good),
        unauthorized,
        "invalid_token",
    )
    .await;

    // Real tokens, presented for the wrong party or session.
    refused(
        &gw,
        sid,
        "server",
        &s.join_tokens["device"],
        forbidden,
        "token_mismatch",
    )
    .await;
    refused(
        &gw,
        sid,
        "device",
        &other.join_tokens["device"],
        forbidden,
        "token_mismatch",
    )
    .await;

    // An access token is not a join token.
    let access = gw.join_all(&other, &["device"]).await.remove(0);
    refused(&gw, sid, "device", &access, unauthorized, "invalid_token").await;

    // The real token works once.
    let resp = gw.join(sid, "device", &s.join_tokens["device"]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    refused(
        &gw,
        sid,
        "device",
        &s.join_tokens["device"],
        forbidden,
        "already_joined",
    )
    .await;
}

#[actix_web::test]
async fn an_eddsa_gateway_accepts_only_its_own_eddsa_tokens() {
    let gw = start_with(JwtKeys::generate_ed25519().unwrap()).await;
    let s = gw.create(&keygen_body()).await;
    let sid = s.session_id.as_str();
    let token = &s.join_tokens["device"];
    let header: serde_json::Value = {
        let part = token.split('.').next().unwrap();
        serde_json::from_slice(&decode_b64url(part)).unwrap()
    };
    assert_eq!(header["alg"], "EdDSA");

    // HMAC tokens (whatever the secret), tokens of another Ed25519 key, and alg=none.
    let good = claims(sid, "device");
    refused(
        &gw,
        sid,
        "device",
        &forge(Algorithm::HS256, SECRET, &good),
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let stranger = mpc_gateway::JwtKeys::generate_ed25519().unwrap();
    let stranger_auth =
        mpc_gateway::Auth::new(stranger, ISSUER.into(), "a-long-enough-admin-token").unwrap();
    let foreign = stranger_auth.sign(
        "mpc-join",
        sid.parse().unwrap(),
        &mpc_events::PartyId::parse("device").unwrap(),
        mpc_events::Timestamp::from_millis((now() + 300) * 1000),
    );
    refused(
        &gw,
        sid,
        "device",
        &foreign,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    refused(
        &gw,
        sid,
        "device",
        &unsigned(&good),
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    gw.join_all(&s, &PARTIES).await;
}

fn decode_b64url(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        _ => 63,
    };
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        acc = acc << 6 | u32::from(value(c));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
