-- The session-status read model: one row per session stream.
-- Text is compared bytewise (`COLLATE "C"`), as in SQLite, so both order alike.
CREATE TABLE session_status (
    session_id      TEXT    COLLATE "C" PRIMARY KEY,
    kind            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    threshold_t     BIGINT  NOT NULL,
    threshold_n     BIGINT  NOT NULL,
    -- Party ids in protocol order, comma-separated (party ids never contain commas).
    participants    TEXT    NOT NULL,
    joined          BIGINT  NOT NULL,
    reported        BIGINT  NOT NULL,
    -- Signing sessions: the key they sign with.
    key_id          TEXT    NULL,
    -- Keygen: the group key once completed; signing: the signing key's public key.
    public_key_hex  TEXT    NULL,
    signature_r_hex TEXT    NULL,
    signature_s_hex TEXT    NULL,
    recovery_id     BIGINT  NULL,
    failure         TEXT    NULL,
    -- Milliseconds since the Unix epoch.
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    -- Global position of the last event applied to this row.
    last_position   BIGINT  NOT NULL
);

-- Serves `list`: newest sessions first.
CREATE INDEX session_status_by_created ON session_status (created_at DESC, session_id DESC);
