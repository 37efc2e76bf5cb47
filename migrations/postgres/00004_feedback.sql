-- +goose Up
-- Agents' verdicts on alerts: one row per alert and agent, so relabelling
-- by the same agent replaces the verdict and different agents are all kept.
-- conversation_id is copied from the alert so that training labels and KPIs
-- read a conversation's labels without a join.
CREATE TABLE alert_labels (
    alert_id        text NOT NULL,
    agent           text NOT NULL,
    conversation_id text NOT NULL,
    label           text NOT NULL CHECK (label IN ('useful', 'noise')),
    note            text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (alert_id, agent)
);
CREATE INDEX alert_labels_conversation ON alert_labels (conversation_id);

-- Outcome events reported by platforms and agents. tier is set for
-- tier_feedback (the tier the agent says is right), value for converted.
CREATE TABLE conversation_events (
    id              text PRIMARY KEY,             -- UUIDv7 made by the caller
    conversation_id text NOT NULL,
    type            text NOT NULL CHECK (type IN ('first_response', 'converted', 'lost', 'closed', 'tier_feedback')),
    at              timestamptz NOT NULL,         -- when it happened, as reported
    value           double precision,
    tier            text NOT NULL DEFAULT '' CHECK (tier IN ('', 'urgent', 'high', 'medium', 'low')),
    agent           text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL          -- when it was recorded
);
CREATE INDEX conversation_events_conversation ON conversation_events (conversation_id, at);
CREATE INDEX conversation_events_type_at ON conversation_events (type, at);

-- Idempotency keys of event writes, per API key: the request's fingerprint
-- and the event it wrote, so a retry answers the same event and a reused
-- key with another body is refused. Rows older than a day are purged.
CREATE TABLE idempotency_keys (
    api_key_id  bigint NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    event_id    text NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE IF EXISTS idempotency_keys;
DROP TABLE IF EXISTS conversation_events;
DROP TABLE IF EXISTS alert_labels;
