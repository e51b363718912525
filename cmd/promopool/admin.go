package main

import (
	"fmt"

	"github.com/hibiken/asynqmon"
	"github.com/jmoiron/sqlx"

	"promopool/admin"
	"promopool/api"
	"promopool/auth"
	"promopool/customers"
	"promopool/groups"
	"promopool/internal/redisurl"
	"promopool/mailings"
)

// mountAdmin serves the web pages under /admin/ on the API's server, with the Asynq
// queues (asynqmon) at /admin/queues/ behind the same sign-in.
func (m *Main) mountAdmin(srv *api.Server, db *sqlx.DB, store *groups.Store, svc *mailings.Service, keys *auth.Keys, alertList admin.AlertLister) error {
	conn, err := redisurl.Parse(m.cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	queues := asynqmon.New(asynqmon.Options{RootPath: "/admin/queues", RedisConnOpt: conn.Asynq()})
	m.closer = append(m.closer, func() { queues.Close() })
	h, err := admin.New(admin.Config{Password: m.cfg.AdminPassword, SessionSecret: m.cfg.AdminSessionSecret,
		SessionTTL: m.cfg.AdminSessionTTL, MaxUploadBytes: m.cfg.MaxUploadBytes, StreamIdle: m.cfg.HTTPStreamIdle, Queues: queues},
		admin.Deps{Groups: store, Mailings: svc, Customers: customers.NewStore(db), Keys: keys, DB: db, Alerts: alertList,
			Segments: m.segments(db), Log: m.log})
	if err != nil {
		return err
	}
	srv.Mount("/admin/", h)
	return nil
}
