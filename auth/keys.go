// Package auth checks API keys and what they may do. Keys come from the environment
// (API_KEYS, each with its scopes) or from the api_keys table, where only their SHA-256
// and their scopes are stored; a key is shown once, when created.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

var (
	// ErrUnauthorized: the key is missing, unknown or revoked.
	ErrUnauthorized = errors.New("missing, unknown or revoked API key")
	// ErrKeyNotFound: no live key has that name.
	ErrKeyNotFound = errors.New("no live API key with that name")
	// ErrKeyNameTaken: a live key already has that name.
	ErrKeyNameTaken = errors.New("a live API key with that name already exists")
)

// Keys authenticates API keys.
type Keys struct {
	db     *sqlx.DB
	static []staticKey
}

type staticKey struct {
	name   string
	hash   [32]byte
	scopes []Scope
}

// NewKeys returns a checker over the api_keys table and the static keys in spec, a
// comma-separated list of name:key:scope+scope entries (the API_KEYS variable).
// Errors: a malformed entry, an unknown scope, or an entry without scopes — the old
// name:key form, all-powerful, is refused rather than read as admin: the message says
// to append :admin to keep such a key, or the scopes it needs.
func NewKeys(db *sqlx.DB, spec string) (*Keys, error) {
	k := &Keys{db: db}
	for i, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		s, err := parseStatic(entry)
		if err != nil {
			return nil, fmt.Errorf("API_KEYS entry %d: %w", i+1, err)
		}
		k.static = append(k.static, s)
	}
	return k, nil
}

// parseStatic reads name:key:scope+scope. The key may hold colons: the name ends at
// the first, the scopes start after the last.
func parseStatic(entry string) (staticKey, error) {
	name, rest, ok := strings.Cut(entry, ":")
	if !ok || name == "" {
		return staticKey{}, errors.New("want name:key:scope+scope")
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return staticKey{}, fmt.Errorf("key %q has no scopes: API keys no longer do everything by default; "+
			"write name:key:admin to keep this key all-powerful, or name what it needs (name:key:render+issue; scopes: %s)",
			name, scopeList("+"))
	}
	key, list := rest[:i], rest[i+1:]
	if len(key) < 16 {
		return staticKey{}, fmt.Errorf("key %q: want a key of at least 16 characters", name)
	}
	scopes, err := ParseScopes(list, "+")
	if err != nil {
		return staticKey{}, fmt.Errorf("key %q: %w", name, err)
	}
	return staticKey{name: name, hash: sha256.Sum256([]byte(key)), scopes: scopes}, nil
}

// Authenticate returns the key's owner and scopes, or ErrUnauthorized. Static keys are
// compared in constant time, all of them every time; stored keys are looked up by hash,
// so the key itself is never compared byte by byte.
func (k *Keys) Authenticate(ctx context.Context, key string) (Principal, error) {
	if key == "" {
		return Principal{}, ErrUnauthorized
	}
	h := sha256.Sum256([]byte(key))
	var found *staticKey
	for i := range k.static {
		if subtle.ConstantTimeCompare(h[:], k.static[i].hash[:]) == 1 {
			found = &k.static[i]
		}
	}
	if found != nil {
		return staticPrincipal(found), nil
	}
	return k.stored(ctx, `key_hash = $1`, h[:])
}

// staticPrincipal is the Principal of a key from API_KEYS: nobody created it here.
func staticPrincipal(s *staticKey) Principal {
	return Principal{Name: s.name, Scopes: s.scopes, Who: Actor{Kind: ActorKey, Name: s.name}}
}

// stored reads the live stored key matching where.
func (k *Keys) stored(ctx context.Context, where string, arg any) (Principal, error) {
	var row struct {
		ID        int64          `db:"id"`
		Name      string         `db:"name"`
		Scopes    pq.StringArray `db:"scopes"`
		CreatorID *int64         `db:"created_by_user_id"`
		Email     string         `db:"created_by_email"`
	}
	err := k.db.GetContext(ctx, &row, `SELECT id, name, scopes, created_by_user_id, coalesce(created_by_email, '') AS created_by_email
		FROM api_keys WHERE `+where+` AND revoked_at IS NULL`, arg)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, ErrUnauthorized
	}
	if err != nil {
		return Principal{}, fmt.Errorf("checking API key: %w", err)
	}
	p := Principal{Name: row.Name, KeyID: row.ID, Who: Actor{Kind: ActorKey, Name: row.Name, UserID: row.CreatorID, Email: row.Email}}
	for _, s := range row.Scopes {
		p.Scopes = append(p.Scopes, Scope(s))
	}
	return p, nil
}

