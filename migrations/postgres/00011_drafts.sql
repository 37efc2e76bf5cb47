-- +goose Up
-- A ruleset version is a draft until it is published: a draft serves
-- nothing, can be edited and backtested, and becomes immutable once
-- published. Every version stored before drafts existed was published.
ALTER TABLE policies ADD COLUMN status TEXT NOT NULL DEFAULT 'published';

-- +goose Down
ALTER TABLE policies DROP COLUMN status;
