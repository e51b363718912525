package api_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"promopool/api"
	"promopool/auth"
	"promopool/idp"
	"promopool/internal/oidctest"
	"promopool/internal/testdb"
	"promopool/users"
)

// withPeople accepts platform JWTs from prov for audience "promopool-api".
func withPeople(prov *oidctest.Provider) func(d *api.Deps, db *testdb.DB) {
	return func(d *api.Deps, db *testdb.DB) {
		p, err := idp.New(idp.Config{Issuer: prov.Issuer, ClientID: oidctest.ClientID, ClientSecret: oidctest.ClientSecret,
			RedirectURL: "http://127.0.0.1:1" + idp.CallbackPath, APIAudience: "promopool-api"})
		if err != nil {
			panic(err)
		}
		d.People = idp.People{Provider: p, Users: users.NewStore(db.DB)}
	}
}

// personToken is a JWT the provider signs for user email (sub "sub-"+email).
func personToken(t *testing.T, prov *oidctest.Provider, email string, extra map[string]any) string {
	claims := map[string]any{"sub": "sub-" + email, "aud": "promopool-api", "email": email, "email_verified": true}
	for k, v := range extra {
		claims[k] = v
	}
	return prov.Sign(t, claims)
}

// apiRoles is the least role each API route needs from a person (README "Users and
// sign-in"), and what the route answers the table's request when the role may: ids
// that do not exist (404) and empty bodies (400), so nothing changes.
var apiRoles = map[string]struct {
	min users.Role
	ok  int
}{
	"POST /v1/groups":                                          {users.RoleMarketer, 400},
	"GET /v1/groups":                                           {users.RoleViewer, 200},
	"GET /v1/groups/{id}":                                      {users.RoleViewer, 404},
	"PATCH /v1/groups/{id}":                                    {users.RoleMarketer, 404},
	"DELETE /v1/groups/{id}":                                   {users.RoleMarketer, 404},
	"POST /v1/groups/{id}/pause":                               {users.RoleMarketer, 404},
	"POST /v1/groups/{id}/activate":                            {users.RoleMarketer, 404},
	"POST /v1/groups/{id}/promotion-codes":                     {users.RoleMarketer, 404},
	"GET /v1/groups/{id}/promotion-codes":                      {users.RoleViewer, 404},
	"PATCH /v1/groups/{id}/promotion-codes/{code_id}":          {users.RoleMarketer, 400},
	"POST /v1/groups/{id}/promotion-codes/{code_id}/archive":   {users.RoleMarketer, 400},
	"POST /v1/groups/{id}/promotion-codes/{code_id}/unarchive": {users.RoleMarketer, 400},
	"POST /v1/groups/{id}/codes":                               {users.RoleMarketer, 404},
	"GET /v1/codes/{code}":                                     {users.RoleViewer, 404},
	"POST /v1/codes/{code}/void":                               {users.RoleMarketer, 404},
	"GET /v1/groups/{id}/uploads":                              {users.RoleViewer, 404},
	"DELETE /v1/uploads/{id}":                                  {users.RoleMarketer, 404},
	"GET /v1/groups/{id}/activity":                             {users.RoleViewer, 200},
	"POST /v1/groups/{id}/issue":                               {users.RoleMarketer, 400},
	"GET /v1/groups/{id}/issues.csv":                           {users.RoleAdmin, 404},
	"GET /v1/groups/{id}/unused.csv":                           {users.RoleAdmin, 404},
	"PUT /v1/customers":                                        {users.RoleMarketer, 200},
	"GET /v1/customers/{id}/promocodes":                        {users.RoleViewer, 200},
	"GET /metrics":                                             {users.RoleViewer, 200},
	"POST /v1/mailings":                                        {users.RoleMarketer, 400},
	"GET /v1/mailings":                                         {users.RoleViewer, 200},
	"GET /v1/mailings/{id}":                                    {users.RoleViewer, 404},
	"POST /v1/mailings/{id}/start":                             {users.RoleMarketer, 404},
	"POST /v1/mailings/{id}/pause":                             {users.RoleMarketer, 404},
	"POST /v1/mailings/{id}/resume":                            {users.RoleMarketer, 404},
	"POST /v1/mailings/{id}/cancel":                            {users.RoleMarketer, 404},
	"POST /v1/mailings/{id}/preview":                           {users.RoleViewer, 404},
	"POST /v1/templates/validate":                              {users.RoleViewer, 200},
	"POST /v1/templates/preview":                               {users.RoleViewer, 200},
	"POST /v1/render":                                          {users.RoleMarketer, 400},
	"POST /v1/segments/count":                                  {users.RoleViewer, 400},
	"POST /v1/segments/query":                                  {users.RoleViewer, 400},
	"GET /v1/groups/{id}/alerts":                               {users.RoleViewer, 404},
	"GET /v1/groups/{id}/metrics":                              {users.RoleViewer, 404},
	"GET /v1/metrics":                                          {users.RoleViewer, 200},
	"POST /v1/alerts/{id}/acknowledge":                         {users.RoleMarketer, 404},
	"POST /v1/validate":                                        {users.RoleAdmin, 400},
	"GET /v1/validate":                                         {users.RoleAdmin, 400},
	"POST /v1/redemptions":                                     {users.RoleAdmin, 400},
	"GET /v1/redemptions/{id}":                                 {users.RoleViewer, 404},
	"POST /v1/redemptions/{id}/confirm":                        {users.RoleAdmin, 404},
	"POST /v1/redemptions/{id}/cancel":                         {users.RoleAdmin, 404},
	"POST /v1/redemptions/{id}/refund":                         {users.RoleAdmin, 400},
	"GET /v1/redemptions":                                      {users.RoleViewer, 200},
	"GET /v1/groups/{id}/redemptions":                          {users.RoleViewer, 404},
	"GET /v1/groups/{id}/redemptions.csv":                      {users.RoleAdmin, 404},
	"GET /v1/customers/{id}/redemptions":                       {users.RoleViewer, 200},
}

