-- 0003: mass mailings, their recipients (the outbox) and their batches.

CREATE TABLE mailings (
    id               bigserial   PRIMARY KEY,
    name             text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    sender           text        NOT NULL,
    subject          text        NOT NULL,
    html             text        NOT NULL DEFAULT '',
    text_body        text        NOT NULL DEFAULT '',
    transport        text        NOT NULL DEFAULT 'default',
    -- {"customer_ids": [...]} or {"all": true}
    audience         jsonb       NOT NULL,
    -- Group ids resolved at creation, by lower(name): {"spring": 12}. An archived group
    -- keeps its id, so last_promocode still finds its codes.
    group_ids        jsonb       NOT NULL DEFAULT '{}',
    status           text        NOT NULL DEFAULT 'draft'
                     CHECK (status IN ('draft', 'running', 'paused', 'cancelled', 'finished')),
    pause_reason     text        NOT NULL DEFAULT '',
    while_codes_last boolean     NOT NULL DEFAULT false,
    batch_size       integer     NOT NULL DEFAULT 500 CHECK (batch_size BETWEEN 1 AND 10000),
    created_by       text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz
);

-- The outbox: one row per recipient, written when the mailing starts. The primary key
-- is the rule "at most one message per customer per mailing".
CREATE TABLE mailing_recipients (
    mailing_id   bigint      NOT NULL REFERENCES mailings (id) ON DELETE CASCADE,
    customer_id  text        NOT NULL,
    batch        integer     NOT NULL,
    status       text        NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sent', 'failed', 'skipped')),
    detail       text        NOT NULL DEFAULT '',
    updated_at   timestamptz,
    PRIMARY KEY (mailing_id, customer_id)
) WITH (fillfactor = 70);
-- fillfactor leaves room on each page so that recording an outcome (status, detail,
-- updated_at: no index covers them) is a HOT update that writes no index entry.
CREATE INDEX mailing_recipients_batch ON mailing_recipients (mailing_id, batch);

-- Batches of recipients, one Asynq task each. Counters are kept here (a batch's task
-- updates only its own row) so a mailing's progress sums a few hundred rows, not a
-- million recipients. The lease keeps two deliveries of one batch from running at once.
CREATE TABLE mailing_batches (
    mailing_id   bigint      NOT NULL REFERENCES mailings (id) ON DELETE CASCADE,
    batch        integer     NOT NULL,
    recipients   integer     NOT NULL,
    sent         integer     NOT NULL DEFAULT 0,
    failed       integer     NOT NULL DEFAULT 0,
    skipped      integer     NOT NULL DEFAULT 0,
    lease_until  timestamptz,
    -- Bumped at every enqueue (start, resume, cancel, reconcile); part of the task id, so
    -- a re-enqueue never collides with an old task Redis still holds (or archived).
    attempt      integer     NOT NULL DEFAULT 0,
    enqueued_at  timestamptz,
    done_at      timestamptz,
    PRIMARY KEY (mailing_id, batch)
);
CREATE INDEX mailing_batches_open ON mailing_batches (mailing_id) WHERE done_at IS NULL;

-- Codes issued by a mailing, per group (initial issues), for its progress page. Keyed
-- by batch too: a batch writes only its own row, so concurrent batches never wait on one
-- hot counter row (they did: it serialised every batch's commit); progress sums them.
CREATE TABLE mailing_group_counts (
    mailing_id  bigint  NOT NULL REFERENCES mailings (id) ON DELETE CASCADE,
    group_id    bigint  NOT NULL,
    batch       integer NOT NULL,
    issued      bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (mailing_id, group_id, batch)
);
