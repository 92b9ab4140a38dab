package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/testpki"
	"github.com/sekisho/sekisho/passkey"
)

// TestWebAuthnOrigins: serve's passkey relying party comes from
// --webauthn-origin, else --public-url, else localhost on a loopback
// listener (browsers refuse IP addresses as RP ids); a listener on every
// interface without either has no passkeys. The configuration file's keys
// set the flags the command line did not; a roots file without a
// certificate is refused; the session lifetime (--webauthn-session-ttl,
// default 12h) is bounded to 1m..720h.
func TestWebAuthnOrigins(t *testing.T) {
	for _, tc := range []struct {
		name      string
		f         webauthnFlags
		publicURL string
		addr      string
		tls       bool
		want      []string
	}{
		{"flag", webauthnFlags{origins: []string{"https://console.example.jp"}}, "https://vault.example.jp", "127.0.0.1:8700", false, []string{"https://console.example.jp"}},
		{"public url", webauthnFlags{}, "https://vault.example.jp/base", "0.0.0.0:8700", false, []string{"https://vault.example.jp"}},
		{"loopback", webauthnFlags{}, "", "127.0.0.1:8700", false, []string{"http://localhost:8700"}},
		{"loopback tls", webauthnFlags{}, "", "localhost:8443", true, []string{"https://localhost:8443"}},
		{"every interface", webauthnFlags{}, "", ":8700", false, nil},
		// An IP address is no RP id: no passkeys (serve still starts).
		{"public url of an address", webauthnFlags{}, "http://127.0.0.1:9000", "127.0.0.1:8700", false, nil},
		{"public url of an IPv6 address", webauthnFlags{}, "https://[::1]:9000", "127.0.0.1:8700", false, nil},
	} {
		pc, err := tc.f.resolve(tc.publicURL, tc.addr, tc.tls)
		if err != nil || !slices.Equal(pc.Origins, tc.want) {
			t.Errorf("%s: %v %v, want %v", tc.name, err, pc.Origins, tc.want)
		}
	}

	dir := t.TempDir()
	ca, err := testpki.NewCA("authenticator maker")
	if err != nil {
		t.Fatal(err)
	}
	roots, junk := filepath.Join(dir, "roots.pem"), filepath.Join(dir, "junk.pem")
	os.WriteFile(roots, ca.PEM, 0o600)
	os.WriteFile(junk, []byte("not a certificate"), 0o600)
	if _, err := (webauthnFlags{roots: junk}).resolve("", "127.0.0.1:1", false); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a roots file without a certificate: %v", err)
	}
	cfg := filepath.Join(dir, "sekisho.yaml")
	os.WriteFile(cfg, []byte("webauthn_origin: https://a.example.jp,https://b.example.jp\nwebauthn_rp_id: example.jp\nwebauthn_attestation_roots: "+roots+"\nwebauthn_session_ttl: 8h\n"), 0o600)
	cmd := newServeCmd()
	if err := cmd.Flags().Parse([]string{"--webauthn-rp-id", "a.example.jp"}); err != nil {
		t.Fatal(err)
	}
	if _, err := fromConfigFile(cmd, cfg); err != nil {
		t.Fatal(err)
	}
	origins, _ := cmd.Flags().GetStringSlice("webauthn-origin")
	rpID, _ := cmd.Flags().GetString("webauthn-rp-id")
	rootsFlag, _ := cmd.Flags().GetString("webauthn-attestation-roots")
	if !slices.Equal(origins, []string{"https://a.example.jp", "https://b.example.jp"}) || rpID != "a.example.jp" || rootsFlag != roots {
		t.Fatalf("from the file: origins %v, rp id %q (the command line's), roots %q", origins, rpID, rootsFlag)
	}
	ttl, _ := cmd.Flags().GetDuration("webauthn-session-ttl")
	pc, err := (webauthnFlags{origins: origins, rpID: rpID, roots: rootsFlag, sessionTTL: ttl}).resolve("", ":1", false)
	if err != nil || pc.Roots == nil || pc.RPID != "a.example.jp" || pc.SessionTTL != 8*time.Hour {
		t.Fatalf("resolved: %v %+v", err, pc)
	}
	// The session lifetime: the default, and bounds.
	if pc, err := (webauthnFlags{}).resolve("", "127.0.0.1:1", false); err != nil || pc.SessionTTL != passkey.DefaultSessionTTL {
		t.Fatalf("default session ttl: %v %v", err, pc.SessionTTL)
	}
	for _, bad := range []time.Duration{-time.Hour, time.Second, 721 * time.Hour} {
		if _, err := (webauthnFlags{sessionTTL: bad}).resolve("", "127.0.0.1:1", false); err == nil || !strings.Contains(err.Error(), "--webauthn-session-ttl") {
			t.Errorf("session ttl %s: %v", bad, err)
		}
	}
}
