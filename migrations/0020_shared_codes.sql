-- 0020: shared promotion codes (issue 17 item 5). A shared group's few codes are each
-- issued to many customers and redeemed by many; the tables of 0014 hold them. This adds
-- what issuing, addressing and locking them needs.

-- A shared code goes to many customers, so its issues cannot be under "a code has at
-- most one live initial issue" (0002). shared marks them; the invariant's index now
-- leaves them out. Nothing else changes for an issue: it is an initial issue of its
-- customer, seen by the profile, segments, reports and last_promocode like any other,
-- and (scope, customer, group) still has at most one live initial issue. Adding a
-- column with a constant default rewrites nothing; the index is rebuilt once.
ALTER TABLE issues ADD COLUMN shared boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX issues_code_initial_v2 ON issues (code_id)
    WHERE kind = 'initial' AND released_at IS NULL AND NOT shared;
DROP INDEX issues_code_initial;
ALTER INDEX issues_code_initial_v2 RENAME TO issues_code_initial;

-- A promotion code's string is a row of codes (one code space for the account), whose
-- id comes from its own range: 2^62 + promotion_code_ids. Unique codes' ids are
-- upload id << 32 | ordinal, so upload ids stay below 2^30 and the two never meet.
CREATE SEQUENCE promotion_code_ids;
ALTER TABLE uploads ADD CONSTRAINT uploads_id_below_promotion_codes CHECK (id < 1073741824);

-- id: the code's number in the API (/v1/groups/{id}/promotion-codes/{code_id}; small,
-- safe in JSON). idempotency_key: the Idempotency-Key of the request that created it,
-- so a retried create answers the same code (one per group).
ALTER TABLE promotion_codes
    ADD COLUMN id              bigint GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN idempotency_key text CHECK (char_length(idempotency_key) BETWEEN 1 AND 200),
    ADD CONSTRAINT promotion_codes_id UNIQUE (id);
CREATE UNIQUE INDEX promotion_codes_idempotency ON promotion_codes (group_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- A promotion code's restrictions lock once it has a redemption (held, succeeded or
-- refunded: a slot of redemption_code_counts, 0017): only active (archive, unarchive)
-- changes after that. The application checks first to name the fields (409
-- terms_locked); this trigger is the rule, whatever writes the row.
CREATE FUNCTION promotion_code_locked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.code_id, NEW.group_id, NEW.first_time_only, NEW.customer_id, NEW.max_redemptions, NEW.expires_at, NEW.min_order)
       IS DISTINCT FROM
       (OLD.code_id, OLD.group_id, OLD.first_time_only, OLD.customer_id, OLD.max_redemptions, OLD.expires_at, OLD.min_order)
       AND EXISTS (SELECT 1 FROM redemption_code_counts c WHERE c.code_id = OLD.code_id AND c.used > 0) THEN
        RAISE EXCEPTION 'promotion code % has a redemption: only active may change', OLD.code_id
            USING ERRCODE = 'PL001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER promotion_code_locked BEFORE UPDATE ON promotion_codes
    FOR EACH ROW EXECUTE FUNCTION promotion_code_locked();
