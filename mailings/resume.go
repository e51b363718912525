package mailings

import (
	"context"
	"errors"
	"fmt"

	"promopool/auth"
	"promopool/groups"
	"promopool/macros"
)

// ResumeExhausted resumes the mailings that paused because a group ran out of codes
// (PauseExhausted) once every group they draw new codes from holds enough active codes
// for their waiting recipients: after an upload to groupID (why says which), or, with
// groupID 0, every such mailing (the reconciler's sweep, which also catches what no
// upload announced: a cap raised, codes returned to the pool). A mailing a person paused
// stays paused. Each resume is one conditional UPDATE (… WHERE pause_kind =
// 'exhausted'), so several web and worker processes resume a mailing exactly once; the
// mailing's history and its groups' activity logs say so. It returns the ids resumed.
func (s *Service) ResumeExhausted(ctx context.Context, groupID int64, why string) ([]int64, error) {
	var ids []int64
	err := s.db.SelectContext(ctx, &ids, `
		SELECT id FROM mailings
		WHERE status = 'paused' AND pause_kind = 'exhausted'
		  AND ($1 = 0 OR EXISTS (SELECT 1 FROM jsonb_each_text(group_ids) g WHERE g.value::bigint = $1))
		ORDER BY id`, groupID)
	if err != nil {
		return nil, fmt.Errorf("looking for mailings waiting for codes: %w", err)
	}
	var resumed []int64
	for _, id := range ids {
		ok, err := s.resumeIfCovered(ctx, id, why)
		if err != nil {
			return resumed, err
		}
		if ok {
			resumed = append(resumed, id)
		}
	}
	return resumed, nil
}

// resumeIfCovered resumes mailing id if it is still paused for exhaustion and its
// groups cover its waiting recipients.
func (s *Service) resumeIfCovered(ctx context.Context, id int64, why string) (bool, error) {
	m, err := getMailing(ctx, s.db, id, "")
	if err != nil {
		return false, err
	}
	t, err := s.tmpl.get(m)
	if err != nil {
		return false, nil // a template that no longer parses: a person decides
	}
	waiting, err := s.waiting(ctx, id)
	if err != nil {
		return false, err
	}
	gids, covered, err := s.covers(ctx, m, t, waiting)
	if err != nil || !covered {
		return false, err
	}
	detail := fmt.Sprintf("resumed by itself: %s; its groups cover the %d waiting recipients", why, waiting)
	return s.resumeSystem(ctx, id, PauseExhausted, gids, waiting, detail, why)
}

// waiting is how many recipients of mailing id are still queued.
func (s *Service) waiting(ctx context.Context, id int64) (int64, error) {
	var n int64
	err := s.db.GetContext(ctx, &n, `
		SELECT coalesce(sum(recipients - sent - failed - skipped), 0) FROM mailing_batches WHERE mailing_id = $1`, id)
	if err != nil {
		return 0, fmt.Errorf("counting the waiting recipients of mailing %d: %w", id, err)
	}
	return n, nil
}

// resumeSystem resumes mailing id if it is still paused with pause kind kind: one
// conditional UPDATE, so of several processes trying at once exactly one does. The
// resume is recorded as the system's (detail in the mailing's events), its open batches
// are enqueued again, and the activity log of each group in gids says why.
func (s *Service) resumeSystem(ctx context.Context, id int64, kind string, gids []int64, waiting int64, detail, why string) (bool, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `
		UPDATE mailings SET status = 'running', pause_kind = '', pause_reason = ''
		WHERE id = $1 AND status = 'paused' AND pause_kind = $2`, id, kind)
	if err != nil {
		return false, fmt.Errorf("resuming mailing %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil // another process resumed it, or a person acted first
	}
	sys := auth.WithActor(ctx, auth.Actor{Kind: auth.ActorSystem, Name: "promopool"})
	if err := recordEvent(sys, tx, id, EventResume, "promopool", detail); err != nil {
		return false, err
	}
	refs, err := s.reenqueue(ctx, tx, id)
	if err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	s.enqueue(ctx, refs)
	s.log.Info("mailing resumed by itself", "mailing_id", id, "pause_kind", kind, "waiting", waiting, "why", why)
	for _, gid := range gids {
		if err := s.groups.LogMailingResumed(ctx, gid, id, waiting, why); err != nil {
			s.log.Warn("logging a mailing's resume in its group's activity failed", "mailing_id", id, "group_id", gid, "err", err)
		}
	}
	return true, nil
}

