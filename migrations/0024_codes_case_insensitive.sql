-- 0024: codes compare case-insensitively (issue 17 item 6, SPEC §10). new-00001 and
-- NEW-00001 are one code: an upload reports the second as a duplicate, a promotion code
-- cannot take it, and validate and redeem find the code whatever case the buyer types.
-- The spelling the marketer uploaded is what is stored and shown.
--
-- The key is lower(code) under the column's collation "C": ASCII letters A-Z fold, every
-- other byte compares as is. It does not depend on the operating system's locale data, so
-- the index never needs a rebuild after a libc or ICU upgrade; queries must fold the same
-- way: lower($1 COLLATE "C") (the database's default collation would also fold É to é,
-- which the index does not).
--
-- Existing data may hold codes that differ only in case (legal until now). They are kept,
-- nothing is deleted: case_dup numbers them, 0 for the first (lowest id, i.e. earliest
-- upload) and 1, 2, … for the later ones; every other code has 0, and every code stored
-- from now on gets 0, so (lower(code), case_dup) unique means "unique case-insensitively"
-- for everything new. Still one unique index on codes, so an upload does the same index
-- work as before (one descent per code), and a look-up is one probe of lower(code).
-- Adding a column with a constant default rewrites nothing. The migration is one
-- transaction: codes stays locked (ALTER TABLE) while the new index is built, which on a
-- large table takes minutes (one sort of every code): run it in a quiet window.
ALTER TABLE codes ADD COLUMN case_dup smallint NOT NULL DEFAULT 0;

UPDATE codes c SET case_dup = d.n
FROM (SELECT id, row_number() OVER (PARTITION BY lower(code) ORDER BY id) - 1 AS n
      FROM codes
      WHERE lower(code) IN (SELECT lower(code) FROM codes GROUP BY lower(code) HAVING count(*) > 1)) d
WHERE c.id = d.id AND d.n > 0;

CREATE UNIQUE INDEX codes_code_ci ON codes (lower(code), case_dup);
ALTER TABLE codes DROP CONSTRAINT codes_code_key;

-- The legacy collisions, for a person to resolve (void or undo one spelling): every code
-- of a case-insensitive string stored more than once, with its group.
CREATE VIEW code_case_collisions AS
SELECT lower(c.code) AS code_key, c.id AS code_id, c.code, c.case_dup,
       COALESCE(pc.group_id, u.group_id) AS group_id
FROM codes c
LEFT JOIN promotion_codes pc ON pc.code_id = c.id
LEFT JOIN uploads u ON pc.code_id IS NULL AND u.id = c.id >> 32
WHERE lower(c.code) IN (SELECT lower(code) FROM codes WHERE case_dup > 0);

DO $$
DECLARE
    n bigint;
    k bigint;
BEGIN
    SELECT count(*), count(DISTINCT lower(code)) INTO n, k FROM codes WHERE case_dup > 0;
    IF n > 0 THEN
        RAISE NOTICE '0024: % stored codes differ only in case from an earlier code (% strings); all are kept (codes.case_dup numbers them): see the view code_case_collisions', n, k;
    END IF;
END $$;

-- Voiding one code (POST /v1/codes/{code}/void, issue 17 item 7). A voided code that the
-- claim's cursor has not reached yet is listed here, in the row of its range: the claim
-- locks that row FOR UPDATE and reads the codes after next_id minus these ids, so a void
-- that commits while a claim waits for the row is seen by it (the re-read of the locked
-- row), and a voided code is never drawn. total leaves the voided code out, so the balance,
-- the list and the alerts count one code less. Voids are rare and manual: the array stays
-- small. A constant default rewrites nothing.
ALTER TABLE code_ranges ADD COLUMN voided bigint[] NOT NULL DEFAULT '{}';
