package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/internal/testpki"
)

// certClient is an HTTPS client of srv that presents leaf (nil: none).
func certClient(ca *testpki.CA, leaf *testpki.Leaf) *http.Client {
	conf := &tls.Config{RootCAs: ca.Pool()}
	if leaf != nil {
		conf.Certificates = []tls.Certificate{leaf.TLS()}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
}

// bearer sends a request with "Authorization: Bearer tok" and no proof.
func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func noAuth(*http.Request) {}

// problemOf returns the short problem type of a body.
func problemOf(b []byte) string {
	var p struct{ Type string }
	json.Unmarshal(b, &p)
	return strings.TrimPrefix(p.Type, "https://sekisho.dev/problems/")
}

// TestMTLSCertificateBoundTokens runs RFC 8705 over real TLS connections
// against the binary: a service's client certificate is enrolled by its
// key and approved, gets a certificate-bound token with no proof, and
// reads with it and no proof; the same token on a connection with another
// certificate, or none, is refused (token-cert-mismatch); a person cannot
// use a certificate; and the device revoked is refused on the next request.
func TestMTLSCertificateBoundTokens(t *testing.T) {
	ca, err := testpki.NewCA("e2e client CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "client-ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, serverCA, _, _ := tlsServer(t, "--client-ca", caFile)
	admin := enrol(t, srv)
	auth := admin.authorize(t, srv)
	for _, p := range []string{
		`{"id":"svc","org":"operator","kind":"service","roles":["service"]}`,
		`{"id":"pat","org":"operator","kind":"person","roles":["support"]}`,
	} {
		if resp, b, err := do(srv.http, auth, "POST", srv.base+"/v1/principals", "", []byte(p)); err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("create principal: %v %s", err, b)
		}
	}

	svcCert, _ := ca.Client("svc", "p256")
	otherCert, _ := ca.Client("svc-other", "ed25519")
	svc := certClient(serverCA, svcCert)

	// Enrolment by the certificate's key, no proof; the device id is the
	// key's thumbprint, as for a DPoP key.
	key, err := dpop.NewKey(svcCert.Key)
	if err != nil {
		t.Fatal(err)
	}
	resp, b, err := do(svc, noAuth, "POST", srv.base+"/v1/devices", "", []byte(`{"principal":"svc","name":"payroll-sync"}`))
	if err != nil || resp.StatusCode != http.StatusCreated || !strings.Contains(string(b), key.Thumbprint()) {
		t.Fatalf("enrol by certificate: %v %v %s", err, resp, b)
	}
	// One key, one device: the same key again (by certificate or by DPoP) is a conflict.
	if resp, b, _ := do(svc, noAuth, "POST", srv.base+"/v1/devices", "", []byte(`{"principal":"svc"}`)); resp.StatusCode != http.StatusConflict {
		t.Fatalf("the same key enrolled twice: %s %s", resp.Status, b)
	}
	// A person cannot enrol a certificate.
	personCert, _ := ca.Client("pat", "p256")
	if resp, b, _ := do(certClient(serverCA, personCert), noAuth, "POST", srv.base+"/v1/devices", "", []byte(`{"principal":"pat"}`)); resp.StatusCode != http.StatusForbidden || problemOf(b) != "client-certificate-person" {
		t.Fatalf("a person's certificate enrolled: %s %s", resp.Status, b)
	}
	// Pending: no token yet.
	token := func(c *http.Client) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.base+"/v1/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	if resp, m := token(svc); resp.StatusCode != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Fatalf("token of a pending device: %d %v", resp.StatusCode, m)
	}
	if resp, b, err := do(srv.http, auth, "POST", srv.base+"/v1/devices/"+key.Thumbprint()+"/approve", "", nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("approve: %v %s", err, b)
	}

	resp, m := token(svc)
	if resp.StatusCode != http.StatusOK || m["token_type"] != "Bearer" {
		t.Fatalf("token over mTLS: %d %v", resp.StatusCode, m)
	}
	tok := m["access_token"].(string)
	// The token's cnf is the certificate's SHA-256 thumbprint.
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	var claims struct {
		Cnf map[string]string `json:"cnf"`
	}
	json.Unmarshal(payload, &claims)
	sum := sha256.Sum256(svcCert.Cert.Raw)
	if claims.Cnf["x5t#S256"] != base64.RawURLEncoding.EncodeToString(sum[:]) || claims.Cnf["jkt"] != "" {
		t.Fatalf("cnf %v: want only x5t#S256 of the certificate", claims.Cnf)
	}

	// Reads and writes on the mTLS connection, with no proof.
	resp, b, err = do(svc, bearer(tok), "POST", srv.base+"/v1/collections/users/records", "ops",
		[]byte(`{"region":"jp","fields":{"display_name":"Sakura","phone":"+81 90-1234-5678"}}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create over mTLS: %v %v %s", err, resp, b)
	}
	var rec struct{ ID string }
	json.Unmarshal(b, &rec)
	readPath := srv.base + "/v1/collections/users/records/" + rec.ID + "?fields=phone"
	if resp, b, err := do(svc, bearer(tok), "GET", readPath, "ops", nil); err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "+819012345678") {
		t.Fatalf("read over mTLS: %v %v %s", err, resp, b)
	}

	// The same token on a connection with another certificate, or none: refused.
	for name, c := range map[string]*http.Client{"another certificate": certClient(serverCA, otherCert), "no certificate": srv.http} {
		resp, b, err := do(c, bearer(tok), "GET", readPath, "ops", nil)
		if err != nil || resp.StatusCode != http.StatusUnauthorized || problemOf(b) != "token-cert-mismatch" ||
			!strings.Contains(strings.Join(resp.Header.Values("WWW-Authenticate"), ";"), `error="invalid_token"`) {
			t.Fatalf("%s: %v %v %s", name, err, resp, b)
		}
	}
	// A DPoP-bound token is no Bearer token, even over mTLS.
	adminTok := accessToken(t, srv, admin.key)
	if resp, b, _ := do(svc, bearer(adminTok), "GET", srv.base+"/v1/whoami", "", nil); resp.StatusCode != http.StatusUnauthorized || problemOf(b) != "token-not-bearer" {
		t.Fatalf("a DPoP token as Bearer: %s %s", resp.Status, b)
	}

	// Revoked: refused on the next request.
	if resp, b, err := do(srv.http, auth, "POST", srv.base+"/v1/devices/"+key.Thumbprint()+"/revoke", "", nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %v %s", err, b)
	}
	if resp, b, _ := do(svc, bearer(tok), "GET", readPath, "ops", nil); resp.StatusCode != http.StatusUnauthorized || problemOf(b) != "device-revoked" {
		t.Fatalf("after revocation: %s %s", resp.Status, b)
	}

	// The metadata says certificate-bound tokens are issued.
	_, b, _ = do(srv.http, noAuth, "GET", srv.base+"/.well-known/oauth-authorization-server", "", nil)
	if !strings.Contains(string(b), `"tls_client_certificate_bound_access_tokens":true`) || !strings.Contains(string(b), "tls_client_auth") {
		t.Fatalf("metadata: %s", b)
	}
}

// TestMTLSQuarantine: a service over mTLS that touches a honeytoken is
// quarantined within that request; its certificate-bound token is refused
// on the next request, and its certificate gets no new token.
func TestMTLSQuarantine(t *testing.T) {
	ca, err := testpki.NewCA("e2e client CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "client-ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, serverCA, _, _ := tlsServer(t, "--client-ca", caFile)
	admin := enrol(t, srv)
	auth := admin.authorize(t, srv)
	if resp, b, err := do(srv.http, auth, "POST", srv.base+"/v1/principals", "", []byte(`{"id":"svc","org":"operator","kind":"service","roles":["service"]}`)); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create principal: %v %s", err, b)
	}
	resp, b, err := do(srv.http, auth, "POST", srv.base+"/v1/collections/users/honeytokens", "", []byte(`{"region":"jp","count":1}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("honeytoken: %v %s", err, b)
	}
	var made struct{ Honeytokens []struct{ ID string } }
	json.Unmarshal(b, &made)
	leaf, _ := ca.Client("svc", "ed25519")
	svc := certClient(serverCA, leaf)
	key, _ := dpop.NewKey(leaf.Key)
	if resp, b, _ := do(svc, noAuth, "POST", srv.base+"/v1/devices", "", []byte(`{"principal":"svc"}`)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("enrol: %s %s", resp.Status, b)
	}
	if resp, b, _ := do(srv.http, auth, "POST", srv.base+"/v1/devices/"+key.Thumbprint()+"/approve", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("approve: %s %s", resp.Status, b)
	}
	tokenOf := func() (*http.Response, map[string]any) {
		req, _ := http.NewRequest("POST", srv.base+"/v1/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := svc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	resp, m := tokenOf()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %v", m)
	}
	tok := m["access_token"].(string)
	// A real record first: the positive control.
	resp, b, _ = do(svc, bearer(tok), "POST", srv.base+"/v1/collections/users/records", "ops", []byte(`{"region":"jp","fields":{"display_name":"Aoi"}}`))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %s %s", resp.Status, b)
	}
	var rec struct{ ID string }
	json.Unmarshal(b, &rec)
	if resp, b, _ := do(svc, bearer(tok), "GET", srv.base+"/v1/collections/users/records/"+rec.ID, "ops", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("read: %s %s", resp.Status, b)
	}
	// The decoy: refused, and the service quarantined.
	if resp, b, _ := do(svc, bearer(tok), "GET", srv.base+"/v1/collections/users/records/"+made.Honeytokens[0].ID, "ops", nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("decoy read: %s %s", resp.Status, b)
	}
	if resp, b, _ := do(svc, bearer(tok), "GET", srv.base+"/v1/collections/users/records/"+rec.ID, "ops", nil); resp.StatusCode/100 != 4 || problemOf(b) != "quarantined" {
		t.Fatalf("read after the quarantine: %s %s", resp.Status, b)
	}
	if resp, m := tokenOf(); resp.StatusCode != http.StatusBadRequest || m["error"] != "invalid_grant" || !strings.HasSuffix(m["type"].(string), "/quarantined") {
		t.Fatalf("token after the quarantine: %d %v", resp.StatusCode, m)
	}
}
