package admin

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"promopool/internal/testdb"
	"promopool/reports"
)

// TestBrowser drives the pages in Debian's headless Chromium against real `promopool
// web` and `promopool worker` processes: sign in, create a group, paste codes with a
// duplicate and an invalid line and read the report, undo, upload a file through the
// streamed upload, send a mailing (file transport) and watch it finish, and find the
// code marked initial on the customer's tab. Screenshots go to testoutput/admin/; with
// PROMOPOOL_DOCS_SCREENSHOT=1 the group page is also saved to docs/screenshots/group.png.
func TestBrowser(t *testing.T) {
	// The two browser tests wait on pages and processes more than they compute: they
	// run side by side (own web, own redis-server, own browser context each).
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary and runs a browser")
	}
	start := time.Now()
	db := testdb.New(t)
	bin := testBinary(t)
	redisURL := startRedis(t)
	outbox := t.TempDir()
	env := append(os.Environ(), db.Env()...)
	env = append(env, "REDIS_URL="+redisURL, "MAILER_URL=file://"+outbox, "HTTP_ADDR=127.0.0.1:0", "ADMIN_PASSWORD="+testPassword,
		"MAILING_BATCH_SIZE=2", "LOG_LEVEL=warn", "RECONCILE_INTERVAL=1s",
		"API_KEYS=charts:"+chartsKey+":read,shop:"+shopKey+":checkout")
	base := startWeb(t, bin, env)
	startProcess(t, bin, env, "worker")
	if _, err := db.Exec(`INSERT INTO customers (id, email, first_name) VALUES
		('c1', 'ada@example.com', 'Ada'), ('c2', 'bob@example.com', 'Bob'), ('c3', 'cy@example.com', 'Cy')`); err != nil {
		t.Fatal(err)
	}
	b := newBrowserTab(t, 120*time.Second)
	ctx := b.ctx

	// Sign in: an unsigned visit lands on the form, which leads back to the page asked for.
	b.do(t, "open the sign-in page", chromedp.Navigate(base+"/admin/groups"), chromedp.WaitVisible(chromedp.CSS("#secret")))
	b.shot(t, "01-sign-in")
	b.do(t, "sign in", chromedp.SendKeys(chromedp.CSS("#secret"), testPassword))
	b.submit(t, "sign in", "#signin", "#create-group")

	// Create a group.
	b.do(t, "create a group", chromedp.SendKeys(chromedp.CSS("#group-name"), "Spring 30%"),
		chromedp.SetValue(chromedp.CSS("input[name=threshold]"), "3"), setField("#terms-type", "percent"),
		chromedp.SendKeys(chromedp.CSS("#terms-percent"), "30"), chromedp.SendKeys(chromedp.CSS("#terms-currency"), "EUR"),
		chromedp.SendKeys(chromedp.CSS("#limit-budget"), "1000"))
	b.submit(t, "create a group", "#create-group", "#paste-upload")
	if h1 := b.text(t, "h1"); !strings.Contains(h1, "Spring 30%") {
		t.Fatalf("group page heading %q", h1)
	}

	// Paste codes: 5 lines, one repeat (line 3), one invalid (line 5, a tab inside).
	b.do(t, "paste codes", chromedp.SetValue(chromedp.CSS("#codes"), "SPRING-001\nSPRING-002\nSPRING-001\nSPRING-003\nBAD\tCODE\n"))
	b.submit(t, "paste codes", "#paste-upload", "#report")
	if a, d, i := b.text(t, "#report-accepted"), b.text(t, "#report-duplicates"), b.text(t, "#report-invalid"); a != "3" || d != "1" || i != "1" {
		t.Fatalf("report: %s accepted, %s duplicates, %s invalid; want 3, 1, 1", a, d, i)
	}
	if ex := b.text(t, "#report table.examples"); !strings.Contains(ex, "line 3") || !strings.Contains(ex, "line 5") {
		t.Fatalf("report examples do not name lines 3 and 5:\n%s", ex)
	}
	b.shot(t, "02-group-upload-report")

	// Undo it: the confirmation explains, the codes go.
	b.submit(t, "undo", "button.undo", ".flash")
	if f := b.text(t, ".flash"); !strings.Contains(f, "undone") || !strings.Contains(f, "3 unissued codes removed") {
		t.Fatalf("after undo: %q", f)
	}
	if n := b.text(t, "#total"); n != "0" {
		t.Fatalf("total after undo %q, want 0", n)
	}

	// Upload again, as a file through the streamed upload with its progress bar.
	file := filepath.Join(t.TempDir(), "codes.txt")
	os.WriteFile(file, []byte("SPRING-001\nSPRING-002\nSPRING-003\nSPRING-004\nSPRING-005\n"), 0o644)
	b.do(t, "upload a file", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}),
		chromedp.Click(chromedp.CSS("#file-upload-button")), chromedp.WaitVisible(chromedp.CSS("#upload-result #report")))
	if a := b.text(t, "#report-accepted"); a != "5" {
		t.Fatalf("file upload accepted %q, want 5", a)
	}
	if p, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById("upload-progress").value`)); err != nil || p != 100 {
		t.Fatalf("progress bar at %v (%v), want 100", p, err)
	}
	b.do(t, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#uploads")))
	if n := b.text(t, "#active"); n != "5" {
		t.Fatalf("active after the file upload %q, want 5", n)
	}

	// A mailing: first a template mistake, shown at its line.
	b.do(t, "new mailing", chromedp.Navigate(base+"/admin/mailings/new"), chromedp.WaitVisible(chromedp.CSS("#create-mailing")),
		chromedp.SendKeys(chromedp.CSS("#mailing-name"), "Spring news"),
		chromedp.SendKeys(chromedp.CSS("#mailing-sender"), "Shop <news@shop.example>"),
		chromedp.SetValue(chromedp.CSS("#mailing-text"), "Hello {{client.first_name}},\nyour code: {{client.promocode(\"Spring 30%\")}}\n"),
		chromedp.SetValue(chromedp.CSS("#mailing-customers"), "c1, c2"))
	b.submit(t, "new mailing", "#create-mailing", "#problems")
	if p := b.text(t, "#problems li.has-problem"); !strings.Contains(p, "line 2, column 12") || !strings.Contains(p, "Fix:") {
		t.Fatalf("problem not shown at line 2: %q", p)
	}
	b.shot(t, "03-mailing-template-problem")
	b.do(t, "fix and preview", chromedp.SetValue(chromedp.CSS("#mailing-text"), "Hello {{client.first_name}},\nyour code: {{client.promocode('Spring 30%')}}\n"))
	b.submit(t, "fix and preview", "#preview-mailing", "#preview-text")
	if p := b.text(t, "#preview-text"); !strings.Contains(p, "PREVIEW-Spring 30%") || !strings.Contains(p, "Hello Alex") {
		t.Fatalf("preview %q", p)
	}
	var issued int
	if err := db.Get(&issued, `SELECT count(*) FROM issues`); err != nil || issued != 0 {
		t.Fatalf("%d issues after the preview (%v), want 0: a preview takes no code", issued, err)
	}
	b.submit(t, "save the draft", "#create-mailing", "#start-mailing")
	b.shot(t, "04-mailing-draft")
	b.submit(t, "start", "#start-mailing", "#mailing-status")
	// The page polls for progress and reloads when the status changes.
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#mailing-status")))
		if err == nil && strings.TrimSpace(s) == "finished" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailing status %q (%v) after 20 s, want finished", s, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if sent := b.text(t, "#sent"); sent != "2" {
		t.Fatalf("sent %q, want 2", sent)
	}
	b.shot(t, "05-mailing-finished")
	emls, _ := filepath.Glob(filepath.Join(outbox, "*.eml"))
	if len(emls) != 2 {
		t.Fatalf("%d messages in the outbox, want 2", len(emls))
	}

	// The customer's tab shows the code, marked initial.
	var code string
	if err := db.Get(&code, `SELECT c.code FROM issues i JOIN codes c ON c.id = i.code_id WHERE i.customer_id = 'c1'`); err != nil {
		t.Fatal(err)
	}
	b.do(t, "open the customer", chromedp.Navigate(base+"/admin/customers"), chromedp.SendKeys(chromedp.CSS("#customer-id"), "c1"))
	b.submit(t, "open the customer", "#find-customer", "#customer-codes")
	if row := b.text(t, "#customer-codes tbody tr"); !strings.Contains(row, code) || !strings.Contains(row, "initial") || !strings.Contains(row, "Spring 30%") {
		t.Fatalf("customer tab row %q, want code %s from Spring 30%% marked initial", row, code)
	}
	b.shot(t, "06-customer-promo-codes")

	// The group's tabs: the code with its holder (found by search), the mailing's
	// deliveries, the issues by channel.
	var gid int64
	if err := db.Get(&gid, `SELECT id FROM groups WHERE name = 'Spring 30%'`); err != nil {
		t.Fatal(err)
	}
	gpath := fmt.Sprintf("%s/admin/groups/%d", base, gid)
	b.do(t, "codes tab", chromedp.Navigate(gpath+"/codes"), chromedp.WaitVisible(chromedp.CSS("#codes-table")),
		chromedp.SendKeys(chromedp.CSS("#code-q"), code))
	b.submit(t, "find the code", "#find-code", "#codes-table")
	if rows := b.text(t, "#codes-table tbody"); !strings.Contains(rows, code) || !strings.Contains(rows, "issued") || !strings.Contains(rows, "c1") || strings.Count(rows, "SPRING-") != 1 {
		t.Fatalf("codes tab search for %s: %q", code, rows)
	}
	b.docsShot(t, "tab-codes")
	b.do(t, "distributions tab", chromedp.Navigate(gpath+"/distributions"), chromedp.WaitVisible(chromedp.CSS("#distributions-table")))
	if sent := b.text(t, "#distributions-table tbody tr td.sent"); sent != "2" {
		t.Fatalf("distributions: sent %q, want 2", sent)
	}
	b.docsShot(t, "tab-distributions")
	b.do(t, "publications tab", chromedp.Navigate(gpath+"/publications"), chromedp.WaitVisible(chromedp.CSS("#publications-table")))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#publications-table tr[data-channel="mailing"]').length`)); err != nil || n != 2 {
		t.Fatalf("publications by mailing: %d (%v), want 2", n, err)
	}

	// A redemption at checkout, then the dashboard's charts: every drawn point, read
	// back through the scale the <svg> carries, is the metrics API's figure.
	redeem, _ := http.NewRequest("POST", base+"/v1/redemptions", strings.NewReader(
		`{"code":"`+code+`","customer_id":"c1","order_id":"o-1","currency":"EUR","order_amount":5000}`))
	redeem.Header.Set("Authorization", "Bearer "+shopKey)
	redeem.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(redeem); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("redeem over the API: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	b.do(t, "dashboard", chromedp.Navigate(gpath), chromedp.WaitVisible(chromedp.CSS("#charts")))
	checkCharts(t, b, base, gid)
	b.docsShot(t, "dashboard")

	// A segment: every customer (at least 0 codes) AND NOT issued from the group: c3 alone.
	b.do(t, "segment", chromedp.Navigate(base+"/admin/segments"), chromedp.WaitVisible(chromedp.CSS("#count-segment")),
		setField("#combine", "and"), setField("#cond0 select[name=k0]", "quantity"), setField("#cond0 select[name=op0]", "gte"),
		setField("#cond0 input[name=v0]", "0"), setField("#cond0 input[name=d0]", ""),
		setField("#cond1 select[name=k1]", "issued_from"), chromedp.Click(chromedp.CSS("#cond1 input[name=not1]")),
		setField("#cond1 select[name=g1] option[value='Spring 30%']", "selected"))
	b.submit(t, "segment", "#count-segment", "#segment-result")
	// The answer is as of the segments' fold horizon, which another open transaction
	// inserting issues holds back; count again for a while until it covers our issues.
	for deadline := time.Now().Add(15 * time.Second); ; {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](
			`document.getElementById("segment-count").innerText + " " + document.getElementById("segment-sample").innerText.trim().split("\n").join(",")`))
		if err == nil && got == "1 c3" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment: %q (%v), want 1 customer, c3 (%s)", got, err, b.text(t, "#segment-result"))
		}
		time.Sleep(300 * time.Millisecond)
		b.submit(t, "count again", "#count-segment", "#segment-result")
	}
	if j, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#segment-json"))); err != nil || !strings.Contains(j, `"not"`) || !strings.Contains(j, `"and"`) {
		t.Fatalf("segment JSON %q (%v)", j, err)
	}
	b.shot(t, "07-segment")
	b.do(t, "segment OR", setField("#combine", "or"))
	b.submit(t, "segment OR", "#count-segment", "#segment-result")
	if n := b.text(t, "#segment-count"); n != "3" {
		t.Fatalf("segment with OR: %s customers, want 3", n)
	}

	// A balance check (the scheduler's job, run once): 3 active at threshold 3 raises
	// the threshold alert, which the group page lists.
	check := exec.Command(bin, "alerts", "check")
	check.Env = env
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("promopool alerts check: %v\n%s", err, out)
	}

	// The group page now, at laptop and phone widths.
	b.do(t, "group page", chromedp.Navigate(base+"/admin/groups"), chromedp.WaitVisible(chromedp.CSS("table.groups")))
	if row := b.text(t, "table.groups tbody tr"); !strings.Contains(row, "Spring 30%") || !strings.Contains(row, "low") {
		t.Fatalf("group list row %q, want Spring 30%% in state low (3 active, threshold 3)", row)
	}
	b.shot(t, "08-groups")
	b.submit(t, "open the group", "table.groups a", "#activity")
	if a := b.text(t, "#alerts tbody"); !strings.Contains(a, "threshold") {
		t.Fatalf("alerts section %q, want the threshold alert", a)
	}
	b.do(t, "edit", chromedp.SetValue(chromedp.CSS("textarea[name=description]"), "30% off in spring"))
	b.submit(t, "edit", "#save-group", ".flash")
	if a := b.text(t, "#activity li"); !strings.Contains(a, "update") || !strings.Contains(a, "description") || !strings.Contains(a, "30% off in spring") {
		t.Fatalf("newest activity entry %q, want the description's change", a)
	}
	if a := b.text(t, "#activity"); !strings.Contains(a, "undo_upload") || !strings.Contains(a, "create") {
		t.Fatalf("activity log %q", a)
	}
	// Codes were issued: the terms are shown locked, the limits stay editable.
	if l := b.text(t, "#terms-locked"); l != "locked" {
		t.Fatalf("terms lock badge %q", l)
	}
	if dis, err := chromedp.Run(ctx, chromedp.Evaluate[[]bool](`[document.getElementById("terms-type").disabled, document.getElementById("limit-total").disabled]`)); err != nil || !dis[0] || dis[1] {
		t.Fatalf("disabled terms/limits fields %v (%v), want terms locked, limits editable", dis, err)
	}
	b.do(t, "reload the group page", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#activity")))
	b.shot(t, "09-group")
	b.docsShot(t, "group")
	b.do(t, "phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#activity")))
	b.shot(t, "10-group-phone")
	b.do(t, "laptop width", chromedp.EmulateViewport(1280, 900))

	// Deleting explains the archive rule: codes were issued, so the group is archived.
	b.submit(t, "archive", "#delete-group", ".flash")
	if f := b.text(t, ".flash"); !strings.Contains(f, "archived") {
		t.Fatalf("after delete: %q", f)
	}
	asked := b.asked()
	if !strings.Contains(asked, "Undo upload") || !strings.Contains(asked, "Archive “Spring 30%”? 2 codes were issued") {
		t.Fatalf("confirmations asked:\n%s", asked)
	}

	// The queues, behind the same sign-in.
	b.do(t, "queues", chromedp.Navigate(base+"/admin/queues/"),
		chromedp.Poll[chromedp.Void](`document.body.innerText.includes("mailings")`, chromedp.WithPollingTimeout(10*time.Second)))
	b.shot(t, "11-queues")
	t.Run("offers", func(t *testing.T) { browseOffers(t, b, base) })
	t.Logf("browser test took %s", time.Since(start).Round(100*time.Millisecond))
}

