-- 0004: the customer-keyed unique index on live initial issues carries (id, code_id), so
-- last_promocode ("the latest code this customer got from this group") and a claim's
-- existing-issue check read the index alone (index-only scans on vacuumed pages) instead
-- of fetching a random heap page per customer from a history larger than memory.
-- Same key and predicate: ON CONFLICT inference and the invariant are unchanged.
CREATE UNIQUE INDEX issues_scope_initial_v2 ON issues (customer_id, group_id, scope) INCLUDE (id, code_id)
    WHERE kind = 'initial' AND released_at IS NULL;
DROP INDEX issues_scope_initial;
ALTER INDEX issues_scope_initial_v2 RENAME TO issues_scope_initial;
