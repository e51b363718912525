// Package users keeps the people who may sign in to promopool (the admin_users table):
// their name, email and role, an optional argon2id password, and the identity at the
// platform's OpenID Connect provider they are linked to. A role says what its holder may
// do, as API scopes (Role.Scopes) and on the admin pages. Users are never deleted, only
// disabled, so the history that names them keeps its row; disabling a user, changing
// their role or their password bumps their session epoch, which ends every session they
// had open (the admin pages check it on each request).
package users

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"promopool/auth"
)

// Role is what a user may do.
type Role string

// The roles, from least to most.
const (
	// RoleViewer reads the pages and reports: API scope read.
	RoleViewer Role = "viewer"
	// RoleMarketer runs campaigns: groups, uploads, mailings, segments, pause and
	// activate, direct issue and rendering. API scopes read, write, issue, render.
	RoleMarketer Role = "marketer"
	// RoleAdmin does everything, exports of codes, keys and users included: API scope admin.
	RoleAdmin Role = "admin"
)

// Roles lists the roles from least to most.
var Roles = []Role{RoleViewer, RoleMarketer, RoleAdmin}

// ParseRole reads a role's name. Errors: an unknown name (the message lists the roles).
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	for _, k := range Roles {
		if r == k {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q (want viewer, marketer or admin)", s)
}

// Scopes are the API scopes a role grants to its holder's platform JWTs (README
// "Users and sign-in"). checkout (a shop's integration) and export (codes in bulk)
// belong to keys and admins.
func (r Role) Scopes() []auth.Scope {
	switch r {
	case RoleViewer:
		return []auth.Scope{auth.ScopeRead}
	case RoleMarketer:
		return []auth.Scope{auth.ScopeRender, auth.ScopeIssue, auth.ScopeRead, auth.ScopeWrite}
	case RoleAdmin:
		return []auth.Scope{auth.ScopeAdmin}
	}
	return nil
}

// AtLeast reports whether r is min or above it.
func (r Role) AtLeast(min Role) bool { return r.rank() >= min.rank() }

func (r Role) rank() int {
	for i, k := range Roles {
		if r == k {
			return i
		}
	}
	return -1
}

// MinPasswordLength is the shortest user password accepted.
const MinPasswordLength = 12

var (
	// ErrNotFound: no user with that id or email.
	ErrNotFound = errors.New("no such user")
	// ErrEmailTaken: another user has that email.
	ErrEmailTaken = errors.New("a user with that email already exists")
	// ErrBadPassword: the email and password do not sign in (unknown email, no
	// password set, or the wrong one: which, is not told).
	ErrBadPassword = errors.New("that email and password do not match a user")
	// ErrDisabled: the user is disabled.
	ErrDisabled = errors.New("this user is disabled")
)

// InvalidError is a field of a new or changed user that cannot be stored.
type InvalidError struct {
	// Field is email, name, role or password.
	Field string
	// Reason says what is wrong and what is wanted.
	Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

// User is a person who may sign in.
type User struct {
	ID    int64  `db:"id"`
	Email string `db:"email"`
	Name  string `db:"name"`
	Role  Role   `db:"role"`
	// HasPassword says a password sign-in is set up (the hash itself stays here).
	HasPassword bool `db:"has_password"`
	// Linked says the user signed in through the identity provider at least once.
	Linked bool `db:"linked"`
	// Epoch is bumped when the user is disabled, changes role or password: sessions
	// opened under another epoch are over.
	Epoch      int64      `db:"session_epoch"`
	CreatedAt  time.Time  `db:"created_at"`
	CreatedBy  string     `db:"created_by"`
	DisabledAt *time.Time `db:"disabled_at"`
}

// Enabled reports whether the user may sign in.
func (u *User) Enabled() bool { return u.DisabledAt == nil }

// Actor is the user as the history records them now.
func (u *User) Actor() auth.Actor {
	id := u.ID
	return auth.Actor{Kind: auth.ActorUser, UserID: &id, Name: u.Name, Email: u.Email}
}

// userColumns are a User's columns, the hash apart.
const userColumns = `id, email, name, role, password_hash IS NOT NULL AS has_password, oidc_subject IS NOT NULL AS linked,
	session_epoch, created_at, created_by, disabled_at`

// Store keeps the users.
type Store struct {
	db *sqlx.DB
	// hashing bounds the argon2id runs at once (each takes 19 MiB).
	hashing chan struct{}
	// dummy is checked when an email is unknown or has no password, so a wrong email
	// takes as long to refuse as a wrong password.
	dummy     sync.Once
	dummyHash string
}

// hashSlots is how many password hashes run at once in one process.
const hashSlots = 2

// NewStore returns the users kept in db.
func NewStore(db *sqlx.DB) *Store {
	return &Store{db: db, hashing: make(chan struct{}, hashSlots)}
}

// NewUser is a user to create.
type NewUser struct {
	Email string
	Name  string
	Role  Role
	// Password, when set, enables password sign-in (at least MinPasswordLength characters).
	Password string
}

// NormalizeEmail returns email trimmed and lower-cased, or an *InvalidError when it is
// not one plain address.
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || len(e) > 254 {
		return "", &InvalidError{Field: "email", Reason: fmt.Sprintf("want one plain address such as ada@example.com, got %q", email)}
	}
	return e, nil
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > 200 {
		return "", &InvalidError{Field: "name", Reason: "1–200 characters, the name people know this user by"}
	}
	return name, nil
}

func checkPasswordRule(pw string) error {
	if utf8.RuneCountInString(pw) < MinPasswordLength {
		return &InvalidError{Field: "password", Reason: fmt.Sprintf("at least %d characters", MinPasswordLength)}
	}
	return nil
}

// Create stores a new user, created by the context's Actor. Errors: *InvalidError,
// ErrEmailTaken.
func (s *Store) Create(ctx context.Context, in NewUser) (*User, error) {
	email, err := NormalizeEmail(in.Email)
	if err != nil {
		return nil, err
	}
	name, err := checkName(in.Name)
	if err != nil {
		return nil, err
	}
	if _, err := ParseRole(string(in.Role)); err != nil {
		return nil, &InvalidError{Field: "role", Reason: err.Error()}
	}
	var hash sql.NullString
	if in.Password != "" {
		if err := checkPasswordRule(in.Password); err != nil {
			return nil, err
		}
		if hash.String, err = s.hashPassword(ctx, in.Password); err != nil {
			return nil, fmt.Errorf("hashing the password of %s: %w", email, err)
		}
		hash.Valid = true
	}
	return s.insert(ctx, email, name, in.Role, hash, nil, auth.ActorFrom(ctx, "").Label())
}

// insert stores a user; link is the provider identity (issuer, subject) or nil.
func (s *Store) insert(ctx context.Context, email, name string, role Role, hash sql.NullString, link []string, by string) (*User, error) {
	var iss, sub sql.NullString
	if link != nil {
		iss, sub = sql.NullString{String: link[0], Valid: true}, sql.NullString{String: link[1], Valid: true}
	}
	var u User
	err := s.db.GetContext(ctx, &u, `
		INSERT INTO admin_users (email, name, role, password_hash, oidc_issuer, oidc_subject, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+userColumns,
		email, name, role, hash, iss, sub, by)
	var pe *pq.Error
	if errors.As(err, &pe) && pe.Code == "23505" {
		return nil, fmt.Errorf("user %s: %w", email, ErrEmailTaken)
	}
	if err != nil {
		return nil, fmt.Errorf("creating user %s: %w", email, err)
	}
	return &u, nil
}

// Get returns the user with id. Errors: ErrNotFound.
func (s *Store) Get(ctx context.Context, id int64) (*User, error) {
	return s.one(ctx, `id = $1`, id)
}

// ByEmail returns the user with email (any case). Errors: ErrNotFound.
func (s *Store) ByEmail(ctx context.Context, email string) (*User, error) {
	return s.one(ctx, `email = $1`, strings.ToLower(strings.TrimSpace(email)))
}

func (s *Store) one(ctx context.Context, where string, args ...any) (*User, error) {
	var u User
	err := s.db.GetContext(ctx, &u, `SELECT `+userColumns+` FROM admin_users WHERE `+where, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %v: %w", args[len(args)-1], ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading user %v: %w", args[len(args)-1], err)
	}
	return &u, nil
}

// List returns every user, enabled ones first, by email.
func (s *Store) List(ctx context.Context) ([]User, error) {
	out := []User{}
	err := s.db.SelectContext(ctx, &out, `SELECT `+userColumns+` FROM admin_users ORDER BY disabled_at IS NOT NULL, email`)
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return out, nil
}

// CountEnabled returns how many users may sign in.
func (s *Store) CountEnabled(ctx context.Context) (int, error) {
	var n int
	err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM admin_users WHERE disabled_at IS NULL`)
	if err != nil {
		return 0, fmt.Errorf("counting users: %w", err)
	}
	return n, nil
}

// SetRole gives the user role; their open sessions end. Errors: ErrNotFound, *InvalidError.
func (s *Store) SetRole(ctx context.Context, id int64, role Role) (*User, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return nil, &InvalidError{Field: "role", Reason: err.Error()}
	}
	return s.update(ctx, id, `role = $2, session_epoch = session_epoch + CASE WHEN role = $2 THEN 0 ELSE 1 END`, role)
}

