package admin

import (
	"context"
	"fmt"
	"net/http"

	"promopool/alerts"
	"promopool/users"
)

func (h *Handler) userRoutes() {
	h.handle("GET /admin/users", h.userList)
	h.handle("POST /admin/users", h.createUser)
	h.handle("POST /admin/users/{id}/role", h.setUserRole)
	h.handle("POST /admin/users/{id}/disable", h.disableUser)
	h.handle("POST /admin/users/{id}/enable", h.enableUser)
}

type usersData struct {
	Users []users.User
	Roles []users.Role
	// Sessions counts each user's live sessions.
	Sessions map[int64]int
	// SharedPassword: ADMIN_PASSWORD is set, so anyone who knows it signs in as an admin.
	SharedPassword bool
	IdP            string
}

func (h *Handler) userList(w http.ResponseWriter, r *http.Request) error {
	list, err := h.deps.Users.List(r.Context())
	if err != nil {
		return err
	}
	n, err := h.liveSessions(r.Context())
	if err != nil {
		return err
	}
	d := usersData{Users: list, Roles: users.Roles, Sessions: n, SharedPassword: h.cfg.Password != ""}
	if h.deps.IdP != nil {
		d.IdP = h.deps.IdP.Host()
	}
	h.render(w, r, http.StatusOK, "users", page{Title: "Users", Nav: "users", Data: d})
	return nil
}

// liveSessions counts the unexpired, unrevoked sessions of each user (some may have
// fallen with a change of role and be revoked at their next request).
func (h *Handler) liveSessions(ctx context.Context) (map[int64]int, error) {
	var rows []struct {
		UserID int64 `db:"user_id"`
		N      int   `db:"n"`
	}
	err := h.deps.DB.SelectContext(ctx, &rows, `
		SELECT user_id, count(*) AS n FROM admin_sessions
		WHERE user_id IS NOT NULL AND revoked_at IS NULL AND expires_at > $1 GROUP BY user_id`, h.now())
	if err != nil {
		return nil, fmt.Errorf("counting admin sessions: %w", err)
	}
	out := make(map[int64]int, len(rows))
	for _, row := range rows {
		out[row.UserID] = row.N
	}
	return out, nil
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) error {
	u, err := h.deps.Users.Create(r.Context(), users.NewUser{Email: r.PostFormValue("email"), Name: r.PostFormValue("name"),
		Role: users.Role(r.PostFormValue("role")), Password: r.PostFormValue("password")})
	if err != nil {
		return err
	}
	h.deps.Log.Info("admin user created", "user_id", u.ID, "role", u.Role, "by", actor(r))
	redirect(w, r, "/admin/users", fmt.Sprintf("%s <%s> may now sign in as %s.", u.Name, u.Email, u.Role))
	return nil
}

// changeUser applies change to the user in the path and says what happened.
func (h *Handler) changeUser(w http.ResponseWriter, r *http.Request, change func(id int64) (*users.User, error), what string) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	u, err := change(id)
	if err != nil {
		return err
	}
	h.deps.Log.Info("admin user changed", "user_id", u.ID, "change", what, "role", u.Role, "by", actor(r))
	redirect(w, r, "/admin/users", fmt.Sprintf("%s: %s.", u.Email, what))
	return nil
}

func (h *Handler) setUserRole(w http.ResponseWriter, r *http.Request) error {
	role := users.Role(r.PostFormValue("role"))
	return h.changeUser(w, r, func(id int64) (*users.User, error) { return h.deps.Users.SetRole(r.Context(), id, role) },
		fmt.Sprintf("role %s; sessions opened under another role are over", role))
}

func (h *Handler) disableUser(w http.ResponseWriter, r *http.Request) error {
	return h.changeUser(w, r, func(id int64) (*users.User, error) { return h.deps.Users.Disable(r.Context(), id) },
		"disabled; their open sessions end at their next request")
}

func (h *Handler) enableUser(w http.ResponseWriter, r *http.Request) error {
	return h.changeUser(w, r, func(id int64) (*users.User, error) { return h.deps.Users.Enable(r.Context(), id) }, "enabled")
}

// acknowledger is the alerts service's acknowledgement (*alerts.Service has it).
type acknowledger interface {
	Acknowledge(ctx context.Context, id int64) (*alerts.Alert, error)
}

// acknowledgeAlert marks an alert seen by the signed-in person, back on its group's page.
func (h *Handler) acknowledgeAlert(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	ack, ok := h.deps.Alerts.(acknowledger)
	if !ok {
		return notFound("Alerts cannot be acknowledged here.")
	}
	a, err := ack.Acknowledge(r.Context(), id)
	if err != nil {
		return err
	}
	redirect(w, r, fmt.Sprintf("/admin/groups/%d#alerts", a.GroupID), fmt.Sprintf("Alert %d acknowledged by %s.", a.ID, a.AcknowledgedBy))
	return nil
}
