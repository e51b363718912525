package idp

import (
	"context"
	"errors"
	"fmt"

	"promopool/auth"
	"promopool/users"
)

// People accepts platform JWTs on the API: a token the provider signed for the API's
// audience stands for the user its identity maps to (users.SignIn, with the same
// policy as the sign-in page), who may do what their role's scopes allow.
type People struct {
	// Provider verifies the tokens.
	Provider *Provider
	// Users maps identities to users.
	Users *users.Store
	// Policy says what to do with a person who has no user yet.
	Policy users.Policy
}

// ErrPersonRefused: the token is valid but stands for no enabled user.
var ErrPersonRefused = errors.New("the bearer JWT stands for no enabled promopool user")

// Authenticate returns the person a bearer JWT stands for, with their role's scopes.
// Errors: ErrBadToken (not a token the provider signed for this API, or expired),
// ErrPersonRefused (with the users error's words: unknown, disabled, …), or the provider
// or the database failing.
func (p People) Authenticate(ctx context.Context, token string) (auth.Principal, error) {
	id, err := p.Provider.VerifyBearer(ctx, token)
	if err != nil {
		return auth.Principal{}, err
	}
	u, err := p.Users.SignIn(ctx, id, p.Policy)
	if err != nil {
		var inv *users.InvalidError
		if errors.Is(err, users.ErrUnknownUser) || errors.Is(err, users.ErrDisabled) || errors.Is(err, users.ErrEmailUnverified) ||
			errors.Is(err, users.ErrLinkedElsewhere) || errors.As(err, &inv) {
			// Not %w: the person is refused on the API whatever the users error was.
			return auth.Principal{}, fmt.Errorf("%w: %v", ErrPersonRefused, err)
		}
		return auth.Principal{}, err
	}
	return auth.Principal{Name: u.Email, Scopes: u.Role.Scopes(), Role: string(u.Role), Who: u.Actor()}, nil
}
