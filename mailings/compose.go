package mailings

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/groups"
	"promopool/macros"
)

// templateCache keeps compiled templates by mailing id (a mailing's templates never
// change after creation).
type templateCache struct {
	mu sync.Mutex
	m  map[int64]*macros.Template
}

func newTemplateCache() *templateCache { return &templateCache{m: map[int64]*macros.Template{}} }

func (c *templateCache) get(m *Mailing) (*macros.Template, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.m[m.ID]; ok {
		return t, nil
	}
	// Groups were checked at creation; Parse only re-reads the syntax.
	t, err := macros.Parse(m.source())
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

// composition is what compose did for a batch.
type composition struct {
	rendered []Rendered
	// uncovered maps a customer to the first group that had no code for them.
	uncovered map[string]string
	// issued counts codes newly taken, per group id.
	issued map[int64]int
}

// compose claims (one Claim per group the template draws from) and repeats (one Repeat
// per group it re-issues from) for all recipients at once, under scope, then renders
// every recipient that has all its new codes. Recipients a group could not cover are
// not rendered and are listed in uncovered.
//
// first says no recipient can hold a code under scope yet (a batch's first delivery):
// the claims skip their re-claim check (groups.ClaimRequest.FirstClaim).
func (s *Service) compose(ctx context.Context, t *macros.Template, groupIDs map[string]int64, scope string, mailingID *int64, recips []Recipient, first bool) (*composition, error) {
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
			if _, un := out.uncovered[id]; !un {
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
	v := &macros.Values{NewCodes: make([]string, len(newGroups)), LastCodes: make([]string, len(repeatGroups))}
	var buf []byte
	for _, r := range recips {
		if _, un := out.uncovered[r.ID]; un {
			continue
		}
		v.Customer = r.customer()
		codes := make(map[string]string, len(newGroups)+len(repeatGroups))
		for i, g := range newGroups {
			v.NewCodes[i] = newCodes[i][r.ID]
			codes[g] = v.NewCodes[i]
		}
		for i, g := range repeatGroups {
			v.LastCodes[i] = lastCodes[i][r.ID]
			if v.LastCodes[i] != "" {
				codes[g] = v.LastCodes[i]
			}
		}
		if err := t.CheckValues(v); err != nil {
			return nil, fmt.Errorf("customer %s: %w", r.ID, err)
		}
		rd := Rendered{CustomerID: r.ID, Email: r.Email, Codes: codes}
		buf = t.AppendSubject(buf[:0], v)
		rd.Subject = string(buf)
		buf = t.AppendHTML(buf[:0], v)
		rd.HTML = string(buf)
		buf = t.AppendText(buf[:0], v)
		rd.Text = string(buf)
		out.rendered = append(out.rendered, rd)
	}
	return out, nil
}
