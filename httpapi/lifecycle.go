package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/vault"
)

// lifecycleRoutes are retention's dry run, legal holds, and tokens for
// other systems.
func (s *Server) lifecycleRoutes() []route {
	return []route{
		{"GET", "/v1/collections/{c}/retention/plan", true, false, s.retentionPlan},
		{"GET", "/v1/holds", true, false, s.listHolds},
		{"PUT", "/v1/holds/{record}", true, false, s.setHold},
		{"DELETE", "/v1/holds/{record}", true, false, s.liftHold},
		{"POST", "/v1/collections/{c}/tokens", true, true, s.tokenize},
		{"POST", "/v1/tokens:detokenize", true, true, s.detokenize},
	}
}

// retentionPlan lists what a retention sweep would erase now (admins: their
// org's records; auditors: every org's).
func (s *Server) retentionPlan(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if !c.HasRole(RoleAdmin) && !c.HasRole(RoleAuditor) {
		return sekisho.TypedErrorf(sekisho.EForbidden, "admin-required", "only admins and auditors see the retention plan")
	}
	opts := vault.SweepOptions{}
	if !c.HasRole(RoleAuditor) {
		opts.Orgs = []string{c.Org}
	}
	p, err := s.vault.PlanRetention(r.Context(), c, r.PathValue("c"), opts)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

type holdRequest struct {
	Reason string `json:"reason"`
}

type holdsResponse struct {
	Holds []*vault.Hold `json:"holds"`
}

func (s *Server) listHolds(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if !c.HasRole(RoleAdmin) {
		return sekisho.TypedErrorf(sekisho.EForbidden, "admin-required", "only admins list legal holds")
	}
	hs, err := s.vault.ListHolds(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, holdsResponse{Holds: hs})
}

func (s *Server) setHold(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	b, err := readBody(r)
	if err != nil {
		return err
	}
	var req holdRequest
	if err := decodeStrict(b, &req); err != nil {
		return err
	}
	h, err := s.vault.SetHold(r.Context(), c, r.PathValue("record"), req.Reason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, h)
}

func (s *Server) liftHold(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.vault.LiftHold(r.Context(), c, r.PathValue("record")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type tokenResponse struct {
	Token string `json:"token"`
}

func (s *Server) tokenize(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	b, err := readBody(r)
	if err != nil {
		return err
	}
	var req vault.TokenRequest
	if err := decodeStrict(b, &req); err != nil {
		return err
	}
	tok, err := s.vault.Tokenize(r.Context(), c, r.PathValue("c"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, tokenResponse{Token: tok})
}

type detokenizeResponse struct {
	Values []json.RawMessage `json:"values"`
}

func (s *Server) detokenize(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	b, err := readBody(r)
	if err != nil {
		return err
	}
	var req vault.DetokenizeRequest
	if err := decodeStrict(b, &req); err != nil {
		return err
	}
	vals, err := s.vault.Detokenize(r.Context(), c, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, detokenizeResponse{Values: vals})
}
