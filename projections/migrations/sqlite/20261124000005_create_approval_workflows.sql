-- The approval-workflow read model: one row per `approval-<id>` stream, with the
-- outcome of its latest signing session.
CREATE TABLE approval_workflows (
    workflow_id        TEXT    PRIMARY KEY,
    title              TEXT    NOT NULL,
    -- The key to sign with; its holders are the approvers.
    key_id             TEXT    NOT NULL,
    -- SHA-256 of the payload, lowercase hex.
    payload_hash_hex   TEXT    NOT NULL,
    threshold_t        INTEGER NOT NULL,
    approvers_n        INTEGER NOT NULL,
    -- pending, approved, signing, rejected, expired, signed or signing_failed.
    status             TEXT    NOT NULL,
    approvals          INTEGER NOT NULL,
    rejections         INTEGER NOT NULL,
    -- The latest signing session requested for the workflow.
    signing_session_id TEXT    NULL,
    -- The signature once that session completed.
    signature_r_hex    TEXT    NULL,
    signature_s_hex    TEXT    NULL,
    recovery_id        INTEGER NULL,
    -- Milliseconds since the Unix epoch.
    expires_at         INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    -- Global position of the last event applied to this row.
    last_position      INTEGER NOT NULL
);

-- Serves the lookup of the workflow a signing session belongs to.
CREATE INDEX approval_workflows_by_signing_session ON approval_workflows (signing_session_id);
-- Serves `list`: newest workflows first.
CREATE INDEX approval_workflows_by_created ON approval_workflows (created_at DESC, workflow_id DESC);

-- One row per holder of the workflow's key, with its decision once made.
CREATE TABLE workflow_approvers (
    workflow_id   TEXT    NOT NULL REFERENCES approval_workflows (workflow_id),
    party_id      TEXT    NOT NULL,
    -- approve or reject; NULL until decided.
    decision      TEXT    NULL,
    -- Milliseconds since the Unix epoch.
    decided_at    INTEGER NULL,
    -- The approver's identity signature over the decision, lowercase hex.
    signature_hex TEXT    NULL,
    PRIMARY KEY (workflow_id, party_id)
);
