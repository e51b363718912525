package mailings

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/groups"
	"promopool/macros"
	"promopool/mailer"
	"promopool/metrics"
)

// ErrTransient is returned by ProcessBatch when some messages met a transient failure:
// they stay queued and the task should be retried later.
var ErrTransient = errors.New("some messages failed transiently and stay queued")

// Scope is the idempotency scope of a mailing's issues.
func Scope(mailingID int64) string { return fmt.Sprintf("mailing:%d", mailingID) }

// MessageID is the stable id of the message a mailing sends a customer: a resend after a
// crash carries the same id (same .eml file, Message-ID, webhook Idempotency-Key).
func MessageID(mailingID int64, customerID string) string {
	return fmt.Sprintf("m%d.%s", mailingID, customerID)
}

// outcome is one recipient's final state, written by record.
type outcome struct {
	customer, status, detail string
}

// ProcessBatch runs one batch of a mailing, the body of the mailing:batch task, in
// phases: take the batch's lease (lease); read its queued recipients
// (queuedRecipients) and settle the batch if the mailing's state says so (prepare);
// partition them into those a message can go to and those it cannot (partition);
// claim the codes of the first and render their messages (claimCodes); send
// (sendBatch); record every outcome (record).
//
// It is safe to run any number of times, concurrently too:
//   - a lease on the batch row lets one delivery work at a time (another returns nil);
//   - only recipients still queued are considered, so a sent message is never re-sent
//     (except one whose send succeeded but whose record did not commit: it goes again
//     with the same Message id and the same code, since claims are idempotent by
//     (mailing, customer, group));
//   - a cancelled mailing's queued recipients are skipped and their codes returned.
//
// Errors: ErrNotFound (the mailing is gone: do not retry), ErrTransient (retry later),
// database errors (retry).
func (s *Service) ProcessBatch(ctx context.Context, mailingID int64, batch int) error {
	lease, err := s.lease(ctx, mailingID, batch)
	if err != nil || lease == nil {
		return err // no lease: done already, or another delivery holds it (the reconciler follows up)
	}
	defer s.unlease(context.WithoutCancel(ctx), mailingID, batch, lease.token)
	// sendCtx ends when the lease is lost: no message may leave once another delivery
	// can hold the batch.
	sendCtx, stopLease := s.holdLease(ctx, mailingID, batch, lease.token)
	defer stopLease()
	ctx = context.WithValue(ctx, leaseKey{}, lease.token)

	m, err := getMailing(ctx, s.db, mailingID, "")
	if err != nil {
		return err
	}
	recips, err := s.queuedRecipients(ctx, mailingID, batch)
	if err != nil {
		return err
	}
	queued := make([]string, len(recips))
	for i, r := range recips {
		queued[i] = r.ID
	}
	t, err := s.prepare(ctx, m, batch, queued)
	if t == nil || err != nil {
		return err // nothing to claim: the batch is settled, or waits for a resume
	}
	outcomes, sendable := partition(recips)
	comp, err := s.claimCodes(ctx, m, t, sendable, lease.first)
	if errors.Is(err, groups.ErrGroupNotFound) {
		s.pause(ctx, m.ID, PauseGroupDeleted, "a group this mailing draws from was deleted: "+err.Error())
		return s.record(ctx, m, batch, outcomes, counts{recount: true})
	}
	var wait *GroupWaitError
	if errors.As(err, &wait) {
		return s.waitForGroup(ctx, m, batch, outcomes, wait)
	}
	if err != nil {
		return err
	}
	// The mailing may have been paused or cancelled while codes were claimed: check
	// once more before anything leaves.
	if running, err := s.stillRunning(ctx, m, batch, queued, outcomes, comp); !running || err != nil {
		return err
	}
	transient, held, err := s.sendBatch(ctx, sendCtx, m, t, batch, comp, &outcomes)
	if err != nil {
		return err
	}
	if err := s.record(ctx, m, batch, outcomes, comp.counts()); err != nil {
		return err
	}
	if transient > 0 || held > 0 {
		return fmt.Errorf("batch %d of mailing %d: %d messages, %d waiting for codes held by unfinished claims: %w",
			batch, m.ID, transient, held, ErrTransient)
	}
	return nil
}

