package api

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"time"

	"promopool/internal/csvsafe"
	"promopool/segments"
)

// segmentRequest is the body of both routes; the filter is parsed by segments.Parse so
// that its errors name the path of the bad node.
type segmentRequest struct {
	Filter json.RawMessage `json:"filter"`
	Cursor string          `json:"cursor"`
	Limit  int             `json:"limit"`
}

func (s *Server) segmentFilter(w http.ResponseWriter, r *http.Request) (*segmentRequest, *segments.Filter, error) {
	var req segmentRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return nil, nil, err
	}
	if len(req.Filter) == 0 {
		return nil, nil, &segments.InvalidError{Path: "$", Reason: `the body needs a "filter"`}
	}
	f, err := segments.Parse(bytes.NewReader(req.Filter))
	return &req, f, err
}

func (s *Server) segmentCount(w http.ResponseWriter, r *http.Request) error {
	_, f, err := s.segmentFilter(w, r)
	if err != nil {
		return err
	}
	c, err := s.segments.Count(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// segmentQuery answers a page as JSON, or with Accept: application/x-ndjson or text/csv
// every matching customer id, streamed; the count and the instant the answer is as of
// come first, in the Promopool-Count and Promopool-As-Of headers.
func (s *Server) segmentQuery(w http.ResponseWriter, r *http.Request) error {
	req, f, err := s.segmentFilter(w, r)
	if err != nil {
		return err
	}
	accept, _, _ := mime.ParseMediaType(r.Header.Get("Accept"))
	switch accept {
	case "application/x-ndjson", "text/csv":
	default:
		p, err := s.segments.Page(r.Context(), f, req.Cursor, req.Limit)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, p)
		return nil
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var cw *csv.Writer
	start := func(c segments.Count) error {
		h := w.Header()
		h.Set("Content-Type", accept+"; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Promopool-Count", strconv.FormatInt(c.Count, 10))
		h.Set("Promopool-As-Of", c.AsOf.UTC().Format(time.RFC3339Nano))
		w.WriteHeader(http.StatusOK)
		if accept == "text/csv" {
			cw = csv.NewWriter(bw)
			return cw.Write([]string{"customer_id"})
		}
		return nil
	}
	line := struct {
		ID string `json:"customer_id"`
	}{}
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	err = s.segments.Stream(r.Context(), f, start, func(id string) error {
		if cw != nil {
			return cw.Write([]string{csvsafe.Cell(id)})
		}
		line.ID = id
		return enc.Encode(line)
	})
	if cw != nil {
		cw.Flush()
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil && w.Header().Get("Promopool-Count") != "" {
		// The status is sent: cut the body short so the client sees a broken stream,
		// never a silently truncated list.
		s.log.Error("segment stream failed", "err", err)
		panic(http.ErrAbortHandler)
	}
	return err
}
