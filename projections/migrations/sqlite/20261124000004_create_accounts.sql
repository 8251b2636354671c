-- The accounts read model: one row per `account-<id>` stream, with the state of the
-- key its keygen session produces.
CREATE TABLE accounts (
    account_id        TEXT    PRIMARY KEY,
    username          TEXT    NOT NULL UNIQUE,
    email             TEXT    NOT NULL UNIQUE,
    phone             TEXT    NULL,
    -- active, suspended, locked or recovering.
    status            TEXT    NOT NULL,
    -- The keygen session currently named by the account (opened or restarted).
    keygen_session_id TEXT    NOT NULL,
    -- pending, ready or failed: the outcome of that keygen session so far.
    key_status        TEXT    NOT NULL,
    -- Once the keygen session completed: the key's id and group public key
    -- (compressed SEC1, lowercase hex).
    key_id            TEXT    NULL,
    public_key_hex    TEXT    NULL,
    -- Milliseconds since the Unix epoch.
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    last_used_at      INTEGER NULL,
    -- Why the account was suspended, locked or put in recovery.
    status_reason     TEXT    NULL,
    -- Global position of the last event applied to this row.
    last_position     INTEGER NOT NULL
);

-- Serves the lookup of the account a keygen session belongs to.
CREATE INDEX accounts_by_keygen_session ON accounts (keygen_session_id);
-- Serves `list`: newest accounts first.
CREATE INDEX accounts_by_created ON accounts (created_at DESC, account_id DESC);

-- The share-location map: which party holds which of an account's three shares
-- (never share content).
CREATE TABLE account_shares (
    account_id           TEXT NOT NULL REFERENCES accounts (account_id),
    -- device, server or recovery.
    role                 TEXT NOT NULL,
    party_id             TEXT NOT NULL,
    -- The party's identity signing key, lowercase hex.
    identity_signing_hex TEXT NOT NULL,
    PRIMARY KEY (account_id, role)
);
