package httpapi

import (
	"context"
	"net/http"

	"github.com/sekisho/sekisho"
)

func (s *Server) keyRoutes() []route {
	return []route{
		{"POST", "/v1/keys/rotations", true, false, s.startRotation},
		{"GET", "/v1/keys/rotations", true, false, s.listRotations},
		{"GET", "/v1/keys/rotations/{id}", true, false, s.getRotation},
		{"POST", "/v1/keys/destructions", true, false, s.requestDestruction},
		{"GET", "/v1/keys/destructions/{id}", true, false, s.getDestruction},
		{"POST", "/v1/keys/destructions/{id}/approve", true, false, s.approveDestruction},
	}
}

// KeyRequest is the body of POST /v1/keys/rotations and /v1/keys/destructions.
type KeyRequest struct {
	Org    string `json:"org"`
	Region string `json:"region"`
}

// keyAdmin: key custody is for the admins of the instance's root org. A
// refusal is audited.
func (s *Server) keyAdmin(r *http.Request, c sekisho.Caller, action string) error {
	if c.HasRole(RoleAdmin) && (s.access == nil || c.Org == s.access.RootOrg()) {
		return nil
	}
	err := sekisho.TypedErrorf(sekisho.EForbidden, "admin-required", "only an admin of the instance's root org may manage keys")
	if s.auditLog != nil {
		ev := sekisho.Event{Time: s.now(), RequestID: c.RequestID, Org: c.Org, Principal: c.Principal, Device: c.Device, Source: c.Source,
			Action: action, Decision: sekisho.Deny, Policy: "key-admin", Reason: err.Message}
		if _, aerr := s.auditLog.Append(r.Context(), ev); aerr != nil {
			return &sekisho.Error{Code: sekisho.EUnavailable, Message: "the audit log is unavailable", Err: aerr}
		}
	}
	return err
}

func (s *Server) startRotation(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.keyAdmin(r, c, "keys.rotate"); err != nil {
		return err
	}
	var req KeyRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	rot, err := s.vault.StartRotation(r.Context(), c, req.Org, req.Region)
	if err != nil {
		return err
	}
	// The re-wrapping goes on after the response, while the vault serves;
	// a restart resumes it (serve calls ResumeRotations).
	go s.vault.RunRotation(context.WithoutCancel(r.Context()), rot.ID, s.vault.RotationOptions(), nil)
	w.Header().Set("Location", "/v1/keys/rotations/"+rot.ID)
	return writeJSON(w, http.StatusAccepted, rot)
}

func (s *Server) listRotations(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.keyAdmin(r, c, "keys.rotations.list"); err != nil {
		return err
	}
	all, err := s.vault.Rotations(r.Context(), "")
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"rotations": all})
}

func (s *Server) getRotation(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.keyAdmin(r, c, "keys.rotations.get"); err != nil {
		return err
	}
	rot, err := s.vault.Rotation(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rot)
}

func (s *Server) requestDestruction(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.keyAdmin(r, c, "keys.destroy.request"); err != nil {
		return err
	}
	var req KeyRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	d, err := s.vault.RequestDestruction(r.Context(), c, req.Org, req.Region)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/keys/destructions/"+d.ID)
	return writeJSON(w, http.StatusAccepted, d)
}

func (s *Server) getDestruction(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.keyAdmin(r, c, "keys.destroy.get"); err != nil {
		return err
	}
	d, err := s.vault.Destruction(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) approveDestruction(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.keyAdmin(r, c, "keys.destroy"); err != nil {
		return err
	}
	if s.access != nil {
		// Like a sensitive grant's second approver: an admin for some time
		// already, not one made for the occasion.
		d, err := s.vault.Destruction(r.Context(), r.PathValue("id"))
		if err != nil {
			return err
		}
		// The requester is refused by the vault (two-person-rule), whatever
		// its tenure.
		if err := s.access.CheckApproverTenure(r.Context(), c, "key destruction "+d.ID, d.RequestedAt); err != nil && d.RequestedBy != c.Principal {
			if s.auditLog != nil {
				ev := sekisho.Event{Time: s.now(), RequestID: c.RequestID, Org: c.Org, Principal: c.Principal, Device: c.Device, Source: c.Source,
					Action: "keys.destroy", Decision: sekisho.Deny, Policy: "two-person-rule", Reason: sekisho.Message(err), Detail: "destruction " + d.ID}
				if _, aerr := s.auditLog.Append(r.Context(), ev); aerr != nil {
					return &sekisho.Error{Code: sekisho.EUnavailable, Message: "the audit log is unavailable", Err: aerr}
				}
			}
			return err
		}
	}
	d, err := s.vault.ApproveDestruction(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}
