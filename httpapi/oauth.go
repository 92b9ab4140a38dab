package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
)

// OAuth 2.0 and DPoP as the standards say: the challenge of every 401
// (RFC 9449 §7.1, RFC 6750 §3), the token endpoint's errors (RFC 6749
// §5.2), the authorisation server metadata (RFC 8414) and server nonces
// (RFC 9449 §8-9, sent in DPoP-Nonce).

// GrantType is the one grant of the token endpoint: the client (a device)
// authenticates with its key (a DPoP proof, or its TLS client certificate
// for a certificate-bound token, RFC 8705) and gets a token for itself.
const GrantType = "client_credentials"

// The sign-in grants of people (OpenID Connect single sign-on): an
// authorization code with its PKCE verifier, or a device code (RFC 8628).
const (
	GrantAuthorizationCode = "authorization_code"
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
)

// MetadataPath is where the authorisation server metadata is served.
const MetadataPath = "/.well-known/oauth-authorization-server"

var dpopAlgs = strings.Join(dpop.Algs, " ")

// challenge is the WWW-Authenticate value of a 401 for the refusal err:
// the DPoP scheme with the OAuth error and the algorithms accepted. Every
// 401 names an error, invalid_request when no credential was sent at all
// (RFC 6750 §3.1 only says SHOULD NOT there; clients that read the code
// always find one).
func challenge(err error) string {
	var code string
	switch typ := problemType(err); {
	case typ == access.ProblemNonce:
		code = "use_dpop_nonce"
	case strings.HasPrefix(typ, "dpop-proof-"):
		code = "invalid_dpop_proof"
	case typ == "credential-missing" || typ == "token-not-bearer" || typ == "credential-invalid":
		code = "invalid_request"
	default:
		code = "invalid_token"
	}
	return `DPoP error="` + code + `", algs="` + dpopAlgs + `"`
}

// problemType is the short problem type of err ("device-revoked"), or "".
func problemType(err error) string {
	var e *sekisho.Error
	if errors.As(err, &e) {
		return e.Type
	}
	return ""
}

// tokenError is an RFC 6749 §5.2 error response that is also an RFC 9457
// problem: OAuth clients read error and error_description, sekisho's read
// the problem type.
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	Problem
}

// oauthErrors answers the token endpoint's refusals as RFC 6749 §5.2
// errors with status 400 (a server-side failure stays a 5xx problem).
func (s *Server) oauthErrors(h func(http.ResponseWriter, *http.Request, sekisho.Caller) error) func(http.ResponseWriter, *http.Request, sekisho.Caller) error {
	return func(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
		err := h(w, r, c)
		if err == nil {
			return nil
		}
		status, ok := codeStatus[sekisho.Code(err)]
		if !ok || status >= 500 {
			return err
		}
		typ := problemType(err)
		code := "invalid_grant"
		switch {
		case typ == "unsupported-grant-type":
			code = "unsupported_grant_type"
		case typ == access.ProblemAuthorizationPending, typ == access.ProblemSlowDown, typ == access.ProblemExpiredToken, typ == access.ProblemAccessDenied:
			code = strings.ReplaceAll(typ, "-", "_") // RFC 8628 §3.5
		case sekisho.Code(err) == sekisho.EInvalid || sekisho.Code(err) == sekisho.EUnsupported || sekisho.Code(err) == sekisho.ETooLarge:
			code = "invalid_request"
		case typ == access.ProblemNonce:
			code = "use_dpop_nonce"
		case strings.HasPrefix(typ, "dpop-proof-"):
			code = "invalid_dpop_proof"
		}
		if typ == "" {
			typ = string(sekisho.Code(err))
		}
		te := tokenError{Error: code, Description: sekisho.Message(err),
			Problem: problemf(r, http.StatusBadRequest, typ, sekisho.Message(err))}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusBadRequest)
		return json.NewEncoder(w).Encode(te)
	}
}

// token answers POST /v1/token: grant_type=client_credentials in a form
// body (RFC 6749 §4.4), the device's key proven by a DPoP proof.
func (s *Server) token(w http.ResponseWriter, r *http.Request, c sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	if err := r.ParseForm(); err != nil {
		return sekisho.FieldErrorf(sekisho.EInvalid, "grant_type", "the token request body must be a form (application/x-www-form-urlencoded): %v", err)
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case GrantType:
	case GrantAuthorizationCode, GrantDeviceCode:
		// A person signs in through the IdP (serve --oidc-issuer).
		res, err := s.access.SignIn(r, c, r.PostForm)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		return writeJSON(w, http.StatusOK, res)
	case "":
		return sekisho.FieldErrorf(sekisho.EInvalid, "grant_type", "give grant_type=%s in a form body (RFC 6749)", GrantType)
	default:
		return &sekisho.Error{Code: sekisho.EInvalid, Type: "unsupported-grant-type", Field: "grant_type",
			Message: "grant_type " + truncate(gt, 64) + " is not supported; use " + GrantType}
	}
	res, err := s.access.IssueToken(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// authServerMetadata is RFC 8414's document, with sekisho's own endpoints
// as additional members.
type authServerMetadata struct {
	Issuer                   string   `json:"issuer"`
	TokenEndpoint            string   `json:"token_endpoint"`
	TokenEndpointAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	GrantTypes               []string `json:"grant_types_supported"`
	ResponseTypes            []string `json:"response_types_supported"`
	DPoPAlgs                 []string `json:"dpop_signing_alg_values_supported"`
	CertBoundTokens          bool     `json:"tls_client_certificate_bound_access_tokens"`
	ServiceDocumentation     string   `json:"service_documentation"`
	DeviceEndpoint           string   `json:"sekisho_device_enrolment_endpoint"`
	BootstrapEndpoint        string   `json:"sekisho_bootstrap_endpoint"`
	OpenAPI                  string   `json:"sekisho_openapi_uri"`
	// The identity provider people sign in with (sekisho login --oidc),
	// when the server has one.
	OIDCIssuer   string   `json:"sekisho_oidc_issuer,omitempty"`
	OIDCClientID string   `json:"sekisho_oidc_client_id,omitempty"`
	OIDCScopes   []string `json:"sekisho_oidc_scopes,omitempty"`
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request, _ sekisho.Caller) error {
	if err := s.needAccess(); err != nil {
		return err
	}
	base := s.access.BaseURL(r)
	m := authServerMetadata{Issuer: base, TokenEndpoint: base + "/v1/token",
		TokenEndpointAuthMethods: []string{"none"}, GrantTypes: []string{GrantType}, ResponseTypes: []string{},
		DPoPAlgs: dpop.Algs, CertBoundTokens: s.access.CertBoundTokens(),
		ServiceDocumentation: "https://github.com/sekisho/sekisho#readme",
		DeviceEndpoint:       base + "/v1/devices", BootstrapEndpoint: base + "/v1/bootstrap", OpenAPI: base + "/openapi.json"}
	if idp := s.access.IdP(); idp != nil {
		m.OIDCIssuer, m.OIDCClientID, m.OIDCScopes = idp.Issuer(), idp.ClientID(), idp.Scopes()
		m.GrantTypes = append(m.GrantTypes, GrantAuthorizationCode, GrantDeviceCode)
	}
	if m.CertBoundTokens {
		m.TokenEndpointAuthMethods = append(m.TokenEndpointAuthMethods, "tls_client_auth")
	}
	w.Header().Set("Cache-Control", "max-age=300")
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(m)
}
