package httpapi

import (
	"net/http"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
)

// putDeviceRequirements answers PUT /v1/orgs/{id}/device-requirements: the
// devices the org's records may be read from, across orgs and for
// sensitive fields (issue 16).
func (s *Server) putDeviceRequirements(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	var req access.DeviceRequirements
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	o, err := s.access.SetDeviceRequirements(r.Context(), c, r.PathValue("id"), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, o)
}

// attestationChallenge answers POST /v1/devices/attestation-challenge: a
// TPM credential-activation challenge for an attestation key (issue 16).
func (s *Server) attestationChallenge(w http.ResponseWriter, r *http.Request, _ sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	var req access.ChallengeRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	ch, err := s.access.AttestationChallenge(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ch)
}
