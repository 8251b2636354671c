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

/// One refused join: what is presented, and the expected status and error code.
struct Attack {
    name: &'static str,
    session: String,
    party: &'static str,
    token: String,
    status: StatusCode,
    code: &'static str,
}

impl Attack {
    fn new(
        name: &'static str,
        session: &str,
        party: &'static str,
        token: impl Into<String>,
        status: StatusCode,
        code: &'static str,
    ) -> Self {
        Self {
            name,
            session: session.to_owned(),
            party,
            token: token.into(),
            status,
            code,
        }
    }
}

/// Presents every attack in order; each must be refused with its status and code
/// and leave the event store as it was. Prints the matrix and returns how many
/// were tried.
async fn refuse_all(gw: &TestGateway, title: &str, attacks: &[Attack]) -> usize {
    println!("\n{title}\n| attack | expected | refused |\n|---|---|---|");
    for attack in attacks {
        let head = gw.head().await;
        let resp = gw.join(&attack.session, attack.party, &attack.token).await;
        expect_error(resp, attack.status, attack.code).await;
        assert_eq!(
            gw.head().await,
            head,
            "a refused join ({}) appended events",
            attack.name
        );
        println!(
            "| {} | {} {} | yes |",
            attack.name,
            attack.status.as_u16(),
            attack.code
        );
    }
    println!("tried {0}, rejected {0}", attacks.len());
    attacks.len()
}

/// The JWT attack matrix against an HS256 gateway (issue 7, item 4).
#[actix_web::test]
async fn forged_misdirected_and_stale_join_tokens_are_refused() {
    let gw = start().await;
    let s = gw.create(&keygen_body()).await;
    let other = gw.create(&keygen_body()).await;
    let sid = s.session_id.as_str();
    let good = claims(sid, "device");
    let unauthorized = StatusCode::UNAUTHORIZED;
    let forbidden = StatusCode::FORBIDDEN;
    let hs256 = |claims: &Claims| forge(Algorithm::HS256, SECRET, claims);
    let with = |change: &dyn Fn(&mut Claims)| {
        let mut claims = good.clone();
        change(&mut claims);
        hs256(&claims)
    };
    // An access token is not a join token.
    let access = gw.join_all(&other, &["device"]).await.remove(0);
    let real = s.join_tokens["device"].clone();

    let attacks = [
        Attack::new(
            "alg=none",
            sid,
            "device",
            unsigned(&good),
            unauthorized,
            "invalid_token",
        ),
        Attack::new(
            "HS512 with the right secret (algorithm not allowed)",
            sid,
            "device",
            forge(Algorithm::HS512, SECRET, &good),
            unauthorized,
            "invalid_token",
        ),
        Attack::new(
            "HS384 with the right secret (algorithm not allowed)",
            sid,
            "device",
            forge(Algorithm::HS384, SECRET, &good),
            unauthorized,
            "invalid_token",
        ),
        Attack::new(
            "wrong key (HS256, another secret)",
            sid,
            "device",
            forge(
                Algorithm::HS256,
                b"another-secret-of-thirty-two-bytes!!",
                &good,
            ),
            unauthorized,
            "invalid_token",
        ),
        Attack::new(
            "not a JWT",
            sid,
            "device",
            "not.a.jwt",
            unauthorized,
            "invalid_token",
        ),
        Attack::new(
            "wrong audience",
            sid,
            "device",
            with(&|c| c.aud = "mpc-party".into()),
            unauthorized,
            "invalid_token",
        ),
        Attack::new(
            "wrong issuer",
            sid,
            "device",
            with(&|c| c.iss = "someone-else".into()),
            unauthorized,
            "invalid_token",
        ),
        Attack::new(
            "expired",
            sid,
            "device",
            with(&|c| {
                c.iat = now() - 900;
                c.nbf = now() - 900;
                c.exp = now() - 600;
            }),
            unauthorized,
            "token_expired",
        ),
        Attack::new(
            "not yet valid",
            sid,
            "device",
            with(&|c| c.nbf = now() + 600),
            unauthorized,
            "token_not_yet_valid",
        ),
        // Correctly signed, right party and session, but not the token the session
        // recorded: the coordinator's digest check refuses it.
        Attack::new(
            "validly signed, unknown jti (not the token the session issued)",
            sid,
            "device",
            hs256(&good),
            unauthorized,
            "invalid_token",
        ),
        Attack::new(
            "real token for another party",
            sid,
            "server",
            real.clone(),
            forbidden,
            "token_mismatch",
        ),
        Attack::new(
            "real token of another session",
            sid,
            "device",
            other.join_tokens["device"].clone(),
            forbidden,
            "token_mismatch",
        ),
        Attack::new(
            "access token presented as a join token",
            sid,
            "device",
            access,
            unauthorized,
            "invalid_token",
        ),
    ];
    let mut tried = refuse_all(&gw, "JWT attacks, HS256 gateway", &attacks).await;

    // The real token works once; its jti cannot be used again.
    let resp = gw.join(sid, "device", &real).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let reuse = [Attack::new(
        "reused jti (the real token, second join)",
        sid,
        "device",
        real,
        forbidden,
        "already_joined",
    )];
    tried += refuse_all(&gw, "JWT single use", &reuse).await;
    assert_eq!(tried, 14);
}

