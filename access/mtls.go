package access

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access/dpop"
)

// Certificate-bound access tokens for services (RFC 8705). With a TLS
// client certificate that the listener verified against --client-ca, a
// service's device is the certificate's public key: enrolled and approved
// like a DPoP key, with the same id (the key's RFC 7638 thumbprint), so one
// key is one device whichever way it is proven. POST /v1/token over such a
// connection, without a DPoP proof, issues a token whose cnf is the
// certificate's SHA-256 thumbprint (x5t#S256); requests present it as a
// Bearer token on a connection with that certificate, and the key is
// proven once per TLS connection by the handshake instead of once per
// request by a proof. The device, principal and org are checked on every
// request as for DPoP.

// TokenTypeBearer is the token type of certificate-bound tokens.
const TokenTypeBearer = "Bearer"

// ProblemCertMismatch is the refusal of a certificate-bound token on a
// connection without its certificate.
const ProblemCertMismatch = "token-cert-mismatch"

// peerCert returns the verified client certificate of r's connection, or
// nil. Only certificates the listener verified reach here (it asks for
// them only with --client-ca, and verifies any given).
func (s *Service) peerCert(r *http.Request) *x509.Certificate {
	if !s.cfg.ClientCertificates || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || len(r.TLS.VerifiedChains) == 0 {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}

// certThumbprint is the x5t#S256 of a certificate: base64url SHA-256 of
// its DER.
func certThumbprint(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	return b64.EncodeToString(h[:])
}

// CertKey returns the JWK of the public key of r's verified client
// certificate: an Ed25519 or P-256 key, as device keys are.
func (s *Service) CertKey(r *http.Request) (dpop.JWK, bool, error) {
	c := s.peerCert(r)
	if c == nil {
		return dpop.JWK{}, false, nil
	}
	switch k := c.PublicKey.(type) {
	case ed25519.PublicKey:
		return dpop.JWK{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(k)}, true, nil
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			raw, err := k.Bytes() // 0x04 || X || Y
			if err == nil {
				return dpop.JWK{Kty: "EC", Crv: "P-256", X: b64.EncodeToString(raw[1:33]), Y: b64.EncodeToString(raw[33:])}, true, nil
			}
		}
	}
	return dpop.JWK{}, true, sekisho.TypedErrorf(sekisho.EUnauthorized, "client-certificate-key",
		"the client certificate's key is %T; a device key is Ed25519 or P-256", c.PublicKey)
}

// DeviceKey is the key a device enrolment proves: the DPoP proof's when the
// request carries one, else the verified client certificate's (services
// only, checked by EnrolDevice's caller through IsCertEnrolment).
func (s *Service) DeviceKey(r *http.Request) (key dpop.JWK, viaCert bool, err error) {
	// A quarantined key enrols under no principal.
	if err := s.refuseQuarantinedKey(r); err != nil {
		return dpop.JWK{}, false, err
	}
	if len(r.Header.Values(HeaderDPoP)) == 0 {
		if k, ok, err := s.CertKey(r); ok {
			return k, true, err
		}
	}
	k, err := s.ProofKey(r)
	return k, false, err
}

// requireService refuses certificate-bound credentials to persons:
// persons and browsers keep DPoP.
func (s *Service) requireService(ctx context.Context, principal string) error {
	p, err := cachedGet[Principal](ctx, s, sekisho.KindPrincipal, principal)
	if err != nil {
		return sekisho.FieldErrorf(sekisho.ENotFound, "principal", "principal %q not found", principal)
	}
	if p.Kind != "service" {
		return sekisho.TypedErrorf(sekisho.EForbidden, "client-certificate-person",
			"principal %s is a %s: client certificates are for services; persons use DPoP (sekisho login)", p.ID, p.Kind)
	}
	return nil
}

// EnrolCertDevice enrols the key of a verified client certificate as a
// device of a service principal.
func (s *Service) EnrolCertDevice(ctx context.Context, c sekisho.Caller, principal, name, keyStorage string, key dpop.JWK) (*Device, error) {
	if err := s.requireService(ctx, principal); err != nil {
		return nil, err
	}
	return s.EnrolDevice(ctx, c, principal, name, keyStorage, key)
}

// issueCertToken issues a token bound to the client certificate of r.
func (s *Service) issueCertToken(r *http.Request, key dpop.JWK, now time.Time) (*sekisho.TokenResponse, error) {
	d, p, err := s.deviceState(r.Context(), key.Thumbprint())
	if err != nil {
		return nil, err
	}
	if p.Kind != "service" {
		return nil, s.requireService(r.Context(), p.ID)
	}
	tok, exp := s.mintBoundToken(d, "", certThumbprint(s.peerCert(r)), now)
	return &sekisho.TokenResponse{AccessToken: tok, TokenType: TokenTypeBearer, ExpiresIn: int64(s.tokenTTL / time.Second), ExpiresAt: exp.UTC(),
		Principal: p.ID, Org: p.Org, Device: d.ID}, nil
}

// authenticateCert checks a Bearer token: it must be certificate-bound, and
// this connection must present that certificate.
func (s *Service) authenticateCert(r *http.Request, tok string, now time.Time) (sekisho.Caller, error) {
	tc, _, err := s.readToken(strings.TrimSpace(tok), now)
	var e *sekisho.Error
	if err != nil && errors.As(err, &e) && e.Type == "token-expired" {
		return sekisho.Caller{}, err
	}
	if err != nil || tc.Cnf.X5T == "" {
		return sekisho.Caller{}, sekisho.TypedErrorf(sekisho.EUnauthorized, "token-not-bearer",
			"bearer tokens are not accepted: credentials are bound to a device key (Authorization: DPoP <token> with a DPoP proof) or to a TLS client certificate; the bootstrap token only enrols the first admin (sekisho login --bootstrap-token-file)")
	}
	c := s.peerCert(r)
	if c == nil || certThumbprint(c) != tc.Cnf.X5T {
		return sekisho.Caller{}, sekisho.TypedErrorf(sekisho.EUnauthorized, ProblemCertMismatch,
			"the access token is bound to a TLS client certificate that this connection did not present")
	}
	d, p, err := s.deviceState(r.Context(), tc.Dev)
	if err != nil {
		return sekisho.Caller{}, err
	}
	return sekisho.Caller{Principal: p.ID, Org: p.Org, Device: d.ID, Roles: append([]string(nil), p.Roles...), TokenIssued: tc.issued()}, nil
}
