package redistest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name the sentinels of a SentinelSet monitor the primary under.
const MasterName = "promopool"

// SentinelSet is a primary, one replica and three sentinels (quorum 2) that declare the
// primary down after DownAfter without an answer and then promote the replica.
type SentinelSet struct {
	// Servers are the primary and the replica as started; which one is the primary
	// now is Primary's answer.
	Servers []*Server
	// Sentinels are the three sentinel processes.
	Sentinels []*Server
	// DownAfter is the sentinels' down-after-milliseconds.
	DownAfter time.Duration
	t         testing.TB
}

// StartSentinels runs the set on free loopback ports and waits until every sentinel
// knows the replica and the other two sentinels (without which no failover can be
// agreed).
func StartSentinels(t testing.TB, o Options) *SentinelSet {
	t.Helper()
	binary(t, "redis-sentinel")
	set := &SentinelSet{t: t, DownAfter: time.Second}
	primary := StartServer(t, o)
	host, port, _ := net.SplitHostPort(primary.Addr)
	replica := StartServer(t, o, "--replicaof", host, port)
	set.Servers = []*Server{primary, replica}
	for range 3 {
		dir := t.TempDir()
		p := FreePort(t, o.bind())
		conf := writeFile(t, dir, "sentinel.conf", fmt.Sprintf(`port %d
bind %s
daemonize no
protected-mode no
dir %s
logfile ""
sentinel resolve-hostnames no
sentinel monitor %s %s %s 2
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s 6000
sentinel parallel-syncs %s 1
`, p, o.bind(), dir, MasterName, host, port, MasterName, set.DownAfter.Milliseconds(), MasterName, MasterName))
		argv := append(append([]string{}, o.Prefix...), binary(t, "redis-sentinel"), conf)
		s := &Server{Addr: net.JoinHostPort(o.bind(), strconv.Itoa(p)), t: t, argv: argv}
		s.start()
		t.Cleanup(s.Stop)
		set.Sentinels = append(set.Sentinels, s)
	}
	set.waitReady(30 * time.Second)
	return set
}

// waitReady waits until each sentinel sees one live replica and two other sentinels.
func (set *SentinelSet) waitReady(limit time.Duration) {
	set.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(limit)
	for {
		ready := 0
		for _, s := range set.Sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
			reps, err1 := sc.Replicas(ctx, MasterName).Result()
			sens, err2 := sc.Sentinels(ctx, MasterName).Result()
			sc.Close()
			if err1 == nil && err2 == nil && len(sens) == 2 && len(reps) == 1 && !strings.Contains(fmt.Sprint(reps), "s_down") {
				ready++
			}
		}
		if ready == len(set.Sentinels) {
			return
		}
		if time.Now().After(deadline) {
			set.t.Fatalf("sentinels not ready within %s:\n%s", limit, tail(set.Sentinels[0].Output()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// URL is the REDIS_URL of the set's database db.
func (set *SentinelSet) URL(db int) string {
	addrs := make([]string, len(set.Sentinels))
	for i, s := range set.Sentinels {
		addrs[i] = s.Addr
	}
	return fmt.Sprintf("redis-sentinel://%s/%s?db=%d", strings.Join(addrs, ","), MasterName, db)
}

// PrimaryAddr is the primary's address as the first sentinel that answers knows it.
func (set *SentinelSet) PrimaryAddr(ctx context.Context) (string, error) {
	var err error
	for _, s := range set.Sentinels {
		if !s.Alive() {
			continue
		}
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
		var a []string
		a, err = sc.GetMasterAddrByName(ctx, MasterName).Result()
		sc.Close()
		if err == nil && len(a) == 2 {
			return net.JoinHostPort(a[0], a[1]), nil
		}
	}
	return "", fmt.Errorf("no sentinel names the primary: %v", err)
}

// Primary is the server the sentinels name as the primary now.
func (set *SentinelSet) Primary() *Server {
	set.t.Helper()
	addr, err := set.PrimaryAddr(context.Background())
	if err != nil {
		set.t.Fatal(err)
	}
	for _, s := range set.Servers {
		if s.Addr == addr {
			return s
		}
	}
	set.t.Fatalf("the sentinels name %s, not a server of the set", addr)
	return nil
}

// WaitPromoted waits until the sentinels name a primary other than old and that server
// answers as a primary, and returns it.
func (set *SentinelSet) WaitPromoted(old *Server, limit time.Duration) *Server {
	set.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(limit)
	for {
		if addr, err := set.PrimaryAddr(ctx); err == nil && addr != old.Addr {
			for _, s := range set.Servers {
				if s.Addr != addr {
					continue
				}
				c := redis.NewClient(&redis.Options{Addr: addr})
				role, err := c.Do(ctx, "ROLE").Slice()
				c.Close()
				if err == nil && len(role) > 0 && role[0] == "master" {
					return s
				}
			}
		}
		if time.Now().After(deadline) {
			set.t.Fatalf("no failover within %s:\n%s", limit, tail(set.Sentinels[0].Output()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitReplica waits until s runs again as a replica of the current primary with the
// link up (a killed primary restarted and reconfigured by the sentinels).
func (set *SentinelSet) WaitReplica(s *Server, limit time.Duration) {
	set.t.Helper()
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	deadline := time.Now().Add(limit)
	for {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up") {
			set.waitReady(limit)
			return
		}
		if time.Now().After(deadline) {
			set.t.Fatalf("%s is not a synced replica within %s: %s", s.Addr, limit, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
