package mailings

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"

	"promopool/groups"
	"promopool/macros"
)

// Reconcile finishes mailings whose batches are all done, continues outboxes whose
// writer stopped (Config.OutboxStale), and enqueues again the open batches of running
// or cancelled mailings that hold no live lease and were last enqueued longer ago than
// Config.ReenqueueAfter: their tasks were lost (Redis restarted without its data, a
// task archived after its retries, a worker killed while its lease ran out). When the
// enqueuer is a QueueChecker, batches whose task still waits in the queue are left
// alone. Each gets a new attempt number, hence a new task id; a duplicate delivery
// finds the batch done or leased and does nothing. Returns how many batches it enqueued.
func (s *Service) Reconcile(ctx context.Context) (int, error) {
	// A mailing whose last batch's finish check failed (the process died right after
	// committing) is finished here.
	if _, err := finishDone(ctx, s.db, 0); err != nil {
		return 0, err
	}
	// Outboxes whose writer stopped between chunks (its process died) are continued.
	var unwritten []int64
	if err := s.db.SelectContext(ctx, &unwritten, `
		SELECT id FROM mailings WHERE NOT outbox_complete AND outbox_at < now() - make_interval(secs => $1)`,
		s.cfg.OutboxStale.Seconds()); err != nil {
		return 0, fmt.Errorf("reconciling mailings: %w", err)
	}
	for _, id := range unwritten {
		s.log.Warn("continuing the outbox of a mailing whose writer stopped", "mailing_id", id)
		if err := s.fillOutbox(ctx, id, nil); err != nil {
			return 0, err
		}
	}
	var cands []BatchRef
	err := s.db.SelectContext(ctx, &cands, `
		SELECT b.mailing_id, b.batch, b.attempt FROM mailing_batches b JOIN mailings m ON m.id = b.mailing_id
		WHERE m.status IN ('running', 'cancelled') AND b.done_at IS NULL
		  AND (b.lease_until IS NULL OR b.lease_until < now())
		  AND (b.enqueued_at IS NULL OR b.enqueued_at < now() - make_interval(secs => $1))`, s.cfg.ReenqueueAfter.Seconds())
	if err != nil || len(cands) == 0 {
		if err != nil {
			return 0, fmt.Errorf("reconciling mailings: %w", err)
		}
		return 0, nil
	}
	waiting := make([]bool, len(cands))
	if qc, ok := s.enqueuer.(QueueChecker); ok {
		if w, err := qc.Waiting(ctx, cands); err != nil || len(w) != len(cands) {
			s.log.Warn("reconciler could not read the queue: enqueuing every candidate batch again", "err", err)
		} else {
			waiting = w
		}
	}
	var wait, lost [3][]int64
	for i, r := range cands {
		dst := &lost
		if waiting[i] {
			dst = &wait
		}
		dst[0], dst[1], dst[2] = append(dst[0], r.MailingID), append(dst[1], int64(r.Batch)), append(dst[2], int64(r.Attempt))
	}
	// Batches whose task still waits count as enqueued now: looked at again after
	// ReenqueueAfter. The others get a new attempt; "attempt = u.a" keeps two
	// reconcilers (one per worker) from both enqueuing one batch.
	if len(wait[0]) > 0 {
		if _, err := s.db.ExecContext(ctx, `
			UPDATE mailing_batches b SET enqueued_at = now()
			FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(m, bt, a)
			WHERE b.mailing_id = u.m AND b.batch = u.bt AND b.attempt = u.a`,
			pq.Array(wait[0]), pq.Array(wait[1]), pq.Array(wait[2])); err != nil {
			return 0, fmt.Errorf("reconciling mailings: %w", err)
		}
	}
	var refs []BatchRef
	if len(lost[0]) > 0 {
		err = s.db.SelectContext(ctx, &refs, `
			UPDATE mailing_batches b SET attempt = b.attempt + 1, enqueued_at = now()
			FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(m, bt, a)
			WHERE b.mailing_id = u.m AND b.batch = u.bt AND b.attempt = u.a AND b.done_at IS NULL
			  AND (b.lease_until IS NULL OR b.lease_until < now())
			RETURNING b.mailing_id, b.batch, b.attempt`, pq.Array(lost[0]), pq.Array(lost[1]), pq.Array(lost[2]))
		if err != nil {
			return 0, fmt.Errorf("reconciling mailings: %w", err)
		}
	}
	if len(refs) > 0 {
		if s.enqueuer == nil {
			return 0, fmt.Errorf("reconciling mailings: no enqueuer")
		}
		if err := s.enqueuer.EnqueueBatches(ctx, refs); err != nil {
			return 0, fmt.Errorf("reconciling mailings: %w", err)
		}
		s.log.Info("re-enqueued lost batches", "batches", len(refs))
	}
	return len(refs), nil
}

// RunReconciler calls Reconcile and returns the codes of claims that crashed between
// their two transactions to the pool (groups.Store.RecoverReservations), every
// interval until ctx ends.
func (s *Service) RunReconciler(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("reconciler failed", "err", err)
			}
			n, err := s.groups.RecoverReservations(ctx, s.cfg.ReservationTimeout)
			if err != nil && ctx.Err() == nil {
				s.log.Error("recovering reservations failed", "err", err)
			} else if n > 0 {
				s.log.Info("returned codes of crashed claims to the pool", "codes", n)
			}
		}
	}
}

