-- V1: the event log, each stream's version, the outbox mark.

-- Which migrations ran, for people; the version itself is PRAGMA user_version.
CREATE TABLE schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
);

-- Each stream's version: the seq of its last event.
CREATE TABLE streams (
    stream  TEXT PRIMARY KEY,
    version INTEGER NOT NULL CHECK (version >= 1)
) WITHOUT ROWID;

-- The log. `position` is the global order, from 1, without gaps.
CREATE TABLE events (
    position INTEGER PRIMARY KEY,
    stream   TEXT NOT NULL,
    seq      INTEGER NOT NULL CHECK (seq >= 1),
    event_id TEXT NOT NULL UNIQUE,  -- "<stream>#<seq>", the bus's deduplication key
    kind     TEXT NOT NULL,         -- the event's type, for people and ad-hoc queries
    at       TEXT NOT NULL,         -- RFC 3339, UTC, exact to the nanosecond
    body     TEXT NOT NULL,         -- the event as JSON
    UNIQUE (stream, seq)
);

-- The outbox: every event after `published` is still to be sent to the bus.
CREATE TABLE outbox (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    published INTEGER NOT NULL CHECK (published >= 0)
);
INSERT INTO outbox (id, published) VALUES (1, 0);
