// Package oidctest runs a real OpenID Connect provider for tests: the example server of
// zitadel/oidc (github.com/zitadel/oidc/v3, an OpenID Certified provider library kept by
// ZITADEL), with its in-memory storage and its username/password login page, served by
// an httptest server. Tests drive the whole authorization code flow with PKCE through
// it — discovery, the provider's login form, the code exchange, ID tokens checked
// against its JWKS — so promopool's side meets a provider it did not write. Sign mints
// platform JWTs with the provider's own signing key, as the platform would for API
// calls made on behalf of a person.
//
// Why this one: no Dex or other provider installs from Debian here; zitadel/oidc's
// example is a complete provider (login page, PKCE, userinfo, JWKS) that runs in the
// test process in milliseconds, where a mock of our own would only agree with us.
package oidctest

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/text/language"
)

// Client credentials the provider knows promopool by.
const (
	ClientID     = "promopool"
	ClientSecret = "promopool-test-secret"
)

// User is a person with an account at the provider.
type User struct {
	// ID is the subject (sub) the provider gives them.
	ID string
	// Username and Password are what they type on the provider's login page.
	Username, Password string
	// Email and Name are their claims; EmailVerified says whether the email is verified.
	Email, Name   string
	EmailVerified bool
}

// Provider is a running provider.
type Provider struct {
	// Issuer is its issuer URL (http://127.0.0.1:PORT/), as its discovery document says.
	Issuer  string
	srv     *httptest.Server
	storage *storage.Storage
}

type userStore map[string]*storage.User

func (u userStore) GetUserByID(id string) *storage.User { return u[id] }
func (u userStore) ExampleClientID() string             { return "service" }
func (u userStore) GetUserByUsername(name string) *storage.User {
	for _, x := range u {
		if x.Username == name {
			return x
		}
	}
	return nil
}

// Start runs a provider for the test's duration, with promopool registered as a
// confidential web client (ClientID, ClientSecret) whose callback is redirectURI.
func Start(t testing.TB, redirectURI string, people ...User) *Provider {
	t.Helper()
	us := userStore{}
	for _, p := range people {
		us[p.ID] = &storage.User{ID: p.ID, Username: p.Username, Password: p.Password, FirstName: p.Name, Email: p.Email,
			EmailVerified: p.EmailVerified, PreferredLanguage: language.English}
	}
	clients := map[string]*storage.Client{ClientID: storage.WebClient(ClientID, ClientSecret, redirectURI)}
	st := storage.NewStorageWithClients(us, clients)
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + "/"
	srv.Config.Handler = exampleop.SetupServer(issuer, st, nil, false)
	srv.Start()
	t.Cleanup(srv.Close)
	return &Provider{Issuer: issuer, srv: srv, storage: st}
}

// Sign returns a JWT signed with the provider's signing key (published in its JWKS),
// carrying claims plus iss (the issuer), iat and, unless claims set it, exp in 5 minutes.
func (p *Provider) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	key, err := p.storage.SigningKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.SignatureAlgorithm(), Key: key.Key()},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", key.ID()))
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]any{"iss": p.Issuer, "iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix()}
	for k, v := range claims {
		c[k] = v
	}
	payload, _ := json.Marshal(c)
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
