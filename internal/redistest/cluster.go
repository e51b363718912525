package redistest

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterSet is a Redis Cluster of three primaries (no replicas), the slots spread by
// `redis-cli --cluster create`.
type ClusterSet struct {
	// Nodes are the three servers.
	Nodes []*Server
}

// StartCluster runs the cluster on free loopback ports and waits for cluster_state:ok
// on every node.
func StartCluster(t testing.TB, o Options) *ClusterSet {
	t.Helper()
	cli := binary(t, "redis-cli")
	c := &ClusterSet{}
	args := []string{"--cluster", "create"}
	for range 3 {
		n := StartServer(t, o, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		c.Nodes = append(c.Nodes, n)
		args = append(args, n.Addr)
	}
	argv := append(append(append([]string{}, o.Prefix...), cli), append(args, "--cluster-yes")...)
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range c.Nodes {
		cl := redis.NewClient(&redis.Options{Addr: n.Addr})
		for {
			info, err := cl.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				cl.Close()
				t.Fatalf("cluster not ok within 20 s: %s %v", info, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cl.Close()
	}
	return c
}

// URL is the cluster's REDIS_URL.
func (c *ClusterSet) URL() string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return "redis-cluster://" + strings.Join(addrs, ",")
}
