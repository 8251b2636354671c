//! The audit-log read model: one hash-chained record per stored event, of every
//! stream category.
//!
//! # Records
//!
//! Each event at global position `p` becomes the `audit_log` row with primary key `p`:
//!
//! | column | value |
//! |---|---|
//! | `occurred_at` | the event's time (ms since the Unix epoch) |
//! | `service` | `coordinator` for `session-…` streams, else the stream category |
//! | `action` | the event type |
//! | `actor` | the party that caused the event when it names one (`ParticipantJoined` and `PartyCompleted`: the party; `SessionFailed`: the reporting party), else `system` |
//! | `resource` | the stream name |
//! | `session` | the session id, for session streams |
//! | `status` | the session's status after the event, for session streams |
//! | `event_id`, `correlation_id` | copied from the event |
//! | `stream_version`, `schema_version`, `payload_sha256` | what the chain binds besides the fields above (every column except the hashes is bound) |
//! | `prev_hash`, `hash` | the chain |
//!
//! Streams of categories this crate does not know are recorded with these generic
//! fields (never an error); a session event whose payload cannot be decoded stops the
//! projection, as in the session-status projection.
//!
//! # The chain
//!
//! `hash = SHA-256(enc)` where `enc` is [`CHAIN_DOMAIN`] followed by, in this order,
//! `prev_hash`, `position`, `event_id`, `correlation_id`, `stream`, `version`, `event_type`,
//! `schema_version`, `SHA-256(payload)`, `occurred_at`, `service`, `action`, `actor`,
//! `resource`, `session`, `status`. Every field is length-prefixed: a big-endian `u64`
//! byte count, then the bytes. Integers are 8 bytes big-endian (`occurred_at` as a
//! signed `i64`), hashes their 32 raw bytes, uuids their 16 bytes, text its UTF-8.
//! The optional `session` and `status` are one byte `0` when absent, else `1`
//! followed by the field. The first record's `prev_hash` is 32 zero bytes; every
//! other record's is the previous record's `hash`. [`verify_chain`] recomputes it all.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use mpc_events::{FailureReason, SessionEvent, SessionId, SessionStatus, Timestamp};
use mpc_store::RecordedEvent;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::{Conn, ReadModels, Row, Value, dynamic_sql, sql};
use crate::error::ProjectionError;
use crate::runner::{Projection, from_sql_int, to_sql_int};
use crate::session_status::decode_session_event;
use crate::stream::inconsistent;

/// The first record's `prev_hash`.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Domain-separation prefix of every chain hash input.
pub const CHAIN_DOMAIN: &[u8] = b"mpc-audit-log-v1";

/// The `service` of session streams: the coordinator runs them.
pub const COORDINATOR_SERVICE: &str = "coordinator";

/// The `actor` of events no party caused.
pub const SYSTEM_ACTOR: &str = "system";

/// One audit record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub position: u64,
    pub occurred_at: Timestamp,
    pub service: String,
    pub action: String,
    pub actor: String,
    pub resource: String,
    pub session: Option<String>,
    pub status: Option<String>,
    pub event_id: Uuid,
    pub correlation_id: Uuid,
    pub stream_version: u64,
    pub schema_version: u16,
    pub payload_sha256: [u8; 32],
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl AuditRecord {
    /// The chain hash of this record's fields and its `prev_hash` (what `hash`
    /// must be).
    pub fn compute_hash(&self) -> [u8; 32] {
        let mut enc = Encoder::default();
        enc.raw(CHAIN_DOMAIN);
        enc.field(&self.prev_hash);
        enc.u64(self.position);
        enc.field(self.event_id.as_bytes());
        enc.field(self.correlation_id.as_bytes());
        enc.text(&self.resource);
        enc.u64(self.stream_version);
        enc.text(&self.action);
        enc.u64(u64::from(self.schema_version));
        enc.field(&self.payload_sha256);
        enc.field(&self.occurred_at.as_millis().to_be_bytes());
        enc.text(&self.service);
        enc.text(&self.action);
        enc.text(&self.actor);
        enc.text(&self.resource);
        enc.optional(self.session.as_deref());
        enc.optional(self.status.as_deref());
        enc.0.finalize().into()
    }
}