// Disable stops the user signing in; their open sessions end at their next request.
// Disabling a disabled user changes nothing. Errors: ErrNotFound.
func (s *Store) Disable(ctx context.Context, id int64) (*User, error) {
	return s.update(ctx, id, `disabled_at = coalesce(disabled_at, now()), session_epoch = session_epoch + 1`)
}

// Enable lets a disabled user sign in again. Errors: ErrNotFound.
func (s *Store) Enable(ctx context.Context, id int64) (*User, error) {
	return s.update(ctx, id, `disabled_at = NULL`)
}

// SetPassword sets (or, with "", removes) the user's password; their open sessions
// end. Errors: ErrNotFound, *InvalidError.
func (s *Store) SetPassword(ctx context.Context, id int64, password string) (*User, error) {
	var hash sql.NullString
	if password != "" {
		if err := checkPasswordRule(password); err != nil {
			return nil, err
		}
		h, err := s.hashPassword(ctx, password)
		if err != nil {
			return nil, fmt.Errorf("hashing the password of user %d: %w", id, err)
		}
		hash = sql.NullString{String: h, Valid: true}
	}
	return s.update(ctx, id, `password_hash = $2, session_epoch = session_epoch + 1`, hash)
}

// update sets set (whose placeholders start at $2) on user id.
func (s *Store) update(ctx context.Context, id int64, set string, args ...any) (*User, error) {
	var u User
	err := s.db.GetContext(ctx, &u, `UPDATE admin_users SET `+set+` WHERE id = $1 RETURNING `+userColumns, append([]any{id}, args...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("changing user %d: %w", id, err)
	}
	return &u, nil
}
