package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/passkey"
)

// Passkeys: the WebAuthn ceremonies of the console's sign-in (issue 16
// point 5, package passkey). The four ceremony routes are anonymous like
// device enrolment: each carries a DPoP proof of the browser's key, which
// the ceremony binds.
func (s *Server) passkeyRoutes() []route {
	return []route{
		{"POST", "/v1/webauthn/registration/options", false, false, s.passkeyRegistrationOptions},
		{"POST", "/v1/webauthn/registration", false, false, s.passkeyRegistration},
		{"POST", "/v1/webauthn/login/options", false, false, s.passkeyLoginOptions},
		{"POST", "/v1/webauthn/login", false, false, s.passkeyLogin},
		{"GET", "/v1/passkeys", true, false, s.listPasskeys},
		{"POST", "/v1/passkeys/{id}/revoke", true, false, s.revokePasskey},
	}
}

// isPasskeyCeremony reports whether a route is one of the anonymous
// ceremony routes (rate-limited per source like enrolment).
func isPasskeyCeremony(rt route) bool {
	switch rt.Pattern {
	case "/v1/webauthn/registration/options", "/v1/webauthn/registration", "/v1/webauthn/login/options", "/v1/webauthn/login":
		return true
	}
	return false
}

func (s *Server) needPasskeys() error {
	if err := s.needAccess(); err != nil {
		return err
	}
	if s.passkeys == nil {
		return sekisho.TypedErrorf(sekisho.EUnavailable, passkey.ProblemNotConfigured,
			"passkeys are not configured on this server: serve --webauthn-origin URL (the console's origin), or serve on a loopback address and open the console at http://localhost:PORT")
	}
	return nil
}

type passkeyRegistrationOptionsRequest struct {
	Principal string `json:"principal"`
}

func (s *Server) passkeyRegistrationOptions(w http.ResponseWriter, r *http.Request, _ sekisho.Caller) error {
	if err := s.needPasskeys(); err != nil {
		return err
	}
	key, err := s.access.ProofKey(r)
	if err != nil {
		return err
	}
	var req passkeyRegistrationOptionsRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	o, err := s.passkeys.BeginRegistration(r.Context(), accessCaller(r), key, req.Principal)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, o)
}

type passkeyRegistrationRequest struct {
	Ceremony string `json:"ceremony"`
	// Credential is navigator.credentials.create's PublicKeyCredential as
	// JSON (toJSON()).
	Credential json.RawMessage `json:"credential"`
	// Name names the passkey, DeviceName the browser's device.
	Name       string `json:"name,omitempty"`
	DeviceName string `json:"device_name,omitempty"`
}

func (s *Server) passkeyRegistration(w http.ResponseWriter, r *http.Request, _ sekisho.Caller) error {
	if err := s.needPasskeys(); err != nil {
		return err
	}
	key, err := s.access.ProofKey(r)
	if err != nil {
		return err
	}
	var req passkeyRegistrationRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	reg, err := s.passkeys.FinishRegistration(r.Context(), accessCaller(r), key, req.Ceremony, req.Credential, req.Name, req.DeviceName)
	if err != nil {
		return err
	}
	// The answer of device enrolment, the same whether the principal
	// exists or not.
	d := reg.Device
	return writeJSON(w, http.StatusCreated, EnrolAnswer{ID: d.ID, Principal: d.Principal, Name: d.Name, Status: d.Status, EnrolledAt: d.EnrolledAt,
		KeyStorage: d.KeyStorage, Attested: d.Attested})
}

func (s *Server) passkeyLoginOptions(w http.ResponseWriter, r *http.Request, _ sekisho.Caller) error {
	if err := s.needPasskeys(); err != nil {
		return err
	}
	key, err := s.access.ProofKey(r)
	if err != nil {
		return err
	}
	var req struct{}
	if r.ContentLength != 0 {
		if err := decodeBody(r, &req); err != nil {
			return err
		}
	}
	o, err := s.passkeys.BeginLogin(r.Context(), accessCaller(r), key)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, o)
}

type passkeyLoginRequest struct {
	Ceremony string `json:"ceremony"`
	// Credential is navigator.credentials.get's PublicKeyCredential as
	// JSON.
	Credential json.RawMessage `json:"credential"`
	DeviceName string          `json:"device_name,omitempty"`
}

// PasskeyLoginAnswer is the answer of a passkey sign-in: the session's
// device (approved), and the passkey used.
type PasskeyLoginAnswer struct {
	Device  *access.Device `json:"device"`
	Passkey string         `json:"passkey"`
}

func (s *Server) passkeyLogin(w http.ResponseWriter, r *http.Request, _ sekisho.Caller) error {
	if err := s.needPasskeys(); err != nil {
		return err
	}
	key, err := s.access.ProofKey(r)
	if err != nil {
		return err
	}
	var req passkeyLoginRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	d, pk, err := s.passkeys.FinishLogin(r.Context(), accessCaller(r), key, req.Ceremony, req.Credential, req.DeviceName)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, PasskeyLoginAnswer{Device: d, Passkey: pk.ID})
}

func (s *Server) listPasskeys(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needPasskeys(); err != nil {
		return err
	}
	l, err := s.passkeys.List(r.Context(), c, r.URL.Query().Get("principal"), s.access.SeesAll(c))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"passkeys": l})
}

func (s *Server) revokePasskey(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needPasskeys(); err != nil {
		return err
	}
	pk, err := s.passkeys.Revoke(r.Context(), c, r.PathValue("id"), s.access.IsRootAdmin(c))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pk)
}
