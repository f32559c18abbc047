-- V3: idempotency keys of commands, written in the same transaction as the
-- events of their command, so a key is kept exactly when its events are.
CREATE TABLE command_keys (
    principal   TEXT COLLATE "C" NOT NULL,  -- who sent the command (ordered by bytes, as in Rust)
    id          TEXT COLLATE "C" NOT NULL,  -- the sender's id for it
    fingerprint BYTEA NOT NULL CHECK (length(fingerprint) = 32),  -- SHA-256 of the command's JSON
    at          TEXT COLLATE "C" NOT NULL,  -- when it was decided: RFC 3339, UTC, nine fractional digits (sorts as text)
    first       BIGINT NOT NULL CHECK (first >= 1),     -- the position of its first event
    count       BIGINT NOT NULL CHECK (count >= 0),     -- how many events it caused
    position    BIGINT NOT NULL CHECK (position >= 0),  -- the receipt's position (its append's last event)
    PRIMARY KEY (principal, id)
);

-- Loading recent keys at start and purging old ones go by time.
CREATE INDEX command_keys_at ON command_keys (at);
