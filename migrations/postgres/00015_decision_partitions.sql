-- +goose Up
-- Decisions grow with traffic, millions a week on a busy installation, so
-- on PostgreSQL they are partitioned by month of created_at (when the
-- server recorded them, always about now): retention drops a whole month
-- at once, and the tuning job reads only the months of its window. The
-- server creates the months ahead and drops the expired ones
-- (--retain-decisions); this migration creates the months from 13 back
-- (or the oldest stored, if earlier) to 2 ahead, so a new database works
-- before the server has run. The default partition holds anything outside
-- the months created (a clock far off); nothing is refused.
--
-- A partition's primary key must hold the partition column, so it is
-- (id, created_at): decision ids are UUIDv7s the server makes, unique by
-- construction, and recording the same decision twice is still refused.
ALTER TABLE decisions RENAME TO decisions_unpartitioned;
ALTER TABLE decisions_unpartitioned RENAME CONSTRAINT decisions_pkey TO decisions_unpartitioned_pkey;
ALTER INDEX decisions_conversation_created RENAME TO decisions_unpartitioned_conversation_created;

-- The same columns (LIKE copies them with their NOT NULLs), keyed by id
-- and time.
CREATE TABLE decisions (
    LIKE decisions_unpartitioned INCLUDING DEFAULTS,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX decisions_conversation_created ON decisions (conversation_id, created_at);
CREATE TABLE decisions_default PARTITION OF decisions DEFAULT;

-- +goose StatementBegin
DO $$
DECLARE
    m    timestamptz;
    last timestamptz;
BEGIN
    -- Months are UTC months, whatever the session's zone.
    PERFORM set_config('TimeZone', 'UTC', true);
    last := date_trunc('month', now()) + interval '2 months';
    SELECT least(coalesce(date_trunc('month', min(created_at)), 'infinity'), date_trunc('month', now()) - interval '13 months')
      INTO m FROM decisions_unpartitioned;
    WHILE m <= last LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF decisions FOR VALUES FROM (%L) TO (%L)',
            'decisions_p' || to_char(m, 'YYYYMM'), m, m + interval '1 month');
        m := m + interval '1 month';
    END LOOP;
END
$$;
-- +goose StatementEnd

INSERT INTO decisions SELECT * FROM decisions_unpartitioned;
DROP TABLE decisions_unpartitioned;

-- +goose Down
ALTER TABLE decisions RENAME TO decisions_partitioned;
ALTER TABLE decisions_partitioned RENAME CONSTRAINT decisions_pkey TO decisions_partitioned_pkey;
ALTER INDEX decisions_conversation_created RENAME TO decisions_partitioned_conversation_created;
CREATE TABLE decisions (LIKE decisions_partitioned INCLUDING DEFAULTS, PRIMARY KEY (id));
CREATE INDEX decisions_conversation_created ON decisions (conversation_id, created_at);
INSERT INTO decisions SELECT * FROM decisions_partitioned;
DROP TABLE decisions_partitioned;
