-- 0002: customers, the issue history, claim reservations, returned codes, direct-issue keys.

-- Customers as the platform knows them, keyed by the platform's id.
CREATE TABLE customers (
    id          text        PRIMARY KEY CHECK (char_length(id) BETWEEN 1 AND 200),
    email       text        NOT NULL DEFAULT '',
    first_name  text        NOT NULL DEFAULT '',
    last_name   text        NOT NULL DEFAULT '',
    attributes  jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every issue of a code: initial (a code leaves the pool) or repeat (last_promocode
-- re-inserted a code the customer already holds). Append-mostly: the only update is
-- released_at, set when a definitive send rejection returns the code to the pool.
-- No foreign keys: the history outlives undone uploads and removed groups, and a key
-- check per inserted row would cost an index probe each.
--
-- Indexes are the long-run limit of the claim (PERFORMANCE.md), so there are few and
-- they are narrow; the three partial customer-keyed indexes below partition the rows
-- (live initial / repeat / released), so together they are one customer index, not three.
CREATE TABLE issues (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id  text        NOT NULL,
    group_id     bigint      NOT NULL,
    code_id      bigint      NOT NULL,
    -- The idempotency scope: "mailing:<id>", "direct:<key>", or a platform mailer's key.
    scope        text        NOT NULL,
    mailing_id   bigint,
    kind         text        NOT NULL CHECK (kind IN ('initial', 'repeat')),
    issued_at    timestamptz NOT NULL DEFAULT now(),
    released_at  timestamptz,
    CHECK (released_at IS NULL OR kind = 'initial')
);
-- Invariant 1: a code has at most one live initial issue. A released issue keeps its
-- row (history) but leaves this index, so the code can go out again.
CREATE UNIQUE INDEX issues_code_initial ON issues (code_id)
    WHERE kind = 'initial' AND released_at IS NULL;
-- Invariant 2: (scope, customer, group) has at most one live initial issue. Keyed by
-- customer first so the same index answers "this batch's existing issues", the
-- repeat lookup (customer, group → latest initial) and the profile.
CREATE UNIQUE INDEX issues_scope_initial ON issues (customer_id, group_id, scope)
    WHERE kind = 'initial' AND released_at IS NULL;
-- A repeat is recorded once per (scope, customer, group): a redelivered task records nothing new.
CREATE UNIQUE INDEX issues_scope_repeat ON issues (customer_id, group_id, scope)
    WHERE kind = 'repeat';
-- Released initial issues (rare): completes the per-customer coverage for the profile.
CREATE INDEX issues_released ON issues (customer_id) WHERE released_at IS NOT NULL;

-- Codes a claim reserved (cursor advanced, counted as taken) whose issue rows are not
-- written yet. Deleted by the issuing transaction; one left behind means a crash between
-- the two, and RecoverReservations returns its codes to the pool.
CREATE TABLE reservations (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id    bigint      NOT NULL,
    scope       text        NOT NULL,
    -- Spans of cursor-reserved ids: codes.id in [span_lo[i], span_hi[i]] of range range_ids[i]
    -- (a few spans, whatever the batch size), plus codes taken from returned_codes.
    range_ids   bigint[]    NOT NULL,
    span_lo     bigint[]    NOT NULL,
    span_hi     bigint[]    NOT NULL,
    free_ids    bigint[]    NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX reservations_created ON reservations (created_at);

-- Codes returned to the pool (a released issue, a reservation recovered, a reserved code
-- left over by a concurrent identical claim). They are below their range's cursor, so
-- their range's taken was decremented when they came back; claims consume them first.
CREATE TABLE returned_codes (
    code_id     bigint      PRIMARY KEY,
    group_id    bigint      NOT NULL,
    range_id    bigint      NOT NULL REFERENCES code_ranges (id) ON DELETE CASCADE,
    expires_at  timestamptz
);
CREATE INDEX returned_codes_claim ON returned_codes (group_id, expires_at NULLS LAST, code_id);
CREATE INDEX returned_codes_range ON returned_codes (range_id);

-- Direct issues: an Idempotency-Key names one (customer, group) forever.
CREATE TABLE direct_issue_keys (
    key          text        PRIMARY KEY CHECK (char_length(key) BETWEEN 1 AND 200),
    customer_id  text        NOT NULL,
    group_id     bigint      NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
