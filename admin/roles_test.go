package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"promopool/auth"
	"promopool/groups"
	"promopool/users"
)

// addUser creates a user with a password and returns a client signed in as them,
// with the CSRF token of its session.
func (f *fixture) addUser(t *testing.T, email string, role users.Role) (*http.Client, string, *users.User) {
	t.Helper()
	u, err := f.h.deps.Users.Create(context.Background(), users.NewUser{Email: email, Name: "User " + string(role), Role: role,
		Password: "a long password for " + email})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient()
	_, body := f.get(t, c, "/admin/login")
	resp, body := f.post(t, c, "/admin/login", url.Values{"token": {hidden(t, body, "token")}, "email": {email},
		"secret": {"a long password for " + email}, "next": {"/admin/groups"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in of %s: %d\n%s", email, resp.StatusCode, body)
	}
	_, body = f.get(t, c, "/admin/groups")
	return c, hidden(t, body, "csrf"), u
}

// TestRoleTable: every page behind the sign-in, asked by a viewer, a marketer and an
// admin. Below the route's role the answer is 403; at or above it, the route's own
// answer (ids that do not exist answer 404, so nothing changes but what the table
// says). A route registered without a row here fails the test.
func TestRoleTable(t *testing.T) {
	f := newFixture(t, func(c *Config, d *Deps) {
		c.Queues = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	})
	g, err := f.store.Create(context.Background(), "test", groups.Input{Name: ptr("Spring")})
	if err != nil {
		t.Fatal(err)
	}
	gid := itoa(g.ID)
	const V, M, A = users.RoleViewer, users.RoleMarketer, users.RoleAdmin
	// pattern: the least role, the request, and the answer a role that may gets.
	table := map[string]struct {
		min  users.Role
		path string
		form url.Values
		ok   int
	}{
		"GET /admin/{$}":                                          {V, "/admin/", nil, 303},
		"GET /admin/groups":                                       {V, "/admin/groups", nil, 200},
		"POST /admin/groups":                                      {M, "/admin/groups", url.Values{"name": {""}}, 400},
		"GET /admin/groups/{id}":                                  {V, "/admin/groups/" + gid, nil, 200},
		"POST /admin/groups/{id}":                                 {M, "/admin/groups/999999", url.Values{"name": {"X"}}, 404},
		"POST /admin/groups/{id}/delete":                          {M, "/admin/groups/999999/delete", nil, 404},
		"POST /admin/groups/{id}/pause":                           {M, "/admin/groups/999999/pause", nil, 404},
		"POST /admin/groups/{id}/activate":                        {M, "/admin/groups/999999/activate", nil, 404},
		"POST /admin/groups/{id}/promotion-codes":                 {M, "/admin/groups/999999/promotion-codes", url.Values{"code": {"X1"}}, 404},
		"POST /admin/groups/{id}/promotion-codes/{code}/{action}": {M, "/admin/groups/999999/promotion-codes/1/archive", nil, 404},
		"POST /admin/groups/{id}/paste":                           {M, "/admin/groups/999999/paste", url.Values{"codes": {"A1"}}, 404},
		"POST /admin/groups/{id}/upload":                          {M, "/admin/groups/999999/upload", nil, 404},
		"POST /admin/uploads/{id}/undo":                           {M, "/admin/uploads/999999/undo", nil, 404},
		"GET /admin/groups/{id}/issues.csv":                       {A, "/admin/groups/" + gid + "/issues.csv", nil, 200},
		"GET /admin/groups/{id}/unused.csv":                       {A, "/admin/groups/" + gid + "/unused.csv", nil, 200},
		"GET /admin/customers":                                    {V, "/admin/customers", nil, 200},
		"GET /admin/groups/{id}/codes":                            {V, "/admin/groups/" + gid + "/codes", nil, 200},
		"GET /admin/groups/{id}/redemptions":                      {V, "/admin/groups/" + gid + "/redemptions", nil, 200},
		"GET /admin/groups/{id}/publications":                     {V, "/admin/groups/" + gid + "/publications", nil, 200},
		"GET /admin/groups/{id}/distributions":                    {V, "/admin/groups/" + gid + "/distributions", nil, 200},
		"GET /admin/groups/{id}/activity":                         {V, "/admin/groups/" + gid + "/activity", nil, 200},
		"GET /admin/portfolio":                                    {V, "/admin/portfolio", nil, 200},
		"GET /admin/customers/{id}":                               {V, "/admin/customers/nobody", nil, 404},
		"GET /admin/mailings":                                     {V, "/admin/mailings", nil, 200},
		"GET /admin/mailings/new":                                 {V, "/admin/mailings/new", nil, 200},
		"POST /admin/mailings":                                    {M, "/admin/mailings", url.Values{"name": {""}}, 400},
		"GET /admin/mailings/{id}":                                {V, "/admin/mailings/999999", nil, 404},
		"GET /admin/mailings/{id}/progress":                       {V, "/admin/mailings/999999/progress", nil, 404},
		"POST /admin/mailings/{id}/{action}":                      {M, "/admin/mailings/999999/pause", nil, 404},
		"POST /admin/alerts/{id}/acknowledge":                     {M, "/admin/alerts/999999/acknowledge", nil, 404},
		"GET /admin/users":                                        {A, "/admin/users", nil, 200},
		"POST /admin/users":                                       {A, "/admin/users", url.Values{"email": {"not an address"}}, 400},
		"POST /admin/users/{id}/role":                             {A, "/admin/users/999999/role", url.Values{"role": {"viewer"}}, 404},
		"POST /admin/users/{id}/disable":                          {A, "/admin/users/999999/disable", nil, 404},
		"POST /admin/users/{id}/enable":                           {A, "/admin/users/999999/enable", nil, 404},
		"/admin/queues/":                                          {A, "/admin/queues/", nil, 200},
		"POST /admin/logout":                                      {V, "/admin/logout", nil, 303},
	}
	clients := map[users.Role][2]string{}
	cl := map[users.Role]*http.Client{}
	for _, role := range users.Roles {
		c, csrf, _ := f.addUser(t, string(role)+"@example.com", role)
		cl[role], clients[role] = c, [2]string{csrf}
	}
	var report strings.Builder
	fmt.Fprintf(&report, "%-40s %-8s %-8s %-8s\n", "route", "viewer", "marketer", "admin")
	routes := f.h.Routes()
	// Sign-out last: it ends the session the other rows use.
	for i, r := range routes {
		if r.Pattern == "POST /admin/logout" {
			routes = append(append(routes[:i:i], routes[i+1:]...), r)
			break
		}
	}
	for _, r := range routes {
		row, ok := table[r.Pattern]
		if !ok {
			t.Errorf("%s (role %s) has no row in the role table", r.Pattern, r.Role)
			continue
		}
		delete(table, r.Pattern)
		if r.Role != row.min {
			t.Errorf("%s is registered for %s, the table says %s", r.Pattern, r.Role, row.min)
		}
		method, _, found := strings.Cut(r.Pattern, " ")
		if !found || strings.HasPrefix(method, "/") {
			method = http.MethodGet
		}
		line := fmt.Sprintf("%-40s", r.Pattern)
		for _, role := range users.Roles {
			want := row.ok
			if !role.AtLeast(row.min) {
				want = http.StatusForbidden
			}
			var resp *http.Response
			if method == http.MethodGet {
				resp, _ = f.get(t, cl[role], row.path)
			} else {
				form := url.Values{"csrf": {clients[role][0]}}
				for k, v := range row.form {
					form[k] = v
				}
				resp, _ = f.post(t, cl[role], row.path, form)
			}
			if resp.StatusCode != want {
				t.Errorf("%s as %s: %d, want %d", r.Pattern, role, resp.StatusCode, want)
			}
			line += fmt.Sprintf(" %-8d", resp.StatusCode)
		}
		report.WriteString(line + "\n")
	}
	for p := range table {
		t.Errorf("the table has %s, which is not registered", p)
	}
	t.Log("\n" + report.String())
}

// TestUserSessionsEnd: a user's live session is refused at its very next request once
// the user is disabled, or given another role (a new sign-in then carries the new
// role); the session row is revoked. The history names the user with name and email.
func TestUserSessionsEnd(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c, csrf, u := f.addUser(t, "ada@example.com", users.RoleMarketer)
	resp, _ := f.post(t, c, "/admin/groups", url.Values{"csrf": {csrf}, "name": {"By Ada"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create as a marketer: %d", resp.StatusCode)
	}
	var who struct {
		Actor string `db:"actor"`
		ID    *int64 `db:"actor_user_id"`
		Kind  string `db:"actor_kind"`
		Name  string `db:"actor_name"`
		Email string `db:"actor_email"`
	}
	if err := f.db.Get(&who, `SELECT actor, actor_user_id, actor_kind, actor_name, actor_email FROM activity WHERE action = 'create'`); err != nil {
		t.Fatal(err)
	}
	if who.Actor != "ada@example.com" || who.ID == nil || *who.ID != u.ID || who.Kind != auth.ActorUser || who.Name != "User marketer" || who.Email != "ada@example.com" {
		t.Fatalf("activity names %+v", who)
	}
	if _, body := f.get(t, c, "/admin/groups"); !strings.Contains(body, "User marketer &lt;ada@example.com&gt;") {
		t.Fatalf("the page does not show who is signed in:\n%s", body)
	}

	// Role changed: the old session is over, a new one has the new role.
	if _, err := f.h.deps.Users.SetRole(ctx, u.ID, users.RoleViewer); err != nil {
		t.Fatal(err)
	}
	if resp, _ := f.get(t, c, "/admin/groups"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after a role change: %d, want a redirect to sign in", resp.StatusCode)
	}
	var revoked int
	f.db.Get(&revoked, `SELECT count(*) FROM admin_sessions WHERE user_id = $1 AND revoked_at IS NOT NULL`, u.ID)
	if revoked != 1 {
		t.Fatalf("%d revoked sessions, want 1", revoked)
	}

	// Disabled while signed in: refused at the next request, GET or POST.
	b, bcsrf, bob := f.addUser(t, "bob@example.com", users.RoleAdmin)
	if _, err := f.h.deps.Users.Disable(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	if resp, _ := f.post(t, b, "/admin/groups", url.Values{"csrf": {bcsrf}, "name": {"By Bob"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a disabled user's POST: %d, want 401", resp.StatusCode)
	}
	if resp, _ := f.get(t, b, "/admin/users"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a disabled user's GET: %d, want a redirect to sign in", resp.StatusCode)
	}
	// And cannot sign in again.
	_, body := f.get(t, newClient(), "/admin/login")
	c2 := newClient()
	_, body = f.get(t, c2, "/admin/login")
	resp, body = f.post(t, c2, "/admin/login", url.Values{"token": {hidden(t, body, "token")}, "email": {"bob@example.com"},
		"secret": {"a long password for bob@example.com"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "disabled") {
		t.Fatalf("a disabled user's sign-in: %d", resp.StatusCode)
	}
}