// ResumeGroupWait resumes the mailings that paused because a group they draw new codes
// from was paused (PauseGroup) once every such group is active again: after groupID
// was activated (why says by whom), or, with groupID 0, every such mailing (the
// reconciler's sweep, which catches an activation whose process died before it
// resumed anything, or a pause recorded just after the activation). A mailing a person
// paused stays paused. As ResumeExhausted, each resume is one conditional UPDATE (…
// WHERE pause_kind = 'group'): several processes reacting to one activation resume a
// mailing exactly once, and its history and its groups' activity logs say so. A
// resumed mailing whose group has too few codes then pauses for exhaustion as usual.
// It returns the ids resumed.
func (s *Service) ResumeGroupWait(ctx context.Context, groupID int64, why string) ([]int64, error) {
	var ids []int64
	err := s.db.SelectContext(ctx, &ids, `
		SELECT id FROM mailings
		WHERE status = 'paused' AND pause_kind = 'group'
		  AND ($1 = 0 OR EXISTS (SELECT 1 FROM jsonb_each_text(group_ids) g WHERE g.value::bigint = $1))
		ORDER BY id`, groupID)
	if err != nil {
		return nil, fmt.Errorf("looking for mailings waiting for a paused group: %w", err)
	}
	var resumed []int64
	for _, id := range ids {
		ok, err := s.resumeIfActive(ctx, id, why)
		if err != nil {
			return resumed, err
		}
		if ok {
			resumed = append(resumed, id)
		}
	}
	return resumed, nil
}

// resumeIfActive resumes mailing id if it is still paused for a paused group and every
// group it draws new codes from is active.
func (s *Service) resumeIfActive(ctx context.Context, id int64, why string) (bool, error) {
	m, err := getMailing(ctx, s.db, id, "")
	if err != nil {
		return false, err
	}
	t, err := s.tmpl.get(m)
	if err != nil {
		return false, nil // a template that no longer parses: a person decides
	}
	var gids []int64
	for _, g := range t.NewCodeGroups() {
		gid, ok := m.GroupIDs[macros.GroupKey(g)]
		if !ok {
			return false, nil
		}
		grp, err := s.groups.Get(ctx, gid)
		if err != nil {
			if isNotFound(err) {
				return false, nil // deleted meanwhile: a person decides
			}
			return false, err
		}
		if grp.StoredStatus != groups.StatusActive {
			return false, nil // still paused (or a draft again)
		}
		gids = append(gids, gid)
	}
	waiting, err := s.waiting(ctx, id)
	if err != nil {
		return false, err
	}
	detail := fmt.Sprintf("resumed by itself: %s; %d recipients were waiting", why, waiting)
	return s.resumeSystem(ctx, id, PauseGroup, gids, waiting, detail, why)
}

// covers reports whether every group t draws new codes from holds at least waiting
// active codes, and returns their ids.
func (s *Service) covers(ctx context.Context, m *Mailing, t *macros.Template, waiting int64) ([]int64, bool, error) {
	var gids []int64
	for _, g := range t.NewCodeGroups() {
		gid, ok := m.GroupIDs[macros.GroupKey(g)]
		if !ok {
			return nil, false, nil
		}
		grp, err := s.groups.Get(ctx, gid)
		if err != nil {
			if isNotFound(err) {
				return nil, false, nil
			}
			return nil, false, err
		}
		if !grp.Covers(waiting) {
			return nil, false, nil
		}
		gids = append(gids, gid)
	}
	return gids, true, nil
}

func isNotFound(err error) bool { return errors.Is(err, groups.ErrGroupNotFound) }
