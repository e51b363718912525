package faults

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"promopool/client"
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
	gid := h.createGroupWith(client.GroupInput{Name: new("Alerts"), LowBalanceThreshold: new(80), AlertWebhook: new(hook.URL + "/alert")})
	h.uploadCodes(gid, "FLTS", 100)
	h.customers(100)
	scheds := []*proc{h.start("scheduler", nil, "scheduler"), h.start("scheduler", nil, "scheduler"), h.start("scheduler", nil, "scheduler")}
	issued := 0
	issue := func(k int) {
		for range k {
			issued++
			h.issueCode(gid, fmt.Sprintf("c%d", issued), fmt.Sprintf("sched-%d", issued))
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
	h.db.Get(&rows, `SELECT count(*) FROM alerts WHERE group_id = $1 AND NOT suppressed`, gid)
	c.check("one alert row per level", rows == 4, "%d rows", rows)
	c.dup += twice
	h.checkCodes(c, gid)
	h.checkLeaks(c)
}