// Keys of the browser test's web: a reader (the metrics API) and a shop (checkout).
const (
	chartsKey = "charts-read-key-0123456789"
	shopKey   = "shop-checkout-key-0123456789"
)

// drawnPoints reads every chart's lines back into figures: per "chart-id/series", the
// value at each day index, through the scale each <svg> carries (data-*).
const drawnPoints = `(() => {
	const out = {};
	for (const svg of document.querySelectorAll("svg.chart")) {
		const d = svg.dataset, ymax = +d.ymax, left = +d.left, top = +d.top, h = +d.height, step = +d.step;
		for (const pl of svg.querySelectorAll("polyline[data-series]")) {
			const k = svg.id + "/" + pl.dataset.series;
			out[k] = out[k] || {};
			for (const p of pl.getAttribute("points").trim().split(/\s+/)) {
				const [x, y] = p.split(",").map(Number);
				out[k][String(Math.round((x - left) / step * 100) / 100)] = ymax * (top + h - y) / h;
			}
		}
	}
	return out;
})()`

// checkCharts compares the dashboard's drawn series with GET /v1/groups/{id}/metrics:
// issues and uses per day, the balance (today's is the balance now) with the forecast
// ending at the dry date, the budget left; and the table fallback's last row.
func checkCharts(t *testing.T, b *tab, base string, gid int64) {
	t.Helper()
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/groups/%d/metrics", base, gid), nil)
	req.Header.Set("Authorization", "Bearer "+chartsKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics API: %v %v", resp, err)
	}
	var m struct {
		Daily   []reports.Day   `json:"daily"`
		Balance reports.Balance `json:"balance"`
	}
	err = json.NewDecoder(resp.Body).Decode(&m)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	drawn, err := chromedp.Run(b.ctx, chromedp.Evaluate[map[string]map[string]float64](drawnPoints))
	if err != nil {
		t.Fatal(err)
	}
	n := len(m.Daily)
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 0.01 {
			t.Fatalf("%s: drawn %v, the metrics API says %v", what, got, want)
		}
	}
	point := func(key string, i int) (float64, bool) {
		v, ok := drawn[key][strconv.Itoa(i)]
		return v, ok
	}
	var issued, uses int64
	for i, d := range m.Daily {
		for key, want := range map[string]int64{"chart-activity/issued": d.Issued, "chart-activity/uses": d.Uses} {
			got, ok := point(key, i)
			if !ok {
				t.Fatalf("%s: no point for %s (%d days)", key, d.Date, n)
			}
			near(key+" "+d.Date, got, float64(want))
		}
		issued, uses = issued+d.Issued, uses+d.Uses
		if i == n-1 {
			got, _ := point("chart-balance/active", i)
			near("today's balance", got, float64(m.Balance.Active))
		} else if d.Active != nil {
			got, ok := point("chart-balance/active", i)
			if !ok {
				t.Fatalf("balance of %s not drawn", d.Date)
			}
			near("balance "+d.Date, got, float64(*d.Active))
		}
		if d.BudgetLeft != nil {
			got, ok := point("chart-budget/budget_left", i)
			if !ok {
				t.Fatalf("budget left of %s not drawn", d.Date)
			}
			near("budget left "+d.Date, got, float64(*d.BudgetLeft))
		}
	}
	if issued != 2 || uses != 1 || m.Daily[n-1].BudgetLeft == nil || *m.Daily[n-1].BudgetLeft != 100000-1500 {
		t.Fatalf("metrics: %d issued, %d used, budget left %v; want 2, 1, 98500 (the test's own figures)", issued, uses, m.Daily[n-1].BudgetLeft)
	}
	if m.Balance.DryAt == nil {
		t.Fatal("no dry date in the metrics: codes were issued today")
	}
	var end float64 = -1
	for k := range drawn["chart-balance/forecast"] {
		if x, _ := strconv.ParseFloat(k, 64); x > end {
			end = x
		}
	}
	if want := float64(n-1) + time.Until(*m.Balance.DryAt).Hours()/24; math.Abs(end-want) > 0.05 {
		t.Fatalf("forecast ends at day %v, want %v (dry at %s)", end, want, m.Balance.DryAt)
	}
	// The table sits in a closed <details>: read its text, not what is shown.
	last, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll("#chart-activity-table tbody tr:last-child td"), td => td.textContent).join(" ")`))
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(last); len(f) != 3 || f[0] != m.Daily[n-1].Date || f[1] != "2" || f[2] != "1" {
		t.Fatalf("table fallback's last row %q", last)
	}
}

// setField sets a form field's value as a user would; "selected" selects an <option>.
func setField(sel, value string) chromedp.Action[chromedp.Void] {
	s, _ := json.Marshal(sel)
	v, _ := json.Marshal(value)
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const el = document.querySelector(%s);
		if (!el) throw new Error("no element " + %s);
		if (el.tagName === "OPTION") el.selected = true; else el.value = %s;
		const target = el.tagName === "OPTION" ? el.parentElement : el;
		target.dispatchEvent(new Event("input", {bubbles: true}));
		target.dispatchEvent(new Event("change", {bubbles: true}));
	})()`, s, s, v))
}

