//! The approval service: creates workflows over a completed key, records signed
//! decisions, and starts the signing session of an approved workflow among exactly
//! its approvers, carrying their approvals.

use std::sync::Arc;
use std::time::Duration;

use mpc_events::{
    Decision, IdentitySignature, KeyId, MessageHash, PartyId, SessionId, Timestamp,
    WorkflowCommand, WorkflowError, WorkflowId, WorkflowStatus,
};
use mpc_schemas::SchemaError;
use mpc_store::{EventStore, StoreError};
use sha2::{Digest, Sha256};

use crate::aggregate::{Clock, CommandMeta};
use crate::coordinator::{
    Coordinator, CoordinatorError, CreatedSession, NewSigning, SigningPayload,
};
use crate::registry::{ActorError, ActorRegistry};
use crate::workflow::{Workflow, WorkflowAggregate};

#[derive(Debug, thiserror::Error)]
pub enum ApprovalServiceError {
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error(transparent)]
    Coordinator(#[from] CoordinatorError),
    #[error("event store: {0}")]
    Store(#[from] StoreError),
    #[error("stored event cannot be read: {0}")]
    Schema(#[from] SchemaError),
    #[error("approval service is shutting down")]
    Stopped,
}

impl From<ActorError<WorkflowError>> for ApprovalServiceError {
    fn from(e: ActorError<WorkflowError>) -> Self {
        match e {
            ActorError::Domain(e) => Self::Workflow(e),
            ActorError::Store(e) => Self::Store(e),
            ActorError::Schema(e) => Self::Schema(e),
            ActorError::Stopped => Self::Stopped,
        }
    }
}

/// A request for multi-person review of `payload` before key `key_id` signs it.
#[derive(Debug, Clone)]
pub struct NewWorkflow {
    pub key_id: KeyId,
    pub title: String,
    pub payload: Vec<u8>,
    /// How long approvers have to decide.
    pub ttl: Duration,
}

/// The approval service.
pub struct Approvals {
    workflows: ActorRegistry<WorkflowAggregate>,
    coordinator: Arc<Coordinator>,
}

impl Approvals {
    pub fn new(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        coordinator: Arc<Coordinator>,
    ) -> Self {
        Self {
            workflows: ActorRegistry::new(store, clock),
            coordinator,
        }
    }

    fn now(&self) -> Timestamp {
        self.workflows.clock().now()
    }

    /// Creates a workflow whose approvers are the holders of `key_id` and whose
    /// threshold is the key's.
    pub async fn create(
        &self,
        request: NewWorkflow,
        meta: CommandMeta,
    ) -> Result<WorkflowId, ApprovalServiceError> {
        let key = self.coordinator.key(request.key_id).await?;
        let workflow_id = WorkflowId::new();
        let now = self.now();
        let ttl = i64::try_from(request.ttl.as_millis()).unwrap_or(i64::MAX);
        let payload_hash = MessageHash::from_bytes(Sha256::digest(&request.payload).into());
        self.workflows
            .execute(
                &workflow_id.to_string(),
                WorkflowCommand::Create {
                    workflow_id,
                    title: request.title,
                    key,
                    payload: request.payload,
                    payload_hash,
                    expires_at: now.plus_millis(ttl),
                    now,
                },
                meta,
            )
            .await?;
        Ok(workflow_id)
    }

    /// Records one approver's signed decision; returns the workflow afterwards.
    pub async fn decide(
        &self,
        workflow_id: WorkflowId,
        approver: PartyId,
        decision: Decision,
        signature: IdentitySignature,
        meta: CommandMeta,
    ) -> Result<Workflow, ApprovalServiceError> {
        self.workflows
            .execute(
                &workflow_id.to_string(),
                WorkflowCommand::Decide {
                    approver,
                    decision,
                    signature,
                    now: self.now(),
                },
                meta,
            )
            .await?;
        self.workflow(workflow_id).await
    }

    /// Starts the signing session of an approved workflow among its t approvers,
    /// carrying their approvals. Approvals are single-use: a workflow names one
    /// signing session, whatever its outcome, and holds for the key's share
    /// generation it was approved for.
    pub async fn start_signing(
        &self,
        workflow_id: WorkflowId,
        ttl: Duration,
        meta: CommandMeta,
    ) -> Result<CreatedSession, ApprovalServiceError> {
        let workflow = self.workflow(workflow_id).await?;
        let approved = workflow.created.key.epoch;
        let current = self
            .coordinator
            .key(workflow.created.key.key_id)
            .await?
            .epoch;
        if current != approved {
            return Err(WorkflowError::KeyRefreshed { approved, current }.into());
        }
        let evidence = workflow
            .evidence()
            .ok_or(WorkflowError::NotApproved(workflow.status))?;
        let session_id = SessionId::new();
        self.workflows
            .execute(
                &workflow_id.to_string(),
                WorkflowCommand::RequestSigning {
                    session_id,
                    now: self.now(),
                },
                meta,
            )
            .await?;
        let request = NewSigning {
            key_id: workflow.created.key.key_id,
            signers: workflow.approvers.clone(),
            payload: SigningPayload::Message(workflow.created.payload.clone()),
            ttl,
        };
        Ok(self
            .coordinator
            .create_signing_as(session_id, request, Some(evidence), meta)
            .await?)
    }

    /// Loads workflow `workflow_id` into a live actor and returns its status. A
    /// pending workflow's expiry is armed only while its actor is live, so a restarted
    /// coordinator resumes every pending workflow (see
    /// `WorkflowsProjection::open_workflows`): one whose deadline passed while no
    /// coordinator ran expires at once, the others when they are due.
    pub async fn resume(
        &self,
        workflow_id: WorkflowId,
    ) -> Result<WorkflowStatus, ApprovalServiceError> {
        Ok(self.workflow(workflow_id).await?.status)
    }

    /// The workflow as recorded.
    pub async fn workflow(
        &self,
        workflow_id: WorkflowId,
    ) -> Result<Workflow, ApprovalServiceError> {
        self.workflows
            .state(&workflow_id.to_string())
            .await?
            .0
            .ok_or(ApprovalServiceError::Workflow(
                WorkflowError::UnknownWorkflow,
            ))
    }
}
