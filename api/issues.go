package api

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"

	"promopool/customers"
	"promopool/internal/httperr"
)

func (s *Server) issueDirect(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return badRequest("missing_idempotency_key", "send an Idempotency-Key header: the same key returns the same code")
	}
	var in struct {
		CustomerID     string `json:"customer_id"`
		CreateCustomer bool   `json:"create_customer"`
	}
	if err := s.decodeJSON(w, r, &in); err != nil {
		return err
	}
	// Codes go to known customers only, unless the request asks to create one: a key
	// may not drain a pool to made-up ids.
	if err := customers.CheckCustomerID(in.CustomerID); err != nil {
		return badRequest("invalid_field", "customer_id: "+err.Error())
	}
	if err := s.customers.Require(r.Context(), in.CustomerID, in.CreateCustomer); err != nil {
		return err
	}
	res, err := s.groups.IssueDirect(r.Context(), id, in.CustomerID, key)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if res.Replayed {
		status = http.StatusOK
	}
	s.log.Info("code issued directly", "group_id", id, "replayed", res.Replayed)
	writeJSON(w, status, res)
	return nil
}

func (s *Server) exportIssues(w http.ResponseWriter, r *http.Request) error {
	return s.exportCSV(w, r, "issues", s.groups.ExportIssues)
}

func (s *Server) exportUnused(w http.ResponseWriter, r *http.Request) error {
	return s.exportCSV(w, r, "unused", s.groups.ExportUnused)
}

// csvHeaderWriter sets the CSV headers on the first write, so an error found before any
// row (an unknown group) can still be answered as JSON.
type csvHeaderWriter struct {
	w     http.ResponseWriter
	name  string
	wrote bool
}

func (c *csvHeaderWriter) Write(b []byte) (int, error) {
	if !c.wrote {
		c.wrote = true
		h := c.w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": c.name}))
		c.w.WriteHeader(http.StatusOK)
	}
	return c.w.Write(b)
}

func (s *Server) exportCSV(w http.ResponseWriter, r *http.Request, what string,
	export func(ctx context.Context, groupID int64, w io.Writer) error) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	cw := &csvHeaderWriter{w: w, name: fmt.Sprintf("group-%d-%s.csv", id, what)}
	err = export(r.Context(), id, cw)
	if err != nil && cw.wrote {
		// Headers are gone: the truncated body is the only signal left; log it.
		s.log.Error("export failed midway", "group_id", id, "export", what, "err", err)
		return nil
	}
	if err == nil && !cw.wrote {
		cw.Write(nil)
	}
	return err
}

func (s *Server) upsertCustomers(w http.ResponseWriter, r *http.Request) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var format customers.Format
	switch mt {
	case "application/x-ndjson", "application/jsonl", "application/json-lines", "application/json":
		format = customers.FormatJSONLines
	case "text/csv":
		format = customers.FormatCSV
	default:
		return httperr.New(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"set Content-Type to application/x-ndjson (one JSON object per line) or text/csv (id, email, first_name, last_name, attr.NAME columns)")
	}
	rep, err := s.customers.Upsert(r.Context(), format, r.Body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Server) customerPromocodes(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := customers.CheckCustomerID(id); err != nil {
		return badRequest("invalid_id", err.Error())
	}
	before, limit := page(r)
	list, err := s.groups.CustomerIssues(r.Context(), id, before, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"promocodes": list})
	return nil
}
