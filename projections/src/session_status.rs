//! The session-status read model: one row per session with its lifecycle status,
//! progress counters and result, mirroring the session aggregate's fold.

use std::fmt;

use crate::db::{Conn, ReadModels, Row, Value, sql};
use crate::error::ProjectionError;
use crate::runner::{Projection, from_sql_int, to_sql_int};
use crate::stream::{decode_failed, entity_id, inconsistent};
use async_trait::async_trait;
use mpc_events::{
    KeyId, PartyId, PartyOutcome, SessionCreated, SessionEvent, SessionId, SessionKind,
    SessionSpec, SessionStatus, Timestamp,
};
use mpc_store::RecordedEvent;

macro_rules! select_rows {
    ($tail:literal) => {
        concat!(
            "SELECT session_id, kind, status, threshold_t, threshold_n, participants, joined, ",
            "reported, key_id, public_key_hex, signature_r_hex, signature_s_hex, recovery_id, ",
            "failure, created_at, updated_at, last_position FROM session_status ",
            $tail
        )
    };
}

/// One session as the read model shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatusRow {
    pub session_id: SessionId,
    pub kind: SessionKind,
    pub status: SessionStatus,
    pub threshold_t: u8,
    pub threshold_n: u8,
    /// The session's parties in protocol order.
    pub participants: Vec<PartyId>,
    /// How many participants have joined.
    pub joined: u32,
    /// How many participants have reported a result.
    pub reported: u32,
    /// Signing and refresh sessions: the key they sign with or refresh.
    pub key_id: Option<KeyId>,
    /// Keygen: the group public key once completed. Signing and refresh: that key's
    /// public key. Compressed SEC1, lowercase hex.
    pub public_key_hex: Option<String>,
    pub signature_r_hex: Option<String>,
    pub signature_s_hex: Option<String>,
    pub recovery_id: Option<u8>,
    /// Why the session failed, as [`mpc_events::FailureReason`] displays it.
    pub failure: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Global position of the last event applied to this row.
    pub last_position: u64,
}

/// Keeps the `session_status` table from `session-<id>` streams, and queries it.
///
/// Its tables exist once [`ReadModels::migrate`] has run (a
/// [`crate::ProjectionRunner`] runs it when created).
#[derive(Debug, Clone)]
pub struct SessionStatusProjection {
    models: ReadModels,
}

impl SessionStatusProjection {
    /// The checkpoint name of this projection.
    pub const NAME: &'static str = "session_status";

    /// A projection whose queries read from `models`: the database its runner writes
    /// to.
    pub fn new(models: ReadModels) -> Self {
        Self { models }
    }

    /// The row of one session, if the projection has seen it.
    pub async fn get(
        &self,
        session_id: SessionId,
    ) -> Result<Option<SessionStatusRow>, ProjectionError> {
        let row = self
            .models
            .fetch_optional(sql(select_rows!("WHERE session_id = $1")).bind(session_id.to_string()))
            .await
            .map_err(ProjectionError::database(format!(
                "reading session {session_id}"
            )))?;
        row.as_ref().map(decode_row).transpose()
    }

    /// Up to `limit` sessions, newest first (by creation time, then id).
    pub async fn list(&self, limit: u32) -> Result<Vec<SessionStatusRow>, ProjectionError> {
        let rows = self
            .models
            .fetch_all(
                sql(select_rows!(
                    "ORDER BY created_at DESC, session_id DESC LIMIT $1"
                ))
                .bind(i64::from(limit)),
            )
            .await
            .map_err(ProjectionError::database("listing sessions"))?;
        rows.iter().map(decode_row).collect()
    }

    /// The sessions that have not ended (`created` or `in_progress`), ordered by id:
    /// what a restarted coordinator must load so their deadlines fire. Complete up to
    /// the projection's checkpoint, so catch the runner up first.
    pub async fn open_sessions(&self) -> Result<Vec<SessionId>, ProjectionError> {
        let rows = self
            .models
            .fetch_all(
                sql(
                    "SELECT session_id FROM session_status WHERE status IN ($1, $2) \
                     ORDER BY session_id",
                )
                .bind(SessionStatus::Created.to_string())
                .bind(SessionStatus::InProgress.to_string()),
            )
            .await
            .map_err(ProjectionError::database("listing open sessions"))?;
        rows.iter()
            .map(|row| {
                let id: String = column_of(row, "session_id")?;
                id.parse().map_err(|_| {
                    ProjectionError::InvalidRow(format!("session_status.session_id = {id}"))
                })
            })
            .collect()
    }

    /// Every session, ordered by id: the whole read model, for comparing it with a
    /// rebuilt one.
    pub async fn snapshot(&self) -> Result<Vec<SessionStatusRow>, ProjectionError> {
        let mut conn = self.models.acquire().await?;
        select_all(&mut conn.conn()).await
    }
}

/// Every session through `conn`, ordered by id.
pub(crate) async fn select_all(
    conn: &mut Conn<'_>,
) -> Result<Vec<SessionStatusRow>, ProjectionError> {
    let rows = sql(select_rows!("ORDER BY session_id"))
        .fetch_all(conn)
        .await
        .map_err(ProjectionError::database("reading every session"))?;
    rows.iter().map(decode_row).collect()
}