/// The length-prefixed encoding hashed into the chain.
#[derive(Default)]
struct Encoder(Sha256);

impl Encoder {
    fn raw(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn field(&mut self, bytes: &[u8]) {
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.0.update(len.to_be_bytes());
        self.0.update(bytes);
    }

    fn u64(&mut self, value: u64) {
        self.field(&value.to_be_bytes());
    }

    fn text(&mut self, value: &str) {
        self.field(value.as_bytes());
    }

    fn optional(&mut self, value: Option<&str>) {
        match value {
            None => self.0.update([0]),
            Some(text) => {
                self.0.update([1]);
                self.text(text);
            }
        }
    }
}

/// Why [`verify_chain`] stopped at a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakReason {
    /// The record's `prev_hash` is not the previous record's `hash` (a record before
    /// it was removed, inserted or re-hashed).
    PrevHashMismatch,
    /// The record's `hash` is not the hash of its fields (the record was edited).
    HashMismatch,
    /// The projection's checkpoint is beyond the last record: records at the end of
    /// the log were removed.
    MissingTail,
}

impl fmt::Display for BreakReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PrevHashMismatch => "prev_hash does not match the previous record's hash",
            Self::HashMismatch => "hash does not match the record's contents",
            Self::MissingTail => "records up to the checkpoint are missing",
        })
    }
}

/// The first place the chain is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// The position of the first record that does not verify (for
    /// [`BreakReason::MissingTail`]: the checkpoint, whose record is missing).
    pub position: u64,
    /// What the verified chain says should be there (lowercase hex).
    pub expected: String,
    /// What is stored (lowercase hex; empty when the record is missing).
    pub found: String,
    pub reason: BreakReason,
}

impl fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "position {}: {} (expected {}, found {})",
            self.position,
            self.reason,
            self.expected,
            if self.found.is_empty() {
                "nothing"
            } else {
                &self.found
            }
        )
    }
}

/// What [`verify_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// How many records were checked.
    pub records: u64,
    /// The hash of the last record (the chain head), if any.
    pub head: Option<[u8; 32]>,
    /// `None` when the whole chain verifies.
    pub first_broken: Option<BrokenLink>,
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// Recomputes every record's hash in position order and checks each link, and that
/// the last record is at the audit projection's checkpoint (when one is stored).
/// Stops at the first broken link.
pub async fn verify_chain(models: &ReadModels) -> Result<ChainReport, ProjectionError> {
    let mut tx = models.begin_snapshot().await?;
    let records = select_records(&mut tx.conn()).await?;
    let checkpoint = sql("SELECT position FROM projection_checkpoints WHERE name = $1")
        .bind(AuditLogProjection::NAME)
        .fetch_optional(&mut tx.conn())
        .await
        .map_err(ProjectionError::database("reading the audit checkpoint"))?
        .map(|row| row.get::<i64>("position"))
        .transpose()
        .map_err(ProjectionError::database(
            "decoding projection_checkpoints.position",
        ))?;
    tx.rollback()
        .await
        .map_err(ProjectionError::database("ending the audit log read"))?;

    let mut prev = GENESIS_HASH;
    let mut checked = 0;
    for record in &records {
        if record.prev_hash != prev {
            return Ok(broken(
                checked,
                record.position,
                prev,
                record.prev_hash,
                BreakReason::PrevHashMismatch,
            ));
        }
        let expected = record.compute_hash();
        if record.hash != expected {
            return Ok(broken(
                checked,
                record.position,
                expected,
                record.hash,
                BreakReason::HashMismatch,
            ));
        }
        prev = record.hash;
        checked += 1;
    }
    let last = records.last().map_or(0, |r| r.position);
    if let Some(checkpoint) = checkpoint {
        let checkpoint = from_sql_int(checkpoint, "checkpoint")?;
        if checkpoint > last {
            return Ok(ChainReport {
                records: checked,
                head: records.last().map(|r| r.hash),
                first_broken: Some(BrokenLink {
                    position: checkpoint,
                    expected: format!("a record at position {checkpoint}"),
                    found: String::new(),
                    reason: BreakReason::MissingTail,
                }),
            });
        }
    }
    Ok(ChainReport {
        records: checked,
        head: records.last().map(|r| r.hash),
        first_broken: None,
    })
}

