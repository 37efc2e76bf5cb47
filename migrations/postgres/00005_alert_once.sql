-- +goose Up
-- A conversation fires at most one tier alert per tier (its alerted tier
-- only rises) and gets at most one review request. The score path ensures
-- both by locking the conversation's row, placeholder included, before it
-- reads the alert state; these indexes are the backstop, so a race that
-- gets past the lock fails its batch instead of paging twice.
--
-- Databases written before the lock covered new conversations may hold
-- duplicates: all but the first are marked deduplicated first, as the score
-- path would have marked them.
UPDATE alerts SET status = 'deduplicated', reason = 'duplicate'
WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY conversation_id, tier ORDER BY created_at, id) AS n
        FROM alerts WHERE kind = 'tier' AND status = 'fired'
    ) d WHERE n > 1
);
UPDATE alerts SET status = 'deduplicated', reason = 'duplicate'
WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY conversation_id ORDER BY created_at, id) AS n
        FROM alerts WHERE kind = 'review' AND status = 'fired'
    ) d WHERE n > 1
);
CREATE UNIQUE INDEX alerts_tier_once ON alerts (conversation_id, tier) WHERE status = 'fired' AND kind = 'tier';
CREATE UNIQUE INDEX alerts_review_once ON alerts (conversation_id) WHERE status = 'fired' AND kind = 'review';

-- +goose Down
-- The duplicates marked deduplicated by Up stay so.
DROP INDEX IF EXISTS alerts_review_once;
DROP INDEX IF EXISTS alerts_tier_once;
