package api

import (
	"fmt"
	"net/http"

	"promopool/auth"
	"promopool/internal/deadline"
)

// Body caps a route takes (route.body): a positive number is bytes; these name the
// configured ones.
const (
	// noBody: the route reads no body (GET, DELETE, actions without options).
	noBody int64 = 0
	// jsonBody: Config.MaxJSONBytes (1 MiB by default).
	jsonBody int64 = -1
	// uploadBody: Config.MaxUploadBytes (1 GiB by default).
	uploadBody int64 = -2
	// smallBody: a request of a few fields (direct issue).
	smallBody int64 = 4 << 10
)

// route is one authenticated API route. Every route names the one scope a key needs,
// the most its body may hold, whether it streams (then its deadlines roll with the
// bytes instead of the server's ReadTimeout/WriteTimeout) and, for routes that hand
// out codes, a per-key rate limit. register refuses a route without a known scope, so
// no unscoped route is ever served, and TestRoutesMatchOpenAPI holds the table and
// api/openapi.json to the same routes and scopes.
//
// A route of another package's feature is one more entry in routeTable; the checkout
// validation route takes limit: s.validateLimit (VALIDATE_RATE_LIMIT).
type route struct {
	pattern string
	scope   auth.Scope
	body    int64
	stream  bool
	limit   *Limiter
	h       func(w http.ResponseWriter, r *http.Request) error
}

// RouteInfo describes a registered route: its method and path, and the scope it needs.
type RouteInfo struct {
	// Pattern is the method and path, as registered ("GET /v1/groups/{id}").
	Pattern string
	// Scope is the scope a key needs for it.
	Scope auth.Scope
}

// Routes lists the authenticated routes the server serves, in registration order.
func (s *Server) Routes() []RouteInfo {
	out := make([]RouteInfo, len(s.table))
	for i, rt := range s.table {
		out[i] = RouteInfo{Pattern: rt.pattern, Scope: rt.scope}
	}
	return out
}

// routeTable is every authenticated route, with the scope each needs (README
// "Security"). Routes of optional services appear when the service is there.
func (s *Server) routeTable() []route {
	t := []route{
		{pattern: "POST /v1/groups", scope: auth.ScopeWrite, body: jsonBody, h: s.createGroup},
		{pattern: "GET /v1/groups", scope: auth.ScopeRead, h: s.listGroups},
		{pattern: "GET /v1/groups/{id}", scope: auth.ScopeRead, h: s.getGroup},
		{pattern: "PATCH /v1/groups/{id}", scope: auth.ScopeWrite, body: jsonBody, h: s.updateGroup},
		{pattern: "DELETE /v1/groups/{id}", scope: auth.ScopeWrite, h: s.deleteGroup},
		{pattern: "POST /v1/groups/{id}/pause", scope: auth.ScopeWrite, h: s.pauseGroup},
		{pattern: "POST /v1/groups/{id}/activate", scope: auth.ScopeWrite, h: s.activateGroup},
		{pattern: "POST /v1/groups/{id}/codes", scope: auth.ScopeWrite, body: uploadBody, stream: true, h: s.uploadCodes},
		{pattern: "GET /v1/groups/{id}/uploads", scope: auth.ScopeRead, h: s.listUploads},
		{pattern: "DELETE /v1/uploads/{id}", scope: auth.ScopeWrite, h: s.undoUpload},
		{pattern: "GET /v1/groups/{id}/activity", scope: auth.ScopeRead, h: s.activity},
		{pattern: "POST /v1/groups/{id}/issue", scope: auth.ScopeIssue, body: smallBody, limit: s.issueLimit, h: s.issueDirect},
		{pattern: "GET /v1/groups/{id}/issues.csv", scope: auth.ScopeExport, stream: true, h: s.exportIssues},
		{pattern: "GET /v1/groups/{id}/unused.csv", scope: auth.ScopeExport, stream: true, h: s.exportUnused},
		{pattern: "PUT /v1/customers", scope: auth.ScopeWrite, body: uploadBody, stream: true, h: s.upsertCustomers},
		{pattern: "GET /v1/customers/{id}/promocodes", scope: auth.ScopeRead, h: s.customerPromocodes},
	}
	t = append(t, s.promotionCodeRoutes()...)
	t = append(t, s.codeRoutes()...)
	if s.cfg.Metrics != nil {
		t = append(t, route{pattern: "GET /metrics", scope: auth.ScopeRead, h: s.metrics})
	}
	if s.mailings != nil {
		t = append(t, s.mailingRoutes()...)
	}
	if s.segments != nil {
		t = append(t,
			route{pattern: "POST /v1/segments/count", scope: auth.ScopeRead, body: jsonBody, h: s.segmentCount},
			route{pattern: "POST /v1/segments/query", scope: auth.ScopeRead, body: jsonBody, stream: true, h: s.segmentQuery})
	}
	if s.reports != nil {
		t = append(t,
			route{pattern: "GET /v1/groups/{id}/metrics", scope: auth.ScopeRead, h: s.groupMetrics},
			route{pattern: "GET /v1/metrics", scope: auth.ScopeRead, h: s.portfolio})
	}
	if s.checkout != nil {
		t = append(t, s.checkoutRoutes()...)
	}
	if s.alerts != nil {
		t = append(t, route{pattern: "GET /v1/groups/{id}/alerts", scope: auth.ScopeRead, h: s.listAlerts})
		if _, ok := s.alerts.(Acknowledger); ok {
			t = append(t, route{pattern: "POST /v1/alerts/{id}/acknowledge", scope: auth.ScopeWrite, h: s.acknowledgeAlert})
		}
	}
	return t
}

