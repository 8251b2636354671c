//! Posting envelopes and reading one's own inbox from a cursor.

mod common;

use std::time::{Duration, Instant};

use std::sync::Arc;

use common::{
    ADMIN, PARTIES, SECRET, TestGateway, envelope, expect_error, keygen_body, post, start, start_on,
};
use mpc_api::InboxResponse;
use mpc_events::SessionId;
use mpc_gateway::JwtKeys;
use mpc_schemas::{Envelope, MAX_ENVELOPE_BYTES};
use mpc_store::SqliteStore;
use mpc_transport::{InProcessTransport, SessionBudget};
use reqwest::StatusCode;

async fn read(gw: &TestGateway, session: &str, token: &str, query: &str) -> InboxResponse {
    let resp = gw
        .get(
            &format!("/v1/sessions/{session}/messages?{query}"),
            Some(token),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

fn decoded(inbox: &InboxResponse) -> Vec<Envelope> {
    inbox
        .messages
        .iter()
        .map(|m| Envelope::decode(&hex::decode(m).unwrap()).unwrap())
        .collect()
}

#[actix_web::test]
async fn envelopes_reach_only_their_recipients_and_resume_from_the_cursor() {
    let gw = start().await;
    let s = gw.create(&keygen_body()).await;
    let sid = s.session_id.as_str();
    let tokens = gw.join_all(&s, &PARTIES).await;
    let (device, server, recovery) = (&tokens[0], &tokens[1], &tokens[2]);

    let to_server = envelope(sid, "device", Some("server"), b"p2p for server");
    let broadcast = envelope(sid, "device", None, b"for everyone");
    for e in [&to_server, &broadcast] {
        let resp = post(&gw, sid, device, e.encode().unwrap()).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
    }

    let all = read(&gw, sid, server, "after=0").await;
    assert_eq!(decoded(&all), [to_server.clone(), broadcast.clone()]);
    assert_eq!(all.cursor, 2);
    let rest = read(&gw, sid, server, "after=1").await;
    assert_eq!(decoded(&rest), std::slice::from_ref(&broadcast));
    assert_eq!(rest.cursor, 2);
    let nothing = read(&gw, sid, server, "after=2").await;
    assert!(nothing.messages.is_empty());
    assert_eq!(nothing.cursor, 2);

    // Recovery sees the broadcast only; the sender sees neither of its own.
    assert_eq!(decoded(&read(&gw, sid, recovery, "").await), [broadcast]);
    assert!(read(&gw, sid, device, "").await.messages.is_empty());

    // A long poll returns as soon as something arrives.
    let waiter = {
        let http = gw.http.clone();
        let url = gw.url(&format!(
            "/v1/sessions/{sid}/messages?after=2&wait_ms=20000"
        ));
        let token = server.clone();
        actix_web::rt::spawn(async move {
            let started = Instant::now();
            let resp = http.get(url).bearer_auth(token).send().await.unwrap();
            (
                resp.json::<InboxResponse>().await.unwrap(),
                started.elapsed(),
            )
        })
    };
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let late = envelope(sid, "recovery", Some("server"), b"late");
    assert_eq!(
        post(&gw, sid, recovery, late.encode().unwrap())
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let (inbox, waited) = waiter.await.unwrap();
    assert_eq!(decoded(&inbox), [late]);
    assert_eq!(inbox.cursor, 3);
    assert!(waited < Duration::from_secs(10));
}

#[actix_web::test]
async fn parties_cannot_read_other_inboxes_or_post_as_someone_else() {
    let gw = start().await;
    let s = gw.create(&keygen_body()).await;
    let other = gw.create(&keygen_body()).await;
    let sid = s.session_id.as_str();
    let tokens = gw.join_all(&s, &PARTIES).await;
    let other_tokens = gw.join_all(&other, &PARTIES).await;
    let secret = envelope(sid, "device", Some("server"), b"for server only");
    post(&gw, sid, &tokens[0], secret.encode().unwrap()).await;

    // Another session's server, the admin and no token get nothing.
    let path = format!("/v1/sessions/{sid}/messages");
    expect_error(
        gw.get(&path, Some(&other_tokens[1])).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    expect_error(
        gw.get(&path, Some(ADMIN)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    expect_error(
        gw.get(&path, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert!(read(&gw, sid, &tokens[2], "").await.messages.is_empty());

    // Posting as another sender, into another session, garbage, or too much.
    let spoofed = envelope(sid, "server", Some("recovery"), b"x");
    expect_error(
        post(&gw, sid, &tokens[0], spoofed.encode().unwrap()).await,
        StatusCode::FORBIDDEN,
        "sender_mismatch",
    )
    .await;
    let elsewhere = envelope(&other.session_id, "device", Some("server"), b"x");
    expect_error(
        post(&gw, sid, &tokens[0], elsewhere.encode().unwrap()).await,
        StatusCode::BAD_REQUEST,
        "session_mismatch",
    )
    .await;
    let stranger = envelope(sid, "device", Some("mallory"), b"x");
    expect_error(
        post(&gw, sid, &tokens[0], stranger.encode().unwrap()).await,
        StatusCode::BAD_REQUEST,
        "unknown_recipient",
    )
    .await;
    expect_error(
        post(&gw, sid, &tokens[0], b"\x01garbage".to_vec()).await,
        StatusCode::BAD_REQUEST,
        "invalid_envelope",
    )
    .await;
    expect_error(
        post(&gw, sid, &tokens[0], vec![0u8; MAX_ENVELOPE_BYTES + 1]).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    expect_error(
        post(&gw, sid, &other_tokens[0], secret.encode().unwrap()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    // Nothing of that reached anyone.
    assert_eq!(decoded(&read(&gw, sid, &tokens[1], "").await), [secret]);
    assert!(read(&gw, sid, &tokens[2], "").await.messages.is_empty());
    let _: SessionId = sid.parse().unwrap();
}

#[actix_web::test]
async fn long_polls_time_out_with_the_state_unchanged_and_closed_sessions_take_no_mail() {
    let gw = start().await;
    let s = gw.create(&keygen_body()).await;
    let sid = s.session_id.as_str();
    let tokens = gw.join_all(&s, &PARTIES[..2]).await;

    let started = Instant::now();
    let status: mpc_api::SessionStatusDto = gw
        .get(
            &format!("/v1/sessions/{sid}?wait_until_not=created&timeout_ms=300"),
            Some(&tokens[0]),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status.status, "created");
    assert!(started.elapsed() >= Duration::from_millis(300));

    let started = Instant::now();
    let inbox = read(&gw, sid, &tokens[1], "after=0&wait_ms=300").await;
    assert!(inbox.messages.is_empty());
    assert_eq!(inbox.cursor, 0);
    assert!(started.elapsed() >= Duration::from_millis(300));

    gw.close(sid).await;
    let late = envelope(sid, "device", Some("server"), b"too late");
    expect_error(
        post(&gw, sid, &tokens[0], late.encode().unwrap()).await,
        StatusCode::CONFLICT,
        "session_ended",
    )
    .await;
    expect_error(
        gw.get(&format!("/v1/sessions/{sid}/messages"), Some(&tokens[1]))
            .await,
        StatusCode::GONE,
        "session_closed",
    )
    .await;
}

/// A session's budget through HTTP: the sender over its count gets 429, the envelope
/// that would pass the session's bytes 413, both as JSON errors; nothing refused is
/// delivered, and other senders go on.
#[actix_web::test]
async fn a_sender_over_its_count_gets_429_and_a_session_over_its_bytes_413() {
    let budget = SessionBudget {
        bytes: 1_000,
        envelopes_per_sender: 3,
    };
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    let gw = start_on(
        store,
        JwtKeys::hs256(SECRET).unwrap(),
        |_| {},
        InProcessTransport::with_budget(budget),
    );
    let s = gw.create(&keygen_body()).await;
    let sid = s.session_id.as_str();
    let tokens = gw.join_all(&s, &PARTIES).await;
    let (device, server, recovery) = (&tokens[0], &tokens[1], &tokens[2]);

    let mut sent = Vec::new();
    for i in 0..3u8 {
        let e = envelope(sid, "device", Some("server"), &[i]);
        assert_eq!(
            post(&gw, sid, device, e.encode().unwrap()).await.status(),
            StatusCode::ACCEPTED
        );
        sent.push(e);
    }
    let fourth = envelope(sid, "device", Some("server"), b"one too many");
    let message = expect_error(
        post(&gw, sid, device, fourth.encode().unwrap()).await,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_envelopes",
    )
    .await;
    assert!(message.contains("device already sent 3"), "{message}");

    let big = envelope(sid, "recovery", Some("server"), &[7; 998]);
    expect_error(
        post(&gw, sid, recovery, big.encode().unwrap()).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "session_budget_exceeded",
    )
    .await;
    let fits = envelope(sid, "recovery", Some("server"), &[8; 900]);
    assert_eq!(
        post(&gw, sid, recovery, fits.encode().unwrap())
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    sent.push(fits);
    assert_eq!(decoded(&read(&gw, sid, server, "").await), sent);
}

/// Each party's polls resume one open inbox (what a poll costs is what is new, and
/// on Kafka one consumer per party and session), a retried poll still gets its
/// envelopes again, and closing the session lets go of every inbox.
#[actix_web::test]
async fn polls_resume_one_open_inbox_per_party_and_closing_lets_go() {
    let gw = start().await;
    let s = gw.create(&keygen_body()).await;
    let sid = s.session_id.as_str();
    let tokens = gw.join_all(&s, &PARTIES).await;
    let (device, server, recovery) = (&tokens[0], &tokens[1], &tokens[2]);

    let mut cursor = 0;
    let mut sent = Vec::new();
    for i in 0..20u8 {
        let e = envelope(sid, "device", Some("server"), &[i]);
        post(&gw, sid, device, e.encode().unwrap()).await;
        let page = read(&gw, sid, server, &format!("after={cursor}")).await;
        assert_eq!(decoded(&page), std::slice::from_ref(&e));
        assert_eq!(page.cursor, cursor + 1);
        cursor = page.cursor;
        sent.push(e);
    }
    assert_eq!(gw.inboxes.open_count(), 1, "twenty polls, one open inbox");

    let again = read(&gw, sid, server, "after=18").await;
    assert_eq!(decoded(&again), sent[18..]);
    assert_eq!(again.cursor, 20);
    assert!(read(&gw, sid, recovery, "").await.messages.is_empty());
    assert_eq!(gw.inboxes.open_count(), 2);

    gw.close(sid).await;
    assert_eq!(gw.inboxes.open_count(), 0);
}
