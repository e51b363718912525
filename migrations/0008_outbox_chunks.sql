-- 0008: a mailing's outbox is written in chunks, and sending starts with the first.
-- Written in one transaction, the outbox of a 1,000,000-recipient mailing took 4 s
-- during which no worker could send (a task cannot see uncommitted rows). Now each
-- chunk (about 50,000 recipients, whole batches) commits and its batches are enqueued
-- while the next chunk is written. The cursor says where the next chunk starts in the
-- audience's order (customer id for "all", customer number for a segment), so a writer
-- that dies is continued by the reconciler, and a mailing is finished only once its
-- outbox is complete. Existing mailings wrote their outbox whole: complete.
ALTER TABLE mailings
    ADD COLUMN outbox_complete   boolean     NOT NULL DEFAULT true,
    ADD COLUMN outbox_cursor     text        NOT NULL DEFAULT '',
    ADD COLUMN outbox_next_batch integer     NOT NULL DEFAULT 0,
    ADD COLUMN outbox_at         timestamptz;
CREATE INDEX mailings_outbox_open ON mailings (outbox_at) WHERE NOT outbox_complete;
