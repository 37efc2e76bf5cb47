-- +goose Up
-- The Chatwoot integration's memory of each Chatwoot conversation: what
-- its webhooks said that a single payload does not carry (how many
-- messages the visitor sent, whether the contact came back), and what
-- Hotlane last asked Chatwoot to show, so that the conversation_updated
-- its own write causes is recognised and not written again.
CREATE TABLE chatwoot_conversations (
    conversation_id TEXT PRIMARY KEY,                 -- Hotlane's id: chatwoot-<account>-<display id>
    account_id      INTEGER NOT NULL,
    display_id      INTEGER NOT NULL,
    contact_id      INTEGER NOT NULL DEFAULT 0,
    returning_visitor BOOLEAN NOT NULL DEFAULT 0,   -- the contact was here before
    messages        INTEGER NOT NULL DEFAULT 0,       -- incoming messages seen
    last_message_id INTEGER NOT NULL DEFAULT 0,
    scored_message_id INTEGER NOT NULL DEFAULT 0,     -- newest visitor message a decision has scored
    last_message    TEXT,                             -- latest incoming text, only with --store-messages
    priority        TEXT NOT NULL DEFAULT '',         -- last priority Hotlane asked for ('-': someone else's since)
    team_id         INTEGER NOT NULL DEFAULT 0,        -- last team Hotlane asked for (-1: someone else's since)
    assignee_id     INTEGER NOT NULL DEFAULT 0,        -- last agent Hotlane asked for (-1: someone else's since)
    noted_tier      TEXT NOT NULL DEFAULT '',         -- highest tier a private note was written for
    attr_tier       TEXT NOT NULL DEFAULT '',         -- hotlane_tier as last written
    attr_score      TEXT NOT NULL DEFAULT '',         -- hotlane_score as last written
    created_at      DATETIME NOT NULL,
    updated_at      DATETIME NOT NULL
);
CREATE INDEX chatwoot_conversations_contact ON chatwoot_conversations (contact_id, display_id) WHERE contact_id <> 0;

-- The write-back outbox: each row is one call to Chatwoot's API, sent
-- and retried by the writer. A newer write of the same kind to the same
-- conversation supersedes one still pending, so Chatwoot ends with the
-- latest state whatever failed in between.
CREATE TABLE chatwoot_writes (
    id              TEXT PRIMARY KEY,                 -- UUIDv7
    conversation_id TEXT NOT NULL,
    account_id      INTEGER NOT NULL,
    display_id      INTEGER NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('priority', 'team', 'assignee', 'note', 'attributes')),
    lane            TEXT NOT NULL,                   -- writes of one lane go out one at a time, in order
    value           TEXT NOT NULL DEFAULT '',        -- the priority, team id or agent id asked for
    body            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'superseded')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DATETIME NOT NULL,
    claim           TEXT NOT NULL DEFAULT '',
    last_status     INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    created_at      DATETIME NOT NULL,
    delivered_at    DATETIME
);
CREATE INDEX chatwoot_writes_due ON chatwoot_writes (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX chatwoot_writes_conversation ON chatwoot_writes (conversation_id, created_at);
CREATE INDEX chatwoot_writes_lane ON chatwoot_writes (conversation_id, lane, created_at, id) WHERE status = 'pending';

-- Webhook deliveries already taken (X-Chatwoot-Delivery), kept a day so
-- a repeated delivery is ignored.
CREATE TABLE chatwoot_receipts (
    delivery_id TEXT PRIMARY KEY,
    received_at DATETIME NOT NULL
);
CREATE INDEX chatwoot_receipts_received ON chatwoot_receipts (received_at);

-- +goose Down
DROP TABLE IF EXISTS chatwoot_receipts;
DROP TABLE IF EXISTS chatwoot_writes;
DROP TABLE IF EXISTS chatwoot_conversations;