// waitForGroup pauses the mailing because a group it draws from is paused (pause kind
// "group", reason group_paused naming the group): nobody is sent a message or failed
// for it, its recipients stay queued, and it resumes by itself when the group is
// activated (ResumeGroupWait). What the batch decided without codes (unknown
// customers) is recorded. If the group was activated between the claim and the pause,
// its activation found the mailing running and resumed nothing: the check after the
// pause resumes it at once (the reconciler's sweep would, later).
func (s *Service) waitForGroup(ctx context.Context, m *Mailing, batch int, outcomes []outcome, wait *GroupWaitError) error {
	s.pause(ctx, m.ID, PauseGroup, wait.reason())
	s.log.Info("group is paused: mailing waits for it", "mailing_id", m.ID, "group_id", wait.GroupID, "err", wait.Err)
	if err := s.record(ctx, m, batch, outcomes, counts{recount: true}); err != nil {
		return err
	}
	if _, err := s.ResumeGroupWait(ctx, wait.GroupID, fmt.Sprintf("group %q was active again", wait.Group)); err != nil {
		s.log.Warn("checking a paused group again failed; the reconciler will", "mailing_id", m.ID, "group_id", wait.GroupID, "err", err)
	}
	return nil
}

// queuedRecipients reads the batch's recipients still queued, with their customer
// fields, in one query.
func (s *Service) queuedRecipients(ctx context.Context, mailingID int64, batch int) ([]Recipient, error) {
	var recips []Recipient
	if err := s.db.SelectContext(ctx, &recips, `
		SELECT r.customer_id AS id, `+customerColumns+`
		FROM mailing_recipients r LEFT JOIN customers c ON c.id = r.customer_id
		WHERE r.mailing_id = $1 AND r.batch = $2 AND r.status = 'queued' ORDER BY r.customer_id`,
		mailingID, batch); err != nil {
		return nil, fmt.Errorf("reading the recipients of batch %d of mailing %d: %w", batch, mailingID, err)
	}
	return recips, nil
}

// prepare settles what it can before any claim: a cancelled mailing's queued
// recipients are skipped (their codes returned); a mailing that is not running leaves
// them queued (a resume enqueues the batch again); an empty batch is only recorded; a
// template that no longer parses skips them. It returns the template when the batch
// goes on to claim, nil when it is settled (err says how that went).
func (s *Service) prepare(ctx context.Context, m *Mailing, batch int, queued []string) (*macros.Template, error) {
	switch m.Status {
	case StatusCancelled:
		return nil, s.skipAndRelease(ctx, m, batch, queued, "mailing cancelled")
	case StatusRunning:
	default:
		return nil, nil // paused (resume re-enqueues), draft, finished
	}
	if len(queued) == 0 {
		return nil, s.record(ctx, m, batch, nil, counts{})
	}
	t, err := s.tmpl.get(m)
	if err != nil {
		return nil, s.skipAndRelease(ctx, m, batch, queued, "template no longer parses: "+err.Error())
	}
	return t, nil
}

// partition sets aside the recipients no message can go to (unknown customers, no
// email address), with their outcome, from those that get one.
func partition(recips []Recipient) (outcomes []outcome, sendable []Recipient) {
	for _, r := range recips {
		switch {
		case !r.Known:
			outcomes = append(outcomes, outcome{r.ID, RecipientSkipped, "unknown customer"})
		case r.Email == "":
			outcomes = append(outcomes, outcome{r.ID, RecipientSkipped, "customer has no email address"})
		default:
			sendable = append(sendable, r)
		}
	}
	return outcomes, sendable
}

