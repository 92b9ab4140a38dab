package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
)

// accessRoutes are the control-plane routes of package access. Token,
// bootstrap and device enrolment authenticate inside the handler (a DPoP
// proof of the key concerned), so their route has Auth false.
func (s *Server) accessRoutes() []route {
	return []route{
		{"POST", "/v1/bootstrap", false, false, s.bootstrap},
		{"POST", "/v1/token", false, false, s.token},
		{"GET", MetadataPath, false, false, s.metadata},
		{"GET", "/v1/whoami", true, false, s.whoami},
		{"GET", "/v1/purposes", true, false, s.listPurposes},

		{"GET", "/v1/orgs", true, false, s.listOrgs},
		{"POST", "/v1/orgs", true, false, s.createOrg},
		{"GET", "/v1/orgs/{id}", true, false, s.getOrg},
		{"POST", "/v1/orgs/{id}/revoke-devices", true, false, s.revokeOrgDevices},
		{"PUT", "/v1/orgs/{id}/device-requirements", true, false, s.putDeviceRequirements},

		{"GET", "/v1/principals", true, false, s.listPrincipals},
		{"POST", "/v1/principals", true, false, s.createPrincipal},
		{"GET", "/v1/principals/{id}", true, false, s.getPrincipal},
		{"POST", "/v1/principals/{id}/revoke", true, false, s.revokePrincipal},

		{"GET", "/v1/devices", true, false, s.listDevices},
		{"POST", "/v1/devices", false, false, s.enrolDevice},
		{"POST", "/v1/devices/attestation-challenge", false, false, s.attestationChallenge},
		{"GET", "/v1/devices/{id}", true, false, s.getDevice},
		{"POST", "/v1/devices/{id}/approve", true, false, s.approveDevice},
		{"POST", "/v1/devices/{id}/revoke", true, false, s.revokeDevice},

		{"GET", "/v1/grants", true, false, s.listGrants},
		{"GET", "/v1/grants/usage", true, false, s.grantUsage},
		{"POST", "/v1/grants", true, false, s.createGrant},
		{"GET", "/v1/grants/{id}", true, false, s.getGrant},
		{"POST", "/v1/grants/{id}/approve", true, false, s.approveGrant},
		{"POST", "/v1/grants/{id}/revoke", true, false, s.revokeGrant},

		{"GET", "/v1/policies", true, false, s.listPolicies},
		{"GET", "/v1/policies/{id}", true, false, s.getPolicy},
		{"PUT", "/v1/policies/{id}", true, false, s.putPolicy},
	}
}

// accessCaller fills the request id and source of an unauthenticated
// control-plane request (bootstrap, enrolment).
func accessCaller(r *http.Request) sekisho.Caller {
	return sekisho.Caller{RequestID: requestID(r.Context()), ClientRequestID: clientRequestID(r), Source: sourceAddr(r)}
}

func (s *Server) needAccess() error {
	if s.access == nil {
		return sekisho.Errorf(sekisho.EUnavailable, "access control is not configured on this server")
	}
	return nil
}

// decodeBody reads and strictly decodes a JSON request body.
func decodeBody(r *http.Request, v any) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	b, err := readBody(r)
	if err != nil {
		return err
	}
	return decodeStrict(b, v)
}

func (s *Server) bootstrap(w http.ResponseWriter, r *http.Request, _ sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	tok := BearerToken(r)
	if tok == "" {
		return sekisho.TypedErrorf(sekisho.EUnauthorized, "credential-missing", "send the bootstrap token: Authorization: Bearer <token>")
	}
	key, err := s.access.ProofKey(r)
	if err != nil {
		return err
	}
	var b access.Bootstrap
	if err := decodeBody(r, &b); err != nil {
		return err
	}
	b.Key = key
	res, err := s.access.SpendBootstrap(r.Context(), accessCaller(r), tok, b)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, res)
}

func (s *Server) whoami(w http.ResponseWriter, _ *http.Request, c sekisho.Caller) error {
	return writeJSON(w, http.StatusOK, map[string]any{"principal": c.Principal, "org": c.Org, "device": c.Device, "roles": c.Roles})
}

// listPurposes answers GET /v1/purposes: the known purposes, the roles
// whose policies allow each (with their actions) and the grants that list it.
func (s *Server) listPurposes(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	schemas, err := s.vault.Store().ListSchemas(r.Context())
	if err != nil {
		return err
	}
	colls := make([]string, len(schemas))
	for i, sc := range schemas {
		colls[i] = sc.Collection
	}
	l, err := s.access.Purposes(r.Context(), c, colls)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"purposes": l})
}

func (s *Server) listOrgs(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	l, err := s.access.ListOrgs(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"orgs": l})
}

func (s *Server) createOrg(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	var o access.Org
	if err := decodeBody(r, &o); err != nil {
		return err
	}
	out, err := s.access.CreateOrg(r.Context(), c, &o)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) getOrg(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	o, err := s.access.GetOrg(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, o)
}

func (s *Server) revokeOrgDevices(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	n, err := s.access.RevokeOrgDevices(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"org": r.PathValue("id"), "revoked": n})
}

func (s *Server) listPrincipals(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	l, err := s.access.ListPrincipals(r.Context(), c, r.URL.Query().Get("org"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"principals": l})
}