// TestPersonRoleTable: every API route called with a platform JWT by a viewer, a
// marketer and an admin: 403 insufficient_scope below the route's role, the route's
// own answer at or above it. A route without a row here fails the test.
func TestPersonRoleTable(t *testing.T) {
	prov := oidctest.Start(t, "http://127.0.0.1:1"+idp.CallbackPath)
	c := newClient(t, api.Config{Metrics: metricsStub}, everything, withPeople(prov))
	store := users.NewStore(c.db.DB)
	for _, r := range users.Roles {
		if _, err := store.Create(context.Background(), users.NewUser{Email: string(r) + "@example.com", Name: string(r), Role: r}); err != nil {
			t.Fatal(err)
		}
	}
	var report strings.Builder
	fmt.Fprintf(&report, "%-36s %-8s %-8s %-8s\n", "route", "viewer", "marketer", "admin")
	for _, rt := range c.api.Routes() {
		row, ok := apiRoles[rt.Pattern]
		if !ok {
			t.Errorf("%s has no row in apiRoles", rt.Pattern)
			continue
		}
		method, path, _ := strings.Cut(rt.Pattern, " ")
		path = strings.ReplaceAll(path, "{id}", "999999")
		line := fmt.Sprintf("%-36s", rt.Pattern)
		for _, role := range users.Roles {
			c.key = personToken(t, prov, string(role)+"@example.com", nil)
			ctype := "application/json"
			if rt.Pattern == "PUT /v1/customers" {
				ctype = "application/x-ndjson" // one line without an id: reported, nothing stored
			}
			status, body := c.do(method, path, ctype, strings.NewReader(`{}`))
			want := row.ok
			if !role.AtLeast(row.min) {
				want = 403
			}
			if status != want || (want == 403 && errCode(body) != "insufficient_scope") {
				t.Errorf("%s as %s: %d %v, want %d", rt.Pattern, role, status, body, want)
			}
			line += fmt.Sprintf(" %-8d", status)
		}
		report.WriteString(line + "\n")
	}
	t.Log("\n" + report.String())
}

