package httpapi

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/guard"
)

// canAudit: the auditor's interface is for admins (scoped to their org) and
// for the instance's auditor role (the whole log).
func canAudit(c sekisho.Caller) error {
	if c.HasRole(RoleAuditor) || c.HasRole(RoleAdmin) {
		return nil
	}
	return sekisho.Errorf(sekisho.EForbidden, "the audit log is for admins and auditors")
}

// logOf returns the log named by the query parameter region: the default
// log when it is absent (or "default"), else the region's own log. A region
// without a log of its own is not found: its events are in the default log,
// and an answer from another log under its name would mislead a verifier.
func (s *Server) logOf(q url.Values) (*audit.Log, error) {
	if s.auditLogs == nil {
		return nil, sekisho.Errorf(sekisho.EUnavailable, "no audit log is configured")
	}
	name := q.Get("region")
	l, ok := s.auditLogs.Lookup(name)
	if !ok {
		return nil, sekisho.FieldErrorf(sekisho.ENotFound, "region", "region %q has no audit log of its own (logs: %s)", name, strings.Join(s.auditLogs.Names(), ", "))
	}
	return l, nil
}

func (s *Server) auditCheckpoint(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := canAudit(c); err != nil {
		return err
	}
	l, err := s.logOf(r.URL.Query())
	if err != nil {
		return err
	}
	cp, err := l.Checkpoint(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(cp.Note)
	return err
}

func (s *Server) auditVerifierKey(w http.ResponseWriter, _ *http.Request, c sekisho.Caller) error {
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

func (s *Server) auditInclusion(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
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
	l, err := s.logOf(q)
	if err != nil {
		return err
	}
	hs, err := l.InclusionProof(r.Context(), idx, size)
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

func (s *Server) auditConsistency(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
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
	l, err := s.logOf(q)
	if err != nil {
		return err
	}
	hs, err := l.ConsistencyProof(r.Context(), from, to)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, consistencyResponse{From: from, To: to, Hashes: b64s(hs)})
}

// EventItem is one entry of GET /v1/audit/events.
type EventItem struct {
	// Region names the log the event is in ("default" or a region), with
	// region=all only; Index is its index in that log.
	Region string        `json:"region,omitempty"`
	Index  uint64        `json:"index"`
	Leaf   string        `json:"leaf"`
	Event  sekisho.Event `json:"event"`
	// Redacted is set when the event's record ids are not shown to the
	// caller (then records is empty and leaf is empty too, since the leaf
	// spells them): an org's admin reading its principal's touch of
	// another org's decoy (guard.DecoyHidden).
	Redacted string `json:"redacted,omitempty"`
}

type eventsResponse struct {
	Events []EventItem `json:"events"`
	Next   *uint64     `json:"next,omitempty"`
	// NextRegion is, with region=all, the log where the next page starts
	// (at index Next): pass it back as from_region.
	NextRegion string `json:"next_region,omitempty"`
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
	if f.Decision != "" && f.Decision != sekisho.Allow && f.Decision != sekisho.Deny {
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

func (s *Server) auditEvents(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := canAudit(c); err != nil {
		return err
	}
	f, err := ParseAuditFilter(r.URL.Query())
	if err != nil {
		return err
	}
	if !c.HasRole(RoleAuditor) {
		// An org's admin sees the events of its own principals and about its
		// own records, and nothing of another org's.
		if f.Org != "" && f.Org != c.Org {
			return sekisho.Errorf(sekisho.EForbidden, "an org admin may only read the events of its own org")
		}
		f.Org = c.Org
	}
	q := r.URL.Query()
	all := q.Get("region") == "all"
	var logs []audit.RegionLog
	if all {
		logs = s.auditLogs.All()
		if fr := q.Get("from_region"); fr != "" {
			i := slices.IndexFunc(logs, func(rl audit.RegionLog) bool { return rl.Name() == fr })
			if i < 0 {
				return sekisho.FieldErrorf(sekisho.EInvalid, "from_region", "from_region %q is not one of the logs (%s)", fr, strings.Join(s.auditLogs.Names(), ", "))
			}
			logs = logs[i:]
		}
	} else {
		l, err := s.logOf(q)
		if err != nil {
			return err
		}
		name := q.Get("region")
		if name == "" {
			name = audit.DefaultLog
		}
		logs = []audit.RegionLog{{Region: strings.TrimPrefix(name, audit.DefaultLog), Log: l}}
	}
	// One more than the page, so that "next" is given only when another
	// event follows: it is absent at the end, as the interface says.
	limit := f.Limit
	resp := eventsResponse{Events: make([]EventItem, 0)}
	for i, rl := range logs {
		if i > 0 {
			f.From = 0 // the next log is read from its start
		}
		f.Limit = limit - len(resp.Events) + 1
		entries, err := rl.Log.Store().QueryAudit(r.Context(), f)
		if err != nil {
			return err
		}
		more := len(entries) > limit-len(resp.Events)
		if more {
			entries = entries[:limit-len(resp.Events)]
		}
		for _, e := range entries {
			ev, err := sekisho.UnmarshalEvent(e.Leaf)
			if err != nil {
				return &sekisho.Error{Code: sekisho.EInternal, Message: "a stored audit event does not decode; run sekisho audit verify", Err: err}
			}
			item := EventItem{Index: e.Index, Leaf: base64.StdEncoding.EncodeToString(e.Leaf), Event: ev}
			if !c.HasRole(RoleAuditor) && guard.DecoyHidden(ev.Policy, ev.RecordOrgs, c.Org) {
				if f.Record != "" {
					// Asked by record id: answered as for a record never
					// touched, so that the answer tells no decoy's id.
					continue
				}
				item.Leaf, item.Event.Records, item.Redacted = "", []string{}, guard.DecoyHiddenText(ev.RecordOrgs)
			}
			if all {
				item.Region = rl.Name()
			}
			resp.Events = append(resp.Events, item)
		}
		if more {
			next := f.From // the page filled up at the end of the previous log
			if len(entries) > 0 {
				next = entries[len(entries)-1].Index + 1
			}
			resp.Next = &next
			if all {
				resp.NextRegion = rl.Name()
			}
			break
		}
	}
	return writeJSON(w, http.StatusOK, resp)
}
