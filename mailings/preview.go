package mailings

import (
	"context"
	"errors"
	"fmt"

	"promopool/groups"
	"promopool/macros"
)

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
			if groupIDs, err = s.groups.KnownIDs(ctx, t.RepeatGroups()); err != nil {
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
			if v.LastCodes[i] == "" {
				v.LastColumns[i] = nil // no code: its columns render empty too
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
		if t, err = macros.CompileLimits(ctx, req.Template, s.groups, s.cfg.Limits); err != nil {
			return nil, err
		}
		if ids, err = s.templateGroups(ctx, t); err != nil {
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
	comp, err := s.compose(ctx, t, ids, scope, mailingID, known, false, false)
	if err != nil {
		return nil, err
	}
	for c, g := range comp.uncovered {
		res.Skipped[c] = fmt.Sprintf("group %q has no code left", g)
	}
	rn := newRenderer(t)
	var tooLarge []string
	for i := range comp.ready {
		rd, err := rn.render(&comp.ready[i])
		if errors.Is(err, macros.ErrMessageTooLarge) {
			tooLarge = append(tooLarge, comp.ready[i].r.ID)
			res.Skipped[comp.ready[i].r.ID] = "message too large: " + err.Error() + " (codes returned to the pool)"
			continue
		}
		if err != nil {
			return nil, err
		}
		res.Messages = append(res.Messages, rd)
	}
	if err := s.releaseScope(ctx, t, ids, scope, tooLarge); err != nil {
		return nil, err
	}
	return res, nil
}

// releaseScope returns the codes customers were issued under scope from every group t
// draws new codes from (a render whose message could not be made).
func (s *Service) releaseScope(ctx context.Context, t *macros.Template, groupIDs map[string]int64, scope string, customers []string) error {
	if len(customers) == 0 {
		return nil
	}
	for _, g := range t.NewCodeGroups() {
		if gid, ok := groupIDs[macros.GroupKey(g)]; ok {
			if _, err := s.groups.Release(ctx, gid, scope, customers); err != nil {
				return fmt.Errorf("returning codes of group %d: %w", gid, err)
			}
		}
	}
	return nil
}
