-- The session-status read model: one row per session stream.
CREATE TABLE session_status (
    session_id      TEXT    PRIMARY KEY,
    kind            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    threshold_t     INTEGER NOT NULL,
    threshold_n     INTEGER NOT NULL,
    -- Party ids in protocol order, comma-separated (party ids never contain commas).
    participants    TEXT    NOT NULL,
    joined          INTEGER NOT NULL,
    reported        INTEGER NOT NULL,
    -- Signing sessions: the key they sign with.
    key_id          TEXT    NULL,
    -- Keygen: the group key once completed; signing: the signing key's public key.
    public_key_hex  TEXT    NULL,
    signature_r_hex TEXT    NULL,
    signature_s_hex TEXT    NULL,
    recovery_id     INTEGER NULL,
    failure         TEXT    NULL,
    -- Milliseconds since the Unix epoch.
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    -- Global position of the last event applied to this row.
    last_position   INTEGER NOT NULL
);

-- Serves `list`: newest sessions first.
CREATE INDEX session_status_by_created ON session_status (created_at DESC, session_id DESC);