// claimCodes claims every sendable recipient's codes and renders their messages
// (compose); first says the batch is on its first delivery.
func (s *Service) claimCodes(ctx context.Context, m *Mailing, t *macros.Template, sendable []Recipient, first bool) (*composition, error) {
	if len(sendable) == 0 {
		return &composition{uncovered: map[string]string{}, issued: map[int64]int{}, recount: !first}, nil
	}
	comp, err := s.compose(ctx, t, m.GroupIDs, Scope(m.ID), &m.ID, sendable, first, m.OnExhaustion == OnExhaustionFallback)
	if comp != nil {
		comp.recount = !first
	}
	return comp, err
}

// stillRunning reads the mailing's status again after the claim. When it is no longer
// running, nothing is sent: what was decided and issued is recorded, and a cancelled
// mailing's recipients are skipped with their codes returned.
func (s *Service) stillRunning(ctx context.Context, m *Mailing, batch int, queued []string, outcomes []outcome, comp *composition) (bool, error) {
	var status string
	if err := s.db.GetContext(ctx, &status, `SELECT status FROM mailings WHERE id = $1`, m.ID); err != nil {
		return false, err
	}
	if status == StatusRunning {
		return true, nil
	}
	if err := s.record(ctx, m, batch, outcomes, comp.counts()); err != nil {
		return false, err
	}
	if status == StatusCancelled {
		return false, s.skipAndRelease(ctx, m, batch, pending(queued, outcomes), "mailing cancelled")
	}
	return false, nil
}

// sendBatch sends what the claim rendered and adds the outcomes. Recipients a group
// could not cover get no message (and may pause the mailing); the others, who hold
// every code, are sent now. It returns how many messages failed transiently and how
// many recipients wait for codes that unfinished claims hold: both stay queued.
func (s *Service) sendBatch(ctx, sendCtx context.Context, m *Mailing, t *macros.Template, batch int, comp *composition, outcomes *[]outcome) (transient, held int, err error) {
	held, err = s.heldByReservations(ctx, m, comp)
	if err != nil {
		return 0, 0, err
	}
	if len(comp.uncovered) > 0 {
		if err := s.uncovered(ctx, m, t, batch, comp, outcomes); err != nil {
			return 0, 0, err
		}
	}
	transient, err = s.send(ctx, sendCtx, m, t, batch, comp, outcomes)
	if err != nil {
		return 0, 0, err
	}
	return transient, held, nil
}

// heldByReservations takes out of comp.uncovered the recipients of groups whose pool
// is empty only because reservations hold codes: claims that reserved and never issued
// (a worker killed, a connection cut between the two steps) until the reconciler returns
// their codes (RESERVATION_TIMEOUT), or claims still running. Such a group is not
// exhausted — pausing the mailing ("ran out of codes") or skipping its recipients would
// be wrong — so they stay queued and the batch is retried. It returns how many.
func (s *Service) heldByReservations(ctx context.Context, m *Mailing, comp *composition) (int, error) {
	if len(comp.uncovered) == 0 {
		return 0, nil
	}
	held := map[string]bool{}
	for _, g := range comp.uncovered {
		if _, seen := held[g]; seen {
			continue
		}
		any, err := s.groups.ReservationsHeld(ctx, m.GroupIDs[macros.GroupKey(g)])
		if err != nil {
			return 0, err
		}
		held[g] = any
	}
	n := 0
	for c, g := range comp.uncovered {
		if held[g] {
			delete(comp.uncovered, c)
			n++
		}
	}
	if n > 0 {
		s.log.Info("group's free codes are held by unfinished claims: recipients wait for a retry", "mailing_id", m.ID, "waiting", n)
	}
	return n, nil
}

