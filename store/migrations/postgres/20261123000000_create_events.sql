-- The event log. `position` is the global order: an identity column, so a value is
-- never reused (a rolled-back append leaves a gap). Appends are serialised by a
-- transaction-level advisory lock (see src/postgres.rs), so positions also become
-- visible in order. `(stream, version)` is the optimistic-concurrency guard, and its
-- unique index also serves stream reads (`WHERE stream = $1 AND version >= $2 ORDER BY
-- version`) and the current-version lookup (`MAX(version) WHERE stream = $1`).
CREATE TABLE events (
    position       BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream         TEXT    NOT NULL,
    version        BIGINT  NOT NULL,
    event_id       UUID    NOT NULL,
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        BYTEA   NOT NULL,
    correlation_id UUID    NOT NULL,
    causation_id   UUID    NOT NULL,
    occurred_at    BIGINT  NOT NULL,
    CONSTRAINT events_event_id UNIQUE (event_id),
    CONSTRAINT events_stream_version UNIQUE (stream, version)
);
