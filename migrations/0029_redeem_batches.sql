-- 0029: redemptions of one group decided and recorded in batches (issue 18, redeem
-- throughput).
--
-- checkout_redeem (0017, 0026) records one redemption per transaction, and every
-- redemption of a group holds the group's counter row (its checkout lock) from its
-- update to its commit: a group's redemptions went one commit (one WAL flush) at a time.
-- Package checkout now queues the redemptions of a group that arrive while one of its
-- batches runs and records them with one call of checkout_redeem_batch: one statement,
-- one transaction, one hold of the lock, one commit for up to 128 redemptions.
--
-- Under the lock the batch does what checkout_redeem did, item by item in the order
-- given: the replay check (the Idempotency-Key's request, else the order's live
-- redemption), then the group's total cap, the budget, the code's cap and the
-- customer's cap, each judged against the counters as the items before it left them
-- (so exactly as many succeed as one at a time would let through). The decisions are
-- made on the counters read once under their row locks; the rows, the counters and the
-- webhooks are then written in one statement from the decisions, so no item's refusal
-- aborts the others: nothing is written that a constraint could refuse, except a live
-- order, an Idempotency-Key or a unique code taken meanwhile by a redemption of another
-- group (its own lock): that unique violation aborts the statement and the caller runs
-- the batch again, when the replay check sees the other's row.
--
-- Lock order, as before: the groups row (only while the group's terms are not locked
-- yet), the group's counter row, then the code and customer counters of the batch (each
-- set in key order). Refunds, confirms, cancels, the hold sweep and an edit of the caps
-- take the group's counter first too.
--
-- The caller sends each group's orders and Idempotency-Keys at most once per batch
-- (identical requests racing each other share the first one's answer; another request
-- for the same order waits for the next batch).
--
-- checkout_redeem stays for processes of the previous release during a deploy (it takes
-- the same locks, so caps stay exact with both running); nothing in this release calls it.
--
-- p_items: a JSON array of objects {code_id, code, kind, code_cap, customer, ord, key,
-- hash (hex of the request's SHA-256), currency, order_amount, discount, snapshot,
-- issue_id, mailing_id, utm, hold_until, now, payload}. The result has one row per
-- item: its index (0-based), the outcome ('created', 'replay': the key's or the order's
-- redemption as found, whose request hash the caller compares, or a refusal's reason)
-- and the redemption (created, found, or the failed attempt recorded).
CREATE FUNCTION checkout_redeem_batch(p_group bigint, p_items jsonb, p_webhook boolean, p_webhook_failed boolean)
RETURNS TABLE (o_idx int, o_outcome text, o_r redemptions)
LANGUAGE plpgsql AS $$
DECLARE
    v_n         int := jsonb_array_length(p_items);
    v_locked    timestamptz;
    v_used      bigint;
    v_disc      bigint;
    v_cap       bigint;
    v_per       bigint;
    v_budget    bigint;
    v_rep       bigint[] := array_fill(NULL::bigint, ARRAY[v_n]);
    v_out       text[] := array_fill(NULL::text, ARRAY[v_n]);
    v_code_keys bigint[];
    v_cust_keys text[];
    v_codes     bigint[];
    v_code_used bigint[];
    v_custs     text[];
    v_cust_used bigint[];
    v_cp        int;
    v_up        int;
    v_k         int;
    v_now       timestamptz;
    it          record;
BEGIN
    -- The group's first redemption locks its terms: take the groups row first, as an
    -- edit of the group does (groups row, then the counter), never after the counter.
    SELECT g.terms_locked_at INTO v_locked FROM groups g WHERE g.id = p_group;
    IF v_locked IS NULL THEN
        PERFORM 1 FROM groups g WHERE g.id = p_group FOR NO KEY UPDATE;
    END IF;

    -- The group's lock: its counter row, created when missing.
    SELECT c.used, c.discounted INTO v_used, v_disc FROM redemption_counts c WHERE c.group_id = p_group FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO redemption_counts (group_id) VALUES (p_group) ON CONFLICT (group_id) DO NOTHING;
        SELECT c.used, c.discounted INTO v_used, v_disc FROM redemption_counts c WHERE c.group_id = p_group FOR UPDATE;
    END IF;

    -- Replays, read under the lock (a new statement: a new snapshot), so a request that
    -- committed while this one waited is seen.
    FOR it IN
        SELECT e.n, y.id
          FROM jsonb_array_elements(p_items) WITH ORDINALITY e(v, n)
         CROSS JOIN LATERAL (
               SELECT z.id FROM (
                   SELECT q.id, 1 AS pri FROM redemptions q
                    WHERE e.v->>'key' IS NOT NULL AND q.idempotency_key = e.v->>'key'
                   UNION ALL
                   SELECT q.id, 2 FROM redemptions q
                    WHERE q.order_id = e.v->>'ord' AND q.status IN ('pending', 'succeeded', 'refunded')) z
                ORDER BY z.pri LIMIT 1) y
    LOOP
        v_rep[it.n] := it.id;
    END LOOP;

    -- The caps, as committed when the lock was granted.
    SELECT g.max_redemptions, g.max_per_customer, g.budget INTO v_cap, v_per, v_budget
      FROM groups g WHERE g.id = p_group;

    -- The batch's code and customer counters, locked in key order (each an index probe
    -- per key: = ANY of an array, never a scan of the group's customers).
    SELECT array_agg(DISTINCT (e->>'code_id')::bigint), array_agg(DISTINCT e->>'customer')
      INTO v_code_keys, v_cust_keys
      FROM jsonb_array_elements(p_items) e;
    SELECT array_agg(c.code_id ORDER BY c.code_id), array_agg(c.used ORDER BY c.code_id)
      INTO v_codes, v_code_used
      FROM (SELECT x.code_id, x.used FROM redemption_code_counts x
             WHERE x.code_id = ANY (v_code_keys)
             ORDER BY x.code_id FOR UPDATE) c;
    SELECT array_agg(c.customer_id ORDER BY c.customer_id), array_agg(c.used ORDER BY c.customer_id)
      INTO v_custs, v_cust_used
      FROM (SELECT x.customer_id, x.used FROM redemption_customer_counts x
             WHERE x.group_id = p_group AND x.customer_id = ANY (v_cust_keys)
             ORDER BY x.customer_id FOR UPDATE) c;

    -- Each item in turn, against the counters as the items before it left them: the
    -- group's total cap, the budget, the code's cap, the customer's cap.
    FOR it IN
        SELECT e.n, j.code_id, j.kind, j.code_cap, j.customer, j.discount
          FROM jsonb_array_elements(p_items) WITH ORDINALITY e(v, n),
               jsonb_to_record(e.v) AS j(code_id bigint, kind text, code_cap bigint, customer text, discount bigint)
         ORDER BY e.n
    LOOP
        v_k := it.n;
        IF v_rep[v_k] IS NOT NULL THEN
            v_out[v_k] := 'replay';
            CONTINUE;
        END IF;
        IF v_cap IS NOT NULL AND v_used >= v_cap THEN
            v_out[v_k] := 'exhausted';
            CONTINUE;
        END IF;
        IF v_budget IS NOT NULL AND v_disc + it.discount > v_budget THEN
            v_out[v_k] := 'budget_exhausted';
            CONTINUE;
        END IF;
        v_cp := array_position(v_codes, it.code_id);
        IF v_cp IS NULL THEN
            v_codes := v_codes || it.code_id;
            v_code_used := v_code_used || 0::bigint;
            v_cp := array_length(v_codes, 1);
        END IF;
        IF it.code_cap IS NOT NULL AND v_code_used[v_cp] >= it.code_cap THEN
            v_out[v_k] := CASE WHEN it.kind = 'unique' THEN 'already_redeemed' ELSE 'exhausted' END;
            CONTINUE;
        END IF;
        v_up := array_position(v_custs, it.customer);
        IF v_up IS NULL THEN
            v_custs := v_custs || it.customer;
            v_cust_used := v_cust_used || 0::bigint;
            v_up := array_length(v_custs, 1);
        END IF;
        IF v_per IS NOT NULL AND v_cust_used[v_up] >= v_per THEN
            v_out[v_k] := 'customer_limit';
            CONTINUE;
        END IF;
        v_used := v_used + 1;
        v_disc := v_disc + it.discount;
        v_code_used[v_cp] := v_code_used[v_cp] + 1;
        v_cust_used[v_up] := v_cust_used[v_up] + 1;
        v_out[v_k] := 'created';
    END LOOP;

    v_now := (p_items->0->>'now')::timestamptz;

    -- The rows (a redemption, a hold or a failed attempt per item that is not a replay),
    -- the counters by what was inserted, the terms' lock, the webhooks; then the answer.
    RETURN QUERY
    WITH x AS MATERIALIZED (
        SELECT (e.n - 1)::int AS i, v_out[e.n] AS out, v_rep[e.n] AS rep, j.*
          FROM jsonb_array_elements(p_items) WITH ORDINALITY e(v, n),
               jsonb_to_record(e.v) AS j(code_id bigint, code text, kind text, code_cap bigint, customer text,
                   ord text, key text, hash text, currency text, order_amount bigint, discount bigint,
                   snapshot jsonb, issue_id bigint, mailing_id bigint, utm text, hold_until timestamptz,
                   now timestamptz, payload jsonb)
    ), ins AS (
        INSERT INTO redemptions (group_id, code_id, code, kind, customer_id, order_id, idempotency_key,
                                 request_hash, status, reason, currency, order_amount, discount_amount,
                                 issue_id, mailing_id, utm_source, snapshot, hold_expires_at, created_at, updated_at)
        SELECT p_group, x.code_id, x.code, x.kind, x.customer, x.ord, x.key,
               decode(x.hash, 'hex'),
               CASE WHEN x.out <> 'created' THEN 'failed' WHEN x.hold_until IS NULL THEN 'succeeded' ELSE 'pending' END,
               NULLIF(x.out, 'created'), x.currency, x.order_amount,
               CASE WHEN x.out = 'created' THEN x.discount ELSE 0 END,
               x.issue_id, x.mailing_id, x.utm, x.snapshot,
               CASE WHEN x.out = 'created' THEN x.hold_until END, x.now, x.now
          FROM x WHERE x.out <> 'replay' ORDER BY x.i
        RETURNING *
    ), ok AS (
        SELECT ins.code_id, ins.customer_id, ins.discount_amount, x.code_cap
          FROM ins JOIN x ON x.ord = ins.order_id
         WHERE ins.status <> 'failed'
    ), g AS (
        UPDATE redemption_counts c SET used = c.used + s.n, discounted = c.discounted + s.d, cap = v_cap, budget = v_budget
          FROM (SELECT count(*) AS n, COALESCE(sum(ok.discount_amount), 0) AS d FROM ok) s
         WHERE c.group_id = p_group AND s.n > 0
    ), cc AS (
        INSERT INTO redemption_code_counts AS c (code_id, group_id, used, cap)
        SELECT ok.code_id, p_group, count(*), max(ok.code_cap) FROM ok GROUP BY ok.code_id
        ON CONFLICT (code_id) DO UPDATE SET used = c.used + excluded.used, cap = excluded.cap
    ), cu AS (
        INSERT INTO redemption_customer_counts AS c (group_id, customer_id, used, cap)
        SELECT p_group, ok.customer_id, count(*), v_per FROM ok GROUP BY ok.customer_id
        ON CONFLICT (group_id, customer_id) DO UPDATE SET used = c.used + excluded.used, cap = excluded.cap
    ), tl AS (
        -- The group's terms lock with its first redemption (0014); the row is ours already.
        UPDATE groups g SET terms_locked_at = v_now
         WHERE v_locked IS NULL AND g.id = p_group AND g.terms_locked_at IS NULL AND EXISTS (SELECT 1 FROM ok)
    ), wh AS (
        INSERT INTO redemption_webhooks (redemption_id, event, payload, next_attempt_at, created_at)
        SELECT ins.id,
               CASE WHEN ins.status = 'failed' THEN 'redemption.failed' ELSE 'redemption.succeeded' END,
               CASE WHEN ins.status = 'failed' THEN checkout_failed_payload(x.payload, ins.id, ins.reason)
                    ELSE x.payload || jsonb_build_object('redemption_id', ins.id, 'event', 'redemption.succeeded') END,
               x.now, x.now
          FROM ins JOIN x ON x.ord = ins.order_id
         WHERE (ins.status = 'succeeded' AND p_webhook) OR (ins.status = 'failed' AND p_webhook_failed)
    )
    SELECT x.i, x.out, ROW(ins.*)::redemptions FROM ins JOIN x ON x.ord = ins.order_id
    UNION ALL
    SELECT x.i, 'replay'::text, q FROM x JOIN redemptions q ON q.id = x.rep WHERE x.out = 'replay';
END $$;

-- The report's change queue (0023) for inserts: one statement-level trigger over the
-- inserted rows instead of a PL/pgSQL call per row (a batch inserts up to 128 rows in
-- one statement, each of which paid the call and two single-row INSERTs while the
-- group's lock was held). Same rows as redemption_change_queue(NEW, 1) appends;
-- updates and deletes keep 0023's row trigger.
CREATE FUNCTION redemptions_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO report_redemption_changes (group_id, day, mailing_id, code_id, utm_source, currency, customer_id,
                                           issue_id, created_at, uses, revenue, discount, refunds, refunded, failed)
    SELECT r.group_id, report_day(r.created_at), coalesce(r.mailing_id, 0),
           CASE WHEN r.kind = 'shared' THEN r.code_id ELSE 0 END, r.utm_source, r.currency, r.customer_id,
           r.issue_id, r.created_at,
           (r.status = 'succeeded')::int,
           CASE WHEN r.status = 'succeeded' THEN r.order_amount ELSE 0 END,
           CASE WHEN r.status IN ('succeeded', 'refunded') THEN r.discount_amount - r.refunded_amount ELSE 0 END,
           (r.status = 'refunded')::int,
           CASE WHEN r.status IN ('succeeded', 'refunded') THEN r.refunded_amount ELSE 0 END,
           (r.status = 'failed')::int
      FROM new_rows r
     WHERE r.group_id IS NOT NULL AND r.status IN ('succeeded', 'refunded', 'failed');
    INSERT INTO segment_redemption_changes (group_id, customer_id, used_at, n)
    SELECT r.group_id, r.customer_id, r.created_at, 1
      FROM new_rows r
     WHERE r.group_id IS NOT NULL AND r.status = 'succeeded';
    RETURN NULL;
END $$;
DROP TRIGGER redemptions_report_insert ON redemptions;
CREATE TRIGGER redemptions_report_insert AFTER INSERT ON redemptions REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION redemptions_inserted();
