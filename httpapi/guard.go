package httpapi

import (
	"net/http"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/guard"
)

// guardRoutes are the routes of the exfiltration guard: rules,
// quarantines and honeytokens.
func (s *Server) guardRoutes() []route {
	return []route{
		{"GET", "/v1/guard/rules", true, false, s.listRules},
		{"PUT", "/v1/guard/rules/{id}", true, false, s.setRule},
		{"GET", "/v1/guard/alerts", true, false, s.listAlerts},
		{"GET", "/v1/guard/alerts/stream", true, false, s.streamAlerts},
		{"GET", "/v1/quarantines", true, false, s.listQuarantines},
		{"POST", "/v1/quarantines/{id}/lift", true, false, s.liftQuarantine},
		{"POST", "/v1/collections/{c}/honeytokens", true, false, s.createHoneytokens},
		{"GET", "/v1/collections/{c}/honeytokens", true, false, s.listHoneytokens},
	}
}

func (s *Server) needGuard() error {
	if s.guard == nil {
		return sekisho.Errorf(sekisho.EUnavailable, "the guard is not configured on this server")
	}
	return nil
}

func (s *Server) listRules(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needGuard(); err != nil {
		return err
	}
	if !c.HasRole(RoleAdmin) && !c.HasRole(RoleAuditor) {
		return sekisho.TypedErrorf(sekisho.EForbidden, "admin-required", "listing guard rules needs an admin or an auditor")
	}
	l, err := s.guard.ListRules(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"rules": l})
}

func (s *Server) setRule(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needGuard(); err != nil {
		return err
	}
	var ch guard.RuleChange
	if err := decodeBody(r, &ch); err != nil {
		return err
	}
	rule, err := s.guard.SetRule(r.Context(), c, r.PathValue("id"), ch)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rule)
}

func (s *Server) listQuarantines(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needGuard(); err != nil {
		return err
	}
	l, err := s.guard.ListQuarantines(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"quarantines": l})
}

type liftRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) liftQuarantine(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needGuard(); err != nil {
		return err
	}
	// The body {"reason": "..."} says why it is safe to lift; a lift
	// without one (no body, or an empty reason) is refused as invalid.
	var req liftRequest
	if err := requireJSON(r); err != nil {
		return err
	}
	b, err := readBody(r)
	if err != nil {
		return err
	}
	if len(b) > 0 {
		if err := decodeStrict(b, &req); err != nil {
			return err
		}
	}
	q, err := s.guard.Lift(r.Context(), c, r.PathValue("id"), req.Reason)
	if err != nil {
		return err
	}
	if q.Status == guard.StatusActive {
		// This org's lift is recorded; lifts_needed says whose is missing.
		return writeJSON(w, http.StatusAccepted, q)
	}
	return writeJSON(w, http.StatusOK, q)
}

type honeytokenRequest struct {
	Region string `json:"region"`
	Count  int    `json:"count"`
}

func (s *Server) createHoneytokens(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needGuard(); err != nil {
		return err
	}
	var req honeytokenRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	c.Purpose = "security"
	l, err := s.guard.CreateHoneytokens(r.Context(), s.vault, c, r.PathValue("c"), req.Region, req.Count)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{"honeytokens": l})
}

func (s *Server) listHoneytokens(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needGuard(); err != nil {
		return err
	}
	l, err := s.guard.ListHoneytokens(r.Context(), c, r.PathValue("c"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"honeytokens": l})
}
