// Package idp signs people in through the operator's OpenID Connect identity provider
// (the authorization code flow with PKCE, coreos/go-oidc over golang.org/x/oauth2) and
// checks the JWTs that provider signs for API calls made on behalf of a person
// (signature from the issuer's JWKS, issuer, expiry and audience). Both end in a
// users.Identity; package users decides which user it stands for.
//
// The provider's discovery document is read when first needed, not at start-up: a
// provider that is down when promopool starts only delays sign-ins through it, and
// API keys and passwords keep working.
package idp

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"promopool/users"
)

// CallbackPath is where the provider sends the browser back; RedirectURL must end in it.
const CallbackPath = "/admin/login/oidc/callback"

// Config configures sign-in through the provider.
type Config struct {
	// Issuer is the provider's issuer URL (OIDC_ISSUER), exactly as its discovery
	// document (Issuer + "/.well-known/openid-configuration") names it.
	Issuer string
	// ClientID and ClientSecret are promopool's client at the provider
	// (OIDC_CLIENT_ID, OIDC_CLIENT_SECRET).
	ClientID, ClientSecret string
	// RedirectURL is the callback registered with the provider (OIDC_REDIRECT_URL):
	// promopool's public address followed by CallbackPath.
	RedirectURL string
	// APIAudience is the audience a platform JWT must carry to be accepted on the API
	// (OIDC_API_AUDIENCE, default ClientID).
	APIAudience string
	// HTTPClient reaches the provider (default: a client with a 10 s timeout).
	HTTPClient *http.Client
}

// Provider is the configured identity provider.
type Provider struct {
	cfg Config

	mu       sync.Mutex
	provider *oidc.Provider
	lastErr  error
	lastTry  time.Time
}

// retryAfter is how long a failed discovery is remembered before the next request
// tries again (so a flood of bearer tokens does not become a flood of requests).
const retryAfter = 5 * time.Second

// New checks cfg. Errors: a missing field, an issuer or redirect URL that is not an
// absolute http(s) URL, a redirect URL that does not end in CallbackPath.
func New(cfg Config) (*Provider, error) {
	switch {
	case cfg.Issuer == "" || cfg.ClientID == "" || cfg.ClientSecret == "" || cfg.RedirectURL == "":
		return nil, errors.New("OIDC: OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET and OIDC_REDIRECT_URL are all needed")
	case !absolute(cfg.Issuer):
		return nil, fmt.Errorf("OIDC_ISSUER: want an absolute https:// URL, got %q", cfg.Issuer)
	case !absolute(cfg.RedirectURL):
		return nil, fmt.Errorf("OIDC_REDIRECT_URL: want an absolute URL, got %q", cfg.RedirectURL)
	}
	if u, _ := url.Parse(cfg.RedirectURL); u.Path != CallbackPath {
		return nil, fmt.Errorf("OIDC_REDIRECT_URL: the path must be %s (got %q): register https://YOUR-HOST%s with the provider",
			CallbackPath, u.Path, CallbackPath)
	}
	if cfg.APIAudience == "" {
		cfg.APIAudience = cfg.ClientID
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &Provider{cfg: cfg}, nil
}

func absolute(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// Issuer is the configured issuer URL.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// Host is the issuer's host, for the sign-in button.
func (p *Provider) Host() string {
	u, _ := url.Parse(p.cfg.Issuer)
	return u.Host
}

// AuthOrigin is the scheme and host of the provider's authorization endpoint (the
// sign-in page's CSP lets its form lead there); the issuer's while the discovery
// document cannot be read.
func (p *Provider) AuthOrigin(ctx context.Context) string {
	raw := p.cfg.Issuer
	if prov, err := p.discover(ctx); err == nil {
		raw = prov.Endpoint().AuthURL
	}
	u, _ := url.Parse(raw)
	return u.Scheme + "://" + u.Host
}

// ctx gives the go-oidc and oauth2 calls the configured HTTP client.
func (p *Provider) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, p.cfg.HTTPClient)
}

// discover returns the provider as its discovery document describes it, read once.
func (p *Provider) discover(ctx context.Context) (*oidc.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.provider != nil {
		return p.provider, nil
	}
	if p.lastErr != nil && time.Since(p.lastTry) < retryAfter {
		return nil, p.lastErr
	}
	p.lastTry = time.Now()
	// The provider's keys are fetched later with a context of their own: this one only
	// bounds the discovery request.
	prov, err := oidc.NewProvider(p.ctx(context.WithoutCancel(ctx)), p.cfg.Issuer)
	if err != nil {
		p.lastErr = fmt.Errorf("%w: reading the discovery document of %s: %w", ErrUnavailable, p.cfg.Issuer, err)
		return nil, p.lastErr
	}
	p.provider, p.lastErr = prov, nil
	return prov, nil
}

// Warm reads the discovery document now, so the first sign-in does not wait for it;
// an error is only worth a log line (the next sign-in tries again).
func (p *Provider) Warm(ctx context.Context) error {
	_, err := p.discover(ctx)
	return err
}

func (p *Provider) oauth(prov *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, RedirectURL: p.cfg.RedirectURL,
		Endpoint: prov.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
}

