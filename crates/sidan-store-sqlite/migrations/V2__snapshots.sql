-- V2: snapshots, the latest one per name, with the log position they cover.
CREATE TABLE snapshots (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL CHECK (position >= 0),
    data     BLOB NOT NULL,
    saved_at TEXT NOT NULL
);
