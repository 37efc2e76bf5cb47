-- +goose Up
-- The live queue reads the conversations started in its window. first_seen_at
-- never changes after a conversation's first decision, so this index costs
-- one entry per new conversation and leaves the score path's updates of
-- the row heap-only.
CREATE INDEX conversations_first_seen ON conversations (first_seen_at);

-- The team and owner the last decision routed the conversation to, kept
-- beside its tier so the queue filters by them without reading decisions.
-- Not indexed, so updating them stays heap-only too.
ALTER TABLE conversations
    ADD COLUMN route_team  text NOT NULL DEFAULT '',
    ADD COLUMN route_owner text NOT NULL DEFAULT '';
UPDATE conversations c
SET route_team = COALESCE(d.route->>'team', ''), route_owner = COALESCE(d.route->>'owner', '')
FROM decisions d WHERE d.id = c.last_decision_id;

-- +goose Down
ALTER TABLE conversations DROP COLUMN IF EXISTS route_owner, DROP COLUMN IF EXISTS route_team;
DROP INDEX IF EXISTS conversations_first_seen;