func (s *Server) createPrincipal(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	var p access.Principal
	if err := decodeBody(r, &p); err != nil {
		return err
	}
	out, err := s.access.CreatePrincipal(r.Context(), c, &p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (s *Server) getPrincipal(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	p, err := s.access.GetPrincipal(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) revokePrincipal(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	p, err := s.access.RevokePrincipal(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) listDevices(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	q := r.URL.Query()
	l, err := s.access.ListDevices(r.Context(), c, q.Get("org"), q.Get("principal"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"devices": l})
}

// EnrolAnswer is the answer of POST /v1/devices, the same for a principal
// that exists and one that does not.
type EnrolAnswer struct {
	ID         string    `json:"id"`
	Principal  string    `json:"principal"`
	Name       string    `json:"name,omitempty"`
	Status     string    `json:"status"`
	EnrolledAt time.Time `json:"enrolled_at"`
	// KeyStorage echoes where the enrolment said the key lives; Attested
	// is false (no evidence is verified at enrolment yet).
	KeyStorage string `json:"key_storage"`
	Attested   bool   `json:"attested"`
}

// enrolRequest is the body of POST /v1/devices; the key is the one that
// signed the request's DPoP proof.
type enrolRequest struct {
	Principal string `json:"principal"`
	Name      string `json:"name,omitempty"`
	// KeyStorage is where the client says the key lives: file (default),
	// tpm, pkcs11 or webauthn.
	KeyStorage string `json:"key_storage,omitempty"`
	// Attestation is evidence of where the key lives (a TPM key
	// attestation, issue 16); verified, it makes the device attested.
	Attestation *access.TPMEvidence `json:"attestation,omitempty"`
}

func (s *Server) enrolDevice(w http.ResponseWriter, r *http.Request, _ sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	// The key is the DPoP proof's, or (a service over mTLS) the client
	// certificate's.
	key, viaCert, err := s.access.DeviceKey(r)
	if err != nil {
		return err
	}
	var req enrolRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	enrol := s.access.EnrolDevice
	if viaCert {
		enrol = s.access.EnrolCertDevice
	}
	if req.Attestation != nil {
		if viaCert {
			return &sekisho.Error{Code: sekisho.EInvalid, Type: access.ProblemAttestationInvalid, Field: "attestation",
				Message: "a TPM attestation is for a DPoP device key, not a client certificate's"}
		}
		enrol = func(ctx context.Context, c sekisho.Caller, principal, name, keyStorage string, key dpop.JWK) (*access.Device, error) {
			if keyStorage != "" && keyStorage != access.KeyStorageTPM {
				return nil, &sekisho.Error{Code: sekisho.EInvalid, Type: access.ProblemAttestationInvalid, Field: "key_storage",
					Message: "a TPM attestation attests key_storage tpm, not " + keyStorage}
			}
			return s.access.EnrolAttestedDevice(ctx, c, principal, name, key, req.Attestation)
		}
	}
	d, err := enrol(r.Context(), accessCaller(r), req.Principal, req.Name, req.KeyStorage, key)
	if err != nil {
		return err
	}
	// The same answer whether the principal exists or not: the device's
	// id, the principal asked for, pending. Nothing of its org.
	return writeJSON(w, http.StatusCreated, EnrolAnswer{ID: d.ID, Principal: d.Principal, Name: d.Name, Status: d.Status, EnrolledAt: d.EnrolledAt,
		KeyStorage: d.KeyStorage, Attested: d.Attested})
}

func (s *Server) getDevice(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	d, err := s.access.GetDevice(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) approveDevice(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	d, err := s.access.ApproveDevice(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) revokeDevice(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	d, err := s.access.RevokeDevice(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) listGrants(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	l, err := s.access.ListGrants(r.Context(), c, r.URL.Query().Get("org"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"grants": l})
}

func (s *Server) createGrant(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	var g access.Grant
	if err := decodeBody(r, &g); err != nil {
		return err
	}
	out, err := s.access.CreateGrant(r.Context(), c, &g)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if out.Status == access.StatusPending {
		status = http.StatusAccepted // not usable until a second admin approves
	}
	return writeJSON(w, status, out)
}

func (s *Server) getGrant(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	g, err := s.access.GetGrant(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, g)
}

func (s *Server) approveGrant(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	g, err := s.access.ApproveGrant(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, g)
}

func (s *Server) revokeGrant(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	g, err := s.access.RevokeGrant(r.Context(), c, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, g)
}

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	l, err := s.access.ListPolicies(r.Context(), c)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"policies": l})
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	var version int64
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return sekisho.FieldErrorf(sekisho.EInvalid, "version", "version must be a positive integer")
		}
		version = n
	}
	p, err := s.access.GetPolicy(r.Context(), c, r.PathValue("id"), version)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

// policyRequest is the body of PUT /v1/policies/{id}.
type policyRequest struct {
	Description string `json:"description,omitempty"`
	Cedar       string `json:"cedar"`
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	var req policyRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Cedar) == "" {
		return sekisho.FieldErrorf(sekisho.EInvalid, "cedar", "give the policy text in cedar")
	}
	p, err := s.access.PutPolicy(r.Context(), c, &access.Policy{ID: r.PathValue("id"), Description: req.Description, Cedar: req.Cedar})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}
