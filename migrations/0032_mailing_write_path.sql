-- 0032: the writes a mailing makes per message (issue 22, targets 1 and 2).
--
-- 1. A mailing's plain sends are recorded per batch, not per recipient.
--
-- Recording every outcome on its recipient's row wrote a new tuple per message (an
-- update of mailing_recipients; in `bench mailing` 61% of them were not even HOT, the
-- pages being full, and wrote both index entries again): 13-19% of the worker backends'
-- samples. Now a delivery that sent every recipient still queued in its batch a plain
-- message (no detail) settles the batch — done_at is set — and writes no recipient row:
-- the rows of a done batch still 'queued' were sent. Failures, skips and sends with a
-- detail (fallback) are still written on their rows, and so are plain sends whenever
-- some recipients stay queued (a transient failure): the batch is not done then.
-- Before this migration a batch was done only with no row queued, so existing rows read
-- the same.
--
-- mailing_recipient_status is each recipient's outcome as the mailing counts it.
CREATE VIEW mailing_recipient_status AS
SELECT r.mailing_id, r.customer_id, r.batch,
       CASE WHEN r.status = 'queued' AND b.done_at IS NOT NULL THEN 'sent' ELSE r.status END AS status,
       r.detail,
       CASE WHEN r.status = 'queued' THEN b.done_at ELSE r.updated_at END AS updated_at
FROM mailing_recipients r
JOIN mailing_batches b ON b.mailing_id = r.mailing_id AND b.batch = r.batch;

-- 2. segment_groups keeps one index, not two.
--
-- The fold writes a segment_groups row per (group, customer) it touches, and each row
-- had two index entries: the primary key (covering the counts and last_at) and the
-- partial index segment_groups_initial (group_id, cust) INCLUDE (last_initial_at) WHERE
-- n_initial > 0 — the same key again. The primary key now covers last_initial_at too,
-- and the queries that read the partial index ("issued from G", with or without a
-- since-window) read it instead, index-only, with n_initial > 0 and the window as
-- filters on its included columns. An update by the fold was never HOT anyway (the
-- counts it changes were already in the primary key).
SET LOCAL maintenance_work_mem = '256MB';
ALTER TABLE segment_groups DROP CONSTRAINT segment_groups_pkey,
    ADD CONSTRAINT segment_groups_pkey PRIMARY KEY (group_id, cust) INCLUDE (n_initial, n_repeat, last_at, last_initial_at);
DROP INDEX segment_groups_initial;
