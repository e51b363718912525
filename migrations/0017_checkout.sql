-- 0017: checkout. Redemptions of codes at a shop's checkout, the counters that keep every
-- cap exact, refunds and the webhook outbox (SPEC §11). Package checkout owns these
-- tables; it reads groups, codes, promotion_codes, code_voids, code_ranges and issues
-- (0014's contract) in the statements of a validation and a redemption.

-- Every redemption attempt made through POST /v1/redemptions: a hold (pending), a
-- success, a cancelled or expired hold, a refund, or a refusal (failed, with its reason;
-- successful validations are not recorded). The snapshot keeps the terms, their summary
-- and the per-item amounts as they were, so a receipt stays true after the group changes.
-- No foreign keys: history outlives an undone upload or a removed group, as issues does.
CREATE TABLE redemptions (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NULL only on a failed attempt whose code was not found.
    group_id         bigint,
    code_id          bigint,
    -- The code as stored (its uploaded spelling); '' for a code not found.
    code             text        COLLATE "C" NOT NULL,
    -- 'unique' (drawn from a pool, redeemable once) or 'shared' (a promotion code).
    kind             text        CHECK (kind IN ('unique', 'shared')),
    customer_id      text        COLLATE "C" NOT NULL CHECK (char_length(customer_id) BETWEEN 1 AND 200),
    order_id         text        COLLATE "C" NOT NULL CHECK (char_length(order_id) BETWEEN 1 AND 200),
    -- The request's Idempotency-Key, when it came with one.
    idempotency_key  text        COLLATE "C" CHECK (char_length(idempotency_key) BETWEEN 1 AND 200),
    -- SHA-256 of what the request asked for (code, customer, order, items, hold): a
    -- replay with the same hash gets the first answer, another hash a 409.
    request_hash     bytea       NOT NULL CHECK (octet_length(request_hash) = 32),
    status           text        NOT NULL CHECK (status IN ('pending', 'succeeded', 'cancelled', 'expired', 'refunded', 'failed')),
    reason           text,
    -- The issue that gave this customer this unique code, and its mailing.
    issue_id         bigint,
    mailing_id       bigint,
    currency         text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    order_amount     bigint      NOT NULL CHECK (order_amount >= 0),
    discount_amount  bigint      NOT NULL CHECK (discount_amount >= 0 AND discount_amount <= order_amount),
    -- The part of the discount given back by refunds.
    refunded_amount  bigint      NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0 AND refunded_amount <= discount_amount),
    utm_source       text        NOT NULL DEFAULT '' CHECK (char_length(utm_source) <= 200),
    snapshot         jsonb       NOT NULL CHECK (jsonb_typeof(snapshot) = 'object'),
    hold_expires_at  timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'failed') = (reason IS NOT NULL)),
    CHECK (status = 'failed' OR (group_id IS NOT NULL AND code_id IS NOT NULL AND kind IS NOT NULL)),
    CHECK (status <> 'pending' OR hold_expires_at IS NOT NULL),
    CHECK (status <> 'failed' OR discount_amount = 0)
);
-- An order has at most one live redemption (held, succeeded or refunded): the replay key.
-- A cancelled or expired hold, or a refusal, leaves the order free for another attempt.
CREATE UNIQUE INDEX redemptions_live_order ON redemptions (order_id)
    WHERE status IN ('pending', 'succeeded', 'refunded');
