-- +goose Up
-- Who changed what and when: every change of rules, models, thresholds,
-- destinations, API keys and users, with what it was before and after.
-- actor is "user:<email>", "apikey:<name>" or "cli"; before and after are JSON.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      DATETIME NOT NULL,
    actor   text NOT NULL,
    action  text NOT NULL,
    subject text NOT NULL,
    before  TEXT,
    after   TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);

-- +goose Down
DROP TABLE IF EXISTS audit_log;