// Preview renders a mailing for one customer (or the sample customer when customerID
// is empty): nothing is claimed or recorded. promocode shows a placeholder (the code is
// drawn at send time); for a real customer, last_promocode shows the code the send
// would re-insert (empty if the customer has none), for the sample a placeholder.
// Errors: ErrNotFound.
func (s *Service) Preview(ctx context.Context, id int64, customerID string) (*Rendered, error) {
	m, err := getMailing(ctx, s.db, id, "")
	if err != nil {
		return nil, err
	}
	t, err := s.tmpl.get(m)
	if err != nil {
		return nil, err
	}
	return s.preview(ctx, t, customerID, m.GroupIDs)
}

// PreviewTemplate renders a template with placeholders for one customer or the sample.
// Errors: *macros.ValidationError.
func (s *Service) PreviewTemplate(ctx context.Context, src macros.Source, customerID string) (*Rendered, error) {
	t, err := macros.Parse(src)
	if err != nil {
		return nil, err
	}
	return s.preview(ctx, t, customerID, nil)
}

// preview renders t for a customer; groupIDs resolves last_promocode groups (nil: the
// live groups of those names).
func (s *Service) preview(ctx context.Context, t *macros.Template, customerID string, groupIDs map[string]int64) (*Rendered, error) {
	var c *macros.Customer
	if customerID != "" {
		rs, err := loadRecipients(ctx, s.db, []string{customerID})
		if err != nil {
			return nil, err
		}
		if !rs[0].Known {
			return nil, fmt.Errorf("customer %q: %w", customerID, ErrUnknownCustomer)
		}
		cu := rs[0].customer()
		c = &cu
	}
	v := t.PreviewValues(c)
	if c != nil && len(t.RepeatGroups()) > 0 {
		if groupIDs == nil {
			var err error
			if groupIDs, err = liveGroupIDs(ctx, s.db, t.RepeatGroups()); err != nil {
				return nil, err
			}
		}
		for i, g := range t.RepeatGroups() {
			v.LastCodes[i] = ""
			if gid, ok := groupIDs[macros.GroupKey(g)]; ok {
				last, err := s.groups.LastCodes(ctx, gid, []string{c.ID})
				if err != nil {
					return nil, err
				}
				v.LastCodes[i] = last[c.ID]
			}
		}
	}
	r := &Rendered{Subject: string(t.AppendSubject(nil, v)), HTML: string(t.AppendHTML(nil, v)), Text: string(t.AppendText(nil, v)), Codes: map[string]string{}}
	if c != nil {
		r.CustomerID, r.Email = c.ID, c.Email
	}
	for i, g := range t.NewCodeGroups() {
		r.Codes[g] = v.NewCodes[i]
	}
	return r, nil
}

// RenderRequest is a platform mailer's render: a template (inline, or a stored
// mailing's) for a batch of customers under the mailer's own scope key.
type RenderRequest struct {
	Scope       string        `json:"scope"`
	MailingID   int64         `json:"mailing_id,omitempty"`
	Template    macros.Source `json:"template"`
	CustomerIDs []string      `json:"customer_ids"`
}

// RenderResult is what Render did: rendered messages, and customers it could not
// render (unknown, or a group without codes for them) with the reason.
type RenderResult struct {
	Messages []Rendered        `json:"messages"`
	Skipped  map[string]string `json:"skipped"`
}

// Render issues and records codes exactly as a mailing does — the same scope gives the
// same codes — and returns the rendered messages, for mailers that send themselves.
// Errors: *macros.ValidationError, *groups.InvalidError, ErrNotFound.
func (s *Service) Render(ctx context.Context, req RenderRequest) (*RenderResult, error) {
	if req.Scope == "" {
		return nil, &groups.InvalidError{Field: "scope", Reason: "is required: the key under which codes are issued once per customer"}
	}
	// Platform scopes live apart from mailings' own ("mailing:N"), so no key of a
	// caller's can reach a mailing's codes.
	scope := "render:" + req.Scope
	var t *macros.Template
	var ids map[string]int64
	var mailingID *int64
	if req.MailingID != 0 {
		m, err := getMailing(ctx, s.db, req.MailingID, "")
		if err != nil {
			return nil, err
		}
		if t, err = s.tmpl.get(m); err != nil {
			return nil, err
		}
		ids, mailingID = m.GroupIDs, &m.ID
	} else {
		var err error
		if t, err = macros.Compile(ctx, req.Template, GroupChecker{DB: s.db}); err != nil {
			return nil, err
		}
		if ids, err = liveGroupIDs(ctx, s.db, append(t.NewCodeGroups(), t.RepeatGroups()...)); err != nil {
			return nil, err
		}
	}
	recips, err := loadRecipients(ctx, s.db, req.CustomerIDs)
	if err != nil {
		return nil, err
	}
	res := &RenderResult{Messages: []Rendered{}, Skipped: map[string]string{}}
	var known []Recipient
	for _, r := range recips {
		if r.Known {
			known = append(known, r)
		} else {
			res.Skipped[r.ID] = "unknown customer"
		}
	}
	if len(known) == 0 {
		return res, nil
	}
	comp, err := s.compose(ctx, t, ids, scope, mailingID, known, false)
	if err != nil {
		return nil, err
	}
	for c, g := range comp.uncovered {
		res.Skipped[c] = fmt.Sprintf("group %q has no code left", g)
	}
	res.Messages = comp.rendered
	return res, nil
}