// startWeb starts `promopool web` and returns its base URL.
func startWeb(t *testing.T, bin string, env []string) string {
	t.Helper()
	cmd := exec.Command(bin, "web")
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &prefixWriter{t: t, prefix: "web: "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop(t, cmd)
	sc := bufio.NewScanner(out)
	lines := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				lines <- u
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case u := <-lines:
		return u
	case <-time.After(15 * time.Second):
		t.Fatal("promopool web did not say where it listens within 15 s")
	}
	return ""
}

func startProcess(t *testing.T, bin string, env []string, sub string) {
	t.Helper()
	cmd := exec.Command(bin, sub)
	cmd.Env = env
	cmd.Stderr = &prefixWriter{t: t, prefix: sub + ": "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop(t, cmd)
}

// stop ends the process with SIGTERM when the test ends.
func stop(t *testing.T, cmd *exec.Cmd) {
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
}

// prefixWriter logs a child process's stderr into the test log.
type prefixWriter struct {
	t      *testing.T
	prefix string
	mu     sync.Mutex
}

func (w *prefixWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Log(w.prefix + line)
	}
	return len(b), nil
}

// browseOffers: a shared group created through the terms form (a mistake first, shown
// with the API's field error and the form kept), its Details panel, a promotion code
// created, archived and unarchived, the group paused from its page and found under the
// Paused tab with its count, then activated from the list.
func browseOffers(t *testing.T, b *tab, base string) {
	b.do(t, "groups", chromedp.Navigate(base+"/admin/groups"), chromedp.WaitVisible(chromedp.CSS("#create-group")),
		chromedp.SendKeys(chromedp.CSS("#group-name"), "Newsletter"), setField("#group-kind", "shared"),
		setField("#terms-type", "fixed"), chromedp.SendKeys(chromedp.CSS("#terms-amount"), "10"),
		chromedp.SendKeys(chromedp.CSS("#limit-total"), "1000"), chromedp.SendKeys(chromedp.CSS("#limit-budget"), "2500"))
	b.submit(t, "create without a currency", "#create-group", "p.error")
	if e := b.text(t, "p.error"); !strings.Contains(e, "terms.currency") {
		t.Fatalf("error %q, want the currency named", e)
	}
	if v, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`["group-name","terms-type","terms-amount","limit-total","limit-budget"].map(id => document.getElementById(id).value)`)); err != nil ||
		strings.Join(v, "|") != "Newsletter|fixed|10|1000|2500" {
		t.Fatalf("form after the error %q (%v): what was typed is lost", v, err)
	}
	b.shot(t, "offers-01-form-error")
	b.do(t, "add the currency", chromedp.SendKeys(chromedp.CSS("#terms-currency"), "EUR"))
	b.submit(t, "create", "#create-group", "#details")
	if d := b.text(t, "#details-terms"); d != "10 EUR off once" {
		t.Fatalf("details terms %q", d)
	}
	if d := b.text(t, "#details-budget") + " / " + b.text(t, "#details-max-total"); d != "2,500 EUR / at most 1\u202f000" {
		t.Fatalf("details budget / cap %q", d)
	}
	b.do(t, "new code", chromedp.SendKeys(chromedp.CSS("#promotion-code"), "NEWS10"), chromedp.SendKeys(chromedp.CSS("#promotion-max"), "200"))
	b.submit(t, "create code", "#create-promotion-code", `tr[data-code="NEWS10"]`)
	if row := b.text(t, `tr[data-code="NEWS10"]`); !strings.Contains(row, "at most 200 uses") || !strings.Contains(row, "active") {
		t.Fatalf("NEWS10 row %q", row)
	}
	b.submit(t, "archive code", `tr[data-code="NEWS10"] button.archive-code`, `tr[data-code="NEWS10"] button.unarchive-code`)
	if row := b.text(t, `tr[data-code="NEWS10"]`); !strings.Contains(row, "archived") {
		t.Fatalf("NEWS10 row after archive %q", row)
	}
	b.submit(t, "unarchive code", `tr[data-code="NEWS10"] button.unarchive-code`, `tr[data-code="NEWS10"] button.archive-code`)
	b.submit(t, "pause", "#status-control button.pause", ".flash")
	if s := b.text(t, "#group-status-badge"); s != "paused" {
		t.Fatalf("badge after pause %q", s)
	}
	b.docsShot(t, "offer")
	if !strings.Contains(b.asked(), "Pause “Newsletter”?") {
		t.Fatalf("pause was not confirmed: %s", b.asked())
	}
	b.do(t, "paused tab", chromedp.Navigate(base+"/admin/groups?status=paused"), chromedp.WaitVisible(chromedp.CSS("#status-tabs")))
	if n := b.text(t, `#status-tabs a[data-status="paused"] .count`); n != "1" {
		t.Fatalf("paused count %q", n)
	}
	if row := b.text(t, "table.groups tbody"); !strings.Contains(row, "Newsletter") || !strings.Contains(row, "10 EUR off once") || strings.Contains(row, "Spring") {
		t.Fatalf("paused tab %q", row)
	}
	b.docsShot(t, "offers")
	b.submit(t, "activate from the list", `table.groups button.activate`, ".flash")
	if n := b.text(t, `#status-tabs a[data-status="paused"] .count`); n != "0" {
		t.Fatalf("paused count after activate %q", n)
	}
}
