-- 0026: checkout's lock order, replays under the lock, caps read under the lock, and the
-- customers' email index (issue 18).
--
-- The group's redemption_counts row is the group's checkout lock: a redemption, a
-- refund, a cancel, a hold's expiry and an edit of the caps (checkout.Usage) all take it
-- before anything else of the group's redemptions (a first redemption, which also locks
-- the group's terms, takes the groups row before it, as an edit does). Then:
--
-- * checkout_redeem checks for a replay of the order or the Idempotency-Key after it
--   holds the lock, so two identical requests racing each other get the same answer
--   (the second sees the first's committed row) instead of a 201 and a 422 (the second
--   used to take the slot the first had filled and be refused by a cap);
-- * it reads the group's caps after it holds the lock (a new statement, so a new
--   snapshot under READ COMMITTED), so an edit that lowered a cap and committed while
--   it waited is seen: it used to read the caps first and could go one past a cap
--   lowered in between (the counter's cap column is what the redemption itself wrote,
--   so its CHECK did not catch it);
-- * no transaction holds a redemption row while waiting for a counter (refunds, cancels
--   and the sweep take the counter first, see package checkout), so they cannot
--   deadlock with redemptions.

-- Validate and redeem by email when the shop sends no customer id: the customer is
-- found case-insensitively by lower(email) (customers.Store.IDByEmail).
CREATE INDEX customers_lower_email ON customers (lower(email)) WHERE email <> '';