// Flow is what a sign-in keeps between leaving for the provider and coming back:
// the state the callback must return, the nonce the ID token must carry and the PKCE
// verifier the code is exchanged with.
type Flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
}

// Start begins a sign-in: the URL to send the browser to, and the Flow to keep.
// Errors: the provider's discovery document cannot be read.
func (p *Provider) Start(ctx context.Context) (string, Flow, error) {
	prov, err := p.discover(ctx)
	if err != nil {
		return "", Flow{}, err
	}
	f := Flow{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier()}
	u := p.oauth(prov).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	return u, f, nil
}

func random() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// claims are the ID token's (or a platform JWT's, or the userinfo answer's) claims
// promopool reads.
type claims struct {
	Subject       string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified *bool  `json:"email_verified"`
	Name          string `json:"name"`
}

func (c claims) identity(issuer string) users.Identity {
	return users.Identity{Issuer: issuer, Subject: c.Subject, Email: c.Email,
		EmailVerified: c.EmailVerified == nil || *c.EmailVerified, Name: c.Name}
}

// ErrFlow: the callback does not belong to the sign-in this browser started (state
// mismatch), or the provider answered with an error.
var ErrFlow = errors.New("the sign-in through the identity provider did not complete")

// Finish completes a sign-in the provider sent back to the callback: it checks the
// state, exchanges the code with the PKCE verifier, verifies the ID token (signature,
// issuer, audience, expiry, nonce) and reads the person's email from it, or from the
// userinfo endpoint when the token does not carry it. Errors: ErrFlow (wrapped with
// the provider's error), a failed exchange or verification.
func (p *Provider) Finish(ctx context.Context, f Flow, q url.Values) (users.Identity, error) {
	if e := q.Get("error"); e != "" {
		return users.Identity{}, fmt.Errorf("%w: the provider said %s %s", ErrFlow, e, q.Get("error_description"))
	}
	if f.State == "" || q.Get("state") != f.State || q.Get("code") == "" {
		return users.Identity{}, fmt.Errorf("%w: its state does not match this browser's", ErrFlow)
	}
	prov, err := p.discover(ctx)
	if err != nil {
		return users.Identity{}, err
	}
	ctx = p.ctx(ctx)
	tok, err := p.oauth(prov).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return users.Identity{}, fmt.Errorf("exchanging the code at %s: %w", p.cfg.Issuer, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return users.Identity{}, fmt.Errorf("%w: the provider sent no ID token", ErrFlow)
	}
	idt, err := prov.Verifier(&oidc.Config{ClientID: p.cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		return users.Identity{}, fmt.Errorf("verifying the ID token: %w", err)
	}
	if idt.Nonce != f.Nonce {
		return users.Identity{}, fmt.Errorf("%w: the ID token's nonce is not this sign-in's", ErrFlow)
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		return users.Identity{}, fmt.Errorf("reading the ID token's claims: %w", err)
	}
	if c.Email == "" {
		// Many providers put the email in the userinfo answer only.
		info, err := prov.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return users.Identity{}, fmt.Errorf("reading the userinfo of %s: %w", c.Subject, err)
		}
		var uc claims
		if err := info.Claims(&uc); err != nil {
			return users.Identity{}, fmt.Errorf("reading the userinfo claims: %w", err)
		}
		if uc.Subject != c.Subject {
			return users.Identity{}, fmt.Errorf("%w: userinfo names another subject", ErrFlow)
		}
		c.Email, c.EmailVerified, c.Name = uc.Email, uc.EmailVerified, cmp.Or(c.Name, uc.Name)
	}
	return c.identity(p.cfg.Issuer), nil
}

// ErrUnavailable: the provider's discovery document cannot be read (it is down, or
// OIDC_ISSUER is wrong); the next request tries again.
var ErrUnavailable = errors.New("the identity provider cannot be reached")

// ErrBadToken: a bearer JWT that is not one the provider signed for this API.
var ErrBadToken = errors.New("the bearer JWT is not valid here")

// VerifyBearer checks a platform JWT sent as a bearer token: signed with a key of the
// issuer's JWKS, issued by Issuer, for APIAudience, not expired. Errors: ErrBadToken
// (wrapping the reason), the provider's discovery document cannot be read.
func (p *Provider) VerifyBearer(ctx context.Context, token string) (users.Identity, error) {
	prov, err := p.discover(ctx)
	if err != nil {
		return users.Identity{}, err
	}
	t, err := prov.Verifier(&oidc.Config{ClientID: p.cfg.APIAudience}).Verify(p.ctx(ctx), token)
	if err != nil {
		return users.Identity{}, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	var c claims
	if err := t.Claims(&c); err != nil {
		return users.Identity{}, fmt.Errorf("%w: reading its claims: %w", ErrBadToken, err)
	}
	return c.identity(p.cfg.Issuer), nil
}

// LooksLikeJWT reports whether a bearer token has a JWT's shape (three dot-separated
// base64url parts, the first a JSON header naming an algorithm), as opposed to an API
// key.
func LooksLikeJWT(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	return json.Unmarshal(b, &h) == nil && h.Alg != ""
}