fn broken(
    checked: u64,
    position: u64,
    expected: [u8; 32],
    found: [u8; 32],
    reason: BreakReason,
) -> ChainReport {
    ChainReport {
        records: checked,
        head: None,
        first_broken: Some(BrokenLink {
            position,
            expected: hex::encode(expected),
            found: hex::encode(found),
            reason,
        }),
    }
}

/// Keeps the `audit_log` table from every stream, and queries it.
#[derive(Debug, Clone)]
pub struct AuditLogProjection {
    models: ReadModels,
}

impl AuditLogProjection {
    /// The checkpoint name of this projection.
    pub const NAME: &'static str = "audit_log";

    /// A projection whose queries read from `models`: the database its runner writes
    /// to.
    pub fn new(models: ReadModels) -> Self {
        Self { models }
    }

    /// Every record, in position order.
    pub async fn snapshot(&self) -> Result<Vec<AuditRecord>, ProjectionError> {
        let mut conn = self.models.acquire().await?;
        select_records(&mut conn.conn()).await
    }

    /// How many records there are and the last one's hash (the chain head), read
    /// together.
    pub async fn head(&self) -> Result<(u64, Option<[u8; 32]>), ProjectionError> {
        let mut tx = self.models.begin_snapshot().await?;
        let count: i64 = sql("SELECT COUNT(*) AS records FROM audit_log")
            .fetch_optional(&mut tx.conn())
            .await
            .map_err(ProjectionError::database("counting audit records"))?
            .map_or(Ok(0), |row| row.get("records"))
            .map_err(ProjectionError::database("decoding the audit record count"))?;
        let head = last_hash(&mut tx.conn()).await?;
        tx.rollback()
            .await
            .map_err(ProjectionError::database("ending the audit log read"))?;
        Ok((from_sql_int(count, "record count")?, head))
    }

    /// [`verify_chain`] on this projection's database.
    pub async fn verify(&self) -> Result<ChainReport, ProjectionError> {
        verify_chain(&self.models).await
    }
}

/// Every record through `conn`, in position order.
pub(crate) async fn select_records(
    conn: &mut Conn<'_>,
) -> Result<Vec<AuditRecord>, ProjectionError> {
    let rows = sql(
        "SELECT position, occurred_at, service, action, actor, resource, session, status, \
         event_id, correlation_id, stream_version, schema_version, payload_sha256, \
         prev_hash, hash FROM audit_log ORDER BY position",
    )
    .fetch_all(conn)
    .await
    .map_err(ProjectionError::database("reading the audit log"))?;
    rows.iter().map(decode_record).collect()
}

async fn last_hash(conn: &mut Conn<'_>) -> Result<Option<[u8; 32]>, ProjectionError> {
    let row = sql("SELECT hash FROM audit_log ORDER BY position DESC LIMIT 1")
        .fetch_optional(conn)
        .await
        .map_err(ProjectionError::database("reading the audit chain head"))?;
    row.map(|row| parse_hash("hash", &column_of::<String>(&row, "hash")?))
        .transpose()
}

#[async_trait]
impl Projection for AuditLogProjection {
    fn name(&self) -> &str {
        Self::NAME
    }

