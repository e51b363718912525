package mailings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/groups"
	"promopool/macros"
)

// templateCache keeps compiled templates by mailing id (a mailing's templates never
// change after creation).
type templateCache struct {
	mu  sync.Mutex
	lim macros.Limits
	m   map[int64]*macros.Template
}

func newTemplateCache(lim macros.Limits) *templateCache {
	return &templateCache{lim: lim, m: map[int64]*macros.Template{}}
}

func (c *templateCache) get(m *Mailing) (*macros.Template, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.m[m.ID]; ok {
		return t, nil
	}
	// Groups were checked at creation; Parse only re-reads the syntax.
	t, err := macros.ParseLimits(m.source(), c.lim)
	if err != nil {
		return nil, err
	}
	c.m[m.ID] = t
	return t, nil
}

// Recipient is a customer with the fields templates use.
type Recipient struct {
	ID         string          `db:"id"`
	Email      string          `db:"email"`
	FirstName  string          `db:"first_name"`
	LastName   string          `db:"last_name"`
	Attributes json.RawMessage `db:"attributes"`
	// Known is false when the platform never sent this customer (no customers row).
	Known bool `db:"known"`
}

func (r *Recipient) customer() macros.Customer {
	c := macros.Customer{ID: r.ID, Email: r.Email, FirstName: r.FirstName, LastName: r.LastName}
	if len(r.Attributes) > 2 {
		var raw map[string]json.RawMessage
		if json.Unmarshal(r.Attributes, &raw) == nil {
			c.Attributes = make(map[string]string, len(raw))
			for k, v := range raw {
				var s string
				if json.Unmarshal(v, &s) == nil {
					c.Attributes[k] = s
				} else {
					c.Attributes[k] = string(v)
				}
			}
		}
	}
	return c
}

// customerColumns are a Recipient's fields read from customers c, LEFT JOINed (a
// recipient the platform never sent is not Known).
const customerColumns = `coalesce(c.email, '') AS email, coalesce(c.first_name, '') AS first_name,
	coalesce(c.last_name, '') AS last_name, coalesce(c.attributes, '{}') AS attributes, c.id IS NOT NULL AS known`

// loadRecipients reads customers by id, in the order given; unknown ids come back
// with Known false.
func loadRecipients(ctx context.Context, q sqlx.QueryerContext, ids []string) ([]Recipient, error) {
	var out []Recipient
	err := sqlx.SelectContext(ctx, q, &out, `
		SELECT u.id, `+customerColumns+`
		FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n)
		LEFT JOIN customers c ON c.id = u.id
		ORDER BY u.n`, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("loading customers: %w", err)
	}
	return out, nil
}

// Rendered is one customer's rendered message.
type Rendered struct {
	CustomerID string `json:"customer_id"`
	Email      string `json:"email"`
	Subject    string `json:"subject"`
	HTML       string `json:"html"`
	Text       string `json:"text"`
	// Codes maps group name to the code inserted from it (new or repeated).
	Codes map[string]string `json:"codes"`
}

// size is the rendered message's size in bytes.
func (r *Rendered) size() int { return len(r.Subject) + len(r.HTML) + len(r.Text) }

// composed is a recipient who holds every code the template needs, not rendered yet:
// a batch renders its messages a few at a time (Config.BatchBytes), so it never holds
// all of them at once.
type composed struct {
	r         Recipient
	newCodes  []string
	lastCodes []string
	// fallback[i]: group NewCodeGroups()[i] had no code for the recipient (nil: none
	// lacking); sent only with on_exhaustion "fallback", with the macro's fallback text.
	fallback []bool
	// columns[i] and lastColumns[i] are the extra columns of the rows of newCodes[i] and
	// lastCodes[i], read only for the groups whose columns the template inserts (nil
	// otherwise).
	columns, lastColumns []map[string]string
}

// note is the detail recorded with the recipient's outcome when sent: which groups
// were replaced by their fallback text ("" for a message with every code).
func (c *composed) note(t *macros.Template) string {
	var gs []string
	for i, f := range c.fallback {
		if f {
			gs = append(gs, strconv.Quote(t.NewCodeGroups()[i]))
		}
	}
	if len(gs) == 0 {
		return ""
	}
	return "fallback: group " + strings.Join(gs, ", ") + " had no code left: the fallback text was sent, no code recorded"
}

