-- The audit-log read model: one row per stored event, in global-position order,
-- hash-chained (see `mpc_projections::audit` for the exact chain definition).
CREATE TABLE audit_log (
    -- Global position of the event this record describes.
    position        BIGINT  PRIMARY KEY,
    -- Milliseconds since the Unix epoch.
    occurred_at     BIGINT  NOT NULL,
    -- `coordinator` for session streams, else the stream category.
    service         TEXT    NOT NULL,
    -- The event type.
    action          TEXT    NOT NULL,
    -- The party that caused the event, or `system`.
    actor           TEXT    NOT NULL,
    -- The stream name.
    resource        TEXT    NOT NULL,
    -- Session streams: the session id.
    session         TEXT    NULL,
    -- Session streams: the session status after the event.
    status          TEXT    NULL,
    event_id        TEXT    NOT NULL,
    correlation_id  TEXT    NOT NULL,
    -- The event's version within its stream and its payload's schema version.
    stream_version  BIGINT  NOT NULL,
    schema_version  BIGINT  NOT NULL,
    -- SHA-256 of the stored payload bytes, lowercase hex.
    payload_sha256  TEXT    NOT NULL,
    -- The previous record's hash (64 zeros for the first record), lowercase hex.
    prev_hash       TEXT    NOT NULL,
    -- This record's chain hash, lowercase hex.
    hash            TEXT    NOT NULL
);

-- Serves the status lookup of a session's previous record.
CREATE INDEX audit_log_by_session ON audit_log (session, position);