    async fn apply(
        &self,
        conn: &mut Conn<'_>,
        event: &RecordedEvent,
    ) -> Result<(), ProjectionError> {
        let prev_hash = last_hash(conn).await?.unwrap_or(GENESIS_HASH);
        let record = record_for(conn, event, prev_hash, &HashMap::new()).await?;
        insert_records(conn, std::slice::from_ref(&record), |e| {
            if e.as_database_error()
                .is_some_and(|db| db.is_unique_violation())
            {
                ProjectionError::Inconsistent {
                    position: event.position,
                    stream: event.stream.clone(),
                    detail: "an audit record already exists at this position".to_owned(),
                }
            } else {
                ProjectionError::database(format!("inserting audit record {}", event.position))(e)
            }
        })
        .await
    }

    /// The batch form: the chain head is read once, each record's hash is chained
    /// to the one before it in memory, sessions' statuses come from earlier events of
    /// the batch where they can, and the records are written with multi-row inserts.
    async fn apply_all(
        &self,
        conn: &mut Conn<'_>,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let mut prev_hash = last_hash(conn).await?.unwrap_or(GENESIS_HASH);
        let mut statuses = HashMap::new();
        let mut records = Vec::with_capacity(events.len());
        for event in events {
            let record = record_for(conn, event, prev_hash, &statuses).await?;
            if let (Some(session), Some(status)) = (&record.session, &record.status) {
                statuses.insert(session.clone(), status.clone());
            }
            prev_hash = record.hash;
            records.push(record);
        }
        for chunk in records.chunks(INSERT_ROWS) {
            insert_records(
                conn,
                chunk,
                ProjectionError::database("inserting a batch of audit records"),
            )
            .await?;
        }
        Ok(())
    }

    async fn reset(&self, conn: &mut Conn<'_>) -> Result<(), ProjectionError> {
        sql("DELETE FROM audit_log")
            .execute(conn)
            .await
            .map_err(ProjectionError::database("emptying audit_log"))?;
        Ok(())
    }
}

/// The audit record of `event`, chained to `prev_hash`. `known` holds the latest
/// status of sessions whose events precede `event` but are not stored yet.
async fn record_for(
    conn: &mut Conn<'_>,
    event: &RecordedEvent,
    prev_hash: [u8; 32],
    known: &HashMap<String, String>,
) -> Result<AuditRecord, ProjectionError> {
    let category = event.stream.category();
    let (service, actor, session, status) = if category == mpc_events::stream::SESSION {
        let facts = session_facts(conn, event, known).await?;
        (
            COORDINATOR_SERVICE.to_owned(),
            facts.actor,
            Some(facts.session_id.to_string()),
            Some(facts.status.to_string()),
        )
    } else {
        (category.to_owned(), SYSTEM_ACTOR.to_owned(), None, None)
    };
    let mut record = AuditRecord {
        position: event.position,
        occurred_at: event.occurred_at,
        service,
        action: event.event_type.clone(),
        actor,
        resource: event.stream.as_str().to_owned(),
        session,
        status,
        event_id: event.event_id,
        correlation_id: event.correlation_id,
        stream_version: event.version,
        schema_version: event.schema_version,
        payload_sha256: Sha256::digest(&event.payload).into(),
        prev_hash,
        hash: [0; 32],
    };
    record.hash = record.compute_hash();
    Ok(record)
}

/// What a session event tells the audit log.
struct SessionFacts {
    session_id: SessionId,
    actor: String,
    status: SessionStatus,
}

