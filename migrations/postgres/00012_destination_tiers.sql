-- +goose Up
-- A destination can take only some tiers' alerts (for example urgent to
-- Slack, the rest to the in-app feed only): a comma-separated list of
-- tiers, empty for every tier.
ALTER TABLE destinations ADD COLUMN tiers TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE destinations DROP COLUMN tiers;
