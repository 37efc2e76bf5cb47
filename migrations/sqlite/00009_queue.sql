-- +goose Up
-- The live queue reads the conversations started in its window. first_seen_at
-- never changes after a conversation's first decision, so this index costs
-- one entry per new conversation.
CREATE INDEX conversations_first_seen ON conversations (first_seen_at);

-- The team and owner the last decision routed the conversation to, kept
-- beside its tier so the queue filters by them without reading decisions.
ALTER TABLE conversations ADD COLUMN route_team TEXT NOT NULL DEFAULT '';
ALTER TABLE conversations ADD COLUMN route_owner TEXT NOT NULL DEFAULT '';
UPDATE conversations SET
    route_team = COALESCE((SELECT json_extract(d.route, '$.team') FROM decisions d WHERE d.id = conversations.last_decision_id), ''),
    route_owner = COALESCE((SELECT json_extract(d.route, '$.owner') FROM decisions d WHERE d.id = conversations.last_decision_id), '');

-- +goose Down
ALTER TABLE conversations DROP COLUMN route_owner;
ALTER TABLE conversations DROP COLUMN route_team;
DROP INDEX IF EXISTS conversations_first_seen;