async fn session_facts(
    conn: &mut Conn<'_>,
    event: &RecordedEvent,
    known: &HashMap<String, String>,
) -> Result<SessionFacts, ProjectionError> {
    let (session_id, decoded) = decode_session_event(event)?;
    let actor = match &decoded {
        SessionEvent::ParticipantJoined { party_id, .. }
        | SessionEvent::PartyCompleted { party_id, .. } => party_id.as_str().to_owned(),
        SessionEvent::SessionFailed {
            reason:
                FailureReason::InvalidSignature { reported_by }
                | FailureReason::PartyAborted { reported_by, .. },
            ..
        } => reported_by.as_str().to_owned(),
        _ => SYSTEM_ACTOR.to_owned(),
    };
    let status = match &decoded {
        SessionEvent::SessionCreated(_) => SessionStatus::Created,
        SessionEvent::SessionStarted { .. } => SessionStatus::InProgress,
        SessionEvent::SessionCompleted { .. } => SessionStatus::Completed,
        SessionEvent::SessionFailed { .. } => SessionStatus::Failed,
        SessionEvent::SessionExpired { .. } => SessionStatus::Expired,
        SessionEvent::ParticipantJoined { .. } | SessionEvent::PartyCompleted { .. } => {
            let previous = match known.get(&session_id.to_string()) {
                Some(status) => Some(status.clone()),
                None => stored_status(conn, session_id).await?,
            };
            let previous = previous.ok_or_else(|| {
                inconsistent(
                    event,
                    format!(
                        "{} for a session that was never created",
                        decoded.type_name()
                    ),
                )
            })?;
            parse_status(&previous).ok_or_else(|| {
                ProjectionError::InvalidRow(format!("audit_log.status = {previous}"))
            })?
        }
    };
    Ok(SessionFacts {
        session_id,
        actor,
        status,
    })
}

/// The status the latest stored record of `session_id` names, if any.
async fn stored_status(
    conn: &mut Conn<'_>,
    session_id: SessionId,
) -> Result<Option<String>, ProjectionError> {
    let row = sql("SELECT status FROM audit_log WHERE session = $1 ORDER BY position DESC LIMIT 1")
        .bind(session_id.to_string())
        .fetch_optional(conn)
        .await
        .map_err(ProjectionError::database(format!(
            "reading the status of session {session_id}"
        )))?;
    Ok(row
        .map(|row| column_of::<Option<String>>(&row, "status"))
        .transpose()?
        .flatten())
}

/// Rows per multi-row insert: 15 parameters each stays far below both backends'
/// parameter limits (SQLite 32 766, PostgreSQL 65 535).
const INSERT_ROWS: usize = 256;

