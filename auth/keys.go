// Package auth checks API keys. Keys come from the environment (API_KEYS) or from the
// api_keys table, where only their SHA-256 is stored; a key is shown once, when created.
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
	name string
	hash [32]byte
}

// NewKeys returns a checker over the api_keys table and the static keys in spec, a
// comma-separated list of name:key pairs (the API_KEYS variable). Errors: a malformed spec.
func NewKeys(db *sqlx.DB, spec string) (*Keys, error) {
	k := &Keys{db: db}
	for i, pair := range strings.Split(spec, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		name, key, ok := strings.Cut(pair, ":")
		if !ok || name == "" || len(key) < 16 {
			return nil, fmt.Errorf("API_KEYS entry %d: want name:key with a key of at least 16 characters", i+1)
		}
		k.static = append(k.static, staticKey{name: name, hash: sha256.Sum256([]byte(key))})
	}
	return k, nil
}

// Authenticate returns the name of the key's owner, or ErrUnauthorized. Static keys are
// compared in constant time, all of them every time; stored keys are looked up by hash,
// so the key itself is never compared byte by byte.
func (k *Keys) Authenticate(ctx context.Context, key string) (string, error) {
	if key == "" {
		return "", ErrUnauthorized
	}
	h := sha256.Sum256([]byte(key))
	found := ""
	for _, s := range k.static {
		if subtle.ConstantTimeCompare(h[:], s.hash[:]) == 1 {
			found = s.name
		}
	}
	if found != "" {
		return found, nil
	}
	err := k.db.GetContext(ctx, &found, `SELECT name FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`, h[:])
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrUnauthorized
	}
	if err != nil {
		return "", fmt.Errorf("checking API key: %w", err)
	}
	return found, nil
}

// Create makes a key named name and returns it; only its hash is stored.
// Errors: ErrKeyNameTaken.
func (k *Keys) Create(ctx context.Context, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", fmt.Errorf("key name must be 1–100 characters")
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	key := "pp_" + base64.RawURLEncoding.EncodeToString(buf)
	h := sha256.Sum256([]byte(key))
	_, err := k.db.ExecContext(ctx, `INSERT INTO api_keys (name, key_hash) VALUES ($1, $2)`, name, h[:])
	var pe *pq.Error
	if errors.As(err, &pe) && pe.Code == "23505" {
		return "", fmt.Errorf("key %q: %w", name, ErrKeyNameTaken)
	}
	if err != nil {
		return "", fmt.Errorf("creating key %q: %w", name, err)
	}
	return key, nil
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
	Name      string     `db:"name" json:"name"`
	CreatedAt time.Time  `db:"created_at" json:"created_at"`
	RevokedAt *time.Time `db:"revoked_at" json:"revoked_at"`
}

// List returns the stored keys, newest first.
func (k *Keys) List(ctx context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	err := k.db.SelectContext(ctx, &out, `SELECT name, created_at, revoked_at FROM api_keys ORDER BY id DESC`)
	return out, err
}
