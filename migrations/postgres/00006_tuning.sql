-- +goose Up
-- What the model registry keeps beside each model's body (its encoder and
-- weights): the trainer, the training window, the holdout metrics, and the
-- tuning report that produced it; and when a rollback retired it.
ALTER TABLE models
    ADD COLUMN trainer      text NOT NULL DEFAULT '',
    ADD COLUMN window_start timestamptz,
    ADD COLUMN window_end   timestamptz,
    ADD COLUMN metrics      json NOT NULL DEFAULT '{}',
    ADD COLUMN report_id    text NOT NULL DEFAULT '',
    ADD COLUMN rolled_back_at timestamptz;  -- retired by a rollback: rollbacks skip it

-- Every run of a background job such as the weekly tuning: when it started
-- and ended, how, and why it failed. A run still marked running after its
-- process died is closed as interrupted by the next run of the job.
CREATE TABLE job_runs (
    id          text PRIMARY KEY,                 -- UUIDv7
    job         text NOT NULL,
    trigger     text NOT NULL DEFAULT '',         -- schedule, api, cli
    status      text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    error       text NOT NULL DEFAULT '',
    detail      json NOT NULL DEFAULT '{}'
);
CREATE INDEX job_runs_job_started ON job_runs (job, started_at);

-- Tuning reports: the whole report as JSON, with the columns lists and
-- links need.
CREATE TABLE reports (
    id              text PRIMARY KEY,             -- UUIDv7
    run_id          text NOT NULL,
    as_of           timestamptz NOT NULL,
    candidate_model integer,
    promoted        boolean NOT NULL DEFAULT false,
    applied_policy  integer,                      -- the policy version its proposal was applied as
    body            json NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX reports_created ON reports (created_at);

-- Leases of background jobs that must run once at a time. PostgreSQL
-- processes use advisory locks instead; SQLite has none, so a process
-- takes a row here, renews it while the job runs, and a crashed holder's
-- lease simply expires.
CREATE TABLE job_locks (
    job        text PRIMARY KEY,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE IF EXISTS job_locks;
DROP TABLE IF EXISTS reports;
DROP TABLE IF EXISTS job_runs;
ALTER TABLE models
    DROP COLUMN IF EXISTS trainer,
    DROP COLUMN IF EXISTS window_start,
    DROP COLUMN IF EXISTS window_end,
    DROP COLUMN IF EXISTS metrics,
    DROP COLUMN IF EXISTS report_id,
    DROP COLUMN IF EXISTS rolled_back_at;
