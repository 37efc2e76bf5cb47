-- +goose Up
CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  DATETIME NOT NULL,
    revoked_at  DATETIME
);
CREATE UNIQUE INDEX api_keys_secret_hash ON api_keys (secret_hash);

-- Every published policy version is kept; the partial unique index allows
-- at most one live version.
CREATE TABLE policies (
    version      INTEGER PRIMARY KEY CHECK (version > 0),
    document     TEXT NOT NULL CHECK (json_valid(document)),
    source       TEXT NOT NULL DEFAULT '',
    author       TEXT NOT NULL DEFAULT '',
    note         TEXT NOT NULL DEFAULT '',
    live         BOOLEAN NOT NULL DEFAULT 0 CHECK (live IN (0, 1)),
    created_at   DATETIME NOT NULL,
    activated_at DATETIME
);
CREATE UNIQUE INDEX policies_one_live ON policies (live) WHERE live = 1;

-- Every trained model version is kept; at most one is active.
CREATE TABLE models (
    version      INTEGER PRIMARY KEY CHECK (version > 0),
    status       TEXT NOT NULL DEFAULT 'candidate'
                 CHECK (status IN ('candidate', 'active', 'retired')),
    body         TEXT NOT NULL CHECK (json_valid(body)),
    note         TEXT NOT NULL DEFAULT '',
    created_at   DATETIME NOT NULL,
    activated_at DATETIME
);
CREATE UNIQUE INDEX models_one_active ON models (status) WHERE status = 'active';

-- The current state of each conversation, updated with every decision.
CREATE TABLE conversations (
    id               TEXT PRIMARY KEY,
    channel          TEXT NOT NULL,
    tier             TEXT NOT NULL,
    score            REAL NOT NULL,
    last_decision_id TEXT NOT NULL,
    decisions        INTEGER NOT NULL,
    first_seen_at    DATETIME NOT NULL,
    updated_at       DATETIME NOT NULL
);
-- No index on updated_at: every decision updates its conversation.

-- One row per scoring decision; ids are UUIDv7 strings made by the caller.
-- conversation_id has no foreign key on purpose: decisions are written in
-- large batches on the hot path, and the check cost about an eighth of each
-- batch; the store always writes a decision and its conversation together.
CREATE TABLE decisions (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    channel         TEXT NOT NULL,
    signals         TEXT NOT NULL,
    message         TEXT,
    score           REAL NOT NULL,
    tier            TEXT NOT NULL,
    reasons         TEXT NOT NULL,
    route           TEXT NOT NULL,
    model_version   INTEGER,
    policy_version  INTEGER NOT NULL,
    latency_us      INTEGER NOT NULL,
    occurred_at     DATETIME NOT NULL,
    created_at      DATETIME NOT NULL
);
CREATE INDEX decisions_conversation_created ON decisions (conversation_id, created_at);

-- +goose Down
DROP TABLE IF EXISTS decisions;
DROP TABLE IF EXISTS conversations;
DROP TABLE IF EXISTS models;
DROP TABLE IF EXISTS policies;
DROP TABLE IF EXISTS api_keys;
