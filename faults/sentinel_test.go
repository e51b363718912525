package faults

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"promopool/internal/redistest"
	"promopool/internal/testdb"
)

// failovers are the fractions of the mailing sent at which the Redis primary dies.
func failovers() []float64 {
	if long {
		return []float64{0.2, 0.5, 0.8}
	}
	return []float64{0.4}
}

// recovered waits until a mailing task is acknowledged on the new primary p (Asynq's
// processed counter of the mailings queue grows there), or until PostgreSQL holds every
// batch of the mailing done (the workers finished the tasks they had in hand while the
// primary was dying, and only their acknowledgements were lost with it: nothing is left
// for the new primary to serve). It returns when, and which of the two it saw.
func recovered(h *harness, p *redistest.Server, limit time.Duration) (time.Time, string) {
	h.t.Helper()
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: p.Addr, DB: h.rdb.Options().DB})
	defer c.Close()
	const key = "asynq:{mailings}:processed"
	base, _ := c.Get(ctx, key).Int64()
	deadline := time.Now().Add(limit)
	for {
		if n, err := c.Get(ctx, key).Int64(); err == nil && n > base {
			return time.Now(), "a mailing task acknowledged on it"
		}
		var open int
		if err := h.db.Get(&open, `SELECT count(*) FROM mailing_batches WHERE done_at IS NULL`); err == nil && open == 0 {
			return time.Now(), "every batch done in PostgreSQL"
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("no mailing task acknowledged on the new primary %s, and batches still open, within %s", p.Addr, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisSentinelFailover runs the mailing scenario with REDIS_URL naming three real
// redis-sentinel processes that watch a primary and its replica, SIGKILLs the primary
// mid-send (each time in the long version, the dead one restarted as the new replica
// before the next), and checks the invariants once the mailing finished. Recovery is
// timed from the kill to the sentinels' promotion and to the first mailing task
// acknowledged on the new primary; writes the dead primary had not yet passed to its
// replica are lost with it, and PostgreSQL (the outbox and the batch leases) is what
// brings their batches back.
func TestRedisSentinelFailover(t *testing.T) {
	var set *redistest.SentinelSet
	var times []string
	scenario{fault: "Redis Sentinel failover: the primary SIGKILLed mid-send (3 sentinels, 1 replica)", at: failovers(),
		world: func(t *testing.T) *harness {
			set = redistest.StartSentinels(t, redistest.Options{})
			h := newHarnessOn(t, testdb.New(t), set.URL(13))
			if long {
				// Slow the receiver so that the mailing is still sending at the third
				// kill: each failover waits for the dead primary to rejoin as a replica.
				h.hook.delay = 6 * time.Millisecond
			}
			return h
		},
		inject: func(h *harness, w *workerSet) string {
			old := set.Primary()
			killed := time.Now()
			old.Kill()
			promoted := set.WaitPromoted(old, 60*time.Second)
			took := time.Since(killed)
			at, how := recovered(h, promoted, 60*time.Second)
			served := at.Sub(killed)
			times = append(times, fmt.Sprintf("%.1f s / %.1f s", took.Seconds(), served.Seconds()))
			rejoined := ""
			if long {
				start := time.Now()
				old.Restart()
				set.WaitReplica(old, 60*time.Second)
				rejoined = fmt.Sprintf("; restarted, a synced replica again after %s", time.Since(start).Round(time.Millisecond))
			}
			return fmt.Sprintf("killed primary %s: %s promoted after %s, %s after %s%s",
				old.Addr, promoted.Addr, took.Round(time.Millisecond), how, served.Round(time.Millisecond), rejoined)
		},
		after: func(h *harness, c *checks, id int64) {
			c.note("failover to promotion / to the first task acknowledged on the new primary (or every batch done): %s; the reconcilers enqueued %d batches again (their tasks lost, or not visible in the queue during a failover)",
				strings.Join(times, ", "), h.reenqueued())
		}}.run(t)
}

var reenqueuedLog = regexp.MustCompile(`re-enqueued lost batches.* batches=(\d+)`)

// reenqueued is how many batches the workers' reconcilers enqueued again, their tasks
// lost with a Redis primary's unreplicated writes.
func (h *harness) reenqueued() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, p := range h.procs {
		for _, m := range reenqueuedLog.FindAllStringSubmatch(p.out.String(), -1) {
			k, _ := strconv.Atoi(m[1])
			n += k
		}
	}
	return n
}
