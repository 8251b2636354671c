-- Recovery sessions of accounts (the seed's `account_recovery_sessions`): one row
-- per `RecoveryRequested` of an `account-<id>` stream.
CREATE TABLE account_recovery_sessions (
    -- The refresh session that carries the recovery out.
    session_id                      TEXT    PRIMARY KEY,
    account_id                      TEXT    NOT NULL REFERENCES accounts (account_id),
    -- device_lost or share_rotation.
    kind                            TEXT    NOT NULL,
    -- requested, in_progress, completed or failed.
    status                          TEXT    NOT NULL,
    -- device_lost only: the new device's identity signing key, lowercase hex.
    new_device_identity_signing_hex TEXT    NULL,
    -- Why the recovery failed.
    failure                         TEXT    NULL,
    -- Milliseconds since the Unix epoch.
    requested_at                    INTEGER NOT NULL,
    updated_at                      INTEGER NOT NULL,
    -- Global position of the last event applied to this row.
    last_position                   INTEGER NOT NULL
);

-- Serves `recoveries`: an account's sessions, oldest first.
CREATE INDEX account_recovery_sessions_by_account
    ON account_recovery_sessions (account_id, requested_at, session_id);
