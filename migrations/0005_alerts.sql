-- 0005: balance alerts. A group's threshold may also be a percentage of its total codes;
-- alerts are claimed once per (group, level, arming) before anything is sent, and each
-- channel of an alert is a delivery row retried on the next tick until it goes out.

ALTER TABLE groups ADD COLUMN low_balance_percent numeric(5, 2)
    CHECK (low_balance_percent > 0 AND low_balance_percent <= 100);

-- The arming counter of each (group, level): bumped when the balance is seen above the
-- level after the level fired, so the next fall fires it again. Checkers lock a group's
-- rows FOR UPDATE while they decide, so two checkers never decide on one group at once.
CREATE TABLE alert_state (
    group_id  bigint NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    level     text   NOT NULL CHECK (level IN ('threshold', 'half', 'quarter', 'empty')),
    arming    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (group_id, level)
);

-- One row per alert raised. The unique key is the guarantee that an alert is never sent
-- twice: a checker inserts it (ON CONFLICT DO NOTHING) before any delivery row exists.
-- For expiry alerts, arming is the day (days since 1970-01-01 UTC) of the soonest expiry.
CREATE TABLE alerts (
    id                 bigserial   PRIMARY KEY,
    group_id           bigint      NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    level              text        NOT NULL CHECK (level IN ('threshold', 'half', 'quarter', 'empty', 'expiry')),
    arming             bigint      NOT NULL,
    -- The level's count of codes (threshold, half, quarter, 0); null for expiry alerts.
    level_value        bigint,
    balance            bigint      NOT NULL,
    total              bigint      NOT NULL,
    threshold          bigint,
    -- Forecast: initial issues over the rate window, codes per day, when the group runs dry.
    issued_in_window   bigint      NOT NULL,
    window_days        double precision NOT NULL,
    rate_per_day       double precision NOT NULL,
    dry_at             timestamptz,
    -- Expiry alerts: active codes expiring by expiring_before, and how many of them the
    -- current rate leaves unissued.
    expiring           bigint,
    expiring_unissued  bigint,
    expiring_before    timestamptz,
    soonest_expiry     timestamptz,
    -- Set when a mailing paused on this group raised the alert.
    mailing_id         bigint,
    -- Set when a lower level was reached in the same check: this level is recorded (it
    -- will not fire later) but only the lowest one is sent.
    suppressed         boolean     NOT NULL DEFAULT false,
    message            text        NOT NULL,
    created_at         timestamptz NOT NULL,
    UNIQUE (group_id, level, arming)
);
CREATE INDEX alerts_group ON alerts (group_id, id);

-- One row per (alert, channel, target): an email address or the webhook URL. A sender
-- claims pending rows under a lease (FOR UPDATE SKIP LOCKED), sends, and records the
-- outcome; a failure clears the lease so the next tick retries it.
CREATE TABLE alert_deliveries (
    alert_id      bigint      NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    channel       text        NOT NULL CHECK (channel IN ('email', 'webhook')),
    target        text        NOT NULL,
    status        text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts      integer     NOT NULL DEFAULT 0,
    last_error    text        NOT NULL DEFAULT '',
    leased_until  timestamptz,
    sent_at       timestamptz,
    PRIMARY KEY (alert_id, channel, target)
);
CREATE INDEX alert_deliveries_pending ON alert_deliveries (alert_id) WHERE status = 'pending';

-- The forecast counts each group's initial issues of the last 7 days once per tick. Rows
-- are appended in issued_at order, so a BRIN index (a few pages for billions of rows, no
-- cost worth measuring on the claim's insert path) narrows that count to the recent
-- blocks of the table instead of a sequential scan.
CREATE INDEX issues_issued_at_brin ON issues USING brin (issued_at);
