-- V2: snapshots, the latest one per name, with the log position they cover.
CREATE TABLE snapshots (
    name     TEXT PRIMARY KEY,
    position BIGINT NOT NULL CHECK (position >= 0),
    data     BYTEA NOT NULL,
    saved_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
