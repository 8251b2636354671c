//! The approval-workflow read model: one row per workflow with its status, decision
//! counts and the outcome of its latest signing session, and one row per approver
//! with its decision.
//!
//! Reads `approval-<id>` streams, and `session-<id>` streams for the end of each
//! workflow's latest signing session (the one named by its latest
//! `SigningRequested`): a session event changes a workflow only when its session is
//! that workflow's latest signing session.

use std::fmt;

use async_trait::async_trait;
use mpc_events::{
    Decision, KeyId, PartyId, PartyOutcome, SessionEvent, SessionId, Timestamp, WorkflowCreated,
    WorkflowEvent, WorkflowId,
};
use mpc_store::RecordedEvent;

use crate::db::{Conn, ReadModels, Row, Sql, Value, sql};
use crate::error::ProjectionError;
use crate::runner::{Projection, from_sql_int, to_sql_int};
use crate::session_status::decode_session_event;
use crate::stream::{decode_failed, entity_id, inconsistent};

macro_rules! select_workflows {
    ($tail:literal) => {
        concat!(
            "SELECT workflow_id, title, key_id, payload_hash_hex, threshold_t, approvers_n, ",
            "status, approvals, rejections, signing_session_id, signature_r_hex, ",
            "signature_s_hex, recovery_id, expires_at, created_at, updated_at, last_position ",
            "FROM approval_workflows ",
            $tail
        )
    };
}

macro_rules! select_approvers {
    ($tail:literal) => {
        concat!(
            "SELECT workflow_id, party_id, decision, decided_at, signature_hex ",
            "FROM workflow_approvers ",
            $tail
        )
    };
}

/// Where a workflow stands: the workflow aggregate's status, refined by the outcome
/// of its latest signing session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkflowState {
    Pending,
    Approved,
    /// A signing session is requested and has not ended.
    Signing,
    Rejected,
    Expired,
    /// The latest signing session completed with the signature.
    Signed,
    /// The latest signing session failed or expired.
    SigningFailed,
}

impl WorkflowState {
    const ALL: [WorkflowState; 7] = [
        Self::Pending,
        Self::Approved,
        Self::Signing,
        Self::Rejected,
        Self::Expired,
        Self::Signed,
        Self::SigningFailed,
    ];
}

impl fmt::Display for WorkflowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Signing => "signing",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Signed => "signed",
            Self::SigningFailed => "signing_failed",
        })
    }
}

/// One workflow as the read model shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowRow {
    pub workflow_id: WorkflowId,
    pub title: String,
    /// The key to sign with.
    pub key_id: KeyId,
    /// SHA-256 of the payload, lowercase hex.
    pub payload_hash_hex: String,
    pub threshold_t: u8,
    pub approvers_n: u8,
    pub status: WorkflowState,
    pub approvals: u32,
    pub rejections: u32,
    /// The latest signing session requested for the workflow.
    pub signing_session_id: Option<SessionId>,
    pub signature_r_hex: Option<String>,
    pub signature_s_hex: Option<String>,
    pub recovery_id: Option<u8>,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Global position of the last event applied to this row.
    pub last_position: u64,
}

/// One approver of a workflow and its decision, once made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproverRow {
    pub workflow_id: WorkflowId,
    pub party_id: PartyId,
    pub decision: Option<Decision>,
    pub decided_at: Option<Timestamp>,
    /// The approver's identity signature over its decision, lowercase hex.
    pub signature_hex: Option<String>,
}

/// Keeps the `approval_workflows` and `workflow_approvers` tables from
/// `approval-<id>` and `session-<id>` streams, and queries them.
///
/// Its tables exist once [`ReadModels::migrate`] has run (a
/// [`crate::ProjectionRunner`] runs it when created).
#[derive(Debug, Clone)]
pub struct WorkflowsProjection {
    models: ReadModels,
}

impl WorkflowsProjection {
    /// The checkpoint name of this projection.
    pub const NAME: &'static str = "approval_workflows";

    /// A projection whose queries read from `models`: the database its runner writes
    /// to.
    pub fn new(models: ReadModels) -> Self {
        Self { models }
    }

    /// The row of one workflow, if the projection has seen it.
    pub async fn get(
        &self,
        workflow_id: WorkflowId,
    ) -> Result<Option<WorkflowRow>, ProjectionError> {
        let row = self
            .models
            .fetch_optional(
                sql(select_workflows!("WHERE workflow_id = $1")).bind(workflow_id.to_string()),
            )
            .await
            .map_err(ProjectionError::database(format!(
                "reading workflow {workflow_id}"
            )))?;
        row.as_ref().map(decode_workflow_row).transpose()
    }

