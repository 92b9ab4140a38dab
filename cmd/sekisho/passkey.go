package main

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/passkey"
)

// webauthnFlags are serve's passkey settings (issue 16 point 5): the
// console's origins, the relying party id, and the attestation roots.
type webauthnFlags struct {
	origins    []string
	rpID       string
	roots      string
	sessionTTL time.Duration
}

func (f *webauthnFlags) flags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.origins, "webauthn-origin", nil, "origin the console is opened at, for passkey sign-in (https://vault.example.jp; repeatable). Default: --public-url, or http(s)://localhost:PORT when listening on loopback")
	fl.StringVar(&f.rpID, "webauthn-rp-id", "", "WebAuthn relying party id (a domain: passkeys are scoped to it); default: the first origin's host")
	fl.DurationVar(&f.sessionTTL, "webauthn-session-ttl", passkey.DefaultSessionTTL, "how long the browser session of a passkey sign-in gets tokens (then its device answers device-expired and the person signs in again); at most 720h")
	fl.StringVar(&f.roots, "webauthn-attestation-roots", "", "PEM file of the trusted roots of authenticator attestation certificates: a passkey whose attestation chains to one is attested (none: passkeys register unattested)")
}

// passkeyConfig is the node's passkey relying party; no origins: passkeys
// are off (the routes answer webauthn-not-configured).
type passkeyConfig struct {
	Origins []string
	RPID    string
	Roots   *x509.CertPool
	// SessionTTL ends each passkey sign-in's session device.
	SessionTTL time.Duration
	// Derived says Origins came from --public-url or the listener, not
	// --webauthn-origin: when they make no valid relying party (a host that
	// is no domain), serve goes on without passkeys and says so.
	Derived bool
}

// resolve works out the origins: the flag's, else the public URL, else
// localhost on a loopback listener (browsers refuse IP addresses as RP ids).
func (f webauthnFlags) resolve(publicURL, addr string, tls bool) (passkeyConfig, error) {
	pc := passkeyConfig{Origins: f.origins, RPID: f.rpID, SessionTTL: f.sessionTTL}
	if pc.SessionTTL == 0 {
		pc.SessionTTL = passkey.DefaultSessionTTL
	}
	if pc.SessionTTL < time.Minute || pc.SessionTTL > 720*time.Hour {
		return pc, fmt.Errorf("--webauthn-session-ttl %s: want between 1m and 720h", pc.SessionTTL)
	}
	if len(pc.Origins) == 0 && publicURL != "" {
		u, err := access.ParsePublicURL(publicURL)
		if err != nil {
			return pc, err
		}
		scheme, rest, _ := strings.Cut(u, "://")
		host, _, _ := strings.Cut(rest, "/")
		// An IP address cannot be an RP id (browsers refuse it): such a
		// public URL offers no passkeys unless --webauthn-origin says.
		hostname := host
		if h, _, err := net.SplitHostPort(host); err == nil {
			hostname = h
		}
		if net.ParseIP(strings.Trim(hostname, "[]")) == nil {
			pc.Origins = []string{scheme + "://" + host}
		}
	}
	if len(pc.Origins) == 0 && publicURL == "" {
		host, port, err := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); err == nil && (host == "localhost" || (ip != nil && ip.IsLoopback())) {
			scheme := "http"
			if tls {
				scheme = "https"
			}
			pc.Origins = []string{scheme + "://localhost:" + port}
		}
	}
	pc.Derived = len(f.origins) == 0 && len(pc.Origins) > 0
	if f.roots != "" {
		b, err := os.ReadFile(f.roots)
		if err != nil {
			return pc, fmt.Errorf("--webauthn-attestation-roots: %w", err)
		}
		pc.Roots = x509.NewCertPool()
		if !pc.Roots.AppendCertsFromPEM(b) {
			return pc, fmt.Errorf("--webauthn-attestation-roots %s: no PEM certificate in it", f.roots)
		}
	}
	return pc, nil
}
