//! Health, readiness and the OpenAPI document.

mod common;

use common::start;
use reqwest::StatusCode;
use serde_json::Value;

#[actix_web::test]
async fn health_and_ready_answer_200() {
    let gw = start().await;
    assert_eq!(gw.get("/health", None).await.status(), StatusCode::OK);
    let ready = gw.get("/ready", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["head"], 0);
}

#[actix_web::test]
async fn openapi_document_lists_every_route() {
    let gw = start().await;
    let resp = gw.get("/openapi.json", None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/sessions", "post"),
        ("/v1/sessions/{id}", "get"),
        ("/v1/sessions/{id}/join", "post"),
        ("/v1/sessions/{id}/report", "post"),
        ("/v1/sessions/{id}/close", "post"),
        ("/v1/sessions/{id}/messages", "post"),
        ("/v1/sessions/{id}/messages", "get"),
        ("/v1/keys/{key_id}", "get"),
        ("/health", "get"),
        ("/ready", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "CreateSessionRequest",
        "JoinResponse",
        "SessionStatusDto",
        "ApiError",
        "InboxResponse",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    assert!(doc["components"]["securitySchemes"]["admin"].is_object());
}
