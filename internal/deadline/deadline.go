// Package deadline lets a streaming HTTP handler outlive the server's timeouts while
// bytes keep moving. promopool's http.Server has ReadTimeout and WriteTimeout, so a
// client that trickles a body or never reads an answer cannot hold a connection for
// long; an upload of a gigabyte or an export of millions of rows legitimately takes
// longer than either. Such routes opt in explicitly: Roll replaces the fixed deadlines
// with rolling ones, pushed forward by idle each time the body is read or the answer
// written, so the connection only ends when the stream stalls for longer than idle.
package deadline

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// Roll returns w and r with rolling deadlines: every read of r.Body pushes the read and
// write deadlines to now+idle, every write to the returned writer pushes the write
// deadline. The deadlines are moved at most every idle/8, so a fast stream does not
// pay a timer update per buffer. Writers that cannot set deadlines (a test recorder)
// are served as they are.
func Roll(w http.ResponseWriter, r *http.Request, idle time.Duration) (http.ResponseWriter, *http.Request) {
	rc := http.NewResponseController(w)
	now := time.Now()
	if rc.SetReadDeadline(now.Add(idle)) != nil || rc.SetWriteDeadline(now.Add(idle)) != nil {
		return w, r
	}
	t := &timer{rc: rc, idle: idle, step: idle / 8, last: now}
	r2 := r.Clone(r.Context())
	r2.Body = &body{ReadCloser: r.Body, t: t}
	return &writer{ResponseWriter: w, t: t}, r2
}

type timer struct {
	mu   sync.Mutex // a body may be read on another goroutine than the one writing
	rc   *http.ResponseController
	idle time.Duration
	step time.Duration
	last time.Time
}

// bump moves the deadlines forward if the last move is older than step.
func (t *timer) bump(read bool) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.last) < t.step {
		return
	}
	t.last = now
	if read {
		t.rc.SetReadDeadline(now.Add(t.idle))
	}
	// The answer of an upload comes after the whole body was read: the write deadline
	// moves with the reads too.
	t.rc.SetWriteDeadline(now.Add(t.idle))
}

type body struct {
	io.ReadCloser
	t *timer
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.t.bump(true)
	}
	return n, err
}

type writer struct {
	http.ResponseWriter
	t *timer
}

func (w *writer) Write(p []byte) (int, error) {
	w.t.bump(false)
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (flushes, deadlines).
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
