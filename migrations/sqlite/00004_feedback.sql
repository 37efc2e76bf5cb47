-- +goose Up
-- Agents' verdicts on alerts: one row per alert and agent, so relabelling
-- by the same agent replaces the verdict and different agents are all kept.
CREATE TABLE alert_labels (
    alert_id        TEXT NOT NULL,
    agent           TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    label           TEXT NOT NULL CHECK (label IN ('useful', 'noise')),
    note            TEXT NOT NULL DEFAULT '',
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL,
    PRIMARY KEY (alert_id, agent)
);
CREATE INDEX alert_labels_conversation ON alert_labels (conversation_id);

-- Outcome events reported by platforms and agents.
CREATE TABLE conversation_events (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    type            TEXT NOT NULL CHECK (type IN ('first_response', 'converted', 'lost', 'closed', 'tier_feedback')),
    at              DATETIME NOT NULL,
    value           REAL,
    tier            TEXT NOT NULL DEFAULT '' CHECK (tier IN ('', 'urgent', 'high', 'medium', 'low')),
    agent           TEXT NOT NULL DEFAULT '',
    created_at      DATETIME NOT NULL
);
CREATE INDEX conversation_events_conversation ON conversation_events (conversation_id, at);
CREATE INDEX conversation_events_type_at ON conversation_events (type, at);

-- Idempotency keys of event writes, per API key.
CREATE TABLE idempotency_keys (
    api_key_id  INTEGER NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    created_at  DATETIME NOT NULL,
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE IF EXISTS idempotency_keys;
DROP TABLE IF EXISTS conversation_events;
DROP TABLE IF EXISTS alert_labels;