// composition is what compose did for a batch.
type composition struct {
	// ready are the recipients holding all their codes, in order, to render.
	ready []composed
	// short are the uncovered recipients, with the codes they did get and the groups
	// that had none for them marked fallback.
	short []composed
	// uncovered maps a customer to the first group that had no code for them.
	uncovered map[string]string
	// issued counts codes newly taken, per group id.
	issued map[int64]int
	// recount: the batch's counters are recounted at its record, not added to (a
	// redelivery); released: some of its codes went back to the pool.
	recount, released bool
}

// renderer renders a composition's messages one by one, reusing its buffers.
type renderer struct {
	t      *macros.Template
	groups []string // new-code groups, then repeat groups
	v      macros.Values
	buf    []byte
}

func newRenderer(t *macros.Template) *renderer {
	return &renderer{t: t, v: macros.Values{NewCodes: make([]string, len(t.NewCodeGroups())), LastCodes: make([]string, len(t.RepeatGroups()))}}
}

// render renders one composed recipient. Errors wrap macros.ErrMessageTooLarge when
// the message is larger than the template's MaxMessageBytes (nothing else is held:
// the buffer is cut back), macros.ErrMissingCode or ErrMissingColumn.
func (rn *renderer) render(c *composed) (Rendered, error) {
	rn.v.Customer = c.r.customer()
	copy(rn.v.NewCodes, c.newCodes)
	copy(rn.v.LastCodes, c.lastCodes)
	rn.v.Columns, rn.v.LastColumns = c.columns, c.lastColumns
	rn.v.UseFallback = c.fallback
	msg, buf, err := rn.t.Render(rn.buf, &rn.v)
	rn.buf = buf
	if cap(rn.buf) > 4<<20 {
		rn.buf = nil // one huge message does not pin its buffer for the rest of the batch
	}
	if err != nil {
		return Rendered{}, fmt.Errorf("customer %s: %w", c.r.ID, err)
	}
	codes := make(map[string]string, len(c.newCodes)+len(c.lastCodes))
	for i, g := range rn.t.NewCodeGroups() {
		if c.newCodes[i] != "" {
			codes[g] = c.newCodes[i]
		}
	}
	for i, g := range rn.t.RepeatGroups() {
		if c.lastCodes[i] != "" {
			codes[g] = c.lastCodes[i]
		}
	}
	return Rendered{CustomerID: c.r.ID, Email: c.r.Email, Subject: msg.Subject, HTML: msg.HTML, Text: msg.Text, Codes: codes}, nil
}

// compose claims (one Claim per group the template draws from) and repeats (one Repeat
// per group it re-issues from) for all recipients at once, under scope, and lists every
// recipient that has all its new codes as ready to render. Recipients a group could not
// cover are listed in uncovered.
//
// first says no recipient can hold a code under scope yet (a batch's first delivery):
// the claims skip their re-claim check (groups.ClaimRequest.FirstClaim). repeatAll
// records last_promocode repeats for uncovered recipients too (they may be sent a
// fallback).
func (s *Service) compose(ctx context.Context, t *macros.Template, groupIDs map[string]int64, scope string, mailingID *int64, recips []Recipient, first, repeatAll bool) (*composition, error) {
	ids := make([]string, len(recips))
	for i, r := range recips {
		ids[i] = r.ID
	}
	out := &composition{uncovered: map[string]string{}, issued: map[int64]int{}}
	newGroups, repeatGroups := t.NewCodeGroups(), t.RepeatGroups()
	newCodes := make([]map[string]string, len(newGroups))
	for i, g := range newGroups {
		gid, ok := groupIDs[macros.GroupKey(g)]
		if !ok {
			return nil, fmt.Errorf("group %q: %w", g, groups.ErrGroupNotFound)
		}
		res, err := s.groups.Claim(ctx, groups.ClaimRequest{GroupID: gid, Scope: scope, MailingID: mailingID, CustomerIDs: ids, FirstClaim: first})
		if errors.Is(err, groups.ErrGroupPaused) || errors.Is(err, groups.ErrGroupDraft) {
			return nil, &GroupWaitError{Group: g, GroupID: gid, Err: err}
		}
		if err != nil {
			return nil, err
		}
		newCodes[i] = res.Codes
		out.issued[gid] += res.Issued()
		for _, c := range res.Uncovered {
			if _, seen := out.uncovered[c]; !seen {
				out.uncovered[c] = g
			}
		}
	}
	lastCodes := make([]map[string]string, len(repeatGroups))
	for i, g := range repeatGroups {
		gid, ok := groupIDs[macros.GroupKey(g)]
		if !ok {
			lastCodes[i] = map[string]string{} // the group is gone: last_promocode renders empty
			continue
		}
		var covered []string
		for _, id := range ids {
			if _, un := out.uncovered[id]; !un || repeatAll {
				covered = append(covered, id)
			}
		}
		if len(covered) == 0 {
			lastCodes[i] = map[string]string{}
			continue
		}
		m, err := s.groups.Repeat(ctx, groups.RepeatRequest{GroupID: gid, Scope: scope, MailingID: mailingID, CustomerIDs: covered})
		if err != nil {
			return nil, err
		}
		lastCodes[i] = m
	}
	newCols, lastCols, err := s.codeColumns(ctx, t, groupIDs, scope, ids)
	if err != nil {
		return nil, err
	}
	for _, r := range recips {
		c := composed{r: r, newCodes: make([]string, len(newGroups)), lastCodes: make([]string, len(repeatGroups))}
		for i := range newGroups {
			c.newCodes[i] = newCodes[i][r.ID]
		}
		for i := range repeatGroups {
			c.lastCodes[i] = lastCodes[i][r.ID]
		}
		c.columns = rowColumns(newCols, c.newCodes, r.ID)
		c.lastColumns = rowColumns(lastCols, c.lastCodes, r.ID)
		if _, un := out.uncovered[r.ID]; un {
			c.fallback = make([]bool, len(newGroups))
			for i := range newGroups {
				c.fallback[i] = c.newCodes[i] == ""
			}
			out.short = append(out.short, c)
			continue
		}
		out.ready = append(out.ready, c)
	}
	return out, nil
}

