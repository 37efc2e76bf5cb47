-- +goose Up
-- People who sign in to the web UI. role orders what they may do:
-- agent < lead < admin. team is the agent's own team, for "mine" views.
-- A disabled user keeps their row (labels name them) but cannot sign in.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL UNIQUE CHECK (email = lower(email) AND email <> ''),
    role          TEXT NOT NULL CHECK (role IN ('agent', 'lead', 'admin')),
    team          TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    disabled_at   DATETIME,
    created_at    DATETIME NOT NULL,
    updated_at    DATETIME NOT NULL
);

-- Signed-in sessions. The cookie holds a random token; only its SHA-256 is
-- stored, so a copy of the table signs nobody in. A session ends at
-- expires_at (absolute) or when it has not been seen for the idle timeout.
CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    created_at   DATETIME NOT NULL,
    last_seen_at DATETIME NOT NULL,
    expires_at   DATETIME NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- When a closed, converted or lost event last ended the conversation. It
-- is open when this is empty or older than its last decision.
ALTER TABLE conversations ADD COLUMN closed_at DATETIME;

-- +goose Down
ALTER TABLE conversations DROP COLUMN closed_at;
DROP TABLE IF EXISTS sessions;
DROP TABLE IF EXISTS users;
