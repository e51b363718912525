-- 0014: offers. What a group's codes are worth (terms), when and how often they may be
-- used (limits, status), shared promotion codes, and voided codes (SPEC §10).
--
-- This file is the contract between package groups (which owns these tables and edits
-- them) and package checkout (which reads an offer in the one statement of a validation).

-- kind: 'unique' (one code per customer, drawn by the macros: today's groups) or 'shared'
-- (a few named promotion codes, each redeemable by many customers).
-- status: what a person chose. 'expired' is derived (past ends_at, or every code
-- expired) and 'archived' is archived_at, so neither is stored here.
-- terms: offers.Terms as JSON; NULL is a group without terms (codes only, as before 0014).
-- code_binding: who may redeem a unique code: its 'holder' (the customer it was issued
-- to) or its 'bearer' (whoever types it).
-- terms_locked_at: set when the group's first code is issued or redeemed; from then on
-- the locked fields of terms (offers.Terms.LockedChanges) cannot change.
ALTER TABLE groups
    ADD COLUMN kind              text        NOT NULL DEFAULT 'unique' CHECK (kind IN ('unique', 'shared')),
    ADD COLUMN status            text        NOT NULL DEFAULT 'active' CHECK (status IN ('draft', 'active', 'paused')),
    ADD COLUMN terms             jsonb       CHECK (terms IS NULL OR jsonb_typeof(terms) = 'object'),
    ADD COLUMN max_redemptions   bigint      CHECK (max_redemptions >= 1),
    ADD COLUMN max_per_customer  bigint      CHECK (max_per_customer >= 1),
    ADD COLUMN starts_at         timestamptz,
    ADD COLUMN ends_at           timestamptz,
    ADD COLUMN budget            bigint      CHECK (budget >= 1),
    ADD COLUMN code_binding      text        NOT NULL DEFAULT 'holder' CHECK (code_binding IN ('holder', 'bearer')),
    ADD COLUMN terms_locked_at   timestamptz,
    ADD CONSTRAINT groups_window CHECK (starts_at IS NULL OR ends_at IS NULL OR ends_at > starts_at),
    -- A budget is in the minor units of the terms' currency.
    ADD CONSTRAINT groups_budget_currency CHECK (budget IS NULL OR terms ? 'currency');
CREATE INDEX groups_status ON groups (status) WHERE archived_at IS NULL;

-- A shared group's promotion codes. The code string itself is a row of codes (one code
-- space for the account: uniqueness and look-up are the same as for unique codes), with
-- no code_ranges row, so the unique-code claim never draws it. Its restrictions lock once
-- it has a redemption (only active stays editable).
CREATE TABLE promotion_codes (
    code_id          bigint      PRIMARY KEY REFERENCES codes (id),
    group_id         bigint      NOT NULL REFERENCES groups (id),
    active           boolean     NOT NULL DEFAULT true,
    first_time_only  boolean     NOT NULL DEFAULT false,
    customer_id      text        CHECK (char_length(customer_id) BETWEEN 1 AND 200),
    max_redemptions  bigint      CHECK (max_redemptions >= 1),
    expires_at       timestamptz,
    min_order        bigint      CHECK (min_order >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX promotion_codes_group ON promotion_codes (group_id, code_id);

-- Codes taken out of use one by one (POST /v1/codes/{code}/void). An issued code stays on
-- its holder's profile, marked voided; a voided code is never claimed or redeemed.
CREATE TABLE code_voids (
    code_id     bigint      PRIMARY KEY REFERENCES codes (id),
    group_id    bigint      NOT NULL,
    actor       text        NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    voided_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX code_voids_group ON code_voids (group_id);
