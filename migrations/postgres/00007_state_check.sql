-- +goose Up
-- hotlane_expect fails the statement, and with it the transaction, when ok
-- is false. The decision writer keeps the alert state of recent
-- conversations and the recent fired alerts of each team in memory and
-- commits a batch in one round trip; the statements of that round trip
-- check, under the row and budget locks they take, that what it read from
-- memory is still what the database holds, and call this to roll the whole
-- batch back when another process changed it meanwhile (SQLSTATE HL001).
-- The writer then commits the batch again on its locking path.
-- +goose StatementBegin
CREATE FUNCTION hotlane_expect(ok boolean, what text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'hotlane: % changed since the decision writer read it', what
            USING ERRCODE = 'HL001';
    END IF;
    RETURN true;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION IF EXISTS hotlane_expect(boolean, text);