// uncovered handles recipients a group could not cover, as the mailing's on_exhaustion
// says: "skip" skips them (and their codes from other groups go back); "fallback" sends
// them the message with the fallback text of each group that had no code (no code
// recorded for it); "pause" pauses the mailing with them queued for the resume, and the
// exhaustion is alerted at once.
func (s *Service) uncovered(ctx context.Context, m *Mailing, t *macros.Template, batch int, comp *composition, outcomes *[]outcome) error {
	byGroup := map[string]int{}
	var ids []string
	for c, g := range comp.uncovered {
		byGroup[g]++
		ids = append(ids, c)
	}
	switch m.OnExhaustion {
	case OnExhaustionSkip:
		for _, c := range ids {
			*outcomes = append(*outcomes, outcome{c, RecipientSkipped, fmt.Sprintf("group %q had no code left", comp.uncovered[c])})
		}
		comp.released = true
		return s.release(ctx, m, t, batch, ids)
	case OnExhaustionFallback:
		for _, c := range comp.short {
			if _, still := comp.uncovered[c.r.ID]; still {
				comp.ready = append(comp.ready, c)
			}
		}
		return nil
	}
	for g, n := range byGroup {
		gid := m.GroupIDs[macros.GroupKey(g)]
		s.log.Warn("group ran out of codes: mailing paused", "group_id", gid, "mailing_id", m.ID, "waiting", n)
		if s.alerter != nil {
			s.alerter.GroupExhausted(ctx, gid, m.ID, n)
		}
		s.pause(ctx, m.ID, PauseExhausted, fmt.Sprintf("group %q ran out of codes: it resumes by itself once codes are uploaded", g))
	}
	return nil
}

// pause marks a running mailing paused with a reason, and records the system's pause
// event (one statement: the event is written only if the mailing was running).
func (s *Service) pause(ctx context.Context, id int64, kind, reason string) {
	_, err := s.db.ExecContext(ctx, `
		WITH paused AS (
			UPDATE mailings SET status = 'paused', pause_reason = $2, pause_kind = $3 WHERE id = $1 AND status = 'running' RETURNING id)
		, e AS (
			INSERT INTO mailing_events (mailing_id, action, actor_kind, actor_name)
			SELECT id, 'pause', 'system', 'promopool' FROM paused RETURNING id, mailing_id)
		INSERT INTO mailing_event_details (event_id, mailing_id, detail) SELECT id, mailing_id, left($2, 1000) FROM e`, id, reason, kind)
	if err != nil {
		s.log.Error("pausing mailing failed", "mailing_id", id, "err", err)
	}
}

// send renders the ready messages and hands them to the transport a chunk at a time
// (at most Config.BatchBytes of rendered messages, or one message, are held at once),
// and turns each result into an outcome. A message larger than the template's limit
// (MAX_MESSAGE_BYTES) fails its recipient; it and definitive rejections return their
// codes to the pool. It returns how many failed transiently (they stay queued).
// The transport sends under sendCtx (it ends when the batch's lease is lost: messages
// not yet sent then stay queued, as Temporary); the rest runs under ctx.
func (s *Service) send(ctx, sendCtx context.Context, m *Mailing, t *macros.Template, batch int, comp *composition, outcomes *[]outcome) (int, error) {
	ready := comp.ready
	if len(ready) == 0 {
		return 0, nil
	}
	if s.sender == nil {
		return 0, errors.New("this process has no transport to send with")
	}
	rn := newRenderer(t)
	transient := 0
	var release []string
	var msgs []mailer.Message
	var custs, notes []string
	held := 0
	flush := func() {
		if len(msgs) == 0 {
			return
		}
		tr, rej := s.sendChunk(sendCtx, m, msgs, custs, notes, outcomes)
		transient += tr
		release = append(release, rej...)
		msgs, custs, notes, held = msgs[:0], custs[:0], notes[:0], 0
	}
	for i := range ready {
		rd, err := rn.render(&ready[i])
		if errors.Is(err, macros.ErrMessageTooLarge) {
			release = append(release, ready[i].r.ID)
			*outcomes = append(*outcomes, outcome{ready[i].r.ID, RecipientFailed, "message too large: " + err.Error() + " (codes returned to the pool)"})
			continue
		}
		if errors.Is(err, macros.ErrMissingColumn) {
			// The code's row lacks a column the template inserts (uploaded without it):
			// no code goes out without its PIN.
			release = append(release, ready[i].r.ID)
			*outcomes = append(*outcomes, outcome{ready[i].r.ID, RecipientFailed, "missing code column: " + err.Error() + " (codes returned to the pool)"})
			continue
		}
		if err != nil {
			return 0, err
		}
		if n := rd.size(); held > 0 && held+n > s.cfg.BatchBytes {
			flush()
		}
		held += rd.size()
		msgs = append(msgs, mailer.Message{ID: MessageID(m.ID, rd.CustomerID), From: m.Sender, To: rd.Email, Subject: rd.Subject, HTML: rd.HTML, Text: rd.Text})
		custs = append(custs, rd.CustomerID)
		notes = append(notes, ready[i].note(t))
	}
	flush()
	if len(release) > 0 {
		comp.released = true
		if err := s.release(ctx, m, t, batch, release); err != nil {
			return 0, err
		}
	}
	return transient, nil
}

