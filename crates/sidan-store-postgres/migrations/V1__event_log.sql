-- V1: the event log, each stream's version, the head of the log, the outbox mark.

-- Each stream's version: the seq of its last event.
CREATE TABLE streams (
    stream  TEXT PRIMARY KEY,
    version BIGINT NOT NULL CHECK (version >= 1)
);

-- The log. `position` is the global order, from 1, without gaps, in commit order.
CREATE TABLE events (
    position BIGINT PRIMARY KEY,
    stream   TEXT NOT NULL,
    seq      BIGINT NOT NULL CHECK (seq >= 1),
    event_id TEXT NOT NULL UNIQUE,  -- "<stream>#<seq>", the bus's deduplication key
    kind     TEXT NOT NULL,         -- the event's type, for people and ad-hoc queries
    at       TEXT NOT NULL,         -- RFC 3339, UTC, exact to the nanosecond
    body     JSON NOT NULL,         -- the event, kept as written
    UNIQUE (stream, seq)
);

-- The last position given out. Appends lock this row for their whole
-- transaction, so positions are gapless and commit in order: a reader never
-- sees position n + 1 before n (a sequence would give neither).
CREATE TABLE log_head (
    id       INT PRIMARY KEY CHECK (id = 1),
    position BIGINT NOT NULL CHECK (position >= 0)
);
INSERT INTO log_head (id, position) VALUES (1, 0);

-- The outbox: every event after `published` is still to be sent to the bus.
CREATE TABLE outbox (
    id        INT PRIMARY KEY CHECK (id = 1),
    published BIGINT NOT NULL CHECK (published >= 0)
);
INSERT INTO outbox (id, published) VALUES (1, 0);
