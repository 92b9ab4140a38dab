package httpapi

import (
	"net/http"

	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/vault"
)

// putDeviceRequirements answers PUT /v1/orgs/{id}/device-requirements: the
// devices the org's records may be read from, across orgs and for
// sensitive fields (issue 16).
func (s *Server) putDeviceRequirements(w http.ResponseWriter, r *http.Request, c vault.Caller) error {
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