-- An Idempotency-Key names one request forever.
CREATE UNIQUE INDEX redemptions_idempotency_key ON redemptions (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- A unique code is redeemed once: the constraint behind the per-code counter.
CREATE UNIQUE INDEX redemptions_unique_code ON redemptions (code_id)
    WHERE kind = 'unique' AND status IN ('pending', 'succeeded', 'refunded');
-- History: per group, per customer, per code (newest first by id), holds to sweep.
CREATE INDEX redemptions_group ON redemptions (group_id, id);
CREATE INDEX redemptions_customer ON redemptions (customer_id, id);
CREATE INDEX redemptions_code ON redemptions (code_id, id);
CREATE INDEX redemptions_holds ON redemptions (hold_expires_at) WHERE status = 'pending';

-- Per group: slots taken (held, succeeded and refunded redemptions: a refund does not
-- give its slot back) and the discount held or given minus refunds. cap and budget are
-- the group's max_redemptions and budget as of the last redemption: the CHECKs make an
-- increment past them impossible, not merely unlikely.
CREATE TABLE redemption_counts (
    group_id    bigint PRIMARY KEY,
    used        bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
    discounted  bigint NOT NULL DEFAULT 0 CHECK (discounted >= 0),
    cap         bigint,
    budget      bigint,
    CHECK (cap IS NULL OR used <= cap),
    CHECK (budget IS NULL OR discounted <= budget)
);

-- Per code: slots taken. cap is 1 for a unique code, the promotion code's
-- max_redemptions (or NULL) for a shared one.
CREATE TABLE redemption_code_counts (
    code_id   bigint PRIMARY KEY,
    group_id  bigint NOT NULL,
    used      bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
    cap       bigint,
    CHECK (cap IS NULL OR used <= cap)
);

-- Per group and customer: live redemptions (held or succeeded; a full refund frees the
-- slot). cap is the group's max_per_customer as of the last redemption.
CREATE TABLE redemption_customer_counts (
    group_id     bigint NOT NULL,
    customer_id  text   COLLATE "C" NOT NULL,
    used         bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
    cap          bigint,
    PRIMARY KEY (group_id, customer_id),
    CHECK (cap IS NULL OR used <= cap)
);
-- "Has this customer a live redemption anywhere?" (first-time-only codes).
CREATE INDEX redemption_customer_counts_customer ON redemption_customer_counts (customer_id) WHERE used > 0;

-- Refunds, whole or by items. refund_id is the shop's: a replay returns the first answer.
CREATE TABLE redemption_refunds (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    redemption_id  bigint      NOT NULL REFERENCES redemptions (id),
    refund_id      text        COLLATE "C" NOT NULL CHECK (char_length(refund_id) BETWEEN 1 AND 200),
    request_hash   bytea       NOT NULL CHECK (octet_length(request_hash) = 32),
    -- The refunded lines (indexes into the snapshot's per_item) and their discounts.
    items          jsonb       NOT NULL CHECK (jsonb_typeof(items) = 'array'),
    amount         bigint      NOT NULL CHECK (amount >= 0),
    whole          boolean     NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (redemption_id, refund_id)
);

-- The webhook outbox: written in the transaction of the event, delivered by the worker
-- (at least once, with the row id as Idempotency-Key), re-enqueued by the scheduler
-- while undelivered.
CREATE TABLE redemption_webhooks (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    redemption_id    bigint      NOT NULL REFERENCES redemptions (id),
    event            text        NOT NULL CHECK (event IN ('redemption.succeeded', 'redemption.refunded', 'redemption.failed')),
    payload          jsonb       NOT NULL,
    attempts         int         NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    -- Given up after the last retry (the admin can see it; the scheduler stops).
    failed_at        timestamptz
);
CREATE INDEX redemption_webhooks_due ON redemption_webhooks (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;

-- checkout_redeem takes the slots of one redemption and records it, in one statement:
-- the replay check, then the group, code and customer counters in that order (always
-- the same order, so two redemptions never deadlock), each a conditional upsert that
-- locks its row and increments only below the cap, undoing the ones already taken when
-- a later one is full; then the redemption row (whose unique indexes refuse a second
-- live redemption of the order or of a unique code) and its webhook. What the caller
-- computed (the discount, the snapshot) comes in as parameters; caps are read here.
--
-- outcome: 'created' (r is the new row), 'replay' (r is the order's or the key's
-- redemption, with the same request hash), 'conflict' (same order or key, another
-- request), or a refusal: 'exhausted', 'customer_limit', 'budget_exhausted',
-- 'already_redeemed' (r is the failed attempt recorded). The row is returned, not its
-- id: a statement joining redemptions to the call would not see the row it inserts.
CREATE FUNCTION checkout_redeem(
    p_group bigint, p_code bigint, p_code_text text, p_kind text, p_code_cap bigint,
    p_customer text, p_order text, p_key text, p_hash bytea,
    p_currency text, p_order_amount bigint, p_discount bigint, p_snapshot jsonb,
    p_issue bigint, p_mailing bigint, p_utm text, p_hold_until timestamptz,
    p_now timestamptz, p_webhook boolean, p_payload jsonb,
    OUT outcome text, OUT r redemptions)
LANGUAGE plpgsql AS $$
DECLARE
    v_id      bigint;
    v_hash    bytea;
    v_cap     bigint;
    v_per     bigint;
    v_budget  bigint;
    v_reason  text;
    v_status  text := CASE WHEN p_hold_until IS NULL THEN 'succeeded' ELSE 'pending' END;
BEGIN
    -- A replay: the key's request, else the order's live redemption.
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

    SELECT g.max_redemptions, g.max_per_customer, g.budget INTO v_cap, v_per, v_budget
      FROM groups g WHERE g.id = p_group;

    -- The group: one slot and the discount, below the cap and within the budget.
    IF v_budget IS NOT NULL AND p_discount > v_budget THEN
        v_reason := 'budget_exhausted';
    ELSE
        INSERT INTO redemption_counts AS c (group_id, used, discounted, cap, budget)
        VALUES (p_group, 1, p_discount, v_cap, v_budget)
        ON CONFLICT (group_id) DO UPDATE
           SET used = c.used + 1, discounted = c.discounted + p_discount, cap = v_cap, budget = v_budget
         WHERE (v_cap IS NULL OR c.used < v_cap) AND (v_budget IS NULL OR c.discounted + p_discount <= v_budget);
        IF NOT FOUND THEN
            SELECT CASE WHEN v_cap IS NOT NULL AND c.used >= v_cap THEN 'exhausted' ELSE 'budget_exhausted' END
              INTO v_reason FROM redemption_counts c WHERE c.group_id = p_group;
        END IF;
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

    -- The group's terms lock with its first redemption (0014).
    UPDATE groups g SET terms_locked_at = p_now WHERE g.id = p_group AND g.terms_locked_at IS NULL;

    IF p_webhook AND v_status = 'succeeded' THEN
        INSERT INTO redemption_webhooks (redemption_id, event, payload, next_attempt_at, created_at)
        VALUES (r.id, 'redemption.succeeded', p_payload || jsonb_build_object('redemption_id', r.id, 'event', 'redemption.succeeded'), p_now, p_now);
    END IF;
    outcome := 'created';
END $$;
