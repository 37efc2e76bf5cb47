-- +goose Up
-- Who changed what and when: every change of rules, models, thresholds,
-- destinations, API keys and users, with what it was before and after.
-- actor is "user:<email>", "apikey:<name>" or "cli"; before and after are JSON.
CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text NOT NULL,
    action  text NOT NULL,
    subject text NOT NULL,
    before  jsonb,
    after   jsonb
);
CREATE INDEX audit_log_at ON audit_log (at);

-- +goose Down
DROP TABLE IF EXISTS audit_log;
