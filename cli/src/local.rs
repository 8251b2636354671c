//! The in-process coordinator client: party nodes in the same process as the
//! coordinator call it directly.

use std::sync::Arc;

use async_trait::async_trait;
use mpc_actors::{CommandMeta, Coordinator};
use mpc_events::{PartyId, PartyOutcome, SessionId, SessionStatus, SessionView};
use mpc_party::CoordinatorClient;

pub struct LocalCoordinator(pub Arc<Coordinator>);

#[async_trait]
impl CoordinatorClient for LocalCoordinator {
    async fn join(
        &self,
        session: SessionId,
        party: &PartyId,
        token: &str,
    ) -> Result<SessionView, String> {
        self.0
            .join(session, party, token, CommandMeta::new())
            .await
            .map_err(|e| e.to_string())
    }

    async fn wait_started(&self, session: SessionId) -> Result<SessionStatus, String> {
        self.0
            .wait_for(session, |s| s.status != SessionStatus::Created)
            .await
            .map(|s| s.status)
            .map_err(|e| e.to_string())
    }

    async fn wait_finished(&self, session: SessionId) -> Result<SessionStatus, String> {
        self.0
            .wait_for(session, |s| s.status.is_terminal())
            .await
            .map(|s| s.status)
            .map_err(|e| e.to_string())
    }

    async fn report_completion(
        &self,
        session: SessionId,
        party: &PartyId,
        outcome: PartyOutcome,
    ) -> Result<(), String> {
        self.0
            .report_completion(session, party, outcome, CommandMeta::new())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn report_failure(
        &self,
        session: SessionId,
        party: &PartyId,
        culprits: Vec<PartyId>,
        detail: String,
    ) -> Result<(), String> {
        self.0
            .report_failure(session, party, culprits, detail, CommandMeta::new())
            .await
            .map_err(|e| e.to_string())
    }
}
