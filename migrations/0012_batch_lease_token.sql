-- 0012: a batch's lease names its holder, and the holder renews it while it works.
-- The lease was a bare expiry time (MAILING_LEASE, 2 minutes), set once. A batch that
-- sent for longer (a slow SMTP relay, a large batch) lost it mid-send: another delivery
-- could take the batch and send its still-queued recipients a second time, and the first
-- delivery's release at the end cleared the second one's lease. Now each delivery writes
-- a random token with the lease, renews it every third of MAILING_LEASE while it works,
-- stops sending if a renewal finds the lease taken over, and releases only its own.
-- leases counts a batch's deliveries: the first one knows that none of its recipients
-- holds a code under the mailing's scope yet, and its claims skip the re-claim check.
-- A batch already delivered before this migration counts from 0 too: if its next
-- delivery is wrongly taken for a first one, the unique index on (scope, customer,
-- group) refuses a second code and the claim falls back to the codes already held.
ALTER TABLE mailing_batches ADD COLUMN lease_token bigint,
                            ADD COLUMN leases integer NOT NULL DEFAULT 0;
