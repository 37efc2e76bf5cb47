-- +goose Up
-- What the model registry keeps beside each model's body (its encoder and
-- weights): the trainer, the training window, the holdout metrics, and the
-- tuning report that produced it; and when a rollback retired it.
ALTER TABLE models ADD COLUMN trainer TEXT NOT NULL DEFAULT '';
ALTER TABLE models ADD COLUMN window_start DATETIME;
ALTER TABLE models ADD COLUMN window_end DATETIME;
ALTER TABLE models ADD COLUMN metrics TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metrics));
ALTER TABLE models ADD COLUMN report_id TEXT NOT NULL DEFAULT '';
ALTER TABLE models ADD COLUMN rolled_back_at DATETIME;

-- Every run of a background job such as the weekly tuning: when it started
-- and ended, how, and why it failed. A run still marked running after its
-- process died is closed as interrupted by the next run of the job.
CREATE TABLE job_runs (
    id          TEXT PRIMARY KEY,
    job         TEXT NOT NULL,
    trigger     TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at  DATETIME NOT NULL,
    finished_at DATETIME,
    error       TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(detail))
);
CREATE INDEX job_runs_job_started ON job_runs (job, started_at);

-- Tuning reports: the whole report as JSON, with the columns lists and
-- links need.
CREATE TABLE reports (
    id              TEXT PRIMARY KEY,
    run_id          TEXT NOT NULL,
    as_of           DATETIME NOT NULL,
    candidate_model INTEGER,
    promoted        BOOLEAN NOT NULL DEFAULT false,
    applied_policy  INTEGER,
    body            TEXT NOT NULL CHECK (json_valid(body)),
    created_at      DATETIME NOT NULL
);
CREATE INDEX reports_created ON reports (created_at);

-- Leases of background jobs that must run once at a time. PostgreSQL
-- processes use advisory locks instead; SQLite has none, so a process
-- takes a row here, renews it while the job runs, and a crashed holder's
-- lease simply expires.
CREATE TABLE job_locks (
    job        TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at DATETIME NOT NULL
);

-- +goose Down
DROP TABLE IF EXISTS job_locks;
DROP TABLE IF EXISTS reports;
DROP TABLE IF EXISTS job_runs;
ALTER TABLE models DROP COLUMN rolled_back_at;
ALTER TABLE models DROP COLUMN report_id;
ALTER TABLE models DROP COLUMN metrics;
ALTER TABLE models DROP COLUMN window_end;
ALTER TABLE models DROP COLUMN window_start;
ALTER TABLE models DROP COLUMN trainer;
