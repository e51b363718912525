package redisurl_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"promopool/internal/redistest"
	"promopool/internal/redisurl"
	"promopool/internal/testdb"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want redisurl.Conn
		opt  asynq.RedisConnOpt
	}{
		{url: "redis://127.0.0.1:6379/3", want: redisurl.Conn{Kind: redisurl.Single, Addrs: []string{"127.0.0.1:6379"}, DB: 3},
			opt: asynq.RedisClientOpt{Addr: "127.0.0.1:6379", DB: 3}},
		{url: "redis-sentinel://s1:26379,s2:26380,s3/mymaster?db=2",
			want: redisurl.Conn{Kind: redisurl.Sentinel, Addrs: []string{"s1:26379", "s2:26380", "s3:26379"}, MasterName: "mymaster", DB: 2},
			opt:  asynq.RedisFailoverClientOpt{MasterName: "mymaster", SentinelAddrs: []string{"s1:26379", "s2:26380", "s3:26379"}, DB: 2}},
		{url: "redis-sentinel://u:p%40ss@[::1]:26379,[::1]:26380/m/5?sentinel_password=sp",
			want: redisurl.Conn{Kind: redisurl.Sentinel, Addrs: []string{"[::1]:26379", "[::1]:26380"}, MasterName: "m", DB: 5,
				Username: "u", Password: "p@ss", SentinelPassword: "sp"},
			opt: asynq.RedisFailoverClientOpt{MasterName: "m", SentinelAddrs: []string{"[::1]:26379", "[::1]:26380"}, DB: 5,
				Username: "u", Password: "p@ss", SentinelPassword: "sp"}},
		{url: "redis-sentinel://h1:26379?master=asynqstyle",
			want: redisurl.Conn{Kind: redisurl.Sentinel, Addrs: []string{"h1:26379"}, MasterName: "asynqstyle"},
			opt:  asynq.RedisFailoverClientOpt{MasterName: "asynqstyle", SentinelAddrs: []string{"h1:26379"}}},
		{url: "redis-cluster://:secret@n1:7000,n2:7001,n3",
			want: redisurl.Conn{Kind: redisurl.Cluster, Addrs: []string{"n1:7000", "n2:7001", "n3:6379"}, Password: "secret"},
			opt:  asynq.RedisClusterClientOpt{Addrs: []string{"n1:7000", "n2:7001", "n3:6379"}, Password: "secret"}},
	} {
		t.Run(tc.url, func(t *testing.T) {
			c, err := redisurl.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			got := redisurl.Conn{Kind: c.Kind, Addrs: c.Addrs, MasterName: c.MasterName, DB: c.DB, Username: c.Username,
				Password: c.Password, SentinelUsername: c.SentinelUsername, SentinelPassword: c.SentinelPassword}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parsed %+v, want %+v", got, tc.want)
			}
			if opt := c.Asynq(); !reflect.DeepEqual(opt, tc.opt) {
				t.Errorf("asynq options %#v, want %#v", opt, tc.opt)
			}
			if strings.Contains(c.String(), "secret") || strings.Contains(c.String(), "p@ss") {
				t.Errorf("String shows a password: %s", c)
			}
		})
	}
}

func TestParseTLS(t *testing.T) {
	c, err := redisurl.Parse("redis-sentinel://s1.example:26379/m?tls=true")
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS == nil || c.TLS.ServerName != "s1.example" {
		t.Fatalf("TLS %+v, want server name s1.example", c.TLS)
	}
	opt := c.Asynq().(asynq.RedisFailoverClientOpt)
	if opt.TLSConfig != c.TLS {
		t.Fatalf("asynq options carry no TLS")
	}
}

// TestParseErrors: each bad URL names what is wrong, and never shows a password.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"127.0.0.1:6379", "want redis://"},
		{"http://h/0", `unknown scheme "http"`},
		{"redis://h:6379/x", "database number"},
		{"redis-sentinel://h1:26379,h2:26379", "name the primary"},
		{"redis-sentinel://u:hunter2@h1:26379/", "name the primary"},
		{"redis-sentinel://h1,,h2/m", "empty host"},
		{"redis-sentinel://h1/m?db=x", `db: want a database number, got "x"`},
		{"redis-sentinel://h1/m?sentinel_password=hunter2&dbb=1", `unknown parameter "dbb"`},
		{"redis-sentinel://h1/m/1/2", "name the primary"},
		{"redis-sentinel://h1/m?tls=maybe", "tls: want true or false"},
		{"redis-cluster://n1:7000/0", "a cluster URL has no path"},
		{"redis-cluster://n1:7000?db=1", "database 0 only"},
		{"redis-cluster://n1:7000?master=m", "for redis-sentinel:// only"},
	} {
		_, err := redisurl.Parse(tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.url, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error shows the password: %v", tc.url, err)
		}
	}
}

// roundTrip enqueues a task through the URL's Asynq options, has an Asynq server take
// it, and writes and reads a key through its go-redis client.
func roundTrip(t *testing.T, url string) {
	t.Helper()
	c, err := redisurl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rdb := c.Client()
	defer rdb.Close()
	key := fmt.Sprintf("redisurl-test-%d", time.Now().UnixNano())
	if err := rdb.Set(ctx, key, "v", time.Minute).Err(); err != nil {
		t.Fatalf("SET through %s: %v", c, err)
	}
	if v, err := rdb.Get(ctx, key).Result(); err != nil || v != "v" {
		t.Fatalf("GET through %s: %q %v", c, v, err)
	}
	client := asynq.NewClient(c.Asynq())
	defer client.Close()
	queue := fmt.Sprintf("redisurl%d", time.Now().UnixNano())
	if _, err := client.Enqueue(asynq.NewTask("redisurl:ping", []byte("x")), asynq.Queue(queue)); err != nil {
		t.Fatalf("enqueue through %s: %v", c, err)
	}
	got := make(chan string, 1)
	srv := asynq.NewServer(c.Asynq(), asynq.Config{Concurrency: 1, Queues: map[string]int{queue: 1}, LogLevel: asynq.FatalLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc("redisurl:ping", func(ctx context.Context, task *asynq.Task) error {
		got <- string(task.Payload())
		return nil
	})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	select {
	case p := <-got:
		if p != "x" {
			t.Fatalf("payload %q", p)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the task enqueued through %s was not processed within 20 s", c)
	}
}

func TestSingleServer(t *testing.T) {
	roundTrip(t, testdb.RedisURL())
}

func TestSentinel(t *testing.T) {
	set := redistest.StartSentinels(t, redistest.Options{})
	roundTrip(t, set.URL(3))
	// The client follows the sentinels to the primary: DB 3 of the primary holds the key
	// space the URL named.
	n, err := set.Primary().Client().Do(context.Background(), "SELECT", 3).Result()
	if err != nil || n != "OK" {
		t.Fatalf("primary: %v %v", n, err)
	}
}

func TestCluster(t *testing.T) {
	roundTrip(t, redistest.StartCluster(t, redistest.Options{}).URL())
}