// sendChunk sends one chunk of messages (to custs) and adds their outcomes; it returns
// how many failed transiently and the customers whose messages were definitively
// rejected (their codes go back to the pool).
func (s *Service) sendChunk(sendCtx context.Context, m *Mailing, msgs []mailer.Message, custs, notes []string, outcomes *[]outcome) (int, []string) {
	if sendCtx.Err() != nil {
		return len(msgs), nil // the lease is lost: nothing more leaves
	}
	results, err := s.sender.Send(sendCtx, msgs)
	if err != nil {
		s.log.Warn("transport failed for a whole batch", "mailing_id", m.ID, "messages", len(msgs), "err", err)
		return len(msgs), nil
	}
	transient := 0
	var rejected []string
	for i, r := range results {
		c := custs[i]
		switch r.Outcome {
		case mailer.Sent:
			*outcomes = append(*outcomes, outcome{c, RecipientSent, notes[i]})
		case mailer.Rejected:
			rejected = append(rejected, c)
			*outcomes = append(*outcomes, outcome{c, RecipientFailed, "rejected: " + errText(r.Err) + " (codes returned to the pool)"})
		case mailer.Ambiguous:
			*outcomes = append(*outcomes, outcome{c, RecipientFailed, "delivery unknown: " + errText(r.Err) + " (codes kept issued)"})
		default:
			transient++
		}
	}
	return transient, rejected
}

func errText(err error) string {
	if err == nil {
		return "no reason given"
	}
	return err.Error()
}

// release returns the codes the customers were issued by this mailing (every group the
// template draws new codes from) to the pool; the issue rows stay, marked released. The
// batch's codes-issued counters are then recounted by its record (counts.recount).
func (s *Service) release(ctx context.Context, m *Mailing, t *macros.Template, batch int, customers []string) error {
	if len(customers) == 0 {
		return nil
	}
	for _, g := range t.NewCodeGroups() {
		gid, ok := m.GroupIDs[macros.GroupKey(g)]
		if !ok {
			continue
		}
		if _, err := s.groups.Release(ctx, gid, Scope(m.ID), customers); err != nil {
			return fmt.Errorf("returning codes of mailing %d to group %d: %w", m.ID, gid, err)
		}
	}
	return nil
}

// skipAndRelease marks queued recipients skipped and returns any codes they were issued.
func (s *Service) skipAndRelease(ctx context.Context, m *Mailing, batch int, customers []string, why string) error {
	if t, err := s.tmpl.get(m); err == nil {
		if err := s.release(ctx, m, t, batch, customers); err != nil {
			return err
		}
	}
	outs := make([]outcome, len(customers))
	for i, c := range customers {
		outs[i] = outcome{c, RecipientSkipped, why}
	}
	return s.record(ctx, m, batch, outs, counts{recount: true})
}

// pending is the queued customers that have no outcome yet.
func pending(queued []string, outs []outcome) []string {
	done := make(map[string]bool, len(outs))
	for _, o := range outs {
		done[o.customer] = true
	}
	var out []string
	for _, c := range queued {
		if !done[c] {
			out = append(out, c)
		}
	}
	return out
}

