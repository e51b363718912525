package faults

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestThreeSchedulers is promise 4: three scheduler processes check balances every
// second while a group is drained through its alert levels (threshold 80 of 100 codes:
// threshold, half, quarter, empty), and one of them is SIGKILLed and restarted on the
// way. Each alert reaches the group's webhook once.
func TestThreeSchedulers(t *testing.T) {
	c := newChecks(t, "three schedulers at once (one SIGKILLed and restarted), balance alerts by webhook")
	defer c.done()
	var mu sync.Mutex
	byKey := map[string]int{}
	byLevel := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Alert struct {
				Level string `json:"level"`
			} `json:"alert"`
		}
		json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		byKey[r.Header.Get("Idempotency-Key")]++
		byLevel[p.Alert.Level]++
		mu.Unlock()
	}))
	defer hook.Close()
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, k := range byKey {
			n += k
		}
		return n
	}

	h := newHarness(t, "ALERTS_SCHEDULE=@every 1s")
	h.startWeb()
	body, _ := json.Marshal(map[string]any{"name": "Alerts", "low_balance_threshold": 80, "alert_webhook": hook.URL + "/alert"})
	var g struct{ ID int64 }
	h.api("POST", "/v1/groups", string(body), 201, &g)
	h.uploadCodes(g.ID, "FLTS", 100)
	h.customers(100)
	scheds := []*proc{h.start("scheduler", nil, "scheduler"), h.start("scheduler", nil, "scheduler"), h.start("scheduler", nil, "scheduler")}
	issued := 0
	issue := func(k int) {
		for range k {
			issued++
			req, _ := http.NewRequest("POST", fmt.Sprintf("%s/v1/groups/%d/issue", h.webURL, g.ID), strings.NewReader(fmt.Sprintf(`{"customer_id":"c%d"}`, issued)))
			req.Header.Set("Authorization", "Bearer "+h.key)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", fmt.Sprintf("sched-%d", issued))
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 201 {
				t.Fatalf("direct issue %d: %v %v", issued, err, resp)
			}
			resp.Body.Close()
		}
	}
	// Balance 75 (≤ 80: threshold), 35 (< 40: half), 15 (< 20: quarter), 0 (empty).
	for step, k := range []int{25, 40, 20, 15} {
		issue(k)
		want := step + 1
		h.waitFor(20*time.Second, fmt.Sprintf("alert %d", want), func() bool { return received() >= want })
		c.tried++
		if step == 1 {
			scheds[0].kill()
			scheds[0] = h.start("scheduler", nil, "scheduler")
		}
	}
	time.Sleep(2500 * time.Millisecond) // more ticks of every scheduler
	mu.Lock()
	defer mu.Unlock()
	twice := 0
	for _, n := range byKey {
		twice += n - 1
	}
	c.check("each alert delivered once", twice == 0, "%d repeated deliveries: %v", twice, byKey)
	for _, level := range []string{"threshold", "half", "quarter", "empty"} {
		c.check("level "+level+" alerted once", byLevel[level] == 1, "%d times (%v)", byLevel[level], byLevel)
	}
	var rows int
	h.db.Get(&rows, `SELECT count(*) FROM alerts WHERE group_id = $1 AND NOT suppressed`, g.ID)
	c.check("one alert row per level", rows == 4, "%d rows", rows)
	c.dup += twice
	h.checkCodes(c, g.ID)
	h.checkLeaks(c)
}
