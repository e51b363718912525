package deadline

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// slowBody yields n bytes, one every gap: a stream that keeps moving.
type slowBody struct {
	n   int
	gap time.Duration
}

func (s *slowBody) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.gap) // the pace of the stream under test
	s.n--
	p[0] = 'x'
	return 1, nil
}

// TestRollOutlivesTheServerTimeouts: with ReadTimeout and WriteTimeout of 300 ms, a
// body that trickles for over a second is cut unless the handler rolls its deadlines,
// and then read whole.
func TestRollOutlivesTheServerTimeouts(t *testing.T) {
	for _, roll := range []bool{false, true} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if roll {
				w, r = Roll(w, r, 300*time.Millisecond)
			}
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusRequestTimeout)
				return
			}
			io.WriteString(w, strings.ToUpper(string(b)))
		}))
		srv.Config.ReadTimeout, srv.Config.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
		srv.Start()
		resp, err := http.Post(srv.URL, "text/plain", &slowBody{n: 12, gap: 100 * time.Millisecond})
		got := ""
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				got = string(b)
			}
		}
		srv.Close()
		if roll && got != strings.Repeat("X", 12) {
			t.Errorf("rolled: got %q (%v), want the whole body", got, err)
		}
		if !roll && got != "" {
			t.Errorf("not rolled: the trickled body was read whole (%q): the server has no read timeout", got)
		}
	}
}
