-- +goose Up
-- Alerts: one row per alert outcome of a decision (fired, suppressed with
-- its reason, deduplicated), per review request of the exploration sample,
-- and per SLA escalation. Nothing held back is dropped silently.
CREATE TABLE alerts (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('tier', 'review', 'sla')),
    conversation_id TEXT NOT NULL,
    decision_id     TEXT NOT NULL,
    channel         TEXT NOT NULL,
    tier            TEXT NOT NULL,
    score           REAL NOT NULL,
    team            TEXT NOT NULL DEFAULT '',
    owner           TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL CHECK (status IN ('fired', 'suppressed', 'deduplicated')),
    reason          TEXT NOT NULL DEFAULT '',
    sample_rate     REAL,
    created_at      DATETIME NOT NULL,
    dispatched_at   DATETIME
);
CREATE INDEX alerts_conversation ON alerts (conversation_id, created_at);
CREATE INDEX alerts_created ON alerts (created_at);
CREATE INDEX alerts_team_fired ON alerts (team, created_at) WHERE status = 'fired';
CREATE INDEX alerts_undispatched ON alerts (created_at) WHERE dispatched_at IS NULL AND status = 'fired';

ALTER TABLE conversations ADD COLUMN alerted_tier TEXT NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN last_alert_at DATETIME;
ALTER TABLE conversations ADD COLUMN first_top_at DATETIME;
ALTER TABLE conversations ADD COLUMN first_response_at DATETIME;
ALTER TABLE conversations ADD COLUMN sla_escalated_at DATETIME;

-- +goose Down
ALTER TABLE conversations DROP COLUMN alerted_tier;
ALTER TABLE conversations DROP COLUMN last_alert_at;
ALTER TABLE conversations DROP COLUMN first_top_at;
ALTER TABLE conversations DROP COLUMN first_response_at;
ALTER TABLE conversations DROP COLUMN sla_escalated_at;
DROP TABLE IF EXISTS alerts;