    /// The approvers of one workflow, ordered by party id; empty for an unknown
    /// workflow.
    pub async fn approvers(
        &self,
        workflow_id: WorkflowId,
    ) -> Result<Vec<ApproverRow>, ProjectionError> {
        let rows = self
            .models
            .fetch_all(
                sql(select_approvers!(
                    "WHERE workflow_id = $1 ORDER BY party_id"
                ))
                .bind(workflow_id.to_string()),
            )
            .await
            .map_err(ProjectionError::database(format!(
                "reading the approvers of workflow {workflow_id}"
            )))?;
        rows.iter().map(decode_approver_row).collect()
    }

    /// Every workflow still waiting for decisions (`pending`), ordered by id: those
    /// whose deadline a restarted coordinator must arm again
    /// (`Approvals::resume`).
    pub async fn open_workflows(&self) -> Result<Vec<WorkflowId>, ProjectionError> {
        let rows = self
            .models
            .fetch_all(
                sql(
                    "SELECT workflow_id FROM approval_workflows WHERE status = $1 \
                     ORDER BY workflow_id",
                )
                .bind(WorkflowState::Pending.to_string()),
            )
            .await
            .map_err(ProjectionError::database("listing open workflows"))?;
        const TABLE: &str = "approval_workflows";
        rows.iter()
            .map(|row| {
                let id: String = column_of(row, TABLE, "workflow_id")?;
                id.parse()
                    .map_err(|_| ProjectionError::InvalidRow(format!("{TABLE}.workflow_id = {id}")))
            })
            .collect()
    }

    /// Up to `limit` workflows, newest first (by creation time, then id).
    pub async fn list(&self, limit: u32) -> Result<Vec<WorkflowRow>, ProjectionError> {
        let rows = self
            .models
            .fetch_all(
                sql(select_workflows!(
                    "ORDER BY created_at DESC, workflow_id DESC LIMIT $1"
                ))
                .bind(i64::from(limit)),
            )
            .await
            .map_err(ProjectionError::database("listing workflows"))?;
        rows.iter().map(decode_workflow_row).collect()
    }
}

/// Every workflow with its approvers, ordered by workflow id (approvers by party id):
/// the whole read model, for comparing it with a rebuilt one.
pub(crate) async fn select_workflows_with_approvers(
    conn: &mut Conn<'_>,
) -> Result<Vec<(WorkflowRow, Vec<ApproverRow>)>, ProjectionError> {
    let workflows = sql(select_workflows!("ORDER BY workflow_id"))
        .fetch_all(conn)
        .await
        .map_err(ProjectionError::database("reading every workflow"))?;
    let approvers = sql(select_approvers!("ORDER BY workflow_id, party_id"))
        .fetch_all(conn)
        .await
        .map_err(ProjectionError::database("reading every workflow approver"))?;
    let approvers = approvers
        .iter()
        .map(decode_approver_row)
        .collect::<Result<Vec<_>, _>>()?;
    let mut approvers = approvers.into_iter().peekable();
    workflows
        .iter()
        .map(|row| {
            let workflow = decode_workflow_row(row)?;
            let mut own = Vec::new();
            while let Some(approver) = approvers.next_if(|a| a.workflow_id == workflow.workflow_id)
            {
                own.push(approver);
            }
            Ok((workflow, own))
        })
        .collect()
}

#[async_trait]
impl Projection for WorkflowsProjection {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn apply(
        &self,
        conn: &mut Conn<'_>,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let category = event.stream.category();
        if category == mpc_events::stream::APPROVAL {
            apply_workflow_event(conn, event).await
        } else if category == mpc_events::stream::SESSION {
            apply_session_event(conn, event).await
        } else {
            Ok(())
        }
    }

    async fn reset(&self, conn: &mut Conn<'_>) -> Result<(), ProjectionError> {
        sql("DELETE FROM workflow_approvers")
            .execute(conn)
            .await
            .map_err(ProjectionError::database("emptying workflow_approvers"))?;
        sql("DELETE FROM approval_workflows")
            .execute(conn)
            .await
            .map_err(ProjectionError::database("emptying approval_workflows"))?;
        Ok(())
    }
}