// record writes a delivery's outcomes, recomputes the batch's counters from its rows
// (idempotent), counts the codes issued per group (count), and finishes the mailing
// when its last batch is done — one transaction.
//
// A plain "sent" (no detail) is not written per recipient: when every recipient still
// queued in the batch was sent by this delivery, the batch is settled — done_at is set
// and its rows still queued count as sent (the view mailing_recipient_status, migration
// 0032). A mailing then writes no outbox row after the start in the common case; a
// tuple per recipient was 9–12% of a mailing's PostgreSQL samples. Failures, skips and
// sends with a detail (fallback) are written on the recipient's row, only over rows
// still queued; plain sends too when some recipients stay queued (a transient failure,
// codes held by unfinished claims), since the batch is not settled then.
//
// The batch's row is locked first, so the records of two deliveries of one batch (one
// that lost its lease and went on) follow each other, and one that finds the batch
// settled writes no outcome: the first to record keeps each recipient's outcome, as the
// per-row "status = 'queued'" guard does for the written ones.
func (s *Service) record(ctx context.Context, m *Mailing, batch int, outs []outcome, cnt counts) error {
	var recounted map[int64]int64
	if cnt.recount {
		var err error
		if recounted, err = s.recount(ctx, m, batch); err != nil {
			return err
		}
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// The record commits without waiting for the WAL flush (as leases do): losing it in
	// a crash of PostgreSQL is losing it in a crash of the worker just before it, which
	// the batch survives — its recipients are still queued, so the next delivery sends
	// them again with the same message ids and codes, and recounts the codes issued.
	// WAL is one stream, so a record that survives a crash brings every commit before it
	// (the issues it counts) along. That saves a flush per batch.
	if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
		return err
	}
	var settled bool
	if err := tx.GetContext(ctx, &settled, `
		SELECT done_at IS NOT NULL FROM mailing_batches WHERE mailing_id = $1 AND batch = $2 FOR NO KEY UPDATE`, m.ID, batch); err != nil {
		return fmt.Errorf("recording batch %d of mailing %d: %w", batch, m.ID, err)
	}
	var recorded []string // the statuses actually written, for the metrics after the commit
	var plain []string    // plain sends: settled with the batch, or written below
	if !settled {
		var written []outcome
		for _, o := range outs {
			if o.status == RecipientSent && o.detail == "" {
				plain = append(plain, o.customer)
			} else {
				written = append(written, o)
			}
		}
		if recorded, err = writeOutcomes(ctx, tx, m.ID, batch, written); err != nil {
			return err
		}
	}
	c, err := updateBatch(ctx, tx, m.ID, batch, plain)
	if err != nil {
		return err
	}
	switch {
	case len(plain) == 0:
	case c.Settled:
		// This delivery settled the batch: its queued rows are the plain sends.
		for range c.Queued {
			recorded = append(recorded, RecipientSent)
		}
	default:
		// Some recipients stay queued: the plain sends are written row by row.
		outs := make([]outcome, len(plain))
		for i, id := range plain {
			outs[i] = outcome{id, RecipientSent, ""}
		}
		more, err := writeOutcomes(ctx, tx, m.ID, batch, outs)
		if err != nil {
			return err
		}
		recorded = append(recorded, more...)
		if _, err := updateBatch(ctx, tx, m.ID, batch, nil); err != nil {
			return err
		}
	}
	if err := writeCounts(ctx, tx, m, batch, cnt, recounted); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	countRecorded(recorded)
	// After the commit, not inside it: two last batches committing at once would each
	// see the other still open and neither would finish the mailing. Checked after
	// each commit, the last committer sees every batch done.
	_, err = finishDone(ctx, s.db, m.ID)
	return err
}

