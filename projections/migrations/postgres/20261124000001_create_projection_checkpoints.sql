-- One row per projection: the global position of the last event it has applied.
-- Written in the same transaction as the read-model change, so a projection never
-- applies an event twice nor skips one. A batch locks its projection's row
-- (`SELECT … FOR UPDATE`), so two runners of one projection never interleave.
CREATE TABLE projection_checkpoints (
    name     TEXT   PRIMARY KEY,
    position BIGINT NOT NULL
);
