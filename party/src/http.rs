//! Reaching the coordinator over HTTP: [`GatewayClient`] is both the party's
//! [`CoordinatorClient`] and, for parties that cannot speak Kafka (phones,
//! browsers), its [`Transport`] through the gateway's inbox API.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use mpc_api::{
    ApiError, DecisionRequest, InboxResponse, JoinRequest, JoinResponse, ReportRequest,
    SessionStatusDto, WorkflowDto,
};
use mpc_events::{PartyId, PartyOutcome, SessionId, SessionStatus, SessionView, WorkflowId};
use mpc_schemas::{Envelope, MAX_ENVELOPE_BYTES};
use mpc_transport::{Inbox, Transport, TransportError};
use reqwest::StatusCode;
use zeroize::Zeroizing;

use crate::node::{CoordinatorClient, CoordinatorError};

/// How long a readiness probe waits for the gateway.
const READY_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one long-poll request may wait on the server.
const LONG_POLL: Duration = Duration::from_secs(25);

/// An HTTP client of the gateway, holding the access token of every session this
/// party joined (tokens are zeroized when dropped and never logged).
pub struct GatewayClient {
    base: String,
    http: reqwest::Client,
    tokens: Mutex<HashMap<SessionId, Zeroizing<String>>>,
}

impl GatewayClient {
    /// `base_url` like `http://127.0.0.1:8080`.
    pub fn new(base_url: &str) -> Result<Self, String> {
        // HTTPS uses rustls with the aws-lc provider; installing it twice is harmless.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(LONG_POLL + Duration::from_secs(10))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(Self {
            base: base_url.trim_end_matches('/').to_owned(),
            http,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    fn url(&self, session: SessionId, tail: &str) -> String {
        format!("{}/v1/sessions/{session}{tail}", self.base)
    }

    fn token(&self, session: SessionId) -> Result<Zeroizing<String>, CoordinatorError> {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&session)
            .cloned()
            .ok_or_else(|| CoordinatorError::Refused(format!("not joined to session {session}")))
    }

    /// Sends `request`: a lost connection, a timeout and 502/503/504 are
    /// [`CoordinatorError::Unreachable`] (the gateway answers 503 while its event
    /// store is down), every other refusal is [`CoordinatorError::Refused`].
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, CoordinatorError> {
        let response = request
            .send()
            .await
            .map_err(|e| CoordinatorError::Unreachable(format!("gateway: {e}")))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let message = match response.json::<ApiError>().await {
            Ok(e) => format!("{} ({status}): {}", e.code, e.message),
            Err(_) => format!("gateway answered {status}"),
        };
        match status {
            StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => Err(CoordinatorError::Unreachable(message)),
            _ => Err(CoordinatorError::Refused(message)),
        }
    }

    /// Whether the gateway answers its readiness probe (`GET /ready`: its event
    /// store answers).
    pub async fn ready(&self) -> Result<(), CoordinatorError> {
        let url = format!("{}/ready", self.base);
        self.send(self.http.get(url).timeout(READY_TIMEOUT))
            .await
            .map(drop)
    }

    /// Posts an approver's signed decision on workflow `workflow`
    /// (`POST /v1/workflows/{id}/decisions`: the signature is the credential);
    /// answers with the workflow afterwards.
    pub async fn decide(
        &self,
        workflow: WorkflowId,
        decision: &DecisionRequest,
    ) -> Result<WorkflowDto, CoordinatorError> {
        let url = format!("{}/v1/workflows/{workflow}/decisions", self.base);
        self.send(self.http.post(url).json(decision))
            .await?
            .json()
            .await
            .map_err(|e| CoordinatorError::Unreachable(format!("gateway answer: {e}")))
    }

    async fn report(
        &self,
        session: SessionId,
        body: ReportRequest,
    ) -> Result<(), CoordinatorError> {
        let token = self.token(session)?;
        self.send(
            self.http
                .post(self.url(session, "/report"))
                .bearer_auth(token.as_str())
                .json(&body),
        )
        .await
        .map(|_| ())
    }

    async fn inbox_page(
        &self,
        session: SessionId,
        after: u64,
    ) -> Result<InboxResponse, TransportError> {
        let token = self.token(session).map_err(backend)?;
        let response = self
            .send(
                self.http
                    .get(self.url(session, "/messages"))
                    .query(&[("after", after), ("wait_ms", LONG_POLL.as_millis() as u64)])
                    .bearer_auth(token.as_str()),
            )
            .await
            .map_err(backend)?;
        response
            .json()
            .await
            .map_err(|e| TransportError::Backend(format!("inbox answer: {e}")))
    }