// writeOutcomes writes outcomes on the recipients' rows, only over rows still queued,
// and returns the statuses written.
func writeOutcomes(ctx context.Context, tx *sqlx.Tx, mailingID int64, batch int, outs []outcome) ([]string, error) {
	if len(outs) == 0 {
		return nil, nil
	}
	ids, sts, det := make([]string, len(outs)), make([]string, len(outs)), make([]string, len(outs))
	for i, o := range outs {
		ids[i], sts[i], det[i] = o.customer, o.status, truncate(o.detail, 500)
	}
	// "batch = $5" bounds the update to the batch's rows through its index: with
	// statistics, (mailing_id, customer_id) alone was planned as a hash join over
	// every recipient of the mailing, once per batch (7.8k messages/s at 1M).
	var recorded []string
	err := tx.SelectContext(ctx, &recorded, `
		UPDATE mailing_recipients r SET status = u.status, detail = u.detail, updated_at = now()
		FROM unnest($2::text[], $3::text[], $4::text[]) AS u(customer_id, status, detail)
		WHERE r.mailing_id = $1 AND r.batch = $5 AND r.customer_id = u.customer_id AND r.status = 'queued'
		RETURNING r.status`,
		mailingID, pq.Array(ids), pq.Array(sts), pq.Array(det), batch)
	if err != nil {
		return nil, fmt.Errorf("recording outcomes of mailing %d: %w", mailingID, err)
	}
	return recorded, nil
}

// batchState is what updateBatch found.
type batchState struct {
	Settled bool `db:"settled"` // the batch is done: its rows still queued were sent
	Queued  int  `db:"queued"`  // rows still queued (sent, when Settled)
}

// updateBatch recomputes the batch's counters from its rows, in record's transaction
// (the batch row locked). The batch is done when no row is queued, or — settled — when
// it was done already or every queued row is among plain, the customers this delivery
// sent a plain message: its rows still queued then count as sent.
func updateBatch(ctx context.Context, tx *sqlx.Tx, mailingID int64, batch int, plain []string) (batchState, error) {
	const settle = `(b.done_at IS NOT NULL OR (coalesce(cardinality($3::text[]), 0) > 0 AND x.stray = 0))`
	var st batchState
	err := tx.GetContext(ctx, &st, `
		UPDATE mailing_batches b SET
		       sent = x.sent + CASE WHEN `+settle+` THEN x.queued ELSE 0 END,
		       failed = x.failed, skipped = x.skipped, fallback = x.fallback,
		       done_at = CASE WHEN `+settle+` OR x.queued = 0 THEN coalesce(b.done_at, now()) END
		FROM (SELECT count(*) FILTER (WHERE r.status = 'sent') AS sent, count(*) FILTER (WHERE r.status = 'failed') AS failed,
		             count(*) FILTER (WHERE r.status = 'skipped') AS skipped, count(*) FILTER (WHERE r.status = 'queued') AS queued,
		             count(*) FILTER (WHERE r.status = 'sent' AND r.detail LIKE 'fallback:%') AS fallback,
		             count(*) FILTER (WHERE r.status = 'queued' AND u.c IS NULL) AS stray
		      FROM mailing_recipients r LEFT JOIN unnest($3::text[]) AS u(c) ON u.c = r.customer_id
		      WHERE r.mailing_id = $1 AND r.batch = $2) x
		WHERE b.mailing_id = $1 AND b.batch = $2
		RETURNING `+settle+` AS settled, x.queued`, mailingID, batch, pq.Array(plain))
	if err != nil {
		return st, fmt.Errorf("updating batch %d of mailing %d: %w", batch, mailingID, err)
	}
	return st, nil
}

// counts says how record updates a batch's codes-issued counters (mailing_group_counts,
// the mailing's progress.codes_issued).
type counts struct {
	// issued are the codes this delivery took from the pool, per group id: added.
	issued map[int64]int
	// recount replaces the batch's counters with the codes its recipients hold under
	// the mailing's scope, whichever delivery issued them. Needed when a delivery
	// cannot know what the earlier ones counted — a redelivery after a crash between
	// claim and record finds its codes issued and takes none — or when codes went back
	// to the pool.
	recount bool
}

// counts is how the batch's delivery that made c counts its codes.
func (c *composition) counts() counts {
	return counts{issued: c.issued, recount: c.recount || c.released}
}

// leaseKey carries the lease token of the delivery running a batch (ProcessBatch) to
// the counters it writes.
type leaseKey struct{}

// heldBy is the lease token in ctx (0: none).
func heldBy(ctx context.Context) int64 {
	tok, _ := ctx.Value(leaseKey{}).(int64)
	return tok
}

