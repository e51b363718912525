package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Scope is one thing an API key may do. A key holds one or more; `admin` implies every
// other. Every API route names the one scope it needs where it is registered.
type Scope string

// The scopes (README "Security").
const (
	// ScopeRender: POST /v1/render (a mailer rendering messages, issuing codes as a mailing does).
	ScopeRender Scope = "render"
	// ScopeIssue: direct issue of one code to a customer.
	ScopeIssue Scope = "issue"
	// ScopeCheckout: validating and redeeming codes at checkout.
	ScopeCheckout Scope = "checkout"
	// ScopeRead: reading groups, uploads, activity, alerts, mailings, customers' codes,
	// segments and template previews; /metrics on HTTP_ADDR.
	ScopeRead Scope = "read"
	// ScopeExport: the CSV exports (issues.csv, unused.csv): they list codes in bulk.
	ScopeExport Scope = "export"
	// ScopeWrite: creating and changing groups, uploads, customers and mailings.
	ScopeWrite Scope = "write"
	// ScopeAdmin: everything, and signing in to the admin pages with the key.
	ScopeAdmin Scope = "admin"
)

// Scopes lists every scope, in the order the docs give them.
var Scopes = []Scope{ScopeRender, ScopeIssue, ScopeCheckout, ScopeRead, ScopeExport, ScopeWrite, ScopeAdmin}

// Known reports whether s is one of Scopes.
func (s Scope) Known() bool { return slices.Contains(Scopes, s) }

// ErrInsufficientScope: the key is valid but lacks the scope the request needs.
var ErrInsufficientScope = errors.New("the API key lacks the scope this request needs")

// ScopeError is a request refused for lack of a scope; it names the scope needed.
type ScopeError struct {
	// Need is the scope the request needs.
	Need Scope
	// Key is the name of the key that lacked it (the user's email for a person).
	Key string
	// Role is the person's role when the caller was a user; empty for a key.
	Role string
}

func (e *ScopeError) Error() string {
	if e.Role != "" {
		return fmt.Sprintf("the user %s (role %s) lacks the %q scope this request needs (README \"Users and sign-in\" lists each role's scopes)", e.Key, e.Role, e.Need)
	}
	return fmt.Sprintf("the API key %q lacks the %q scope this request needs (keys list shows a key's scopes; admin implies all)", e.Key, e.Need)
}

// Unwrap makes errors.Is(err, ErrInsufficientScope) true.
func (e *ScopeError) Unwrap() error { return ErrInsufficientScope }

// ParseScopes reads a list of scope names separated by sep ("render,issue" on the
// command line, "render+issue" in API_KEYS), without duplicates, in Scopes order.
// Errors: an empty list or an unknown name (the message lists the known ones).
func ParseScopes(s, sep string) ([]Scope, error) {
	var out []Scope
	for _, part := range strings.Split(s, sep) {
		sc := Scope(strings.ToLower(strings.TrimSpace(part)))
		if sc == "" {
			continue
		}
		if !sc.Known() {
			return nil, fmt.Errorf("unknown scope %q (want %s)", sc, scopeList(sep))
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scope given (want one or more of %s)", scopeList(sep))
	}
	slices.SortFunc(out, func(a, b Scope) int { return slices.Index(Scopes, a) - slices.Index(Scopes, b) })
	return out, nil
}

func scopeList(sep string) string {
	names := make([]string, len(Scopes))
	for i, s := range Scopes {
		names[i] = string(s)
	}
	return strings.Join(names, sep)
}

// Principal is an authenticated caller — an API key, or a person whose platform JWT
// was accepted — with what it may do.
type Principal struct {
	// Name is the key's name, or the user's email (the older actor columns, the request
	// log, the rate limiters' bucket).
	Name string
	// Scopes are the key's scopes, or those of the user's role.
	Scopes []Scope
	// KeyID is the stored key's id; 0 for a static key (API_KEYS) or a user.
	KeyID int64
	// Role is the user's role when the caller is a person; empty for a key.
	Role string
	// Who is the caller as the history records it.
	Who Actor
}

// Static reports whether the key came from API_KEYS rather than the api_keys table.
func (p Principal) Static() bool { return p.KeyID == 0 }

// Has reports whether the key may do what s allows: it holds s, or admin.
func (p Principal) Has(s Scope) bool {
	return slices.Contains(p.Scopes, s) || slices.Contains(p.Scopes, ScopeAdmin)
}

// Require returns nil if p has s, else a *ScopeError naming s.
func (p Principal) Require(s Scope) error {
	if p.Has(s) {
		return nil
	}
	return &ScopeError{Need: s, Key: p.Name, Role: p.Role}
}
