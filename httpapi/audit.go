package httpapi

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/vault"
)

// canAudit: the auditor's interface is for admins (scoped to their org) and
// for the instance's auditor role (the whole log).
func canAudit(c vault.Caller) error {
	if hasRole(c, RoleAuditor) || hasRole(c, RoleAdmin) {
		return nil
	}
	return sekisho.Errorf(sekisho.EForbidden, "the audit log is for admins and auditors")
}

func (s *Server) auditCheckpoint(w http.ResponseWriter, r *http.Request, c vault.Caller) error {
	if err := canAudit(c); err != nil {
		return err
	}
	cp, err := s.auditLog.Checkpoint(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(cp.Note)
	return err
}

func (s *Server) auditVerifierKey(w http.ResponseWriter, _ *http.Request, c vault.Caller) error {
	if err := canAudit(c); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err := w.Write([]byte(s.verifierKey + "\n"))
	return err
}

func uintParam(q url.Values, name string, required bool) (uint64, error) {
	v := q.Get(name)
	if v == "" {
		if required {
			return 0, sekisho.FieldErrorf(sekisho.EInvalid, name, "query parameter %s is required", name)
		}
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, sekisho.FieldErrorf(sekisho.EInvalid, name, "query parameter %s must be a non-negative integer", name)
	}
	return n, nil
}

func b64s(hs [][]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = base64.StdEncoding.EncodeToString(h)
	}
	return out
}

type inclusionResponse struct {
	Index    uint64   `json:"index"`
	TreeSize uint64   `json:"tree_size"`
	Hashes   []string `json:"hashes"`
}

func (s *Server) auditInclusion(w http.ResponseWriter, r *http.Request, c vault.Caller) error {
	if err := canAudit(c); err != nil {
		return err
	}
	q := r.URL.Query()
	idx, err := uintParam(q, "index", true)
	if err != nil {
		return err
	}
	size, err := uintParam(q, "size", true)
	if err != nil {
		return err
	}
	hs, err := s.auditLog.InclusionProof(r.Context(), idx, size)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, inclusionResponse{Index: idx, TreeSize: size, Hashes: b64s(hs)})
}

type consistencyResponse struct {
	From   uint64   `json:"from"`
	To     uint64   `json:"to"`
	Hashes []string `json:"hashes"`
}

func (s *Server) auditConsistency(w http.ResponseWriter, r *http.Request, c vault.Caller) error {
	if err := canAudit(c); err != nil {
		return err
	}
	q := r.URL.Query()
	from, err := uintParam(q, "from", true)
	if err != nil {
		return err
	}
	to, err := uintParam(q, "to", true)
	if err != nil {
		return err
	}
	hs, err := s.auditLog.ConsistencyProof(r.Context(), from, to)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, consistencyResponse{From: from, To: to, Hashes: b64s(hs)})
}

// EventItem is one entry of GET /v1/audit/events.
type EventItem struct {
	Index uint64      `json:"index"`
	Leaf  string      `json:"leaf"`
	Event audit.Event `json:"event"`
}

type eventsResponse struct {
	Events []EventItem `json:"events"`
	Next   *uint64     `json:"next,omitempty"`
}

// Event paging limits.
const (
	DefaultEventLimit = 100
	MaxEventLimit     = 1000
)

// ParseAuditFilter reads the event filters of the API (and of the CLI's
// flags, which carry the same names).
func ParseAuditFilter(q url.Values) (sekisho.AuditFilter, error) {
	var f sekisho.AuditFilter
	var err error
	if f.From, err = uintParam(q, "from", false); err != nil {
		return f, err
	}
	limit, err := uintParam(q, "limit", false)
	if err != nil {
		return f, err
	}
	switch {
	case limit == 0:
		f.Limit = DefaultEventLimit
	case limit > MaxEventLimit:
		return f, sekisho.FieldErrorf(sekisho.EInvalid, "limit", "limit is at most %d", MaxEventLimit)
	default:
		f.Limit = int(limit)
	}
	f.Principal, f.Device, f.Org = q.Get("principal"), q.Get("device"), q.Get("org")
	f.Record, f.RequestID, f.Decision = q.Get("record"), q.Get("request_id"), q.Get("decision")
	if f.Decision != "" && f.Decision != audit.Allow && f.Decision != audit.Deny {
		return f, sekisho.FieldErrorf(sekisho.EInvalid, "decision", "decision is allow or deny")
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, sekisho.FieldErrorf(sekisho.EInvalid, p.name, "%s must be an RFC 3339 time, e.g. 2026-01-02T15:04:05Z", p.name)
			}
			*p.t = t
		}
	}
	return f, nil
}

func (s *Server) auditEvents(w http.ResponseWriter, r *http.Request, c vault.Caller) error {
	if err := canAudit(c); err != nil {
		return err
	}
	f, err := ParseAuditFilter(r.URL.Query())
	if err != nil {
		return err
	}
	if !hasRole(c, RoleAuditor) {
		// An org's admin sees the events of its own principals and about its
		// own records, and nothing of another org's.
		if f.Org != "" && f.Org != c.Org {
			return sekisho.Errorf(sekisho.EForbidden, "an org admin may only read the events of its own org")
		}
		f.Org = c.Org
	}
	// One more than the page, so that "next" is given only when another
	// event follows: it is absent at the end, as the interface says.
	limit := f.Limit
	f.Limit++
	entries, err := s.auditLog.Store().QueryAudit(r.Context(), f)
	if err != nil {
		return err
	}
	more := len(entries) > limit
	if more {
		entries = entries[:limit]
	}
	resp := eventsResponse{Events: make([]EventItem, 0, len(entries))}
	for _, e := range entries {
		ev, err := audit.Unmarshal(e.Leaf)
		if err != nil {
			return &sekisho.Error{Code: sekisho.EInternal, Message: "a stored audit event does not decode; run sekisho audit verify", Err: err}
		}
		resp.Events = append(resp.Events, EventItem{Index: e.Index, Leaf: base64.StdEncoding.EncodeToString(e.Leaf), Event: ev})
	}
	if more {
		next := entries[len(entries)-1].Index + 1
		resp.Next = &next
	}
	return writeJSON(w, http.StatusOK, resp)
}