// TestPlatformJWT: a token is accepted only when the provider signed it, for this
// API's audience, unexpired, for an enabled user; what a person changes is recorded
// with their user id, name and email. Any refusal is 401 saying why.
func TestPlatformJWT(t *testing.T) {
	prov := oidctest.Start(t, "http://127.0.0.1:1"+idp.CallbackPath)
	other := oidctest.Start(t, "http://127.0.0.1:1"+idp.CallbackPath)
	c := newClient(t, api.Config{}, withPeople(prov))
	store := users.NewStore(c.db.DB)
	ada, err := store.Create(context.Background(), users.NewUser{Email: "ada@example.com", Name: "Ada Lovelace", Role: users.RoleMarketer})
	if err != nil {
		t.Fatal(err)
	}
	c.key = personToken(t, prov, "ada@example.com", nil)
	status, body := c.json("POST", "/v1/groups", `{"name": "Spring"}`)
	if status != 201 {
		t.Fatal(status, body)
	}
	gid := int64(body["id"].(float64))
	status, body = c.do("GET", fmt.Sprintf("/v1/groups/%d/activity", gid), "", nil)
	who := body["activity"].([]any)[0].(map[string]any)["who"].(map[string]any)
	if status != 200 || who["kind"] != auth.ActorUser || who["name"] != "Ada Lovelace" || who["email"] != "ada@example.com" ||
		int64(who["user_id"].(float64)) != ada.ID {
		t.Fatalf("activity who: %d %v", status, who)
	}

	for name, tok := range map[string]string{
		"another issuer's key": other.Sign(t, map[string]any{"iss": prov.Issuer, "sub": "sub-ada@example.com", "aud": "promopool-api",
			"email": "ada@example.com"}),
		"another audience":  personToken(t, prov, "ada@example.com", map[string]any{"aud": "somebody-else"}),
		"expired":           personToken(t, prov, "ada@example.com", map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}),
		"an unknown person": personToken(t, prov, "mallory@example.com", nil),
		"unverified email":  personToken(t, prov, "bob@example.com", map[string]any{"email_verified": false}),
	} {
		c.key = tok
		if status, body := c.do("GET", "/v1/groups", "", nil); status != 401 || errCode(body) != "unauthorized" {
			t.Errorf("%s: %d %v, want 401 unauthorized", name, status, body)
		}
	}

	// Disabled: the next call is refused, even with a token issued before.
	c.key = personToken(t, prov, "ada@example.com", nil)
	if _, err := store.Disable(context.Background(), ada.ID); err != nil {
		t.Fatal(err)
	}
	if status, body := c.do("GET", "/v1/groups", "", nil); status != 401 || !strings.Contains(fmt.Sprint(body), "disabled") {
		t.Fatalf("a disabled user's token: %d %v", status, body)
	}
	// An API key that is not a JWT still goes to the keys.
	c.key = staticKey
	if status, _ := c.do("GET", "/v1/groups", "", nil); status != 200 {
		t.Fatalf("the static key beside JWTs: %d", status)
	}
}

// TestProviderDown: with the provider unreachable a JWT is answered 503
// idp_unavailable, not 401, and API keys keep working.
func TestProviderDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String() + "/"
	ln.Close()
	c := newClient(t, api.Config{}, func(d *api.Deps, db *testdb.DB) {
		p, _ := idp.New(idp.Config{Issuer: dead, ClientID: "x", ClientSecret: "y", RedirectURL: "http://127.0.0.1:1" + idp.CallbackPath})
		d.People = idp.People{Provider: p, Users: users.NewStore(db.DB)}
	})
	prov := oidctest.Start(t, "http://127.0.0.1:1"+idp.CallbackPath)
	c.key = personToken(t, prov, "ada@example.com", nil)
	if status, body := c.do("GET", "/v1/groups", "", nil); status != 503 || errCode(body) != "idp_unavailable" {
		t.Fatalf("provider down: %d %v", status, body)
	}
	c.key = staticKey
	if status, _ := c.do("GET", "/v1/groups", "", nil); status != 200 {
		t.Fatalf("a key while the provider is down: %d", status)
	}
}
