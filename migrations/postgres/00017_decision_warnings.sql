-- +goose Up
-- Why a decision could not use part of its input: the rules that failed at
-- run time and the signals the model could not read, each with a message
-- (a JSON array of model.Warning). NULL when all went well, as it does for
-- almost every decision, so the column costs nothing then.
ALTER TABLE decisions ADD COLUMN warnings JSONB;

-- The leads' pages list the recent decisions with warnings: this index
-- holds only those, so it costs nothing for the others and the list does
-- not scan the whole table.
CREATE INDEX decisions_warned ON decisions (created_at) WHERE warnings IS NOT NULL;

-- +goose Down
DROP INDEX decisions_warned;
ALTER TABLE decisions DROP COLUMN warnings;
