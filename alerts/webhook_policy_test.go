package alerts_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"promopool/alerts"
	"promopool/groups"
)

// TestWebhookAddressPolicy: an alert webhook aimed at a loopback, private or metadata
// address is refused when saved, and — saved anyway (an address that resolved
// elsewhere then, a row from before) — refused at dial time when posted, with a stored
// and logged error that names the class of address, not the URL's token nor whether
// anything listens there. With the address allowed, a closed port and a silent host
// read the same: last_error cannot map ports.
func TestWebhookAddressPolicy(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	strict := groups.NewStore(e.db.DB, groups.Config{})
	for _, u := range []string{"http://127.0.0.1:8080/hook", "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/x",
		"http://[::1]/x", "http://localhost:9/x", "http://100.64.0.1/x"} {
		_, err := strict.Create(ctx, "t", groups.Input{Name: ptr("G " + u), AlertWebhook: ptr(u)})
		var inv *groups.InvalidError
		if !errors.As(err, &inv) || inv.Field != "alert_webhook" || !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("saving %s: %v, want invalid_field alert_webhook", u, err)
		}
	}

	// Saved through the permissive store (the test receiver is on loopback), delivered
	// by a service held to public addresses only.
	g := e.group(t, "Private", 10, 20)
	secret := "?token=HOOK-SECRET-1"
	e.db.MustExec(`UPDATE groups SET alert_webhook = alert_webhook || $2 WHERE id = $1`, g.ID, secret)
	c, err := alerts.New(alerts.Config{Email: e.mail, WebhookTimeout: 2 * time.Second},
		alerts.Deps{DB: e.db.DB, Groups: e.store, Log: slog.New(slog.NewTextHandler(e.log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.take(t, g.ID, 10)
	res := check(t, c, time.Now())
	d := webhookDelivery(t, e.list(t, c, g.ID)[0])
	if res.Failed != 1 || e.hook.count("/Private") != 0 || !strings.Contains(d.LastError, "loopback") {
		t.Fatalf("a loopback webhook was posted or not explained: %+v, %d hits, %+v", res, e.hook.count("/Private"), d)
	}
	if strings.Contains(d.LastError, "HOOK-SECRET") || strings.Contains(e.log.String(), "HOOK-SECRET") {
		t.Fatalf("the URL's token reached last_error or the log: %q", d.LastError)
	}

	// Allowed addresses: a closed port answers like any unreachable host.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/hook?token=HOOK-SECRET-2"
	l.Close()
	g2 := e.group(t, "Closed", 10, 20)
	e.db.MustExec(`UPDATE groups SET alert_webhook = $2 WHERE id = $1`, g2.ID, closed)
	c = e.checker(t, nil)
	e.take(t, g2.ID, 10)
	check(t, c, time.Now().Add(time.Minute))
	d = webhookDelivery(t, e.list(t, c, g2.ID)[0])
	port := l.Addr().(*net.TCPAddr).Port
	if d.Status != alerts.DeliveryPending || !strings.Contains(d.LastError, "no HTTP answer") ||
		strings.Contains(d.LastError, "refused") || strings.Contains(d.LastError, strconv.Itoa(port)) || strings.Contains(d.LastError, "HOOK-SECRET") {
		t.Fatalf("closed port: %+v", d)
	}
}