-- The body of a redemption.failed webhook: the request's payload with the refusal's
-- reason, and nothing discounted (the order's lines keep their original amounts).
CREATE FUNCTION checkout_failed_payload(p jsonb, id bigint, reason text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT p || jsonb_build_object('redemption_id', id, 'event', 'redemption.failed', 'reason', reason,
        'discount_amount', 0,
        'items', COALESCE((SELECT jsonb_agg(i || '{"discount_amount": 0}') FROM jsonb_array_elements(p->'items') i), '[]'))
$$;

-- The function gains p_webhook_failed: with it, a refusal writes a redemption.failed
-- webhook in the same transaction (REDEMPTION_WEBHOOK_EVENTS).
DROP FUNCTION checkout_redeem(bigint, bigint, text, text, bigint, text, text, text, bytea, text, bigint, bigint,
                              jsonb, bigint, bigint, text, timestamptz, timestamptz, boolean, jsonb);
CREATE FUNCTION checkout_redeem(
    p_group bigint, p_code bigint, p_code_text text, p_kind text, p_code_cap bigint,
    p_customer text, p_order text, p_key text, p_hash bytea,
    p_currency text, p_order_amount bigint, p_discount bigint, p_snapshot jsonb,
    p_issue bigint, p_mailing bigint, p_utm text, p_hold_until timestamptz,
    p_now timestamptz, p_webhook boolean, p_payload jsonb, p_webhook_failed boolean,
    OUT outcome text, OUT r redemptions)
LANGUAGE plpgsql AS $$
DECLARE
    v_id      bigint;
    v_hash    bytea;
    v_cap     bigint;
    v_per     bigint;
    v_budget  bigint;
    v_used    bigint;
    v_disc    bigint;
    v_locked  timestamptz;
    v_reason  text;
    v_status  text := CASE WHEN p_hold_until IS NULL THEN 'succeeded' ELSE 'pending' END;
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

    -- A replay: the key's request, else the order's live redemption. Read under the
    -- lock, so an identical request that got here first is seen.
    IF p_key IS NOT NULL THEN
        SELECT x.id, x.request_hash INTO v_id, v_hash FROM redemptions x WHERE x.idempotency_key = p_key;
    END IF;
    IF v_id IS NULL THEN
        SELECT x.id, x.request_hash INTO v_id, v_hash FROM redemptions x
         WHERE x.order_id = p_order AND x.status IN ('pending', 'succeeded', 'refunded');
    END IF;
    IF v_id IS NOT NULL THEN
        outcome := CASE WHEN v_hash = p_hash THEN 'replay' ELSE 'conflict' END;
        SELECT * INTO r FROM redemptions x WHERE x.id = v_id;
        RETURN;
    END IF;

    -- The caps, as committed when the lock was granted.
    SELECT g.max_redemptions, g.max_per_customer, g.budget INTO v_cap, v_per, v_budget
      FROM groups g WHERE g.id = p_group;

    -- The group: one slot and the discount, below the cap and within the budget.
    IF v_cap IS NOT NULL AND v_used >= v_cap THEN
        v_reason := 'exhausted';
    ELSIF v_budget IS NOT NULL AND v_disc + p_discount > v_budget THEN
        v_reason := 'budget_exhausted';
    ELSE
        UPDATE redemption_counts c SET used = c.used + 1, discounted = c.discounted + p_discount, cap = v_cap, budget = v_budget
         WHERE c.group_id = p_group;
    END IF;

    -- The code: a unique code once, a promotion code up to its own cap.
    IF v_reason IS NULL THEN
        INSERT INTO redemption_code_counts AS c (code_id, group_id, used, cap)
        VALUES (p_code, p_group, 1, p_code_cap)
        ON CONFLICT (code_id) DO UPDATE SET used = c.used + 1, cap = p_code_cap
         WHERE p_code_cap IS NULL OR c.used < p_code_cap;
        IF NOT FOUND THEN
            v_reason := CASE WHEN p_kind = 'unique' THEN 'already_redeemed' ELSE 'exhausted' END;
            UPDATE redemption_counts c SET used = c.used - 1, discounted = c.discounted - p_discount
             WHERE c.group_id = p_group;
        END IF;
    END IF;

    -- The customer: one live redemption more, below the per-customer cap.
    IF v_reason IS NULL THEN
        INSERT INTO redemption_customer_counts AS c (group_id, customer_id, used, cap)
        VALUES (p_group, p_customer, 1, v_per)
        ON CONFLICT (group_id, customer_id) DO UPDATE SET used = c.used + 1, cap = v_per
         WHERE v_per IS NULL OR c.used < v_per;
        IF NOT FOUND THEN
            v_reason := 'customer_limit';
            UPDATE redemption_counts c SET used = c.used - 1, discounted = c.discounted - p_discount
             WHERE c.group_id = p_group;
            UPDATE redemption_code_counts c SET used = c.used - 1 WHERE c.code_id = p_code;
        END IF;
    END IF;

    IF v_reason IS NOT NULL THEN
        INSERT INTO redemptions (group_id, code_id, code, kind, customer_id, order_id, idempotency_key,
                                 request_hash, status, reason, currency, order_amount, discount_amount,
                                 issue_id, mailing_id, utm_source, snapshot, created_at, updated_at)
        VALUES (p_group, p_code, p_code_text, p_kind, p_customer, p_order, p_key,
                p_hash, 'failed', v_reason, p_currency, p_order_amount, 0,
                p_issue, p_mailing, p_utm, p_snapshot, p_now, p_now)
        RETURNING * INTO r;
        IF p_webhook_failed THEN
            INSERT INTO redemption_webhooks (redemption_id, event, payload, next_attempt_at, created_at)
            VALUES (r.id, 'redemption.failed', checkout_failed_payload(p_payload, r.id, v_reason), p_now, p_now);
        END IF;
        outcome := v_reason;
        RETURN;
    END IF;

    INSERT INTO redemptions (group_id, code_id, code, kind, customer_id, order_id, idempotency_key,
                             request_hash, status, currency, order_amount, discount_amount,
                             issue_id, mailing_id, utm_source, snapshot, hold_expires_at, created_at, updated_at)
    VALUES (p_group, p_code, p_code_text, p_kind, p_customer, p_order, p_key,
            p_hash, v_status, p_currency, p_order_amount, p_discount,
            p_issue, p_mailing, p_utm, p_snapshot, p_hold_until, p_now, p_now)
    RETURNING * INTO r;

    -- The group's terms lock with its first redemption (0014); the row is ours already.
    IF v_locked IS NULL THEN
        UPDATE groups g SET terms_locked_at = p_now WHERE g.id = p_group AND g.terms_locked_at IS NULL;
    END IF;

    IF p_webhook AND v_status = 'succeeded' THEN
        INSERT INTO redemption_webhooks (redemption_id, event, payload, next_attempt_at, created_at)
        VALUES (r.id, 'redemption.succeeded', p_payload || jsonb_build_object('redemption_id', r.id, 'event', 'redemption.succeeded'), p_now, p_now);
    END IF;
    outcome := 'created';
END $$;
