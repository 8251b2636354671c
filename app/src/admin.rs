//! A client of the gateway's operator routes (an operator's bearer credential) over HTTP,
//! and of parties' listeners (`mpc party run`): invitations, review and recovery
//! requests.

use std::collections::BTreeMap;
use std::time::Duration;

use mpc_api::ApiError;
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::recoveries::{Recovery, RecoveryRequest};
use crate::reviews::ReviewRequest;

/// How long one request to the gateway or a party may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("the gateway does not answer")]
    GatewayUnreachable(#[source] reqwest::Error),
    #[error("the gateway's answer is not the expected JSON")]
    UnexpectedAnswer(#[source] reqwest::Error),
    /// The gateway refused the request with an API error.
    #[error("{code} ({status}): {message}")]
    Refused {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("the gateway answered {0}")]
    GatewayStatus(StatusCode),
    #[error("the party does not answer")]
    PartyUnreachable(#[source] reqwest::Error),
    /// The party refused the request with a `{code, message}` error.
    #[error("the party refused: {code} ({status}): {message}")]
    PartyRefused {
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("the party answered {0}")]
    PartyStatus(StatusCode),
    #[error("the party's answer is not the expected JSON")]
    UnexpectedPartyAnswer(#[source] reqwest::Error),
}

/// The gateway's admin routes over HTTP, and parties' invitation listeners.
pub struct AdminClient {
    base: String,
    token: Zeroizing<String>,
    http: reqwest::Client,
}

impl AdminClient {
    /// A client of the gateway at `base` (a trailing `/` is dropped) sending `token`.
    pub fn new(base: &str, token: Zeroizing<String>) -> Result<Self, AdminError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(AdminError::Client)?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    /// `GET`s `path` and decodes the answer.
    pub async fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R, AdminError> {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// `POST`s `body` to `path` and decodes the answer.
    pub async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, AdminError> {
        let request = self.http.post(format!("{}{path}", self.base)).json(body);
        self.send(request).await
    }

    /// `DELETE`s `path` and decodes the answer.
    pub async fn delete<R: DeserializeOwned>(&self, path: &str) -> Result<R, AdminError> {
        let request = self.http.delete(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn send<R: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<R, AdminError> {
        let response = request
            .bearer_auth(self.token.as_str())
            .send()
            .await
            .map_err(AdminError::GatewayUnreachable)?;
        let status = response.status();
        if status.is_success() {
            return response.json().await.map_err(AdminError::UnexpectedAnswer);
        }
        Err(match response.json::<ApiError>().await {
            Ok(e) => AdminError::Refused {
                status,
                code: e.code,
                message: e.message,
            },
            Err(_) => AdminError::GatewayStatus(status),
        })
    }

    /// Posts `{session_id, token}` to `url`'s `/v1/invitations`, with the party's
    /// invitation `credential` as bearer token when it has one.
    pub async fn invite(
        &self,
        url: &str,
        session_id: &str,
        token: &str,
        credential: Option<&str>,
    ) -> Result<(), AdminError> {
        let body = BTreeMap::from([("session_id", session_id), ("token", token)]);
        let request = self.http.post(format!("{url}/v1/invitations")).json(&body);
        self.to_party(request, credential).await.map(drop)
    }

    /// Posts a review request (`{workflow_id, key_id, title, payload_hex}`) to the
    /// approver's node at `url` (`/v1/reviews`), with the party's `credential` as
    /// bearer token when it has one. The node keeps it for its human to decide.
    pub async fn request_review(
        &self,
        url: &str,
        request: &ReviewRequest,
        credential: Option<&str>,
    ) -> Result<(), AdminError> {
        let request = self.http.post(format!("{url}/v1/reviews")).json(request);
        self.to_party(request, credential).await.map(drop)
    }

    /// Posts a recovery request to the holder's node at `url` (`/v1/recoveries`),
    /// with the party's `credential` as bearer token when it has one; answers with
    /// the request as the node keeps it for its human to decide.
    pub async fn request_recovery(
        &self,
        url: &str,
        request: &RecoveryRequest,
        credential: Option<&str>,
    ) -> Result<Recovery, AdminError> {
        let request = self.http.post(format!("{url}/v1/recoveries")).json(request);
        let response = self.to_party(request, credential).await?;
        response
            .json()
            .await
            .map_err(AdminError::UnexpectedPartyAnswer)
    }

    /// The recovery request `id` as the holder's node at `url` keeps it: once
    /// approved, with its authorization.
    pub async fn recovery(
        &self,
        url: &str,
        id: &str,
        credential: Option<&str>,
    ) -> Result<Recovery, AdminError> {
        let request = self.http.get(format!("{url}/v1/recoveries/{id}"));
        let response = self.to_party(request, credential).await?;
        response
            .json()
            .await
            .map_err(AdminError::UnexpectedPartyAnswer)
    }

    async fn to_party(
        &self,
        request: reqwest::RequestBuilder,
        credential: Option<&str>,
    ) -> Result<reqwest::Response, AdminError> {
        let request = match credential {
            Some(credential) => request.bearer_auth(credential),
            None => request,
        };
        let response = request.send().await.map_err(AdminError::PartyUnreachable)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(match response.json::<ApiError>().await {
            Ok(e) => AdminError::PartyRefused {
                status,
                code: e.code,
                message: e.message,
            },
            Err(_) => AdminError::PartyStatus(status),
        })
    }
}
