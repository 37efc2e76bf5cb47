-- +goose Up
-- When a model was first made active, kept when rollbacks and promotions
-- later move activated_at: the KPI baseline is the weeks before the first
-- promotion.
ALTER TABLE models ADD COLUMN first_activated_at TIMESTAMPTZ;
UPDATE models SET first_activated_at = activated_at;

-- +goose Down
ALTER TABLE models DROP COLUMN first_activated_at;
