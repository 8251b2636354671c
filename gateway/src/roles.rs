//! Which caller each `/v1` route admits: one table ([`ROUTES`]), enforced by
//! [`crate::auth::authenticate`] before any handler reads the path or body.
//!
//! | role | may |
//! |---|---|
//! | `admin` | every operator route, and alone adds and revokes API keys |
//! | `key-manager` | keygen, refresh, accounts (open, status, keygen, recoveries), closing sessions |
//! | `requester` | signing sessions, approval workflows, data signatures, closing sessions |
//! | `auditor` | read-only: sessions, keys, accounts, recoveries, workflows, the credential list |
//!
//! Every role may read what it can reach. A route missing from the table admits
//! only `admin`, so a new route is closed until it is given its roles; a test
//! checks that every documented `/v1` operation is in the table.
//! `POST /v1/sessions` admits `key-manager` and `requester`; its handler then
//! requires `key-manager` for a keygen and `requester` for a signing.

use actix_web::http::Method;
use mpc_events::Role;

/// Who a route admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No bearer token: the credential, if any, is in the body (a join token, an
    /// approver's signature) or none is needed.
    Open,
    /// A party's access token (the handler checks its session).
    Party,
    /// An operator with `admin` or one of these roles.
    Operators(&'static [Role]),
    /// An operator with `admin` or one of these roles, or a party's access token.
    OperatorsOrParty(&'static [Role]),
}

const READERS: &[Role] = &[Role::KeyManager, Role::Requester, Role::Auditor];
const KEY_MANAGER: &[Role] = &[Role::KeyManager];
const REQUESTER: &[Role] = &[Role::Requester];
const SESSION_STARTERS: &[Role] = &[Role::KeyManager, Role::Requester];
const AUDITOR: &[Role] = &[Role::Auditor];
const ADMIN_ONLY: &[Role] = &[];

/// Every `/v1` route (method, actix pattern) and who it admits.
pub const ROUTES: &[(Method, &str, Access)] = &[
    (
        Method::POST,
        "/v1/sessions",
        Access::Operators(SESSION_STARTERS),
    ),
    (
        Method::GET,
        "/v1/sessions/{id}",
        Access::OperatorsOrParty(READERS),
    ),
    (Method::POST, "/v1/sessions/{id}/join", Access::Open),
    (Method::POST, "/v1/sessions/{id}/report", Access::Party),
    (
        Method::POST,
        "/v1/sessions/{id}/close",
        Access::Operators(SESSION_STARTERS),
    ),
    (Method::POST, "/v1/sessions/{id}/messages", Access::Party),
    (Method::GET, "/v1/sessions/{id}/messages", Access::Party),
    (Method::GET, "/v1/keys/{key_id}", Access::Operators(READERS)),
    (
        Method::POST,
        "/v1/keys/{key_id}/refresh",
        Access::Operators(KEY_MANAGER),
    ),
    (Method::POST, "/v1/accounts", Access::Operators(KEY_MANAGER)),
    (Method::GET, "/v1/accounts/{id}", Access::Operators(READERS)),
    (
        Method::POST,
        "/v1/accounts/{id}/status",
        Access::Operators(KEY_MANAGER),
    ),
    (
        Method::POST,
        "/v1/accounts/{id}/keygen",
        Access::Operators(KEY_MANAGER),
    ),
    (
        Method::POST,
        "/v1/accounts/{id}/signatures",
        Access::Operators(REQUESTER),
    ),
    (
        Method::POST,
        "/v1/accounts/{id}/recoveries",
        Access::Operators(KEY_MANAGER),
    ),
    (
        Method::GET,
        "/v1/accounts/{id}/recoveries",
        Access::Operators(READERS),
    ),
    (Method::POST, "/v1/workflows", Access::Operators(REQUESTER)),
    (
        Method::GET,
        "/v1/workflows/{id}",
        Access::Operators(READERS),
    ),
    (Method::POST, "/v1/workflows/{id}/decisions", Access::Open),
    (
        Method::POST,
        "/v1/workflows/{id}/signing",
        Access::Operators(REQUESTER),
    ),
    (
        Method::POST,
        "/v1/data/signatures",
        Access::Operators(REQUESTER),
    ),
    (Method::POST, "/v1/data/verify", Access::Open),
    (Method::POST, "/v1/operators", Access::Operators(ADMIN_ONLY)),
    (Method::GET, "/v1/operators", Access::Operators(AUDITOR)),
    (
        Method::DELETE,
        "/v1/operators/{id}",
        Access::Operators(ADMIN_ONLY),
    ),
];

/// Who the route `method pattern` admits; `admin` alone for a route not in
/// [`ROUTES`].
pub fn access(method: &Method, pattern: &str) -> Access {
    ROUTES
        .iter()
        .find(|(m, p, _)| m == method && *p == pattern)
        .map_or(Access::Operators(ADMIN_ONLY), |(_, _, access)| *access)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_v1_operation_has_its_roles_and_nothing_else_does() {
        let document = <crate::ApiDoc as utoipa::OpenApi>::openapi();
        let mut documented = Vec::new();
        for (path, item) in &document.paths.paths {
            if !path.starts_with("/v1/") {
                continue;
            }
            for (method, operation) in [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
            ] {
                if operation.is_some() {
                    documented.push((path.clone(), method.to_string()));
                }
            }
        }
        let mut table: Vec<_> = ROUTES
            .iter()
            .map(|(m, p, _)| ((*p).to_owned(), m.to_string()))
            .collect();
        documented.sort();
        table.sort();
        assert_eq!(documented, table);
    }

    #[test]
    fn a_route_missing_from_the_table_admits_only_admin() {
        assert_eq!(
            access(&Method::POST, "/v1/somewhere-new"),
            Access::Operators(ADMIN_ONLY)
        );
        assert_eq!(
            access(&Method::DELETE, "/v1/sessions/{id}"),
            Access::Operators(ADMIN_ONLY)
        );
    }
}
