package mailings

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/macros"
	"promopool/segments"
)

// audienceSize counts the distinct known customers of an audience; seg is the prepared
// segment of a segment audience.
func audienceSize(ctx context.Context, tx *sqlx.Tx, a Audience, seg *segments.Query) (int64, error) {
	var n int64
	var err error
	switch {
	case a.All:
		err = tx.GetContext(ctx, &n, `SELECT count(*) FROM customers`)
	case seg != nil:
		q, args := seg.SQL()
		err = tx.GetContext(ctx, &n, `SELECT count(*) FROM (`+q+`) s`, args...)
	default:
		err = tx.GetContext(ctx, &n, `SELECT count(*) FROM customers WHERE id = ANY($1)`, pq.Array(a.CustomerIDs))
	}
	return n, err
}

// Start checks that every group the templates draw from has enough active codes for
// the audience (unless whileCodesLast), then writes one outbox row per distinct
// recipient, numbered into batches, and enqueues a task per batch. Errors: ErrNotFound,
// ErrState (not a draft), ErrEmptyAudience, *InsufficientCodesError.
func (s *Service) Start(ctx context.Context, id int64, whileCodesLast bool) (*Mailing, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	m, err := getMailing(ctx, tx, id, outboxLock)
	if err != nil {
		return nil, err
	}
	if m.Status != StatusDraft {
		return nil, fmt.Errorf("starting mailing %d (%s): %w", id, m.Status, ErrState)
	}
	seg, err := s.prepareSegment(ctx, m)
	if err != nil {
		return nil, err
	}
	n, err := audienceSize(ctx, tx, m.Audience, seg)
	if err != nil {
		return nil, fmt.Errorf("counting the audience of mailing %d: %w", id, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("mailing %d: %w", id, ErrEmptyAudience)
	}
	t, err := s.tmpl.get(m)
	if err != nil {
		return nil, err
	}
	onExhaustion := m.OnExhaustion
	if whileCodesLast && onExhaustion == OnExhaustionPause {
		onExhaustion = OnExhaustionSkip
	}
	// A mailing that skips or falls back when a group runs out starts whatever the
	// balance: that is what its sender chose.
	if onExhaustion == OnExhaustionPause {
		if err := s.checkCodes(ctx, m, t, n); err != nil {
			return nil, err
		}
	}
	out, err := s.writeFirstChunk(ctx, tx, m, seg)
	if err != nil {
		return nil, fmt.Errorf("writing recipients of mailing %d: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `
		UPDATE mailings SET status = 'running', started_at = now(), while_codes_last = $2,
		       outbox_complete = $3, outbox_cursor = $4, outbox_next_batch = $5, outbox_at = now(), on_exhaustion = $6
		WHERE id = $1`, id, onExhaustion == OnExhaustionSkip, out.complete, out.cursor, out.next, onExhaustion); err != nil {
		return nil, err
	}
	if err := recordEvent(ctx, tx, id, EventStart, "", ""); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	s.enqueue(ctx, out.refs)
	s.log.Info("mailing started", "mailing_id", id, "audience", n, "first_batches", len(out.refs))
	if !out.complete {
		// The mailing runs: the rest of its outbox is written whatever the caller does
		// now (a client gone does not stop it); if this process dies, the reconciler
		// continues from the cursor.
		if err := s.fillOutbox(context.WithoutCancel(ctx), id, seg); err != nil {
			s.log.Warn("writing the outbox failed; the reconciler will continue it", "mailing_id", id, "err", err)
		}
	}
	return s.Get(ctx, id)
}

// prepareSegment prepares the segment of a segment audience (nil for the others).
func (s *Service) prepareSegment(ctx context.Context, m *Mailing) (*segments.Query, error) {
	if m.Audience.Segment == nil {
		return nil, nil
	}
	if s.segments == nil {
		return nil, fmt.Errorf("mailing %d has a segment audience and this process has no segments service", m.ID)
	}
	seg, err := s.segments.Prepare(ctx, m.Audience.Segment)
	if err != nil {
		return nil, fmt.Errorf("mailing %d: segment audience: %w", m.ID, err)
	}
	return seg, nil
}

// checkCodes returns an *InsufficientCodesError unless every group the templates draw
// new codes from has n active codes.
func (s *Service) checkCodes(ctx context.Context, m *Mailing, t *macros.Template, n int64) error {
	short := &InsufficientCodesError{Audience: n, Missing: map[string]int64{}}
	for _, g := range t.NewCodeGroups() {
		gid, ok := m.GroupIDs[macros.GroupKey(g)]
		if !ok {
			short.Missing[g] = n
			continue
		}
		grp, err := s.groups.Get(ctx, gid)
		if err != nil {
			short.Missing[g] = n // archived since the mailing was created
			continue
		}
		if !grp.Covers(n) { // a shared group covers everyone while a promotion code is in use
			short.Missing[grp.Name] = n - grp.Active
		}
	}
	if len(short.Missing) > 0 {
		return short
	}
	return nil
}

// outboxLock is how a transaction writing the outbox (Start, each chunk of fillOutbox)
// locks the mailing's row: against other writers and state changes, which lock it too,
// but not against the foreign-key checks of rows that reference it (FOR KEY SHARE) —
// the batches' counters (mailing_group_counts) and events are inserted while a chunk
// of 50,000 recipients is being written. With FOR UPDATE each of those inserts waited
// for the chunk to commit: 26% of the sampled waits of a 1M-recipient `bench mailing`
// were Lock:transactionid on mailing_group_counts. The outbox never changes the
// mailing's key, so FOR NO KEY UPDATE is all it needs.
const outboxLock = "FOR NO KEY UPDATE"

// outboxChunk is what one transaction of the outbox wrote: its batches, and where the
// outbox continues.
type outboxChunk struct {
	refs     []BatchRef
	complete bool   // the whole audience is written
	cursor   string // the last recipient written, in the audience's order
	next     int    // the next batch number
}

// writeFirstChunk writes the outbox in the start's transaction: explicit ids
// deduplicated, keeping each id's first position, whole; every customer by id, or a
// segment's customers by number, in chunks of whole batches, the first here and the
// rest after the start commits (fillOutbox), so the first batches are sent while the
// rest is written.
func (s *Service) writeFirstChunk(ctx context.Context, tx *sqlx.Tx, m *Mailing, seg *segments.Query) (outboxChunk, error) {
	if m.Audience.All || seg != nil {
		refs, cursor, written, err := s.writeChunk(ctx, tx, m, seg, "", 0)
		return outboxChunk{refs: refs, cursor: cursor, next: (written + m.BatchSize - 1) / m.BatchSize,
			complete: written < s.chunkSize(m)}, err
	}
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO mailing_recipients (mailing_id, customer_id, batch)
		SELECT $1, id, (row_number() OVER (ORDER BY first) - 1) / $2
		FROM (SELECT id, min(n) AS first FROM unnest($3::text[]) WITH ORDINALITY AS u(id, n) GROUP BY id) x`,
		m.ID, m.BatchSize, pq.Array(m.Audience.CustomerIDs)); err != nil {
		return outboxChunk{}, err
	}
	refs, err := insertBatches(ctx, tx, m.ID, 0)
	return outboxChunk{refs: refs, complete: true}, err
}

// chunkSize is how many recipients one outbox transaction writes: whole batches.
func (s *Service) chunkSize(m *Mailing) int {
	return max(1, s.cfg.OutboxChunk/m.BatchSize) * m.BatchSize
}

// writeChunk writes the outbox rows of the next chunk of an "all" or segment audience,
// after cursor in its order, numbered into batches from next, and their batches. It
// returns the batches, the new cursor and how many recipients it wrote.
func (s *Service) writeChunk(ctx context.Context, tx *sqlx.Tx, m *Mailing, seg *segments.Query, cursor string, next int) ([]BatchRef, string, int, error) {
	var res struct {
		Cursor  string `db:"cursor"`
		Written int    `db:"written"`
	}
	var err error
	if seg == nil {
		err = tx.GetContext(ctx, &res, `
			WITH c AS (SELECT id FROM customers WHERE id > $2 ORDER BY id LIMIT $3),
			ins AS (
			    INSERT INTO mailing_recipients (mailing_id, customer_id, batch)
			    SELECT $1, id, $4 + (row_number() OVER (ORDER BY id) - 1) / $5 FROM c
			    RETURNING 1)
			SELECT coalesce((SELECT max(id) FROM c), $2) AS cursor, (SELECT count(*) FROM ins) AS written`,
			m.ID, cursor, s.chunkSize(m), next, m.BatchSize)
	} else {
		after, _ := strconv.ParseInt(cursor, 10, 64) // "" (the start): 0, below every customer number
		q, args := seg.SQL()
		k := len(args)
		err = tx.GetContext(ctx, &res, fmt.Sprintf(`
			WITH c AS (SELECT s.cust FROM (%s) s WHERE s.cust > $%d ORDER BY s.cust LIMIT $%d),
			ins AS (
			    INSERT INTO mailing_recipients (mailing_id, customer_id, batch)
			    SELECT $%d, cu.id, $%d + (row_number() OVER (ORDER BY c.cust) - 1) / $%d
			    FROM c JOIN customers cu ON cu.num = c.cust
			    RETURNING 1)
			SELECT coalesce((SELECT max(cust) FROM c), $%[2]d)::text AS cursor, (SELECT count(*) FROM ins) AS written`,
			q, k+1, k+2, k+3, k+4, k+5), append(args, after, s.chunkSize(m), m.ID, next, m.BatchSize)...)
	}
	if err != nil {
		return nil, "", 0, err
	}
	refs, err := insertBatches(ctx, tx, m.ID, next)
	return refs, res.Cursor, res.Written, err
}

// insertBatches writes the batch rows of the mailing's recipients numbered from next on.
func insertBatches(ctx context.Context, tx *sqlx.Tx, id int64, next int) ([]BatchRef, error) {
	var refs []BatchRef
	err := tx.SelectContext(ctx, &refs, `
		INSERT INTO mailing_batches (mailing_id, batch, recipients, attempt, enqueued_at)
		SELECT $1, batch, count(*), 1, now() FROM mailing_recipients WHERE mailing_id = $1 AND batch >= $2 GROUP BY batch
		RETURNING mailing_id, batch, attempt`, id, next)
	return refs, err
}

// fillOutbox writes the rest of a started mailing's outbox, a chunk per transaction,
// and enqueues each chunk's batches once it commits. Each chunk locks the mailing and
// continues from its cursor, so two writers (a start and the reconciler) never write
// a recipient twice. A cancelled mailing's outbox is closed where it is. seg is the
// prepared segment of a segment audience, or nil to prepare it here.
func (s *Service) fillOutbox(ctx context.Context, id int64, seg *segments.Query) error {
	for {
		done, err := s.fillChunk(ctx, id, &seg)
		if err != nil {
			return fmt.Errorf("writing the outbox of mailing %d: %w", id, err)
		}
		if done {
			// Batches that all finished while the outbox was written leave the mailing
			// to finish here.
			_, err := finishDone(ctx, s.db, id)
			return err
		}
	}
}

func (s *Service) fillChunk(ctx context.Context, id int64, seg **segments.Query) (bool, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	m, err := getMailing(ctx, tx, id, outboxLock)
	if err != nil {
		return false, err
	}
	if m.OutboxComplete {
		return true, nil
	}
	var refs []BatchRef
	complete, cursor, next := true, m.OutboxCursor, m.OutboxNextBatch
	switch {
	case m.Status == StatusCancelled:
		// Nobody else is written; the batches written are skipped by their tasks.
	case m.Audience.Segment != nil && *seg == nil && s.segments == nil:
		return false, errors.New("a segment audience and no segments service in this process")
	default:
		if m.Audience.Segment != nil && *seg == nil {
			if *seg, err = s.segments.Prepare(ctx, m.Audience.Segment); err != nil {
				return false, err
			}
		}
		var written int
		refs, cursor, written, err = s.writeChunk(ctx, tx, m, *seg, m.OutboxCursor, m.OutboxNextBatch)
		if err != nil {
			return false, err
		}
		next += (written + m.BatchSize - 1) / m.BatchSize
		complete = written < s.chunkSize(m)
	}
	if _, err := tx.ExecContext(ctx, `
		UPDATE mailings SET outbox_complete = $2, outbox_cursor = $3, outbox_next_batch = $4, outbox_at = now()
		WHERE id = $1`, id, complete, cursor, next); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	s.enqueue(ctx, refs)
	return complete, nil
}

// enqueue hands batch tasks to the queue. The rows are already committed: if Redis is
// unreachable now, the reconciler enqueues them later, so a failure is only logged.
func (s *Service) enqueue(ctx context.Context, refs []BatchRef) {
	if len(refs) == 0 || s.enqueuer == nil {
		return
	}
	if err := s.enqueuer.EnqueueBatches(ctx, refs); err != nil {
		s.log.Warn("enqueuing batches failed; the reconciler will retry", "mailing_id", refs[0].MailingID, "err", err)
	}
}
