//! One tracing span per HTTP request, named by its request id: the caller's
//! `X-Request-Id` when it sends a plausible one (1 to 128 characters of letters,
//! digits and `-_.:`, so a caller cannot forge log lines), else a new UUIDv7. The
//! id comes back in the answer's `X-Request-Id`, and each answered request logs
//! one `info` event (method, route pattern, status, milliseconds) inside the span.
//! Once authenticated ([`crate::auth::authenticate`]), the span also names the
//! caller: `credential` and `role` of an operator (an API key's id, or
//! `bootstrap-admin`), `party` and `session` of a party. Never a token.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

/// The header carrying a request's id, in and out.
pub const REQUEST_ID: &str = "x-request-id";

/// The middleware: span, id in and out, one event per answer.
pub async fn trace(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| plausible(v))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "http_request",
        request_id = %id,
        method = %request.method(),
        route = %route,
        credential = tracing::field::Empty,
        role = tracing::field::Empty,
        party = tracing::field::Empty,
        session = tracing::field::Empty,
    );
    let started = Instant::now();
    let mut response = next.call(request).instrument(span.clone()).await?;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            millis = started.elapsed().as_millis(),
            "answered"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), value);
    }
    Ok(response)
}

fn plausible(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}
