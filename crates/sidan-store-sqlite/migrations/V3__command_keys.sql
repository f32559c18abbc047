-- V3: idempotency keys of commands, written in the same transaction as the
-- events of their command, so a key is kept exactly when its events are.
CREATE TABLE command_keys (
    principal   TEXT NOT NULL,     -- who sent the command
    id          TEXT NOT NULL,     -- the sender's id for it
    fingerprint BLOB NOT NULL CHECK (length(fingerprint) = 32),  -- SHA-256 of the command's JSON
    at          TEXT NOT NULL,     -- when it was decided: RFC 3339, UTC, nine fractional digits (sorts as text)
    first       INTEGER NOT NULL CHECK (first >= 1),     -- the position of its first event
    count       INTEGER NOT NULL CHECK (count >= 0),     -- how many events it caused
    position    INTEGER NOT NULL CHECK (position >= 0),  -- the receipt's position (its append's last event)
    PRIMARY KEY (principal, id)
) WITHOUT ROWID;

-- Loading recent keys at start and purging old ones go by time.
CREATE INDEX command_keys_at ON command_keys (at);
