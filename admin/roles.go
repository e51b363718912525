package admin

import (
	"net/http"
	"strings"

	"promopool/users"
)

// RouteInfo is a page behind the sign-in and the least role that may use it.
type RouteInfo struct {
	// Pattern is the method and path as registered ("POST /admin/groups/{id}").
	Pattern string
	// Role is the least role allowed.
	Role users.Role
}

// Routes lists the pages behind the sign-in in registration order, each with the
// least role that may use it (the role test walks every one).
func (h *Handler) Routes() []RouteInfo { return append([]RouteInfo(nil), h.table...) }

// adminRoutes need the admin role whatever their method: exports list codes in bulk,
// and the users page hands out roles.
var adminRoutes = map[string]bool{
	"GET /admin/groups/{id}/issues.csv": true,
	"GET /admin/groups/{id}/unused.csv": true,
	"GET /admin/users":                  true,
	"POST /admin/users":                 true,
	"POST /admin/users/{id}/role":       true,
	"POST /admin/users/{id}/disable":    true,
	"POST /admin/users/{id}/enable":     true,
}

// roleFor is the least role a page needs: admin for adminRoutes; viewer to read (GET)
// and to sign out; marketer for every other change (groups, uploads, undo, mailings,
// pause and activate, alert acknowledgements).
func roleFor(pattern string) users.Role {
	method, _, _ := strings.Cut(pattern, " ")
	switch {
	case adminRoutes[pattern]:
		return users.RoleAdmin
	case method == http.MethodGet || method == http.MethodHead || pattern == "POST /admin/logout":
		return users.RoleViewer
	}
	return users.RoleMarketer
}
