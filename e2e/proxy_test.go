package e2e

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/internal/testpki"
)

// proxied starts `sekisho serve` on loopback plain HTTP with extra flags,
// behind a TLS-terminating reverse proxy (httputil.ReverseProxy on an
// httptest TLS server) that connects to it from 127.0.0.2 and sets
// X-Forwarded-For to forwardedFor. The returned server's base URL and
// client are the proxy's; direct is the server's own URL.
func proxied(t *testing.T, forwardedFor string, extra func(proxyURL string) []string) (srv *server, direct string) {
	t.Helper()
	addr := freeAddr(t)
	target, _ := url.Parse("http://" + addr)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// What a real proxy writes: the address it saw the client at.
			pr.Out.Header.Set("X-Forwarded-For", forwardedFor)
			pr.Out.Header.Set("X-Forwarded-Proto", "https")
		},
		Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext},
	}
	ca, err := testpki.NewCA("proxy CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewUnstartedServer(rp)
	proxy.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}
	proxy.StartTLS()
	t.Cleanup(proxy.Close)
	// The proxy's public URL by name, as clients would write it.
	_, port, _ := net.SplitHostPort(proxy.Listener.Addr().String())
	public := "https://localhost:" + port
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	dir := filepath.Join(t.TempDir(), "data")
	srv = startServerOn(t, addr, "http", &http.Client{Timeout: 10 * time.Second}, dir, masterKey(), extra(public)...)
	srv.base, srv.http = public, client
	return srv, "http://" + addr
}

// TestBehindTLSProxy: behind a TLS-terminating proxy with --public-url, a
// proof signed for the public https:// URL is accepted and one for the
// URL the server itself sees is refused; with --trusted-proxies the audit
// event's source is the proxy's X-Forwarded-For, and a client that talks
// to the server directly cannot set its source with the same header.
func TestBehindTLSProxy(t *testing.T) {
	srv, direct := proxied(t, "203.0.113.7", func(public string) []string {
		return []string{"--public-url", public, "--trusted-proxies", "127.0.0.2/32"}
	})
	admin := enrol(t, srv) // through the proxy, proof for the public URL
	auth := admin.authorize(t, srv)

	// Through the proxy, with a proof for the public URL: accepted.
	resp, body, err := do(srv.http, auth, "GET", srv.base+"/v1/whoami", "", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("whoami through the proxy: %v %v %s", err, resp, body)
	}

	// A proof for the internal URL (what the server sees), sent to it directly: refused.
	tok := accessToken(t, srv, admin.key)
	internal := direct + "/v1/whoami"
	req, _ := http.NewRequest("GET", internal, nil)
	proof, _ := admin.key.Proof("GET", internal, tok, time.Now())
	req.Header.Set("Authorization", "DPoP "+tok)
	req.Header.Set("DPoP", proof)
	req.Header.Set("X-Forwarded-For", "198.51.100.66")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a proof for the internal URL: %s, want 401", resp2.Status)
	}
	// ... and the same proof through the proxy is refused too (it names the wrong URL).
	req3, _ := http.NewRequest("GET", srv.base+"/v1/whoami", nil)
	proof3, _ := admin.key.Proof("GET", internal, tok, time.Now())
	req3.Header.Set("Authorization", "DPoP "+tok)
	req3.Header.Set("DPoP", proof3)
	resp3, err := srv.http.Do(req3)
	if err != nil {
		t.Fatal(err)
	}
	resp3.Body.Close()
	if resp3.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a proof for the internal URL through the proxy: %s, want 401", resp3.Status)
	}

	// The audit source (of the refusals: whoami itself is not audited):
	// the proxy's X-Forwarded-For for the proxied request; the peer
	// address for the direct one, whatever it claimed.
	events := auditEvents(t, srv, auth)
	if ev := events[resp2.Header.Get("X-Request-Id")]; ev == nil || ev["source"] != "127.0.0.1" {
		t.Fatalf("direct request's audit event %v: want source 127.0.0.1 (its X-Forwarded-For is not trusted)", ev)
	}
	if ev := events[resp3.Header.Get("X-Request-Id")]; ev == nil || ev["source"] != "203.0.113.7" {
		t.Fatalf("proxied request's audit event %v: want source 203.0.113.7 from the trusted proxy's X-Forwarded-For", ev)
	}
}

// TestProxyWithoutTrust: without --trusted-proxies the proxy's header is
// ignored: the source is the proxy's own address.
func TestProxyWithoutTrust(t *testing.T) {
	srv, _ := proxied(t, "203.0.113.7", func(public string) []string { return []string{"--public-url", public} })
	admin := enrol(t, srv)
	auth := admin.authorize(t, srv)
	req, _ := http.NewRequest("GET", srv.base+"/v1/whoami", nil)
	req.Header.Set("Authorization", "DPoP not-a-token")
	resp, err := srv.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ev := auditEvents(t, srv, auth)[resp.Header.Get("X-Request-Id")]; ev == nil || ev["source"] != "127.0.0.2" {
		t.Fatalf("audit event %v: want source 127.0.0.2 (the untrusted proxy)", ev)
	}
}

// accessToken gets an access token for key from srv.
func accessToken(t *testing.T, srv *server, key *dpop.Key) string {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.base+"/", nil)
	(&creds{key: key}).authorize(t, srv)(req)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "DPoP ")
}

// auditEvents returns the recent audit events by request id.
func auditEvents(t *testing.T, srv *server, auth func(*http.Request)) map[string]map[string]any {
	t.Helper()
	resp, body, err := do(srv.http, auth, "GET", srv.base+"/v1/audit/events?limit=1000", "", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("audit events: %v %v %s", err, resp, body)
	}
	var out struct {
		Events []struct {
			Event map[string]any `json:"event"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	m := map[string]map[string]any{}
	for _, e := range out.Events {
		if id, _ := e.Event["request_id"].(string); id != "" {
			m[id] = e.Event
		}
	}
	return m
}
