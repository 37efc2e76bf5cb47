-- +goose Up
-- People who sign in to the web UI. role orders what they may do:
-- agent < lead < admin. team is the agent's own team, for "mine" views.
-- A disabled user keeps their row (labels name them) but cannot sign in.
CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL UNIQUE CHECK (email = lower(email) AND email <> ''),
    role          text NOT NULL CHECK (role IN ('agent', 'lead', 'admin')),
    team          text NOT NULL DEFAULT '',
    password_hash text NOT NULL,
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

-- Signed-in sessions. The cookie holds a random token; only its SHA-256 is
-- stored, so a copy of the table signs nobody in. A session ends at
-- expires_at (absolute) or when it has not been seen for the idle timeout.
CREATE TABLE sessions (
    token_hash  text PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- When a closed, converted or lost event last ended the conversation. It
-- is open when this is empty or older than its last decision.
ALTER TABLE conversations ADD COLUMN closed_at timestamptz;

-- +goose Down
ALTER TABLE conversations DROP COLUMN IF EXISTS closed_at;
DROP TABLE IF EXISTS sessions;
DROP TABLE IF EXISTS users;
