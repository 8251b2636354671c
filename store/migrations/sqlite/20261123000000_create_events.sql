-- The event log. `position` is the global order (never reused: AUTOINCREMENT);
-- `(stream, version)` is the optimistic-concurrency guard, and its unique index also
-- serves stream reads (`WHERE stream = ? AND version >= ? ORDER BY version`).
CREATE TABLE events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    stream         TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    event_id       BLOB    NOT NULL UNIQUE,
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        BLOB    NOT NULL,
    correlation_id BLOB    NOT NULL,
    causation_id   BLOB    NOT NULL,
    occurred_at    INTEGER NOT NULL,
    CONSTRAINT events_stream_version UNIQUE (stream, version)
);