// recount reads, per group the template draws new codes from, how many codes the
// batch's recipients hold under the mailing's scope (before record's transaction:
// the issues are groups'). nil when nothing can have been claimed.
func (s *Service) recount(ctx context.Context, m *Mailing, batch int) (map[int64]int64, error) {
	t, err := s.tmpl.get(m)
	if err != nil {
		return nil, nil // nothing was claimed under a template that does not parse
	}
	var custs []string
	if err := s.db.SelectContext(ctx, &custs, `SELECT customer_id FROM mailing_recipients WHERE mailing_id = $1 AND batch = $2`, m.ID, batch); err != nil {
		return nil, fmt.Errorf("reading the recipients of batch %d of mailing %d: %w", batch, m.ID, err)
	}
	out := map[int64]int64{}
	for _, g := range t.NewCodeGroups() {
		gid, ok := m.GroupIDs[macros.GroupKey(g)]
		if !ok {
			continue
		}
		n, err := s.groups.HeldUnder(ctx, gid, Scope(m.ID), custs)
		if err != nil {
			return nil, fmt.Errorf("recounting the codes of batch %d of mailing %d: %w", batch, m.ID, err)
		}
		out[gid] = n
	}
	return out, nil
}

// writeCounts applies a delivery's counts to the batch's codes-issued counters, in
// record's transaction: set to the recount, or added. Only the delivery holding the
// batch's lease writes (its token still on the batch row): a delivery that lost its
// lease — a worker cut off, then back — must not add what the next delivery's recount
// already holds.
func writeCounts(ctx context.Context, tx *sqlx.Tx, m *Mailing, batch int, cnt counts, recounted map[int64]int64) error {
	token := heldBy(ctx)
	const holder = `(SELECT $5::bigint = 0 OR EXISTS (SELECT 1 FROM mailing_batches WHERE mailing_id = $1 AND batch = $3 AND lease_token = $5))`
	if cnt.recount {
		for gid, n := range recounted {
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO mailing_group_counts (mailing_id, group_id, batch, issued) SELECT $1, $2, $3, $4 WHERE `+holder+`
				ON CONFLICT (mailing_id, group_id, batch) DO UPDATE SET issued = excluded.issued`, m.ID, gid, batch, n, token); err != nil {
				return err
			}
		}
		return nil
	}
	for gid, n := range cnt.issued {
		if n == 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO mailing_group_counts (mailing_id, group_id, batch, issued) SELECT $1, $2, $3, $4 WHERE `+holder+`
			ON CONFLICT (mailing_id, group_id, batch) DO UPDATE SET issued = mailing_group_counts.issued + excluded.issued`, m.ID, gid, batch, n, token); err != nil {
			return err
		}
	}
	return nil
}

// finishMailings marks finished the running (or cancelled) mailings, one or all
// (id 0), whose outbox is complete and whose batches are all done.
const finishMailings = `
UPDATE mailings m SET status = CASE WHEN status = 'running' THEN 'finished' ELSE status END, finished_at = now()
WHERE ($1 = 0 OR m.id = $1) AND m.status IN ('running', 'cancelled') AND m.finished_at IS NULL AND m.started_at IS NOT NULL
  AND m.outbox_complete
  AND NOT EXISTS (SELECT 1 FROM mailing_batches b WHERE b.mailing_id = m.id AND b.done_at IS NULL)`

// finishDone applies finishMailings and returns how many mailings it finished.
func finishDone(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, id int64) (int64, error) {
	res, err := db.ExecContext(ctx, finishMailings, id)
	if err != nil {
		return 0, fmt.Errorf("finishing mailings: %w", err)
	}
	return res.RowsAffected()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// countRecorded adds the outcomes a record committed to the messages metric.
func countRecorded(statuses []string) {
	n := map[string]int{}
	for _, st := range statuses {
		n[st]++
	}
	for st, c := range n {
		metrics.MailingMessages.WithLabelValues(st).Add(float64(c))
	}
}
