package faults

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// uploadSize is the number of codes of the upload that is interrupted.
func uploadSize() int {
	if long {
		return 5_000_000
	}
	return 400_000
}

// streamUpload POSTs n codes to the group through a pipe and calls at(written) after
// each chunk; it returns the request's error or status.
func (h *harness) streamUpload(ctx context.Context, gid int64, prefix string, n int, at func(written int64)) (int, error) {
	pr, pw := io.Pipe()
	var written atomic.Int64
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<16)
		for i := 0; i < n; i++ {
			k, err := fmt.Fprintf(bw, "%s-%08d\n", prefix, i)
			if err != nil {
				return
			}
			if written.Add(int64(k)); i%20000 == 0 {
				bw.Flush()
				at(written.Load())
			}
		}
		bw.Flush()
		pw.Close()
	}()
	req, _ := http.NewRequestWithContext(ctx, "POST", fmt.Sprintf("%s/v1/groups/%d/codes", h.webURL, gid), pr)
	req.Header.Set("Authorization", "Bearer "+h.key)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// checkNoUpload: nothing of an interrupted upload is stored, now or after PostgreSQL
// finished rolling it back, and the group's counters agree with its rows.
func (h *harness) checkNoUpload(c *checks, gid int64, prefix string, before int) {
	var codes, uploads int
	h.waitFor(30*time.Second, "interrupted upload's transaction gone", func() bool {
		var busy int
		h.db.Get(&busy, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state <> 'idle'
			AND query ILIKE '%staging%' AND pid <> pg_backend_pid()`)
		return busy == 0
	})
	h.db.Get(&codes, `SELECT count(*) FROM codes WHERE code LIKE $1`, prefix+"-%")
	h.db.Get(&uploads, `SELECT count(*) FROM uploads WHERE group_id = $1`, gid)
	c.check("no half upload", codes == 0, "%d codes of the interrupted upload stored", codes)
	c.check("no upload recorded", uploads == before, "%d uploads recorded, want %d", uploads, before)
	c.lost += codes
	h.checkCodes(c, gid)
}

func TestWebKilledMidUpload(t *testing.T) {
	c := newChecks(t, fmt.Sprintf("web SIGKILLed mid-upload of %d codes", uploadSize()))
	defer c.done()
	h := newHarness(t, "MAX_UPLOAD_BYTES=1073741824")
	h.startWeb()
	gid := h.createGroup("Upload")
	h.uploadCodes(gid, "FLTA", 1000)
	size := int64(uploadSize()) * 14
	for round, frac := range []float64{0.3, 0.7} {
		var killed atomic.Bool
		web := h.web
		st, err := h.streamUpload(context.Background(), gid, fmt.Sprintf("FLTK%d", round), uploadSize(), func(w int64) {
			if w >= int64(frac*float64(size)) && killed.CompareAndSwap(false, true) {
				web.kill()
			}
		})
		c.tried++
		c.check("the client sees the failure", err != nil || st >= 500, "status %d, err %v", st, err)
		h.startWeb("MAX_UPLOAD_BYTES=1073741824")
		h.checkNoUpload(c, gid, fmt.Sprintf("FLTK%d", round), 1)
	}
	// The web that came back takes a whole upload.
	rep := h.uploadCodes(gid, "FLTZ", 5000)
	c.check("uploads work after the kills", rep.Accepted == 5000, "accepted %d", rep.Accepted)
	h.checkLeaks(c)
}

func TestClientDisconnectsMidUpload(t *testing.T) {
	c := newChecks(t, "client disconnects mid-upload")
	defer c.done()
	h := newHarness(t, "MAX_UPLOAD_BYTES=1073741824")
	h.startWeb()
	gid := h.createGroup("Upload")
	size := int64(uploadSize()) * 14
	for round, frac := range []float64{0.2, 0.6} {
		ctx, cancel := context.WithCancel(context.Background())
		_, err := h.streamUpload(ctx, gid, fmt.Sprintf("FLTH%d", round), uploadSize(), func(w int64) {
			if w >= int64(frac*float64(size)) {
				cancel()
			}
		})
		cancel()
		c.tried++
		c.check("the request ends", err != nil, "no error")
		h.checkNoUpload(c, gid, fmt.Sprintf("FLTH%d", round), 0)
		c.check("server up", h.up(), "web down")
	}
	h.checkLeaks(c)
}

// TestUndo is promise 3's second half: an undo after some codes were issued removes
// exactly the unissued ones; the issued ones and their history stay.
func TestUndo(t *testing.T) {
	c := newChecks(t, "undo after issuing part of an upload")
	defer c.done()
	h := newHarness(t)
	h.startWeb()
	gid := h.createGroup("Undo")
	rep := h.uploadCodes(gid, "FLTO", 1000)
	h.customers(300)
	for i := 1; i <= 300; i++ {
		h.issueCode(gid, fmt.Sprintf("c%d", i), fmt.Sprintf("undo-%d", i))
	}
	undo, err := h.cli().UndoUploadWithResponse(context.Background(), int(rep.ID))
	h.ok(200, undo, err)
	c.tried = 1
	var left, issuedLeft int
	h.db.Get(&left, `SELECT count(*) FROM codes WHERE id >> 32 = $1`, rep.ID)
	h.db.Get(&issuedLeft, `SELECT count(*) FROM codes c WHERE id >> 32 = $1 AND EXISTS (
		SELECT 1 FROM issues i WHERE i.code_id = c.id AND i.kind = 'initial' AND i.released_at IS NULL)`, rep.ID)
	c.check("undo keeps exactly the issued codes", left == 300 && issuedLeft == 300, "%d codes left, %d of them issued", left, issuedLeft)
	c.lost += 300 - issuedLeft
	h.checkCodes(c, gid)
	h.checkLeaks(c)
}
