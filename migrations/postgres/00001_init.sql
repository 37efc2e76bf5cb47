-- +goose Up
CREATE TABLE api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    prefix      text NOT NULL,
    secret_hash text NOT NULL,
    scopes      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE UNIQUE INDEX api_keys_secret_hash ON api_keys (secret_hash);

-- Every published policy version is kept; the partial unique index allows
-- at most one live version.
CREATE TABLE policies (
    version      integer PRIMARY KEY CHECK (version > 0),
    document     json NOT NULL,
    source       text NOT NULL DEFAULT '',
    author       text NOT NULL DEFAULT '',
    note         text NOT NULL DEFAULT '',
    live         boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz
);
CREATE UNIQUE INDEX policies_one_live ON policies (live) WHERE live;

-- Every trained model version is kept; at most one is active.
CREATE TABLE models (
    version      integer PRIMARY KEY CHECK (version > 0),
    status       text NOT NULL DEFAULT 'candidate'
                 CHECK (status IN ('candidate', 'active', 'retired')),
    body         json NOT NULL,
    note         text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz
);
CREATE UNIQUE INDEX models_one_active ON models (status) WHERE status = 'active';

-- The current state of each conversation, updated with every decision.
CREATE TABLE conversations (
    id               text PRIMARY KEY,
    channel          text NOT NULL,
    tier             text NOT NULL,
    score            double precision NOT NULL,
    last_decision_id text NOT NULL,
    decisions        bigint NOT NULL,
    first_seen_at    timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
) WITH (fillfactor = 80);
-- No index on updated_at or tier: every decision updates its conversation,
-- and an indexed column would turn those heap-only (HOT) updates into index
-- writes on the hot path. Room left in each page (fillfactor) keeps the
-- updates on the same page.

-- One row per scoring decision; ids are UUIDv7 strings made by the caller.
-- conversation_id has no foreign key on purpose: decisions are written in
-- large batches on the hot path, and the check cost about an eighth of each
-- batch; the store always writes a decision and its conversation together.
CREATE TABLE decisions (
    id              text PRIMARY KEY,
    conversation_id text NOT NULL,
    channel         text NOT NULL,
    signals         jsonb NOT NULL,
    message         text,
    score           double precision NOT NULL,
    tier            text NOT NULL,
    reasons         jsonb NOT NULL,
    route           jsonb NOT NULL,
    model_version   integer,
    policy_version  integer NOT NULL,
    latency_us      bigint NOT NULL,
    occurred_at     timestamptz NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX decisions_conversation_created ON decisions (conversation_id, created_at);

-- +goose Down
DROP TABLE IF EXISTS decisions;
DROP TABLE IF EXISTS conversations;
DROP TABLE IF EXISTS models;
DROP TABLE IF EXISTS policies;
DROP TABLE IF EXISTS api_keys;
