package users_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"promopool/auth"
	"promopool/internal/testdb"
	"promopool/users"
)

func TestCreateAndPasswords(t *testing.T) {
	db := testdb.New(t)
	s := users.NewStore(db.DB)
	ctx := auth.WithActor(context.Background(), auth.Actor{Kind: auth.ActorCLI, Name: "cli:root"})
	u, err := s.Create(ctx, users.NewUser{Email: " Ada@Example.com ", Name: "Ada Lovelace", Role: users.RoleAdmin, Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "ada@example.com" || !u.HasPassword || u.CreatedBy != "cli:root" || !u.Enabled() {
		t.Fatalf("created %+v", u)
	}
	var hash string
	if err := db.Get(&hash, `SELECT password_hash FROM admin_users WHERE id = $1`, u.ID); err != nil || !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("stored hash %q (%v): want an argon2id PHC string", hash, err)
	}
	for _, bad := range []users.NewUser{
		{Email: "ada@example.com", Name: "Again", Role: users.RoleViewer},
		{Email: "not an address", Name: "X", Role: users.RoleViewer},
		{Email: "Bob <bob@example.com>", Name: "X", Role: users.RoleViewer},
		{Email: "bob@example.com", Name: "", Role: users.RoleViewer},
		{Email: "bob@example.com", Name: "Bob", Role: "owner"},
		{Email: "bob@example.com", Name: "Bob", Role: users.RoleViewer, Password: "short"},
	} {
		_, err := s.Create(ctx, bad)
		var inv *users.InvalidError
		if !errors.Is(err, users.ErrEmailTaken) && !errors.As(err, &inv) {
			t.Errorf("Create(%+v) = %v, want ErrEmailTaken or *InvalidError", bad, err)
		}
	}

	if got, err := s.Authenticate(ctx, "ADA@example.com", "correct horse battery"); err != nil || got.ID != u.ID {
		t.Fatalf("Authenticate: %v, %v", got, err)
	}
	for _, c := range [][2]string{{"ada@example.com", "wrong horse battery"}, {"nobody@example.com", "correct horse battery"}} {
		if _, err := s.Authenticate(ctx, c[0], c[1]); !errors.Is(err, users.ErrBadPassword) {
			t.Errorf("Authenticate(%q, %q) = %v, want ErrBadPassword", c[0], c[1], err)
		}
	}
	// Each change that ends sessions moves the epoch; a disabled user does not sign in.
	epoch := u.Epoch
	if u, err = s.SetRole(ctx, u.ID, users.RoleViewer); err != nil || u.Epoch != epoch+1 {
		t.Fatalf("SetRole: %+v %v", u, err)
	}
	if u, err = s.SetRole(ctx, u.ID, users.RoleViewer); err != nil || u.Epoch != epoch+1 {
		t.Fatalf("SetRole to the same role moved the epoch: %+v %v", u, err)
	}
	if u, err = s.Disable(ctx, u.ID); err != nil || u.Enabled() || u.Epoch != epoch+2 {
		t.Fatalf("Disable: %+v %v", u, err)
	}
	if _, err := s.Authenticate(ctx, "ada@example.com", "correct horse battery"); !errors.Is(err, users.ErrDisabled) {
		t.Fatalf("a disabled user signed in: %v", err)
	}
	if u, err = s.SetPassword(ctx, u.ID, "another long password"); err != nil || u.Epoch != epoch+3 {
		t.Fatalf("SetPassword: %+v %v", u, err)
	}
	if _, err := s.Enable(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "ada@example.com", "correct horse battery"); !errors.Is(err, users.ErrBadPassword) {
		t.Fatalf("the old password still signs in: %v", err)
	}
}

func TestSignInIdentity(t *testing.T) {
	db := testdb.New(t)
	s := users.NewStore(db.DB)
	ctx := context.Background()
	ada, err := s.Create(ctx, users.NewUser{Email: "ada@example.com", Name: "Ada", Role: users.RoleMarketer})
	if err != nil {
		t.Fatal(err)
	}
	id := users.Identity{Issuer: "https://idp.example/", Subject: "s-ada", Email: "Ada@Example.com", EmailVerified: true}
	refuse := users.Policy{}
	// By verified email at first, then linked by subject whatever the email says.
	if u, err := s.SignIn(ctx, id, refuse); err != nil || u.ID != ada.ID || !u.Linked {
		t.Fatalf("first sign-in: %+v %v", u, err)
	}
	moved := id
	moved.Email = "ada.lovelace@example.org"
	if u, err := s.SignIn(ctx, moved, refuse); err != nil || u.ID != ada.ID {
		t.Fatalf("after an email change at the provider: %+v %v", u, err)
	}
	// Another identity with Ada's email does not take her user.
	other := users.Identity{Issuer: id.Issuer, Subject: "s-mallory", Email: "ada@example.com", EmailVerified: true}
	if _, err := s.SignIn(ctx, other, refuse); !errors.Is(err, users.ErrLinkedElsewhere) {
		t.Fatalf("another identity with a linked email: %v", err)
	}
	unverified := users.Identity{Issuer: id.Issuer, Subject: "s-bob", Email: "bob@example.com", EmailVerified: false}
	if _, err := s.SignIn(ctx, unverified, users.Policy{NewUserRole: users.RoleViewer}); !errors.Is(err, users.ErrEmailUnverified) {
		t.Fatalf("unverified email: %v", err)
	}
	newcomer := users.Identity{Issuer: id.Issuer, Subject: "s-cy", Email: "cy@example.com", EmailVerified: true, Name: "Cy"}
	if _, err := s.SignIn(ctx, newcomer, refuse); !errors.Is(err, users.ErrUnknownUser) {
		t.Fatalf("unknown person with refuse: %v", err)
	}
	u, err := s.SignIn(ctx, newcomer, users.Policy{NewUserRole: users.RoleViewer})
	if err != nil || u.Role != users.RoleViewer || u.Name != "Cy" || !strings.HasPrefix(u.CreatedBy, "first sign-in at ") {
		t.Fatalf("unknown person with a default role: %+v %v", u, err)
	}
	if _, err := s.Disable(ctx, ada.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignIn(ctx, id, refuse); !errors.Is(err, users.ErrDisabled) {
		t.Fatalf("disabled user: %v", err)
	}
}

func TestRoleScopes(t *testing.T) {
	for _, c := range []struct {
		role      users.Role
		may, nope []auth.Scope
	}{
		{users.RoleViewer, []auth.Scope{auth.ScopeRead}, []auth.Scope{auth.ScopeWrite, auth.ScopeExport, auth.ScopeIssue, auth.ScopeRender, auth.ScopeCheckout, auth.ScopeAdmin}},
		{users.RoleMarketer, []auth.Scope{auth.ScopeRead, auth.ScopeWrite, auth.ScopeIssue, auth.ScopeRender}, []auth.Scope{auth.ScopeExport, auth.ScopeCheckout, auth.ScopeAdmin}},
		{users.RoleAdmin, auth.Scopes, nil},
	} {
		p := auth.Principal{Scopes: c.role.Scopes()}
		for _, s := range c.may {
			if !p.Has(s) {
				t.Errorf("%s lacks %s", c.role, s)
			}
		}
		for _, s := range c.nope {
			if p.Has(s) {
				t.Errorf("%s has %s", c.role, s)
			}
		}
	}
}
