package faults

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// rssLimit is the web process's memory budget for any upload up to MAX_UPLOAD_BYTES.
const rssLimit = 150 << 20

// peakRSS is a process's peak resident set (VmHWM) in bytes, read from /proc.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// repeatReader yields head, then body repeated until n bytes in all, then tail.
func repeatReader(head, body, tail string, n int64) io.Reader {
	mid := n - int64(len(head)+len(tail))
	return io.MultiReader(strings.NewReader(head), io.LimitReader(&cycle{s: body}, mid), strings.NewReader(tail))
}

type cycle struct {
	s string
	i int
}

func (c *cycle) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], c.s[c.i:])
		n += k
		c.i = (c.i + k) % len(c.s)
	}
	return n, nil
}

// memoryChecks sends uploads built to blow memory up, each just under
// MAX_UPLOAD_BYTES (64 MiB here: the size of the report), and reads the web
// process's peak RSS around each: it must stay under rssLimit, whatever the answer.
func (h *harness) memoryChecks(gid int64) {
	const size = 64<<20 - 1024
	g := fmt.Sprintf("/v1/groups/%d/codes", gid)
	valid := 300_000
	if long {
		valid = 3_500_000
	}
	var codes strings.Builder
	codes.WriteString(`{"codes": [`)
	for i := range valid {
		if i > 0 {
			codes.WriteString(",")
		}
		fmt.Fprintf(&codes, `"FLTM-%08d"`, i)
	}
	codes.WriteString("]}")
	for _, tc := range []struct {
		name, path, ctype string
		body              func() io.Reader
	}{
		{"JSON upload: one 64 MiB string", g, "application/json", func() io.Reader { return repeatReader(`["`, "A", `"]`, size) }},
		{"JSON upload: 64 MiB of 1 MiB strings", g, "application/json",
			func() io.Reader { return repeatReader(`{"codes": ["`, strings.Repeat("B", 1<<20)+`", "`, `"]}`, size) }},
		{"JSON upload: 64 MiB nested arrays", g, "application/json", func() io.Reader { return repeatReader(``, "[", ``, size) }},
		{fmt.Sprintf("JSON upload: %d valid codes", valid), g, "application/json", func() io.Reader { return strings.NewReader(codes.String()) }},
		{"CSV upload: a quoted field of 64 MiB with newlines", g, "text/csv", func() io.Reader { return repeatReader("code\n\"", "FLTQ\n", "\"\n", size) }},
		{"plain upload: one 64 MiB line", g, "text/plain", func() io.Reader { return repeatReader("", "C", "\n", size) }},
		{"customers CSV: a 64 MiB quoted attribute", "/v1/customers", "text/csv",
			func() io.Reader { return repeatReader("id,attr.note\nc9,\"", "x\n", "\"\n", size) }},
		{"customers NDJSON: one 64 MiB line", "/v1/customers", "application/x-ndjson",
			func() io.Reader { return repeatReader(`{"id":"c9","attributes":{"note":"`, "y", "\"}}\n", size) }},
	} {
		c := newChecks(h.t, tc.name)
		c.tried = 1
		// A fresh process per upload: Go keeps the heap it grew, so a peak is only the
		// upload's own in a process that had none before.
		if err := h.web.term(15 * time.Second); err != nil {
			h.t.Fatal(err)
		}
		h.startWeb()
		pid := h.web.cmd.Process.Pid
		base, _ := peakRSS(pid)
		codes0, uploads0 := h.stored()
		method := "POST"
		if tc.path == "/v1/customers" {
			method = "PUT"
		}
		st, b := h.do(method, tc.path, tc.ctype, tc.body(), "default")
		peak, err := peakRSS(pid)
		codes1, uploads1 := h.stored()
		c.check("answered, not a 5xx", st == 201 || st == 200 || st == 400, "%d %.300s", st, b)
		c.check(fmt.Sprintf("web peak RSS under %d MB", rssLimit>>20), err == nil && peak < rssLimit, "%d MB (%v)", peak>>20, err)
		if st == 400 {
			c.check("nothing stored", codes1 == codes0 && uploads1 == uploads0, "%d codes, %d uploads", codes1-codes0, uploads1-uploads0)
		}
		c.check("server up", h.up(), "web down")
		c.note("answer %d, web peak RSS %d MB (%d MB at start)", st, peak>>20, base>>20)
		c.done()
	}
}
