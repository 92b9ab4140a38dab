package edge_test

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/edge"
	"github.com/sekisho/sekisho/internal/testpki"
)

// TestCertReloadOverTLS serves HTTPS with a certificate from files, replaces
// the files, and checks that a new connection is served the new certificate
// without a restart (and that a broken pair keeps the old one).
func TestCertReloadOverTLS(t *testing.T) {
	ca, err := testpki.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	first, err := ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := first.WriteFiles(dir, "tls")
	if err != nil {
		t.Fatal(err)
	}
	rl, err := edge.NewCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	rl.CheckInterval = 0
	var reloadErr error
	rl.OnError = func(err error) { reloadErr = err }
	srv := serveTLS(t, edge.ServerConfig(rl, nil))

	served := func() []byte {
		t.Helper()
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
			t.Fatalf("connection state %+v: want TLS >= 1.2", resp.TLS)
		}
		return resp.TLS.PeerCertificates[0].Raw
	}
	if got := served(); string(got) != string(first.Cert.Raw) {
		t.Fatal("the first certificate is not the one served")
	}

	second, err := ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := second.WriteFiles(dir, "tls"); err != nil {
		t.Fatal(err)
	}
	// Make sure the stamp differs even on a coarse file system clock.
	later := time.Now().Add(2 * time.Second)
	os.Chtimes(certFile, later, later)
	if got := served(); string(got) != string(second.Cert.Raw) {
		t.Fatal("the renewed certificate was not served after the files changed")
	}

	// A half-written renewal: the key does not match the new certificate.
	third, _ := ca.Server()
	os.WriteFile(certFile, third.CertPEM, 0o600)
	later = later.Add(2 * time.Second)
	os.Chtimes(certFile, later, later)
	if got := served(); string(got) != string(second.Cert.Raw) {
		t.Fatal("a pair that does not load replaced the working certificate")
	}
	if reloadErr == nil {
		t.Fatal("the failed reload was not reported")
	}
}

func TestServerConfigRefusesOldTLS(t *testing.T) {
	ca, _ := testpki.NewCA("test CA")
	leaf, _ := ca.Server()
	dir := t.TempDir()
	certFile, keyFile, _ := leaf.WriteFiles(dir, "tls")
	rl, err := edge.NewCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := serveTLS(t, edge.ServerConfig(rl, nil))
	for _, tc := range []struct {
		name    string
		max     uint16
		wantErr bool
	}{
		{"TLS 1.1 refused", tls.VersionTLS11, true},
		{"TLS 1.2 served", tls.VersionTLS12, false},
		{"TLS 1.3 served", tls.VersionTLS13, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", strings.TrimPrefix(srv.URL, "https://"), &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS10, MaxVersion: tc.max, ServerName: "localhost"})
			if conn != nil {
				conn.Close()
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("dial: %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestCheckPlainHTTP(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		refused bool
	}{
		{"127.0.0.1:8700", false},
		{"127.0.0.2:8700", false},
		{"[::1]:8700", false},
		{"localhost:8700", false},
		{"0.0.0.0:8700", true},
		{":8700", true},
		{"[::]:8700", true},
		{"192.0.2.10:8700", true},
		{"vault.example.jp:8700", true},
	} {
		err := edge.CheckPlainHTTP(tc.addr)
		if got := errors.Is(err, edge.ErrPlainHTTP); got != tc.refused {
			t.Errorf("CheckPlainHTTP(%q) = %v, want refused %v", tc.addr, err, tc.refused)
		}
	}
}

func TestClientAddr(t *testing.T) {
	proxies, err := edge.ParseProxies("10.0.0.0/8, 192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		proxies edge.Proxies
		remote  string
		header  map[string]string
		want    string
	}{
		{"no trusted proxies: header ignored", edge.Proxies{}, "10.1.1.1:5000", map[string]string{"X-Forwarded-For": "203.0.113.9"}, "10.1.1.1"},
		{"untrusted peer: header ignored", proxies, "198.51.100.7:5000", map[string]string{"X-Forwarded-For": "203.0.113.9"}, "198.51.100.7"},
		{"trusted peer: client from XFF", proxies, "10.1.1.1:5000", map[string]string{"X-Forwarded-For": "203.0.113.9"}, "203.0.113.9"},
		{"spoofed left entry skipped", proxies, "10.1.1.1:5000", map[string]string{"X-Forwarded-For": "1.2.3.4, 203.0.113.9, 10.2.2.2"}, "203.0.113.9"},
		{"single trusted address", proxies, "192.0.2.1:443", map[string]string{"X-Forwarded-For": "203.0.113.9"}, "203.0.113.9"},
		{"Forwarded preferred", proxies, "10.1.1.1:5000", map[string]string{"X-Forwarded-For": "203.0.113.1", "Forwarded": `for="[2001:db8::7]:4711";proto=https`}, "2001:db8::7"},
		{"junk ends the walk at the last trusted hop", proxies, "10.1.1.1:5000", map[string]string{"X-Forwarded-For": "not-an-ip"}, "10.1.1.1"},
		{"trusted peer without header", proxies, "10.1.1.1:5000", nil, "10.1.1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			if got := tc.proxies.ClientAddr(r); got != tc.want {
				t.Fatalf("ClientAddr = %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := edge.ParseProxies("10.0.0.0/33"); err == nil {
		t.Fatal("a bad CIDR was accepted")
	}
}

// testServer is an HTTPS server on loopback with exactly the given TLS
// configuration (httptest's StartTLS would add its own certificate).
type testServer struct{ URL string }

func serveTLS(t *testing.T, conf *tls.Config) testServer {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }),
		ErrorLog: log.New(io.Discard, "", 0)}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return testServer{URL: "https://" + ln.Addr().String()}
}
