package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/testpki"
)

// tlsServer starts `sekisho serve` with a server certificate of a fresh
// test CA and returns it with the CA and the certificate's files.
func tlsServer(t *testing.T, extra ...string) (*server, *testpki.CA, string, string) {
	t.Helper()
	ca, err := testpki.NewCA("e2e CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	pki := t.TempDir()
	certFile, keyFile, err := leaf.WriteFiles(pki, "server")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	dir := filepath.Join(t.TempDir(), "data")
	args := append([]string{"--tls-cert", certFile, "--tls-key", keyFile}, extra...)
	return startServerOn(t, freeAddr(t), "https", client, dir, masterKey(), args...), ca, certFile, keyFile
}

// TestServeTLS runs the server over TLS: an admin enrols and reads over
// HTTPS, the connection is TLS 1.2 or later, and a renewed certificate
// written over the files is served on the next connection, no restart.
func TestServeTLS(t *testing.T) {
	srv, ca, certFile, keyFile := tlsServer(t)
	admin := enrol(t, srv)
	auth := admin.authorize(t, srv)
	resp, body, err := do(srv.http, auth, "GET", srv.base+"/v1/whoami", "", nil)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "e2e-admin") {
		t.Fatalf("whoami over TLS: %v %v %s", err, resp, body)
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("not served over TLS 1.2+: %+v", resp.TLS)
	}

	// Renew the certificate in place.
	renewed, err := ca.Server()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, renewed.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, renewed.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(3 * time.Second)
	os.Chtimes(certFile, later, later)
	os.Chtimes(keyFile, later, later)
	addr := strings.TrimPrefix(srv.base, "https://")
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		got := conn.ConnectionState().PeerCertificates[0].Raw
		conn.Close()
		if string(got) == string(renewed.Cert.Raw) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate was not served within 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Plain HTTP on the TLS port is not served.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil && resp.StatusCode == http.StatusOK {
		t.Fatal("plain HTTP was answered 200 on the TLS listener")
	}

	// A handshake the client refuses (it does not trust the CA) is a WARN
	// line of serve's log: net/http's errors go through the logger, and a
	// warning is written out at once, not held with the batched lines.
	if conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost"}); err == nil {
		conn.Close()
		t.Fatal("a client with no trusted CA completed the handshake")
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		var line string
		for _, l := range strings.Split(readLog(srv.dir), "\n") {
			if strings.Contains(l, "TLS handshake error") {
				line = l
			}
		}
		if line != "" {
			if !strings.Contains(line, "level=WARN") {
				t.Fatalf("the handshake error is not a WARN line of the log: %q", line)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS handshake error in serve's log within 10 s:\n%s", readLog(srv.dir))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeRefusesPlainHTTPOffLoopback: plain HTTP on all interfaces is
// refused with the reason and nothing is written; --insecure-http allows it.
func TestServeRefusesPlainHTTPOffLoopback(t *testing.T) {
	_, port, _ := net.SplitHostPort(freeAddr(t))
	dir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--addr", "0.0.0.0:"+port, "--data", dir)
	cmd.Env = append(os.Environ(), "SEKISHO_MASTER_KEY="+masterKey())
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("serve on 0.0.0.0 without TLS started; output:\n%s", out)
	}
	if !strings.Contains(string(out), "--insecure-http") || !strings.Contains(string(out), "--tls-cert") {
		t.Fatalf("the refusal does not say what to do:\n%s", out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the refused serve created its data directory: %v", err)
	}

	// Positive control: the same with --insecure-http serves (reached on loopback).
	srv := startServerOn(t, "0.0.0.0:"+port, "http", &http.Client{Timeout: 10 * time.Second}, dir, masterKey(), "--insecure-http")
	srv.base = "http://127.0.0.1:" + port
	if resp, err := srv.http.Get(srv.base + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("--insecure-http did not serve: %v", err)
	}
}
