package users

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Authenticate returns the enabled user whose email and password these are. Errors:
// ErrBadPassword (unknown email, no password set, wrong password), ErrDisabled (only
// once the password was right).
func (s *Store) Authenticate(ctx context.Context, email, password string) (*User, error) {
	var row struct {
		User
		Hash sql.NullString `db:"password_hash"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT `+userColumns+`, password_hash FROM admin_users WHERE email = $1`,
		strings.ToLower(strings.TrimSpace(email)))
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("reading user %s: %w", email, err)
	}
	hash := row.Hash.String
	if !row.Hash.Valid {
		s.dummy.Do(func() { s.dummyHash, _ = s.hashPassword(context.Background(), "not a password of anyone") })
		hash = s.dummyHash
	}
	ok, err := s.checkPassword(ctx, hash, password)
	if err != nil {
		return nil, fmt.Errorf("checking the password of %s: %w", email, err)
	}
	if !ok || !row.Hash.Valid {
		return nil, ErrBadPassword
	}
	if !row.User.Enabled() {
		return nil, fmt.Errorf("user %s: %w", row.Email, ErrDisabled)
	}
	return &row.User, nil
}

// Identity is who the identity provider says signed in (an ID token's claims, or a
// platform JWT's).
type Identity struct {
	// Issuer and Subject identify the person at the provider for good.
	Issuer, Subject string
	// Email is the email claim; EmailVerified is false only when the provider says so.
	Email         string
	EmailVerified bool
	// Name is the name claim, used for a user created at first sign-in.
	Name string
}

// Policy says what to do with a person who has no user yet.
type Policy struct {
	// NewUserRole creates them with this role (viewer or marketer); empty refuses them.
	NewUserRole Role
}

// Errors of SignIn.
var (
	// ErrUnknownUser: no user for this identity, and the policy refuses newcomers.
	ErrUnknownUser = errors.New("no promopool user has this email; an admin can add one (promopool users create, or the Users page)")
	// ErrEmailUnverified: the provider says the email is not verified, so it cannot
	// stand for a user.
	ErrEmailUnverified = errors.New("the identity provider says this email is not verified")
	// ErrLinkedElsewhere: the user with this email is linked to another identity at the provider.
	ErrLinkedElsewhere = errors.New("the user with this email signs in as another identity at the provider")
)

// SignIn returns the user the identity stands for: the one linked to it; else the one
// with its email (verified), now linked to it; else, when the policy allows, a new
// user with the policy's role, linked to it. Errors: ErrUnknownUser, ErrDisabled,
// ErrEmailUnverified, ErrLinkedElsewhere, *InvalidError (no usable email).
func (s *Store) SignIn(ctx context.Context, id Identity, p Policy) (*User, error) {
	if id.Issuer == "" || id.Subject == "" {
		return nil, errors.New("signing in an identity without issuer or subject")
	}
	u, err := s.one(ctx, `oidc_issuer = $1 AND oidc_subject = $2`, id.Issuer, id.Subject)
	if err == nil {
		return enabled(u)
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if id.Email == "" {
		return nil, &InvalidError{Field: "email", Reason: "the identity provider sent no email claim (ask for the email scope)"}
	}
	if !id.EmailVerified {
		return nil, ErrEmailUnverified
	}
	email, err := NormalizeEmail(id.Email)
	if err != nil {
		return nil, err
	}
	var u2 User
	err = s.db.GetContext(ctx, &u2, `
		UPDATE admin_users SET oidc_issuer = $2, oidc_subject = $3
		WHERE email = $1 AND (oidc_subject IS NULL OR (oidc_issuer = $2 AND oidc_subject = $3)) RETURNING `+userColumns,
		email, id.Issuer, id.Subject)
	switch {
	case err == nil:
		return enabled(&u2)
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("linking user %s: %w", email, err)
	}
	if _, err := s.ByEmail(ctx, email); err == nil {
		return nil, fmt.Errorf("user %s: %w", email, ErrLinkedElsewhere)
	}
	if p.NewUserRole == "" {
		return nil, fmt.Errorf("%s: %w", email, ErrUnknownUser)
	}
	name, err := checkName(id.Name)
	if err != nil {
		name = email
	}
	return s.insert(ctx, email, name, p.NewUserRole, sql.NullString{}, []string{id.Issuer, id.Subject}, "first sign-in at "+id.Issuer)
}

func enabled(u *User) (*User, error) {
	if !u.Enabled() {
		return nil, fmt.Errorf("user %s: %w", u.Email, ErrDisabled)
	}
	return u, nil
}