#[async_trait]
impl Projection for SessionStatusProjection {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn apply(
        &self,
        conn: &mut Conn<'_>,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        if event.stream.category() != mpc_events::stream::SESSION {
            return Ok(());
        }
        let (session_id, decoded) = decode_session_event(event)?;
        let position = to_sql_int(event.position, "position")?;
        match &decoded {
            SessionEvent::SessionCreated(created) => {
                if created.session_id != session_id {
                    return Err(inconsistent(
                        event,
                        format!("SessionCreated names session {}", created.session_id),
                    ));
                }
                let inserted = insert_created(conn, created, position).await;
                match inserted {
                    Err(e)
                        if e.as_database_error()
                            .is_some_and(|db| db.is_unique_violation()) =>
                    {
                        Err(inconsistent(
                            event,
                            "the session was already created".to_owned(),
                        ))
                    }
                    other => other.map_err(ProjectionError::database(format!(
                        "inserting session {session_id}"
                    ))),
                }
            }
            other => {
                let updated =
                    apply_change(conn, session_id, &Change::of(other), other.at(), position)
                        .await
                        .map_err(ProjectionError::database(format!(
                            "updating session {session_id}"
                        )))?;
                if updated == 0 {
                    return Err(inconsistent(
                        event,
                        format!("{} for a session that was never created", other.type_name()),
                    ));
                }
                Ok(())
            }
        }
    }

    async fn reset(&self, conn: &mut Conn<'_>) -> Result<(), ProjectionError> {
        sql("DELETE FROM session_status")
            .execute(conn)
            .await
            .map_err(ProjectionError::database("emptying session_status"))?;
        Ok(())
    }
}

