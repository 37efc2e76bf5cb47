-- +goose Up
-- Where a team's alerts go; see the PostgreSQL migration for the design.
CREATE TABLE destinations (
    id                         TEXT PRIMARY KEY,
    team                       TEXT NOT NULL,
    kind                       TEXT NOT NULL CHECK (kind IN ('feed', 'slack', 'webhook')),
    url                        TEXT NOT NULL DEFAULT '',
    lead                       BOOLEAN NOT NULL DEFAULT false,
    secret                     TEXT NOT NULL DEFAULT '',
    previous_secret            TEXT NOT NULL DEFAULT '',
    previous_secret_expires_at DATETIME,
    created_at                 DATETIME NOT NULL,
    deleted_at                 DATETIME
);
CREATE INDEX destinations_team ON destinations (team) WHERE deleted_at IS NULL;

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    alert_id        TEXT NOT NULL REFERENCES alerts (id),
    destination_id  TEXT NOT NULL REFERENCES destinations (id),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'canceled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DATETIME NOT NULL,
    claim           TEXT NOT NULL DEFAULT '',
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      DATETIME NOT NULL,
    delivered_at    DATETIME,
    UNIQUE (alert_id, destination_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_destination ON deliveries (destination_id) WHERE status = 'pending';

CREATE TABLE delivery_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    attempt     INTEGER NOT NULL,
    at          DATETIME NOT NULL,
    status_code INTEGER NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT '',
    duration_us INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);

CREATE INDEX conversations_sla_open ON conversations (first_top_at)
    WHERE first_top_at IS NOT NULL AND first_response_at IS NULL AND sla_escalated_at IS NULL;

-- +goose Down
DROP INDEX IF EXISTS conversations_sla_open;
DROP TABLE IF EXISTS delivery_attempts;
DROP TABLE IF EXISTS deliveries;
DROP TABLE IF EXISTS destinations;
