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
