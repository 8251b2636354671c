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
        ("/v1/keys/{key_id}/refresh", "post"),
        ("/v1/accounts", "post"),
        ("/v1/accounts/{id}", "get"),
        ("/v1/accounts/{id}/status", "post"),
        ("/v1/accounts/{id}/keygen", "post"),
        ("/v1/accounts/{id}/signatures", "post"),
        ("/v1/accounts/{id}/recoveries", "post"),
        ("/v1/accounts/{id}/recoveries", "get"),
        ("/v1/workflows", "post"),
        ("/v1/workflows/{id}", "get"),
        ("/v1/workflows/{id}/decisions", "post"),
        ("/v1/workflows/{id}/signing", "post"),
        ("/v1/data/signatures", "post"),
        ("/v1/data/verify", "post"),
        ("/v1/operators", "post"),
        ("/v1/operators", "get"),
        ("/v1/operators/{id}", "delete"),
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    // Decisions authenticate by their signature, verification needs nothing.
    assert!(paths["/v1/workflows/{id}/decisions"]["post"]["security"].is_null());
    assert!(paths["/v1/data/verify"]["post"]["security"].is_null());
    assert!(paths["/v1/workflows/{id}/signing"]["post"]["security"].is_array());
    // Operator routes can refuse a role and a rate; party-only routes neither.
    for (path, method) in [("/v1/accounts", "post"), ("/v1/operators/{id}", "delete")] {
        let responses = &paths[path][method]["responses"];
        assert!(
            responses["403"].is_object() && responses["429"].is_object(),
            "{method} {path}"
        );
    }
    assert!(paths["/v1/sessions/{id}/report"]["post"]["responses"]["429"].is_null());
    // Every path parameter is an id: a UUID, so a client or tester knows the format.
    let mut path_params = 0;
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            for param in operation["parameters"].as_array().into_iter().flatten() {
                if param["in"] == "path" {
                    path_params += 1;
                    assert_eq!(
                        param["schema"]["format"], "uuid",
                        "{method} {path}: {param}"
                    );
                }
            }
        }
    }
    assert_eq!(path_params, 18);
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "CreateSessionRequest",
        "JoinResponse",
        "SessionStatusDto",
        "ApiError",
        "InboxResponse",
        "OpenAccountRequest",
        "AccountDto",
        "WorkflowDto",
        "DecisionRequest",
        "VerifyDataRequest",
        "RecoveryRequest",
        "RecoveriesDto",
        "KeyStateDto",
        "CreateOperatorRequest",
        "CreatedOperatorDto",
        "OperatorsDto",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    assert!(doc["components"]["securitySchemes"]["operator"].is_object());
}

/// A path the API serves, called with another method, is a 405 naming the methods
/// it takes in `Allow`; anything else is a 404.
#[actix_web::test]
async fn other_methods_get_405_with_allow() {
    let gw = start().await;
    let session = uuid::Uuid::now_v7();
    for (method, path, allow) in [
        ("GET", "/v1/sessions".to_owned(), "POST"),
        ("DELETE", format!("/v1/sessions/{session}"), "GET"),
        (
            "PUT",
            format!("/v1/sessions/{session}/messages"),
            "GET, POST",
        ),
        (
            "PATCH",
            format!("/v1/accounts/{session}/recoveries"),
            "GET, POST",
        ),
        ("POST", "/health".to_owned(), "GET"),
    ] {
        let response = gw
            .http
            .request(method.parse().unwrap(), gw.url(&path))
            .bearer_auth(common::ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "method_not_allowed");
    }
    for path in ["/v1/nothing", "/v1/sessions/a/b/c", "/nothing"] {
        let response = gw.get(path, Some(common::ADMIN)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

/// A plausible `X-Request-Id` comes back as sent; a missing or implausible one is
/// replaced by a new UUID (a caller cannot put arbitrary text in the logs).
#[actix_web::test]
async fn request_ids_come_back() {
    let gw = start().await;
    let id_of = async |sent: Option<&str>| {
        let mut request = gw.http.get(gw.url("/health"));
        if let Some(id) = sent {
            request = request.header("x-request-id", id);
        }
        let response = request.send().await.unwrap();
        response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        id_of(Some("checkout-42:retry.1")).await,
        "checkout-42:retry.1"
    );
    for implausible in [
        None,
        Some("two words"),
        Some(&"x".repeat(129)),
        Some("a\"b"),
    ] {
        let answered = id_of(implausible).await;
        assert!(
            uuid::Uuid::parse_str(&answered).is_ok(),
            "{implausible:?} answered {answered}"
        );
    }
    assert_ne!(id_of(None).await, id_of(None).await);
}
