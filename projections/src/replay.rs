//! Replaying every read model from position 0 into a scratch database and comparing
//! it with the live one, without touching the live one beyond catching it up.
//!
//! For each model, [`replay`] catches the live model up, reads its checkpoint `C`
//! and all its rows in one snapshot transaction (consistent even while another
//! runner keeps it moving), rebuilds the model in the scratch database from the log
//! cut off at `C`, and compares the two row by row. The scratch database is made by
//! [`ReadModels::scratch`] and dropped afterwards: on SQLite a private in-memory
//! database, on PostgreSQL a fresh schema `mpc_replay_<uuid>` of the live database
//! (so no right to create databases is needed, and nothing outside that schema is
//! written).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use mpc_store::{AppendOutcome, EventStore, ExpectedVersion, NewEvent, RecordedEvent};
use mpc_store::{StoreError, StreamName};
use tokio::sync::watch;

use crate::accounts::{AccountWithDetails, AccountsProjection, select_accounts_with_details};
use crate::audit::{AuditLogProjection, select_records};
use crate::db::{Conn, ReadModels};
use crate::error::ProjectionError;
use crate::runner::{Projection, ProjectionRunner, read_checkpoint};
use crate::session_status::{SessionStatusProjection, select_all};
use crate::workflows::{WorkflowsProjection, select_workflows_with_approvers};

/// How one rebuilt read model compares with the live one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelComparison {
    /// The projection's name (its checkpoint key).
    pub model: String,
    /// The position both were compared at.
    pub checkpoint: u64,
    pub live_rows: usize,
    pub rebuilt_rows: usize,
    /// `None` when every row matches; else where they first differ.
    pub first_difference: Option<String>,
}

impl ModelComparison {
    pub fn matches(&self) -> bool {
        self.first_difference.is_none()
    }
}

/// Catches up every read model in `live` from `store`, rebuilds each into a scratch
/// database of the same backend (dropped before returning) and compares them.
pub async fn replay(
    store: Arc<dyn EventStore>,
    live: &ReadModels,
) -> Result<Vec<ModelComparison>, ProjectionError> {
    let scratch = live.scratch().await?;
    let compared = compare_all(&store, live, scratch.models()).await;
    let discarded = scratch.discard().await;
    let compared = compared?;
    discarded?;
    Ok(compared)
}

async fn compare_all(
    store: &Arc<dyn EventStore>,
    live: &ReadModels,
    scratch: &ReadModels,
) -> Result<Vec<ModelComparison>, ProjectionError> {
    Ok(vec![
        compare::<SessionStatusProjection>(store, live, scratch).await?,
        compare::<AuditLogProjection>(store, live, scratch).await?,
        compare::<AccountsProjection>(store, live, scratch).await?,
        compare::<WorkflowsProjection>(store, live, scratch).await?,
    ])
}

/// A projection whose whole read model can be read for comparison.
#[async_trait]
trait Snapshot: Projection + Sized + 'static {
    type Row: PartialEq + Debug + Send;

    fn on(models: ReadModels) -> Self;

    async fn rows(conn: &mut Conn<'_>) -> Result<Vec<Self::Row>, ProjectionError>;

    /// How a row is named in a difference report.
    fn key(row: &Self::Row) -> String;
}

#[async_trait]
impl Snapshot for SessionStatusProjection {
    type Row = crate::SessionStatusRow;

    fn on(models: ReadModels) -> Self {
        Self::new(models)
    }

    async fn rows(conn: &mut Conn<'_>) -> Result<Vec<Self::Row>, ProjectionError> {
        select_all(conn).await
    }

    fn key(row: &Self::Row) -> String {
        format!("session {}", row.session_id)
    }
}

#[async_trait]
impl Snapshot for AuditLogProjection {
    type Row = crate::AuditRecord;

    fn on(models: ReadModels) -> Self {
        Self::new(models)
    }

    async fn rows(conn: &mut Conn<'_>) -> Result<Vec<Self::Row>, ProjectionError> {
        select_records(conn).await
    }

    fn key(row: &Self::Row) -> String {
        format!("position {}", row.position)
    }
}

#[async_trait]
impl Snapshot for AccountsProjection {
    /// An account with its shares and recovery sessions.
    type Row = AccountWithDetails;

