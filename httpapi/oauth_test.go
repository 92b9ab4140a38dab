package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/httpapi"
)

const algs = `algs="EdDSA Ed25519 ES256"`

// TestEvery401HasChallenge sends every authenticated route a request
// without a credential, and checks the 401 and its WWW-Authenticate (the
// DPoP scheme with error="invalid_request" and the algorithms: issue 17 asks
// an error code on every 401, and RFC 6750 §3.1's invalid_request is the
// code for a missing credential, where the RFC only says SHOULD NOT); then the
// OAuth error of each kind of refusal, next to the same request done right.
func TestEvery401HasChallenge(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	checked := 0
	for _, rt := range httpapi.Routes() {
		method, pattern, _ := strings.Cut(rt, " ")
		if pattern == "/v1/token" || pattern == "/v1/bootstrap" || pattern == "/v1/devices" && method == "POST" || !strings.HasPrefix(pattern, "/v1/") ||
			pattern == "/v1/devices/attestation-challenge" || // anonymous, like enrolment (issue 16)
			strings.HasPrefix(pattern, "/v1/webauthn/") { // the passkey ceremonies: anonymous with a proof, like enrolment (issue 16 point 5)
			continue // no access token: these authenticate with a proof alone (below), or are open
		}
		path := strings.NewReplacer("{c}", "users", "{id}", "x", "{kind}", "appi").Replace(pattern)
		req, _ := http.NewRequest(method, w.srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		checked++
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `DPoP error="invalid_request", `+algs {
			t.Errorf("%s without a credential: %d, WWW-Authenticate %q", rt, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}

	if checked < 40 {
		t.Fatalf("only %d routes checked", checked)
	}
	tok, err := w.bob.Refresh(ctx)
	must(t, err)
	whoami := w.srv.URL + "/v1/whoami"
	send := func(auth, proof string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", whoami, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		return resp
	}
	proof := func(k *dpop.Key, u, at string) string {
		p, err := k.Proof("GET", u, at, w.clk.Now())
		must(t, err)
		return p
	}
	other, _ := dpop.GenerateKey("p256")
	for _, tc := range []struct {
		name, auth, proof, want string
	}{
		{"right", "DPoP " + tok.AccessToken, proof(w.bob.Key, whoami, tok.AccessToken), ""},
		{"bearer", "Bearer " + tok.AccessToken, "", `DPoP error="invalid_request", ` + algs},
		{"no proof", "DPoP " + tok.AccessToken, "", `DPoP error="invalid_dpop_proof", ` + algs},
		{"proof for another URL", "DPoP " + tok.AccessToken, proof(w.bob.Key, w.srv.URL+"/v1/orgs", tok.AccessToken), `DPoP error="invalid_dpop_proof", ` + algs},
		{"another key", "DPoP " + tok.AccessToken, proof(other, whoami, tok.AccessToken), `DPoP error="invalid_token", ` + algs},
		{"forged token", "DPoP x" + tok.AccessToken, proof(w.bob.Key, whoami, "x"+tok.AccessToken), `DPoP error="invalid_token", ` + algs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := send(tc.auth, tc.proof)
			if tc.want == "" {
				if resp.StatusCode != http.StatusOK || resp.Header.Get("WWW-Authenticate") != "" {
					t.Fatalf("the right request: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
				}
				return
			}
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != tc.want {
				t.Fatalf("%d, WWW-Authenticate %q, want 401 %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), tc.want)
			}
		})
	}
}

// postToken sends POST /v1/token with a form body and a proof of key
// (none when key is nil) and decodes the answer.
func postToken(t *testing.T, srv *httptest.Server, key *dpop.Key, form string, nonce string, now time.Time) (*http.Response, map[string]any) {
	t.Helper()
	u := srv.URL + "/v1/token"
	req, _ := http.NewRequest("POST", u, strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if key != nil {
		p, err := key.ProofNonce("POST", u, "", nonce, now)
		must(t, err)
		req.Header.Set("DPoP", p)
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("token answer is not JSON: %s", b)
	}
	return resp, m
}

// TestTokenEndpointOAuthErrors: the token endpoint takes grant_type and
// answers refusals as RFC 6749 §5.2 errors with 400 (that are also
// problems), the right request beside each.
func TestTokenEndpointOAuthErrors(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	pending, _ := dpop.GenerateKey("ed25519")
	must(t, w.admin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": "pat", "org": "operator", "roles": []string{"support"}}, nil))
	_, err := client.New(w.srv.URL, pending).Enrol(ctx, "pat", "")
	must(t, err)
	now := w.clk.Now()
	for _, tc := range []struct {
		name, form string
		key        *dpop.Key
		wantErr    string
		wantType   string
	}{
		{"right", "grant_type=client_credentials", w.bob.Key, "", ""},
		{"no grant_type", "", w.bob.Key, "invalid_request", "invalid"},
		{"password grant", "grant_type=password&username=a&password=b", w.bob.Key, "unsupported_grant_type", "unsupported-grant-type"},
		// A person's sign-in grant needs an identity provider (serve --oidc-issuer).
		{"sign-in grant, no IdP", "grant_type=authorization_code&code=c&code_verifier=v&redirect_uri=http://127.0.0.1/callback&nonce=n", w.bob.Key, "unsupported_grant_type", "unsupported-grant-type"},
		{"no proof", "grant_type=client_credentials", nil, "invalid_dpop_proof", "dpop-proof-missing"},
		{"device not approved", "grant_type=client_credentials", pending, "invalid_grant", "device-not-approved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := postToken(t, w.srv, tc.key, tc.form, "", now)
			if resp.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("headers %v", resp.Header)
			}
			if tc.wantErr == "" {
				if resp.StatusCode != http.StatusOK || m["token_type"] != "DPoP" || m["access_token"] == "" {
					t.Fatalf("%d %v", resp.StatusCode, m)
				}
				return
			}
			if resp.StatusCode != http.StatusBadRequest || m["error"] != tc.wantErr || m["error_description"] == "" ||
				m["type"] != httpapi.ProblemBase+tc.wantType {
				t.Fatalf("%d %v, want 400 error %s type %s", resp.StatusCode, m, tc.wantErr, tc.wantType)
			}
		})
	}
}

// TestAuthorizationServerMetadata: RFC 8414's document lists the endpoints
// under the issuer (the public URL when set), the DPoP algorithms and
// whether certificate-bound tokens are issued.
func TestAuthorizationServerMetadata(t *testing.T) {
	e := newEnv(t)
	srv, _ := e.nodeWith(func(c *access.Config) { c.PublicURL = "https://vault.example.jp" })
	for _, tc := range []struct {
		srv    *httptest.Server
		issuer string
	}{{e.srv, e.srv.URL}, {srv, "https://vault.example.jp"}} {
		resp, err := http.Get(tc.srv.URL + httpapi.MetadataPath)
		must(t, err)
		var m struct {
			Issuer          string   `json:"issuer"`
			TokenEndpoint   string   `json:"token_endpoint"`
			Algs            []string `json:"dpop_signing_alg_values_supported"`
			Grants          []string `json:"grant_types_supported"`
			CertBound       *bool    `json:"tls_client_certificate_bound_access_tokens"`
			DeviceEndpoint  string   `json:"sekisho_device_enrolment_endpoint"`
			ResponseTypes   []string `json:"response_types_supported"`
			TokenAuthMethod []string `json:"token_endpoint_auth_methods_supported"`
		}
		must(t, json.NewDecoder(resp.Body).Decode(&m))
		resp.Body.Close()
		if m.Issuer != tc.issuer || m.TokenEndpoint != tc.issuer+"/v1/token" || m.DeviceEndpoint != tc.issuer+"/v1/devices" ||
			strings.Join(m.Algs, " ") != "EdDSA Ed25519 ES256" || strings.Join(m.Grants, " ") != "client_credentials" ||
			m.CertBound == nil || *m.CertBound || m.ResponseTypes == nil {
			t.Fatalf("metadata %+v", m)
		}
	}
}

// TestServerNonceOverHTTP: a server that requires nonces refuses a proof
// without one, on the token endpoint (400 use_dpop_nonce) and on a
// resource (401 with error="use_dpop_nonce"), each time with the nonce in
// DPoP-Nonce; the same requests with that nonce succeed, and the Go client
// does this by itself.
func TestServerNonceOverHTTP(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	srv, _ := w.nodeWith(func(c *access.Config) { c.RequireNonce = true })
	now := w.clk.Now()
	resp, m := postToken(t, srv, w.bob.Key, "grant_type=client_credentials", "", now)
	nonce := resp.Header.Get("DPoP-Nonce")
	if resp.StatusCode != http.StatusBadRequest || m["error"] != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("token without a nonce: %d %v nonce %q", resp.StatusCode, m, nonce)
	}
	resp, m = postToken(t, srv, w.bob.Key, "grant_type=client_credentials", nonce, now)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token with the nonce: %d %v", resp.StatusCode, m)
	}
	at := m["access_token"].(string)
	whoami := srv.URL + "/v1/whoami"
	get := func(nonce string) *http.Response {
		p, err := w.bob.Key.ProofNonce("GET", whoami, at, nonce, now)
		must(t, err)
		req, _ := http.NewRequest("GET", whoami, nil)
		req.Header.Set("Authorization", "DPoP "+at)
		req.Header.Set("DPoP", p)
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		return resp
	}
	if r := get(""); r.StatusCode != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != `DPoP error="use_dpop_nonce", `+algs || r.Header.Get("DPoP-Nonce") != nonce {
		t.Fatalf("resource without a nonce: %d %v", r.StatusCode, r.Header)
	}
	if r := get(nonce); r.StatusCode != http.StatusOK {
		t.Fatalf("resource with the nonce: %d", r.StatusCode)
	}
	// The Go client learns the nonce from the refusal and retries once.
	c := client.New(srv.URL, w.bob.Key)
	c.Now = w.clk.Now
	var who map[string]any
	must(t, c.JSON(ctx, "GET", "/v1/whoami", "", nil, &who))
	if who["principal"] != "bob" {
		t.Fatalf("whoami %v", who)
	}
}