async fn apply_workflow_event(
    conn: &mut Conn<'_>,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let workflow_id: WorkflowId = entity_id(event, mpc_events::stream::APPROVAL)?;
    let decoded = mpc_schemas::stored::approval::decode_workflow(
        &event.event_type,
        event.schema_version,
        &event.payload,
    )
    .map_err(|source| decode_failed(event, source))?;
    let position = to_sql_int(event.position, "position")?;
    let context = format!("applying {} to workflow {workflow_id}", decoded.type_name());
    let at = decoded.at().as_millis();
    let workflow = workflow_id.to_string();

    let update = match &decoded {
        WorkflowEvent::WorkflowCreated(created) => {
            if created.workflow_id != workflow_id {
                return Err(inconsistent(
                    event,
                    format!("WorkflowCreated names workflow {}", created.workflow_id),
                ));
            }
            return match insert_created(conn, created, position).await {
                Err(e)
                    if e.as_database_error()
                        .is_some_and(|db| db.is_unique_violation()) =>
                {
                    Err(inconsistent(
                        event,
                        "the workflow was already created".to_owned(),
                    ))
                }
                other => other.map_err(ProjectionError::database(context)),
            };
        }
        WorkflowEvent::DecisionRecorded {
            approver,
            decision,
            signature,
            ..
        } => {
            let recorded = sql(
                "UPDATE workflow_approvers SET decision = $1, decided_at = $2, \
                 signature_hex = $3 WHERE workflow_id = $4 AND party_id = $5 \
                 AND decision IS NULL",
            )
            .bind(decision.to_string())
            .bind(at)
            .bind(hex::encode(signature.as_bytes()))
            .bind(workflow.as_str())
            .bind(approver.as_str())
            .execute(conn)
            .await
            .map_err(ProjectionError::database(context.clone()))?;
            if recorded == 0 {
                return Err(inconsistent(
                    event,
                    format!(
                        "a decision by {approver}, who is no undecided approver of the workflow"
                    ),
                ));
            }
            let (approvals, rejections) = match decision {
                Decision::Approve => (1_i64, 0_i64),
                Decision::Reject => (0, 1),
            };
            sql("UPDATE approval_workflows SET approvals = approvals + $1, \
                 rejections = rejections + $2, updated_at = $3, last_position = $4 \
                 WHERE workflow_id = $5")
            .bind(approvals)
            .bind(rejections)
        }
        WorkflowEvent::WorkflowApproved { .. } => status_change(WorkflowState::Approved),
        WorkflowEvent::WorkflowRejected { .. } => status_change(WorkflowState::Rejected),
        WorkflowEvent::WorkflowExpired { .. } => status_change(WorkflowState::Expired),
        WorkflowEvent::SigningRequested { session_id, .. } => sql(
            "UPDATE approval_workflows SET status = $1, signing_session_id = $2, \
             signature_r_hex = NULL, signature_s_hex = NULL, recovery_id = NULL, \
             updated_at = $3, last_position = $4 WHERE workflow_id = $5",
        )
        .bind(WorkflowState::Signing.to_string())
        .bind(session_id.to_string()),
    };
    let updated = update
        .bind(at)
        .bind(position)
        .bind(workflow)
        .execute(conn)
        .await
        .map_err(ProjectionError::database(context))?;
    if updated == 0 {
        return Err(inconsistent(
            event,
            format!(
                "{} for a workflow that was never created",
                decoded.type_name()
            ),
        ));
    }
    Ok(())
}

/// The update setting a workflow's status; binds all but `updated_at`,
/// `last_position` and the workflow id.
fn status_change(status: WorkflowState) -> Sql {
    sql(
        "UPDATE approval_workflows SET status = $1, updated_at = $2, last_position = $3 \
         WHERE workflow_id = $4",
    )
    .bind(status.to_string())
}