    fn on(models: ReadModels) -> Self {
        Self::new(models)
    }

    async fn rows(conn: &mut Conn<'_>) -> Result<Vec<Self::Row>, ProjectionError> {
        select_accounts_with_details(conn).await
    }

    fn key(row: &Self::Row) -> String {
        format!("account {}", row.0.account_id)
    }
}

#[async_trait]
impl Snapshot for WorkflowsProjection {
    /// A workflow with its approvers.
    type Row = (crate::WorkflowRow, Vec<crate::ApproverRow>);

    fn on(models: ReadModels) -> Self {
        Self::new(models)
    }

    async fn rows(conn: &mut Conn<'_>) -> Result<Vec<Self::Row>, ProjectionError> {
        select_workflows_with_approvers(conn).await
    }

    fn key(row: &Self::Row) -> String {
        format!("workflow {}", row.0.workflow_id)
    }
}

async fn compare<P: Snapshot>(
    store: &Arc<dyn EventStore>,
    live: &ReadModels,
    scratch: &ReadModels,
) -> Result<ModelComparison, ProjectionError> {
    let live_runner =
        ProjectionRunner::new(store.clone(), live.clone(), P::on(live.clone())).await?;
    live_runner.catch_up().await?;
    let name = live_runner.projection().name().to_owned();

    let mut tx = live.begin_snapshot().await?;
    let checkpoint = read_checkpoint(&mut tx.conn(), &name).await?;
    let live_rows = P::rows(&mut tx.conn()).await?;
    tx.rollback()
        .await
        .map_err(ProjectionError::database("ending a snapshot read"))?;

    let cut: Arc<dyn EventStore> = Arc::new(UpTo {
        inner: store.clone(),
        last: checkpoint,
    });
    let rebuilt = ProjectionRunner::new(cut, scratch.clone(), P::on(scratch.clone())).await?;
    let reached = rebuilt.rebuild().await?;
    let mut conn = scratch.acquire().await?;
    let rebuilt_rows = P::rows(&mut conn.conn()).await?;

    let first_difference = if reached == checkpoint {
        first_difference::<P>(&live_rows, &rebuilt_rows)
    } else {
        Some(format!(
            "the rebuild reached position {reached}, the live model {checkpoint}"
        ))
    };
    Ok(ModelComparison {
        model: name,
        checkpoint,
        live_rows: live_rows.len(),
        rebuilt_rows: rebuilt_rows.len(),
        first_difference,
    })
}

fn first_difference<P: Snapshot>(live: &[P::Row], rebuilt: &[P::Row]) -> Option<String> {
    let mut live = live.iter();
    let mut rebuilt = rebuilt.iter();
    loop {
        match (live.next(), rebuilt.next()) {
            (None, None) => return None,
            (Some(l), Some(r)) if l == r => {}
            (Some(l), Some(r)) if P::key(l) == P::key(r) => {
                return Some(format!("{}: live {l:?}, rebuilt {r:?}", P::key(l)));
            }
            (Some(l), Some(r)) => {
                return Some(format!(
                    "live has {} where the rebuild has {}",
                    P::key(l),
                    P::key(r)
                ));
            }
            (Some(l), None) => return Some(format!("{} only in the live model", P::key(l))),
            (None, Some(r)) => return Some(format!("{} only in the rebuild", P::key(r))),
        }
    }
}

/// A read-only view of a store that ends at position `last`.
struct UpTo {
    inner: Arc<dyn EventStore>,
    last: u64,
}

#[async_trait]
impl EventStore for UpTo {
    async fn append(
        &self,
        _stream: &StreamName,
        _expected: ExpectedVersion,
        _events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        Err(StoreError::Backend(
            "the replay view of the event store is read-only".to_owned(),
        ))
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = self.inner.read_stream(stream, from_version).await?;
        events.retain(|e| e.position <= self.last);
        Ok(events)
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        if after >= self.last {
            return Ok(Vec::new());
        }
        let mut events = self.inner.read_all(after, limit).await?;
        events.retain(|e| e.position <= self.last);
        Ok(events)
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.inner.head().await?.min(self.last))
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.inner.watch_head()
    }
}
