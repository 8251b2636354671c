//! Prometheus metrics of the gateway: every HTTP request counted by method, route
//! pattern and status, with a latency histogram by method and route, and
//! `GET /metrics`, the text exposition of every metric the process records (the
//! process installs the recorder and hands the gateway its renderer,
//! [`MetricsRender`]). Routes are labelled by their pattern
//! (`/v1/sessions/{id}`), never by the path a caller sent, and methods outside the
//! standard ones as `other`, so callers cannot grow the label set; anything
//! unrouted is `unmatched`.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use mpc_api::ApiError;

use crate::GatewayState;

/// HTTP requests by method, route and status.
pub const REQUESTS_TOTAL: &str = "http_requests_total";
/// HTTP request latency by method and route.
pub const REQUEST_SECONDS: &str = "http_request_duration_seconds";

/// Renders the process's metrics in the Prometheus text format.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// The middleware counting and timing every request.
pub async fn record(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.call(request).await?;
    let status = response.status().as_u16().to_string();
    ::metrics::counter!(
        REQUESTS_TOTAL,
        "method" => method,
        "route" => route.clone(),
        "status" => status,
    )
    .increment(1);
    ::metrics::histogram!(REQUEST_SECONDS, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    Ok(response)
}

/// The method as a label: the standard ones by name, any other `other`, so that
/// invented methods cannot grow the label set either.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Prometheus text exposition of the process's metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"),
        (status = 404, description = "this process exports no metrics", body = ApiError),
    ))]
pub async fn render(state: web::Data<GatewayState>) -> HttpResponse {
    match &state.metrics {
        Some(render) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(render()),
        None => HttpResponse::NotFound().json(ApiError::new(
            "metrics_disabled",
            "this process exports no metrics",
        )),
    }
}