// mailingRoutes are the mailing, template and render routes.
func (s *Server) mailingRoutes() []route {
	return []route{
		{pattern: "POST /v1/mailings", scope: auth.ScopeWrite, body: jsonBody, h: s.createMailing},
		{pattern: "GET /v1/mailings", scope: auth.ScopeRead, h: s.listMailings},
		{pattern: "GET /v1/mailings/{id}", scope: auth.ScopeRead, h: s.getMailing},
		{pattern: "POST /v1/mailings/{id}/start", scope: auth.ScopeWrite, body: smallBody, h: s.startMailing},
		{pattern: "POST /v1/mailings/{id}/pause", scope: auth.ScopeWrite, h: s.pauseMailing},
		{pattern: "POST /v1/mailings/{id}/resume", scope: auth.ScopeWrite, h: s.resumeMailing},
		{pattern: "POST /v1/mailings/{id}/cancel", scope: auth.ScopeWrite, h: s.cancelMailing},
		{pattern: "POST /v1/mailings/{id}/preview", scope: auth.ScopeRead, body: smallBody, h: s.previewMailing},
		{pattern: "POST /v1/templates/validate", scope: auth.ScopeRead, body: jsonBody, h: s.validateTemplate},
		{pattern: "POST /v1/templates/preview", scope: auth.ScopeRead, body: jsonBody, h: s.previewTemplate},
		{pattern: "POST /v1/render", scope: auth.ScopeRender, body: jsonBody, h: s.render},
	}
}

// register serves rt: authentication and its scope, its rate limit, its body cap, its
// deadlines, then the handler, whose error is answered with the one classification.
// It panics on a route without a known scope: a programming error caught by every test
// that builds a server.
func (s *Server) register(rt route) {
	if !rt.scope.Known() {
		panic(fmt.Sprintf("api: route %q registered without a known scope (%q)", rt.pattern, rt.scope))
	}
	limit := rt.body
	switch limit {
	case jsonBody:
		limit = s.cfg.MaxJSONBytes
	case uploadBody:
		limit = s.cfg.MaxUploadBytes
	}
	s.table = append(s.table, rt)
	s.mux.Handle(rt.pattern, s.authenticate(rt.scope, func(w http.ResponseWriter, r *http.Request) {
		if rt.limit != nil {
			if err := rt.limit.check(w, actor(r)); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if rt.stream {
			w, r = deadline.Roll(w, r, s.cfg.StreamIdle)
		}
		if err := rt.h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}))
}

// metrics serves the Prometheus metrics to a key with the read scope.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	s.cfg.Metrics.ServeHTTP(w, r)
	return nil
}
