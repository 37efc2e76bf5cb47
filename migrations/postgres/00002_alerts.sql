-- +goose Up
-- Alerts: one row per alert outcome of a decision (fired, suppressed with
-- its reason, deduplicated), per review request of the exploration sample,
-- and per SLA escalation. Nothing held back is dropped silently.
CREATE TABLE alerts (
    id              text PRIMARY KEY,             -- UUIDv7 made by the caller
    kind            text NOT NULL CHECK (kind IN ('tier', 'review', 'sla')),
    conversation_id text NOT NULL,
    decision_id     text NOT NULL,
    channel         text NOT NULL,
    tier            text NOT NULL,
    score           double precision NOT NULL,
    team            text NOT NULL DEFAULT '',
    owner           text NOT NULL DEFAULT '',
    status          text NOT NULL CHECK (status IN ('fired', 'suppressed', 'deduplicated')),
    reason          text NOT NULL DEFAULT '',     -- cooldown, budget or duplicate when held back
    sample_rate     double precision,             -- review alerts: the probability it was sampled with
    created_at      timestamptz NOT NULL,
    dispatched_at   timestamptz                   -- when its deliveries were queued
);
CREATE INDEX alerts_conversation ON alerts (conversation_id, created_at);
CREATE INDEX alerts_created ON alerts (created_at);
CREATE INDEX alerts_team_fired ON alerts (team, created_at) WHERE status = 'fired';
CREATE INDEX alerts_undispatched ON alerts (created_at) WHERE dispatched_at IS NULL AND status = 'fired';

-- Alert state of a conversation, kept beside its tier so the score path
-- reads it with the row it already locks.
ALTER TABLE conversations
    ADD COLUMN alerted_tier      text NOT NULL DEFAULT '',  -- highest tier alerted so far
    ADD COLUMN last_alert_at     timestamptz,               -- for the cooldown
    ADD COLUMN first_top_at      timestamptz,               -- first urgent or high decision
    ADD COLUMN first_response_at timestamptz,               -- first human response (event)
    ADD COLUMN sla_escalated_at  timestamptz;               -- SLA escalation raised, once

-- +goose Down
ALTER TABLE conversations
    DROP COLUMN IF EXISTS alerted_tier,
    DROP COLUMN IF EXISTS last_alert_at,
    DROP COLUMN IF EXISTS first_top_at,
    DROP COLUMN IF EXISTS first_response_at,
    DROP COLUMN IF EXISTS sla_escalated_at;
DROP TABLE IF EXISTS alerts;