// codeColumns reads, for the groups whose extra columns t inserts (promocode('G').pin,
// last_promocode('G').pin), the row of the code each customer now holds under scope
// (claimed or repeated just before): newCols[i] for NewCodeGroups()[i], lastCols[i] for
// RepeatGroups()[i], nil for a group whose columns t does not insert (no query).
func (s *Service) codeColumns(ctx context.Context, t *macros.Template, groupIDs map[string]int64, scope string, ids []string) (newCols, lastCols []map[string]groups.CodeRow, err error) {
	read := func(names []string, cols func(int) []string) ([]map[string]groups.CodeRow, error) {
		var out []map[string]groups.CodeRow
		for i, g := range names {
			if len(cols(i)) == 0 {
				continue
			}
			gid, ok := groupIDs[macros.GroupKey(g)]
			if !ok {
				continue
			}
			rows, err := s.groups.CodeColumns(ctx, gid, scope, ids)
			if err != nil {
				return nil, err
			}
			if out == nil {
				out = make([]map[string]groups.CodeRow, len(names))
			}
			out[i] = rows
		}
		return out, nil
	}
	if newCols, err = read(t.NewCodeGroups(), t.Columns); err != nil {
		return nil, nil, err
	}
	lastCols, err = read(t.RepeatGroups(), t.LastColumns)
	return newCols, lastCols, err
}

// rowColumns picks a customer's columns for each group out of rows (nil: no group's
// columns are inserted): those of the row whose code the message carries (codes[i]),
// so a PIN always goes with its own code. A group without such a row gets nil columns:
// rendering then fails with macros.ErrMissingColumn for a new code, and inserts
// nothing for a last code.
func rowColumns(rows []map[string]groups.CodeRow, codes []string, customer string) []map[string]string {
	if rows == nil {
		return nil
	}
	out := make([]map[string]string, len(codes))
	for i, byCustomer := range rows {
		if row, ok := byCustomer[customer]; ok && codes[i] != "" && row.Code == codes[i] {
			out[i] = row.Columns
		}
	}
	return out
}

// GroupWaitError says a group the template draws new codes from issues nothing for
// now: it is paused (or was put back to draft) and its mailings wait until it is
// activated. Err wraps groups.ErrGroupPaused or groups.ErrGroupDraft.
type GroupWaitError struct {
	Group   string // the group's name as the template writes it
	GroupID int64
	Err     error
}

func (e *GroupWaitError) Error() string { return fmt.Sprintf("group %q: %v", e.Group, e.Err) }

func (e *GroupWaitError) Unwrap() error { return e.Err }

// reason is the mailing's pause_reason while it waits: the stable code
// (group_paused, or group_draft) and the group's name.
func (e *GroupWaitError) reason() string {
	code, state := "group_paused", "paused"
	if errors.Is(e.Err, groups.ErrGroupDraft) {
		code, state = "group_draft", "a draft"
	}
	return fmt.Sprintf("%s: group %q is %s; the mailing resumes by itself when the group is activated", code, e.Group, state)
}