    /// Long-polls the session's status (waiting while it is `waiting_on`) until
    /// `done` holds for it.
    async fn wait_until(
        &self,
        session: SessionId,
        waiting_on: &str,
        done: impl Fn(SessionStatus) -> bool + Send,
    ) -> Result<SessionStatus, CoordinatorError> {
        loop {
            let token = self.token(session)?;
            let status: SessionStatusDto = self
                .send(
                    self.http
                        .get(self.url(session, ""))
                        .query(&[
                            ("wait_until_not", waiting_on.to_owned()),
                            ("timeout_ms", LONG_POLL.as_millis().to_string()),
                        ])
                        .bearer_auth(token.as_str()),
                )
                .await?
                .json()
                .await
                .map_err(|e| CoordinatorError::Unreachable(format!("status answer: {e}")))?;
            let status = status
                .status()
                .map_err(|e| CoordinatorError::Refused(e.to_string()))?;
            if done(status) {
                return Ok(status);
            }
        }
    }
}

#[async_trait]
impl CoordinatorClient for GatewayClient {
    async fn join(
        &self,
        session: SessionId,
        party: &PartyId,
        token: &str,
    ) -> Result<SessionView, CoordinatorError> {
        let response: JoinResponse = self
            .send(
                self.http
                    .post(self.url(session, "/join"))
                    .json(&JoinRequest {
                        party_id: party.to_string(),
                        token: token.to_owned(),
                    }),
            )
            .await?
            .json()
            .await
            .map_err(|e| CoordinatorError::Unreachable(format!("join answer: {e}")))?;
        let view = SessionView::try_from(&response.session)
            .map_err(|e| CoordinatorError::Refused(e.to_string()))?;
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(session, Zeroizing::new(response.access_token));
        Ok(view)
    }

    async fn wait_started(&self, session: SessionId) -> Result<SessionStatus, CoordinatorError> {
        self.wait_until(session, "created", |s| s != SessionStatus::Created)
            .await
    }

    async fn wait_finished(&self, session: SessionId) -> Result<SessionStatus, CoordinatorError> {
        self.wait_until(session, "in_progress", |s| s.is_terminal())
            .await
    }

    async fn report_completion(
        &self,
        session: SessionId,
        _party: &PartyId,
        outcome: PartyOutcome,
    ) -> Result<(), CoordinatorError> {
        self.report(session, ReportRequest::completion(&outcome))
            .await
    }

    async fn report_failure(
        &self,
        session: SessionId,
        _party: &PartyId,
        culprits: Vec<PartyId>,
        detail: String,
    ) -> Result<(), CoordinatorError> {
        self.report(session, ReportRequest::failure(&culprits, detail))
            .await
    }
}

#[async_trait]
impl Transport for GatewayClient {
    async fn publish(&self, envelope: &Envelope) -> Result<(), TransportError> {
        let bytes = envelope
            .encode()
            .map_err(|e| TransportError::Encoding(e.to_string()))?;
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(TransportError::TooLarge {
                size: bytes.len(),
                max: MAX_ENVELOPE_BYTES,
            });
        }
        let token = self.token(envelope.session_id).map_err(backend)?;
        self.send(
            self.http
                .post(self.url(envelope.session_id, "/messages"))
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .bearer_auth(token.as_str())
                .body(bytes),
        )
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn subscribe(
        &self,
        session: SessionId,
        party: &PartyId,
    ) -> Result<Inbox, TransportError> {
        let client = GatewayClient {
            base: self.base.clone(),
            http: self.http.clone(),
            tokens: Mutex::new(HashMap::from([(
                session,
                self.token(session).map_err(backend)?,
            )])),
        };
        // Pages until the first error, which is yielded and ends the stream (the
        // run using this inbox fails; a new subscription resumes from scratch).
        let pages = futures::stream::unfold(Some((client, 0u64)), move |state| async move {
            let (client, after) = state?;
            match client.inbox_page(session, after).await {
                Ok(page) => {
                    let envelopes: Vec<_> = page
                        .messages
                        .iter()
                        .map(|m| decode_hex_envelope(m))
                        .collect();
                    Some((
                        futures::stream::iter(envelopes),
                        Some((client, page.cursor)),
                    ))
                }
                Err(e) => Some((futures::stream::iter(vec![Err(e)]), None)),
            }
        })
        .flatten();
        Ok(Inbox::new(session, party.clone(), pages))
    }

    async fn ready(&self) -> Result<(), TransportError> {
        self.ready().await.map_err(backend)
    }

    async fn close_session(&self, session: SessionId) -> Result<(), TransportError> {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&session);
        Ok(())
    }
}

fn backend(e: CoordinatorError) -> TransportError {
    TransportError::Backend(e.to_string())
}

fn decode_hex_envelope(text: &str) -> Result<Envelope, TransportError> {
    let bytes = hex::decode(text).map_err(|e| TransportError::Encoding(e.to_string()))?;
    Envelope::decode(&bytes).map_err(|e| TransportError::Encoding(e.to_string()))
}
