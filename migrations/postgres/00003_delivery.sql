-- +goose Up
-- Where a team's alerts go. Webhook destinations sign every request with
-- their secret; during a rotation the previous secret stays valid until
-- previous_secret_expires_at and both signatures are sent. Secrets are kept
-- in clear because signing needs them; they are never logged or listed.
-- Deleted destinations are kept (deleted_at) so past deliveries still name
-- them.
CREATE TABLE destinations (
    id                         text PRIMARY KEY,         -- UUIDv7
    team                       text NOT NULL,
    kind                       text NOT NULL CHECK (kind IN ('feed', 'slack', 'webhook')),
    url                        text NOT NULL DEFAULT '',
    lead                       boolean NOT NULL DEFAULT false,  -- receives SLA escalations
    secret                     text NOT NULL DEFAULT '',
    previous_secret            text NOT NULL DEFAULT '',
    previous_secret_expires_at timestamptz,
    created_at                 timestamptz NOT NULL,
    deleted_at                 timestamptz
);
CREATE INDEX destinations_team ON destinations (team) WHERE deleted_at IS NULL;

-- The outbox: one row per (alert, destination), made in the transaction
-- that marks the alert dispatched. The id is sent as Hotlane-Delivery and
-- stays the same across retries. A worker claims a due row by moving
-- next_attempt_at past the lease and writing its claim token, so a worker
-- that dies mid-send leaves the row due again once the lease ends.
CREATE TABLE deliveries (
    id              text PRIMARY KEY,                 -- UUIDv7
    alert_id        text NOT NULL REFERENCES alerts (id),
    destination_id  text NOT NULL REFERENCES destinations (id),
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'canceled')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    claim           text NOT NULL DEFAULT '',
    last_status     integer NOT NULL DEFAULT 0,       -- HTTP status of the last attempt, 0 when none came back
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    UNIQUE (alert_id, destination_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_destination ON deliveries (destination_id) WHERE status = 'pending';

-- Every attempt, successful or not.
CREATE TABLE delivery_attempts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id text NOT NULL REFERENCES deliveries (id),
    attempt     integer NOT NULL,
    at          timestamptz NOT NULL,
    status_code integer NOT NULL DEFAULT 0,
    error       text NOT NULL DEFAULT '',
    duration_us bigint NOT NULL DEFAULT 0
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);

-- Conversations waiting for a first response past an alerting tier: the SLA
-- checker scans only these. The indexed columns change at most once per
-- conversation, so the score path's updates stay heap-only.
CREATE INDEX conversations_sla_open ON conversations (first_top_at)
    WHERE first_top_at IS NOT NULL AND first_response_at IS NULL AND sla_escalated_at IS NULL;

-- +goose Down
DROP INDEX IF EXISTS conversations_sla_open;
DROP TABLE IF EXISTS delivery_attempts;
DROP TABLE IF EXISTS deliveries;
DROP TABLE IF EXISTS destinations;
