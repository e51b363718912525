package bench

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// foldWatch samples, while a mailing runs, how far the segment summaries lag behind the
// clock (as_of: segment_fold.folded_to) and what the workers' PostgreSQL backends are
// doing (pg_stat_activity's wait events).
type foldWatch struct {
	db     *sqlx.DB
	every  time.Duration
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	maxLag  time.Duration
	maxAt   time.Duration // when the largest lag was seen, after the start
	samples int           // pg_stat_activity samples taken
	active  int           // worker backends found active, summed over the samples
	waits   map[string]int
	stmts   map[string]map[string]int // wait → statement → samples
	byStmt  map[string]int            // statement → samples, whatever it waited on
}

// watchFold starts sampling every `every` (on a connection of its own in db's schema).
func watchFold(ctx context.Context, db *sqlx.DB, every time.Duration) *foldWatch {
	wctx, cancel := context.WithCancel(ctx)
	w := &foldWatch{db: db, every: every, cancel: cancel, done: make(chan struct{}), waits: map[string]int{}, stmts: map[string]map[string]int{}, byStmt: map[string]int{}}
	start := time.Now()
	go func() {
		defer close(w.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			w.sample(wctx, time.Since(start))
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *foldWatch) sample(ctx context.Context, since time.Duration) {
	var lag float64
	if err := w.db.GetContext(ctx, &lag, `SELECT extract(epoch FROM clock_timestamp() - folded_to) FROM segment_fold`); err == nil {
		w.mu.Lock()
		if d := time.Duration(lag * float64(time.Second)); d > w.maxLag {
			w.maxLag, w.maxAt = d, since
		}
		w.mu.Unlock()
	}
	var rows []struct {
		Type  string `db:"type"`
		Event string `db:"event"`
		Query string `db:"query"`
	}
	if err := w.db.SelectContext(ctx, &rows, `
		SELECT coalesce(wait_event_type, '') AS type, coalesce(wait_event, '') AS event, left(query, 300) AS query
		FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'promopool-worker' AND state = 'active'`); err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples++
	for _, r := range rows {
		w.active++
		key := "CPU (no wait event)"
		if r.Type != "" {
			key = r.Type + ":" + r.Event
		}
		w.waits[key]++
		if w.stmts[key] == nil {
			w.stmts[key] = map[string]int{}
		}
		label := statementLabel(r.Query)
		w.stmts[key][label]++
		w.byStmt[label]++
	}
}

// stop ends the sampling.
func (w *foldWatch) stop() {
	w.cancel()
	<-w.done
}

// lag returns the largest lag seen so far and when.
func (w *foldWatch) lag() (time.Duration, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxLag, w.maxAt
}

// WaitShare is one wait event's share of the worker backends' active samples, with the
// statements seen waiting on it most.
type WaitShare struct {
	Event      string
	Share      float64 // of all active-backend samples
	Statements []string
}

// report returns the wait events by share, largest first (at most n).
func (w *foldWatch) report(n int) (samples int, meanActive float64, out []WaitShare) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ev, c := range w.waits {
		ws := WaitShare{Event: ev, Share: float64(c) / float64(max(w.active, 1))}
		type sc struct {
			s string
			c int
		}
		var ss []sc
		for s, c := range w.stmts[ev] {
			ss = append(ss, sc{s, c})
		}
		slices.SortFunc(ss, func(a, b sc) int { return cmp.Or(b.c-a.c, strings.Compare(a.s, b.s)) })
		for i := range min(len(ss), 2) {
			ws.Statements = append(ws.Statements, fmt.Sprintf("%s (%.0f%%)", ss[i].s, 100*float64(ss[i].c)/float64(c)))
		}
		out = append(out, ws)
	}
	slices.SortFunc(out, func(a, b WaitShare) int {
		if a.Share != b.Share {
			if a.Share > b.Share {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Event, b.Event)
	})
	return w.samples, float64(w.active) / float64(max(w.samples, 1)), out[:min(n, len(out))]
}

var (
	spaces   = regexp.MustCompile(`\s+`)
	writesTo = regexp.MustCompile(`(?i)\b(INSERT INTO|UPDATE|DELETE FROM)\s+([a-z_][a-z0-9_]*)`)
	readsTo  = regexp.MustCompile(`(?i)\bFROM\s+([a-z_][a-z0-9_]*)`)
)

// statementLabel names a statement by the tables it writes, or else the first it reads:
// "INSERT INTO mailing_group_counts", "WITH … DELETE FROM reservations, INSERT INTO issues",
// "SELECT … FROM issues".
func statementLabel(q string) string {
	q = strings.TrimSpace(spaces.ReplaceAllString(q, " "))
	if q == "" {
		return "(none)"
	}
	verb := strings.ToUpper(strings.Fields(q)[0])
	prefix := verb + " "
	if verb == "WITH" || verb == "SELECT" {
		prefix = verb + " … "
	}
	var writes []string
	for _, m := range writesTo.FindAllStringSubmatch(q, -1) {
		if strings.EqualFold(m[2], "set") { // ON CONFLICT … DO UPDATE SET
			continue
		}
		if w := strings.ToUpper(m[1]) + " " + m[2]; !slices.Contains(writes, w) {
			writes = append(writes, w)
		}
	}
	if len(writes) > 0 {
		if verb == "INSERT" || verb == "UPDATE" || verb == "DELETE" {
			prefix = ""
		}
		return prefix + strings.Join(writes, ", ")
	}
	if m := readsTo.FindStringSubmatch(q); m != nil {
		return prefix + "FROM " + m[1]
	}
	return verb
}

// statements returns the statements the worker backends were seen running, by share
// of the active samples, largest first (at most n): where PostgreSQL's time goes.
func (w *foldWatch) statements(n int) []WaitShare {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []WaitShare
	for st, c := range w.byStmt {
		out = append(out, WaitShare{Event: st, Share: float64(c) / float64(max(w.active, 1))})
	}
	slices.SortFunc(out, func(a, b WaitShare) int {
		if a.Share != b.Share {
			if a.Share > b.Share {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Event, b.Event)
	})
	return out[:min(n, len(out))]
}

// freeAddr returns a loopback address with a free port, for a child's METRICS_ADDR.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// scrape reads the named counters from a process's /metrics (Prometheus text format).
func scrape(ctx context.Context, addr string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return parseCounters(resp.Body, names...)
}

// parseCounters reads unlabelled samples of the named metrics from Prometheus text.
func parseCounters(r io.Reader, names ...string) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		out[name] = v
	}
	return out, sc.Err()
}