async fn insert_created(
    conn: &mut Conn<'_>,
    created: &WorkflowCreated,
    position: i64,
) -> Result<(), sqlx::Error> {
    let workflow = created.workflow_id.to_string();
    let at = created.at.as_millis();
    sql(
        "INSERT INTO approval_workflows (workflow_id, title, key_id, payload_hash_hex, \
         threshold_t, approvers_n, status, approvals, rejections, expires_at, created_at, \
         updated_at, last_position) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, $8, $9, $10, $11)",
    )
    .bind(workflow.as_str())
    .bind(created.title.as_str())
    .bind(created.key.key_id.to_string())
    .bind(hex::encode(created.payload_hash.as_bytes()))
    .bind(i64::from(created.key.threshold.t()))
    .bind(i64::from(created.key.threshold.n()))
    .bind(WorkflowState::Pending.to_string())
    .bind(created.expires_at.as_millis())
    .bind(at)
    .bind(at)
    .bind(position)
    .execute(conn)
    .await?;
    for party in &created.key.parties {
        sql("INSERT INTO workflow_approvers (workflow_id, party_id) VALUES ($1, $2)")
            .bind(workflow.as_str())
            .bind(party.party_id.as_str())
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Applies the end of a signing session to the workflow whose latest signing session
/// it is; events of other sessions change nothing.
async fn apply_session_event(
    conn: &mut Conn<'_>,
    event: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let (session_id, decoded) = decode_session_event(event)?;
    let position = to_sql_int(event.position, "position")?;
    let (status, signature) = match &decoded {
        SessionEvent::SessionCompleted {
            outcome: PartyOutcome::Signature(signature),
            ..
        } => (WorkflowState::Signed, Some(signature)),
        SessionEvent::SessionFailed { .. } | SessionEvent::SessionExpired { .. } => {
            (WorkflowState::SigningFailed, None)
        }
        // The rest of a session, and the end of a keygen session, leave workflows as
        // they are.
        _ => return Ok(()),
    };
    sql(
        "UPDATE approval_workflows SET status = $1, signature_r_hex = $2, \
         signature_s_hex = $3, recovery_id = $4, updated_at = $5, last_position = $6 \
         WHERE signing_session_id = $7",
    )
    .bind(status.to_string())
    .bind(signature.map(|s| hex::encode(s.r())))
    .bind(signature.map(|s| hex::encode(s.s())))
    .bind(signature.map(|s| i64::from(s.recovery_id())))
    .bind(decoded.at().as_millis())
    .bind(position)
    .bind(session_id.to_string())
    .execute(conn)
    .await
    .map_err(ProjectionError::database(format!(
        "applying the end of signing session {session_id}"
    )))?;
    Ok(())
}

fn decode_workflow_row(row: &Row) -> Result<WorkflowRow, ProjectionError> {
    const TABLE: &str = "approval_workflows";
    let invalid = |column: &str, value: &dyn fmt::Display| {
        ProjectionError::InvalidRow(format!("{TABLE}.{column} = {value}"))
    };
    let int = |column: &str| -> Result<i64, ProjectionError> { column_of(row, TABLE, column) };
    let small = |column: &str| {
        let value = int(column)?;
        u8::try_from(value).map_err(|_| invalid(column, &value))
    };
    let count = |column: &str| {
        let value = int(column)?;
        u32::try_from(value).map_err(|_| invalid(column, &value))
    };
    let workflow_id: String = column_of(row, TABLE, "workflow_id")?;
    let status: String = column_of(row, TABLE, "status")?;
    let signing_session_id: Option<String> = column_of(row, TABLE, "signing_session_id")?;
    let key_id: String = column_of(row, TABLE, "key_id")?;
    let recovery_id: Option<i64> = column_of(row, TABLE, "recovery_id")?;
    Ok(WorkflowRow {
        workflow_id: workflow_id
            .parse()
            .map_err(|_| invalid("workflow_id", &workflow_id))?,
        title: column_of(row, TABLE, "title")?,
        key_id: key_id.parse().map_err(|_| invalid("key_id", &key_id))?,
        payload_hash_hex: column_of(row, TABLE, "payload_hash_hex")?,
        threshold_t: small("threshold_t")?,
        approvers_n: small("approvers_n")?,
        status: WorkflowState::ALL
            .into_iter()
            .find(|s| s.to_string() == status)
            .ok_or_else(|| invalid("status", &status))?,
        approvals: count("approvals")?,
        rejections: count("rejections")?,
        signing_session_id: signing_session_id
            .map(|s| s.parse().map_err(|_| invalid("signing_session_id", &s)))
            .transpose()?,
        signature_r_hex: column_of(row, TABLE, "signature_r_hex")?,
        signature_s_hex: column_of(row, TABLE, "signature_s_hex")?,
        recovery_id: recovery_id
            .map(|r| u8::try_from(r).map_err(|_| invalid("recovery_id", &r)))
            .transpose()?,
        expires_at: Timestamp::from_millis(int("expires_at")?),
        created_at: Timestamp::from_millis(int("created_at")?),
        updated_at: Timestamp::from_millis(int("updated_at")?),
        last_position: from_sql_int(int("last_position")?, "last_position")?,
    })
}

fn decode_approver_row(row: &Row) -> Result<ApproverRow, ProjectionError> {
    const TABLE: &str = "workflow_approvers";
    let invalid = |column: &str, value: &str| {
        ProjectionError::InvalidRow(format!("{TABLE}.{column} = {value}"))
    };
    let workflow_id: String = column_of(row, TABLE, "workflow_id")?;
    let party_id: String = column_of(row, TABLE, "party_id")?;
    let decision: Option<String> = column_of(row, TABLE, "decision")?;
    let decided_at: Option<i64> = column_of(row, TABLE, "decided_at")?;
    Ok(ApproverRow {
        workflow_id: workflow_id
            .parse()
            .map_err(|_| invalid("workflow_id", &workflow_id))?,
        party_id: PartyId::parse(&party_id).map_err(|_| invalid("party_id", &party_id))?,
        decision: decision
            .map(|d| {
                [Decision::Approve, Decision::Reject]
                    .into_iter()
                    .find(|known| known.to_string() == d)
                    .ok_or_else(|| invalid("decision", &d))
            })
            .transpose()?,
        decided_at: decided_at.map(Timestamp::from_millis),
        signature_hex: column_of(row, TABLE, "signature_hex")?,
    })
}

fn column_of<T: Value>(row: &Row, table: &str, column: &str) -> Result<T, ProjectionError> {
    row.get(column).map_err(ProjectionError::database(format!(
        "decoding {table}.{column}"
    )))
}