/// Inserts `records` with one statement; a database error goes through `on_error`.
async fn insert_records(
    conn: &mut Conn<'_>,
    records: &[AuditRecord],
    on_error: impl FnOnce(sqlx::Error) -> ProjectionError,
) -> Result<(), ProjectionError> {
    const COLUMNS: usize = 15;
    let tuples = (0..records.len())
        .map(|row| {
            let placeholders = (1..=COLUMNS)
                .map(|column| format!("${}", row * COLUMNS + column))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({placeholders})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut statement = dynamic_sql(format!(
        "INSERT INTO audit_log (position, occurred_at, service, action, actor, resource, \
         session, status, event_id, correlation_id, stream_version, schema_version, \
         payload_sha256, prev_hash, hash) VALUES {tuples}"
    ));
    for r in records {
        statement = statement
            .bind(to_sql_int(r.position, "position")?)
            .bind(r.occurred_at.as_millis())
            .bind(&r.service)
            .bind(&r.action)
            .bind(&r.actor)
            .bind(&r.resource)
            .bind(r.session.as_deref())
            .bind(r.status.as_deref())
            .bind(r.event_id.to_string())
            .bind(r.correlation_id.to_string())
            .bind(to_sql_int(r.stream_version, "stream version")?)
            .bind(i64::from(r.schema_version))
            .bind(hex::encode(r.payload_sha256))
            .bind(hex::encode(r.prev_hash))
            .bind(hex::encode(r.hash));
    }
    statement.execute(conn).await.map(drop).map_err(on_error)
}

fn decode_record(row: &Row) -> Result<AuditRecord, ProjectionError> {
    let text = |column: &str| -> Result<String, ProjectionError> { column_of(row, column) };
    let int = |column: &str| -> Result<i64, ProjectionError> { column_of(row, column) };
    let uuid = |column: &str| -> Result<Uuid, ProjectionError> {
        let value = text(column)?;
        value
            .parse()
            .map_err(|_| ProjectionError::InvalidRow(format!("audit_log.{column} = {value}")))
    };
    let hash =
        |column: &str| -> Result<[u8; 32], ProjectionError> { parse_hash(column, &text(column)?) };
    let schema_version = int("schema_version")?;
    Ok(AuditRecord {
        position: from_sql_int(int("position")?, "position")?,
        occurred_at: Timestamp::from_millis(int("occurred_at")?),
        service: text("service")?,
        action: text("action")?,
        actor: text("actor")?,
        resource: text("resource")?,
        session: column_of(row, "session")?,
        status: column_of(row, "status")?,
        event_id: uuid("event_id")?,
        correlation_id: uuid("correlation_id")?,
        stream_version: from_sql_int(int("stream_version")?, "stream_version")?,
        schema_version: u16::try_from(schema_version).map_err(|_| {
            ProjectionError::InvalidRow(format!("audit_log.schema_version = {schema_version}"))
        })?,
        payload_sha256: hash("payload_sha256")?,
        prev_hash: hash("prev_hash")?,
        hash: hash("hash")?,
    })
}

fn column_of<T: Value>(row: &Row, column: &str) -> Result<T, ProjectionError> {
    row.get(column).map_err(ProjectionError::database(format!(
        "decoding audit_log.{column}"
    )))
}

fn parse_hash(column: &str, value: &str) -> Result<[u8; 32], ProjectionError> {
    let mut out = [0; 32];
    hex::decode_to_slice(value, &mut out)
        .map_err(|_| ProjectionError::InvalidRow(format!("audit_log.{column} = {value:?}")))?;
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AuditRecord {
        AuditRecord {
            position: 1,
            occurred_at: Timestamp::from_millis(5),
            service: "coordinator".into(),
            action: "SessionCreated".into(),
            actor: "system".into(),
            resource: "session-x".into(),
            session: Some(String::new()),
            status: None,
            event_id: Uuid::nil(),
            correlation_id: Uuid::nil(),
            stream_version: 1,
            schema_version: 1,
            payload_sha256: [0; 32],
            prev_hash: GENESIS_HASH,
            hash: [0; 32],
        }
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = record();
        let h = base.compute_hash();
        let variants: Vec<AuditRecord> = vec![
            AuditRecord {
                position: 2,
                ..base.clone()
            },
            AuditRecord {
                actor: "device".into(),
                ..base.clone()
            },
            AuditRecord {
                session: None,
                ..base.clone()
            },
            AuditRecord {
                status: Some(String::new()),
                ..base.clone()
            },
            AuditRecord {
                prev_hash: [1; 32],
                ..base.clone()
            },
            AuditRecord {
                payload_sha256: [1; 32],
                ..base.clone()
            },
            AuditRecord {
                schema_version: 2,
                ..base.clone()
            },
            AuditRecord {
                occurred_at: Timestamp::from_millis(6),
                ..base.clone()
            },
            AuditRecord {
                correlation_id: Uuid::max(),
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.compute_hash(), h, "{v:?}");
        }
        // The hash itself is not a hash input.
        let same = AuditRecord {
            hash: [9; 32],
            ..base
        };
        assert_eq!(same.compute_hash(), h);
    }

    #[test]
    fn length_prefixes_keep_field_boundaries() {
        let a = AuditRecord {
            service: "ab".into(),
            action: "c".into(),
            ..record()
        };
        let b = AuditRecord {
            service: "a".into(),
            action: "bc".into(),
            ..record()
        };
        assert_ne!(a.compute_hash(), b.compute_hash());
    }
}
