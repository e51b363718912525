package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynqmon"
	"github.com/jmoiron/sqlx"

	"promopool/admin"
	"promopool/api"
	"promopool/auth"
	"promopool/checkout"
	"promopool/customers"
	"promopool/groups"
	"promopool/idp"
	"promopool/internal/redisurl"
	"promopool/mailings"
	"promopool/reports"
	"promopool/users"
)

// mountAdmin serves the web pages under /admin/ on the API's server, with the Asynq
// queues (asynqmon) at /admin/queues/ behind the same sign-in.
func (m *Main) mountAdmin(srv *api.Server, db *sqlx.DB, store *groups.Store, svc *mailings.Service, keys *auth.Keys,
	alertList admin.AlertLister, people *signIn, rep *reports.Service, co *checkout.Service) error {
	conn, err := redisurl.Parse(m.cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	queues := asynqmon.New(asynqmon.Options{RootPath: "/admin/queues", RedisConnOpt: conn.Asynq()})
	m.closer = append(m.closer, func() { queues.Close() })
	h, err := admin.New(admin.Config{Password: m.cfg.AdminPassword, SessionSecret: m.cfg.AdminSessionSecret,
		SessionTTL: m.cfg.AdminSessionTTL, MaxUploadBytes: m.cfg.MaxUploadBytes, StreamIdle: m.cfg.HTTPStreamIdle, Queues: queues,
		NewUserRole: m.cfg.OIDC.DefaultRole},
		admin.Deps{Groups: store, Mailings: svc, Customers: customers.NewStore(db), Keys: keys, Users: people.users, IdP: people.idp,
			DB: db, Alerts: alertList,
			Segments: m.segments(db), Reports: rep, Redemptions: co, Log: m.log})
	if err != nil {
		return err
	}
	srv.Mount("/admin/", h)
	return nil
}

// signIn is how people sign in: the users, and the identity provider when OIDC_ISSUER
// is set.
type signIn struct {
	users *users.Store
	idp   *idp.Provider
	role  users.Role
}

// people builds the process's users and identity provider. It warns when the shared
// ADMIN_PASSWORD is still set although named users exist (whoever knows it signs in as
// an admin the history cannot name), and reads the provider's discovery document once
// in the background so the first sign-in does not wait for it.
func (m *Main) people(ctx context.Context, db *sqlx.DB) (*signIn, error) {
	s := &signIn{users: users.NewStore(db), role: m.cfg.OIDC.DefaultRole}
	if m.cfg.AdminPassword != "" {
		if n, err := s.users.CountEnabled(ctx); err == nil && n > 0 {
			m.log.Warn("ADMIN_PASSWORD is set although named users exist: whoever knows it signs in as an admin; unset it", "users", n)
		}
	}
	if m.cfg.OIDC.Issuer == "" {
		return s, nil
	}
	p, err := idp.New(m.cfg.OIDC.idpConfig())
	if err != nil {
		return nil, err
	}
	s.idp = p
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := p.Warm(wctx); err != nil {
			m.log.Warn("the identity provider cannot be reached yet; sign-ins through it will retry", "issuer", p.Issuer(), "err", err)
		}
	}()
	return s, nil
}

// api is the API's acceptor of platform JWTs; nil without a provider.
func (s *signIn) api() api.PersonAuthenticator {
	if s.idp == nil {
		return nil
	}
	return idp.People{Provider: s.idp, Users: s.users, Policy: users.Policy{NewUserRole: s.role}}
}