// Recheck returns p as it stands now: a stored key re-read by id (revoked: ErrUnauthorized;
// its scopes as changed since), a static key looked up by name in this process's
// API_KEYS (gone: ErrUnauthorized). Admin sessions opened with a key use it on every
// request, so revoking the key or taking its admin scope ends them.
func (k *Keys) Recheck(ctx context.Context, p Principal) (Principal, error) {
	if !p.Static() {
		return k.stored(ctx, `id = $1`, p.KeyID)
	}
	for _, s := range k.static {
		if s.name == p.Name {
			return staticPrincipal(&s), nil
		}
	}
	return Principal{}, ErrUnauthorized
}

// Create makes a key named name with the given scopes and returns it; only its hash is
// stored, with who created it (the context's Actor, as it is now). Errors:
// ErrKeyNameTaken, a bad name, no or unknown scopes.
func (k *Keys) Create(ctx context.Context, name string, scopes []Scope) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", fmt.Errorf("key name must be 1–100 characters")
	}
	if err := checkScopes(scopes); err != nil {
		return "", err
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	key := "pp_" + base64.RawURLEncoding.EncodeToString(buf)
	h := sha256.Sum256([]byte(key))
	by := ActorFrom(ctx, "")
	_, err := k.db.ExecContext(ctx, `
		INSERT INTO api_keys (name, key_hash, scopes, created_by_kind, created_by_user_id, created_by_name, created_by_email)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, name, h[:], scopeArray(scopes), by.Kind, by.UserID, by.Name, by.Email)
	var pe *pq.Error
	if errors.As(err, &pe) && pe.Code == "23505" {
		return "", fmt.Errorf("key %q: %w", name, ErrKeyNameTaken)
	}
	if err != nil {
		return "", fmt.Errorf("creating key %q: %w", name, err)
	}
	return key, nil
}

// SetScopes replaces the scopes of the live key named name (narrowing a key stored
// before scopes existed, which migration 0013 made admin). Errors: ErrKeyNotFound, no
// or unknown scopes.
func (k *Keys) SetScopes(ctx context.Context, name string, scopes []Scope) error {
	if err := checkScopes(scopes); err != nil {
		return err
	}
	res, err := k.db.ExecContext(ctx, `UPDATE api_keys SET scopes = $2 WHERE lower(name) = lower($1) AND revoked_at IS NULL`,
		name, scopeArray(scopes))
	if err != nil {
		return fmt.Errorf("setting the scopes of key %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("key %q: %w", name, ErrKeyNotFound)
	}
	return nil
}

func checkScopes(scopes []Scope) error {
	if len(scopes) == 0 {
		return fmt.Errorf("a key needs at least one scope (%s)", scopeList(","))
	}
	for _, s := range scopes {
		if !s.Known() {
			return fmt.Errorf("unknown scope %q (want %s)", s, scopeList(","))
		}
	}
	return nil
}

func scopeArray(scopes []Scope) pq.StringArray {
	out := make(pq.StringArray, len(scopes))
	for i, s := range scopes {
		out[i] = string(s)
	}
	return out
}

// Revoke disables the live key named name. Errors: ErrKeyNotFound.
func (k *Keys) Revoke(ctx context.Context, name string) error {
	res, err := k.db.ExecContext(ctx, `UPDATE api_keys SET revoked_at = now() WHERE lower(name) = lower($1) AND revoked_at IS NULL`, name)
	if err != nil {
		return fmt.Errorf("revoking key %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("key %q: %w", name, ErrKeyNotFound)
	}
	return nil
}

// KeyInfo describes a stored key (never the key itself).
type KeyInfo struct {
	Name      string         `db:"name" json:"name"`
	Scopes    pq.StringArray `db:"scopes" json:"scopes"`
	CreatedAt time.Time      `db:"created_at" json:"created_at"`
	RevokedAt *time.Time     `db:"revoked_at" json:"revoked_at"`
	// CreatedBy is who created the key (kind "system", name "unknown" for keys made
	// before promopool recorded it).
	CreatedBy Actor `db:"created_by_who" json:"created_by"`
}

// List returns the stored keys, newest first.
func (k *Keys) List(ctx context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	err := k.db.SelectContext(ctx, &out, `
		SELECT name, scopes, created_at, revoked_at, `+ActorSQL("created_by", "'unknown'")+` AS created_by_who
		FROM api_keys ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("listing keys: %w", err)
	}
	return out, nil
}
