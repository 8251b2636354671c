//! The in-process coordinator client: party nodes in the same process as the
//! coordinator call it directly.

use std::sync::Arc;

use async_trait::async_trait;
use mpc_actors::{CommandMeta, Coordinator, CoordinatorError as Refusal};
use mpc_events::{PartyId, PartyOutcome, SessionId, SessionStatus, SessionView};
use mpc_party::{CoordinatorClient, CoordinatorError};

pub struct LocalCoordinator(pub Arc<Coordinator>);

/// A stopping coordinator or an unreachable event store may let a repeated call
/// through; everything else is the coordinator's answer.
fn classify(e: Refusal) -> CoordinatorError {
    match e {
        Refusal::Store(_) | Refusal::Stopped => CoordinatorError::Unreachable(e.to_string()),
        _ => CoordinatorError::Refused(e.to_string()),
    }
}

#[async_trait]
impl CoordinatorClient for LocalCoordinator {
    async fn join(
        &self,
        session: SessionId,
        party: &PartyId,
        token: &str,
    ) -> Result<SessionView, CoordinatorError> {
        self.0
            .join(session, party, token, CommandMeta::new())
            .await
            .map_err(classify)
    }

    async fn wait_started(&self, session: SessionId) -> Result<SessionStatus, CoordinatorError> {
        self.0
            .wait_for(session, |s| s.status != SessionStatus::Created)
            .await
            .map(|s| s.status)
            .map_err(classify)
    }

    async fn wait_finished(&self, session: SessionId) -> Result<SessionStatus, CoordinatorError> {
        self.0
            .wait_for(session, |s| s.status.is_terminal())
            .await
            .map(|s| s.status)
            .map_err(classify)
    }

    async fn report_completion(
        &self,
        session: SessionId,
        party: &PartyId,
        outcome: PartyOutcome,
    ) -> Result<(), CoordinatorError> {
        self.0
            .report_completion(session, party, outcome, CommandMeta::new())
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn report_failure(
        &self,
        session: SessionId,
        party: &PartyId,
        culprits: Vec<PartyId>,
        detail: String,
    ) -> Result<(), CoordinatorError> {
        self.0
            .report_failure(session, party, culprits, detail, CommandMeta::new())
            .await
            .map_err(classify)
    }
}
