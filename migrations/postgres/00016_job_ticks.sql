-- +goose Up
-- The scheduled ticks of a job that some process has claimed: of several
-- processes on one database whose schedules fire at the same tick, the one
-- that inserts the row runs the job, the others skip it.
CREATE TABLE job_ticks (
    job        TEXT NOT NULL,
    tick       TIMESTAMPTZ NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (job, tick)
);

-- +goose Down
DROP TABLE IF EXISTS job_ticks;