/// Standard base64 with padding, for PEM.
fn b64(bytes: &[u8]) -> String {
    let mut out = b64url(bytes).replace('-', "+").replace('_', "/");
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    out
}

/// An Ed25519 key pair as the gateway loads it (PKCS#8 and SubjectPublicKeyInfo
/// PEM), with its raw public key.
fn ed25519_pems() -> (String, String, Vec<u8>) {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let raw = pair.public_key().as_ref().to_vec();
    // SubjectPublicKeyInfo of an Ed25519 key: a fixed prefix, then the 32 bytes.
    let mut spki = hex::decode("302a300506032b6570032100").unwrap();
    spki.extend_from_slice(&raw);
    let pem = |label: &str, der: &[u8]| {
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            b64(der)
        )
    };
    (
        pem("PRIVATE KEY", pkcs8.as_ref()),
        pem("PUBLIC KEY", &spki),
        raw,
    )
}

/// Algorithm confusion and foreign keys against an EdDSA gateway: HMAC tokens keyed
/// with its own public key (PEM, DER or raw) are refused like any other.
#[actix_web::test]
async fn an_eddsa_gateway_accepts_only_its_own_eddsa_tokens() {
    let (private_pem, public_pem, raw_public) = ed25519_pems();
    let keys = JwtKeys::ed25519_pem(private_pem.as_bytes(), public_pem.as_bytes()).unwrap();
    let gw = start_with(keys).await;
    let s = gw.create(&keygen_body()).await;
    let sid = s.session_id.as_str();
    let token = &s.join_tokens["device"];
    let header: serde_json::Value = {
        let part = token.split('.').next().unwrap();
        serde_json::from_slice(&decode_b64url(part)).unwrap()
    };
    assert_eq!(header["alg"], "EdDSA");

    let good = claims(sid, "device");
    let mut spki = hex::decode("302a300506032b6570032100").unwrap();
    spki.extend_from_slice(&raw_public);
    let stranger = mpc_gateway::JwtKeys::generate_ed25519().unwrap();
    let stranger_auth =
        mpc_gateway::Auth::new(stranger, ISSUER.into(), "a-long-enough-admin-token").unwrap();
    let foreign = stranger_auth.sign(
        "mpc-join",
        sid.parse().unwrap(),
        &mpc_events::PartyId::parse("device").unwrap(),
        mpc_events::Timestamp::from_millis((now() + 300) * 1000),
    );
    let unauthorized = StatusCode::UNAUTHORIZED;
    let attacks = [
        Attack::new(
            "algorithm confusion: HS256 keyed with the public key PEM",
            sid,
            "device",
            forge(Algorithm::HS256, public_pem.as_bytes(), &good),
            unauthorized,
            "invalid_token",
        ),
        Attack::new(
            "algorithm confusion: HS256 keyed with the public key DER",
            sid,
            "device",
            forge(Algorithm::HS256, &spki, &good),
            unauthorized,
            "invalid_token",
        ),
        Attack::new(
            "algorithm confusion: HS256 keyed with the raw public key",
            sid,
            "device",
            forge(Algorithm::HS256, &raw_public, &good),
            unauthorized,
            "invalid_token",
        ),
        Attack::new(
            "HS256 with the test secret",
            sid,
            "device",
            forge(Algorithm::HS256, SECRET, &good),
            unauthorized,
            "invalid_token",
        ),
        Attack::new(
            "EdDSA, another key (wrong key)",
            sid,
            "device",
            foreign.as_str(),
            unauthorized,
            "invalid_token",
        ),
        Attack::new(
            "alg=none",
            sid,
            "device",
            unsigned(&good),
            unauthorized,
            "invalid_token",
        ),
    ];
    let tried = refuse_all(&gw, "JWT attacks, EdDSA gateway", &attacks).await;
    assert_eq!(tried, 6);

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