async fn insert_created(
    conn: &mut Conn<'_>,
    created: &SessionCreated,
    position: i64,
) -> Result<(), sqlx::Error> {
    let threshold = created.spec.threshold();
    let participants = created
        .participants
        .iter()
        .map(|p| p.party_id.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let (key_id, public_key_hex) = match &created.spec {
        SessionSpec::Keygen { .. } => (None, None),
        SessionSpec::Signing { key, .. } | SessionSpec::Refresh { key, .. } => (
            Some(key.key_id.to_string()),
            Some(hex::encode(key.public_key.as_bytes())),
        ),
    };
    let at = created.at.as_millis();
    sql(
        "INSERT INTO session_status (session_id, kind, status, threshold_t, threshold_n, \
         participants, joined, reported, key_id, public_key_hex, created_at, updated_at, \
         last_position) VALUES ($1, $2, $3, $4, $5, $6, 0, 0, $7, $8, $9, $10, $11)",
    )
    .bind(created.session_id.to_string())
    .bind(created.spec.kind().to_string())
    .bind(SessionStatus::Created.to_string())
    .bind(i64::from(threshold.t()))
    .bind(i64::from(threshold.n()))
    .bind(participants)
    .bind(key_id)
    .bind(public_key_hex)
    .bind(at)
    .bind(at)
    .bind(position)
    .execute(conn)
    .await?;
    Ok(())
}

/// What an event after `SessionCreated` changes in its row; `None` keeps a column.
#[derive(Debug, Default)]
struct Change {
    status: Option<SessionStatus>,
    joined: i64,
    reported: i64,
    public_key_hex: Option<String>,
    signature_r_hex: Option<String>,
    signature_s_hex: Option<String>,
    recovery_id: Option<i64>,
    failure: Option<String>,
}

impl Change {
    fn of(event: &SessionEvent) -> Self {
        match event {
            // Creates the row (`insert_created`) rather than changing it.
            SessionEvent::SessionCreated(_) => Self::default(),
            SessionEvent::ParticipantJoined { .. } => Self {
                joined: 1,
                ..Self::default()
            },
            SessionEvent::SessionStarted { .. } => Self {
                status: Some(SessionStatus::InProgress),
                ..Self::default()
            },
            SessionEvent::PartyCompleted { .. } => Self {
                reported: 1,
                ..Self::default()
            },
            SessionEvent::SessionCompleted { outcome, .. } => {
                let status = Some(SessionStatus::Completed);
                match outcome {
                    PartyOutcome::PublicKey(key) => Self {
                        status,
                        public_key_hex: Some(hex::encode(key.as_bytes())),
                        ..Self::default()
                    },
                    PartyOutcome::Signature(signature) => Self {
                        status,
                        signature_r_hex: Some(hex::encode(signature.r())),
                        signature_s_hex: Some(hex::encode(signature.s())),
                        recovery_id: Some(i64::from(signature.recovery_id())),
                        ..Self::default()
                    },
                    PartyOutcome::Refreshed { .. } => Self {
                        status,
                        ..Self::default()
                    },
                }
            }
            SessionEvent::SessionFailed { reason, .. } => Self {
                status: Some(SessionStatus::Failed),
                failure: Some(reason.to_string()),
                ..Self::default()
            },
            SessionEvent::SessionExpired { .. } => Self {
                status: Some(SessionStatus::Expired),
                ..Self::default()
            },
        }
    }
}

/// Applies `change` to the row of `session_id`; returns how many rows it touched.
async fn apply_change(
    conn: &mut Conn<'_>,
    session_id: SessionId,
    change: &Change,
    at: Timestamp,
    position: i64,
) -> Result<u64, sqlx::Error> {
    sql("UPDATE session_status SET \
         status = COALESCE($1, status), \
         joined = joined + $2, \
         reported = reported + $3, \
         public_key_hex = COALESCE($4, public_key_hex), \
         signature_r_hex = COALESCE($5, signature_r_hex), \
         signature_s_hex = COALESCE($6, signature_s_hex), \
         recovery_id = COALESCE($7, recovery_id), \
         failure = COALESCE($8, failure), \
         updated_at = $9, \
         last_position = $10 \
         WHERE session_id = $11")
    .bind(change.status.map(|s| s.to_string()))
    .bind(change.joined)
    .bind(change.reported)
    .bind(change.public_key_hex.as_deref())
    .bind(change.signature_r_hex.as_deref())
    .bind(change.signature_s_hex.as_deref())
    .bind(change.recovery_id)
    .bind(change.failure.as_deref())
    .bind(at.as_millis())
    .bind(position)
    .bind(session_id.to_string())
    .execute(conn)
    .await
}

fn decode_row(row: &Row) -> Result<SessionStatusRow, ProjectionError> {
    let invalid = |column: &str, value: &dyn fmt::Display| {
        ProjectionError::InvalidRow(format!("session_status.{column} = {value}"))
    };
    let int = |column: &str| -> Result<i64, ProjectionError> { column_of(row, column) };
    let small = |column: &str| {
        let value = int(column)?;
        u8::try_from(value).map_err(|_| invalid(column, &value))
    };
    let count = |column: &str| {
        let value = int(column)?;
        u32::try_from(value).map_err(|_| invalid(column, &value))
    };

    let session_id: String = column_of(row, "session_id")?;
    let kind: String = column_of(row, "kind")?;
    let status: String = column_of(row, "status")?;
    let participants: String = column_of(row, "participants")?;
    let key_id: Option<String> = column_of(row, "key_id")?;
    let recovery_id: Option<i64> = column_of(row, "recovery_id")?;
    Ok(SessionStatusRow {
        session_id: session_id
            .parse()
            .map_err(|_| invalid("session_id", &session_id))?,
        kind: parse_kind(&kind).ok_or_else(|| invalid("kind", &kind))?,
        status: parse_status(&status).ok_or_else(|| invalid("status", &status))?,
        threshold_t: small("threshold_t")?,
        threshold_n: small("threshold_n")?,
        participants: participants
            .split(',')
            .filter(|p| !p.is_empty())
            .map(PartyId::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| invalid("participants", &participants))?,
        joined: count("joined")?,
        reported: count("reported")?,
        key_id: key_id
            .map(|k| k.parse().map_err(|_| invalid("key_id", &k)))
            .transpose()?,
        public_key_hex: column_of(row, "public_key_hex")?,
        signature_r_hex: column_of(row, "signature_r_hex")?,
        signature_s_hex: column_of(row, "signature_s_hex")?,
        recovery_id: recovery_id
            .map(|r| u8::try_from(r).map_err(|_| invalid("recovery_id", &r)))
            .transpose()?,
        failure: column_of(row, "failure")?,
        created_at: Timestamp::from_millis(int("created_at")?),
        updated_at: Timestamp::from_millis(int("updated_at")?),
        last_position: from_sql_int(int("last_position")?, "last_position")?,
    })
}

fn column_of<T: Value>(row: &Row, column: &str) -> Result<T, ProjectionError> {
    row.get(column).map_err(ProjectionError::database(format!(
        "decoding session_status.{column}"
    )))
}

/// The inverse of [`SessionKind`]'s `Display`.
fn parse_kind(text: &str) -> Option<SessionKind> {
    [
        SessionKind::Keygen,
        SessionKind::Signing,
        SessionKind::Refresh,
    ]
    .into_iter()
    .find(|kind| kind.to_string() == text)
}

/// The inverse of [`SessionStatus`]'s `Display`.
fn parse_status(text: &str) -> Option<SessionStatus> {
    [
        SessionStatus::Created,
        SessionStatus::InProgress,
        SessionStatus::Completed,
        SessionStatus::Failed,
        SessionStatus::Expired,
    ]
    .into_iter()
    .find(|status| status.to_string() == text)
}

/// The session a `session-…` event belongs to and the event itself; a stream id that
/// is not a session id is inconsistent, an undecodable payload a decode error.
pub(crate) fn decode_session_event(
    event: &RecordedEvent,
) -> Result<(SessionId, SessionEvent), ProjectionError> {
    let session_id = entity_id(event, mpc_events::stream::SESSION)?;
    let decoded = mpc_schemas::stored::session::decode(
        &event.event_type,
        event.schema_version,
        &event.payload,
    )
    .map_err(|source| decode_failed(event, source))?;
    Ok((session_id, decoded))
}
