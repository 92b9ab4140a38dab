package access

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access/dpop"
)

// Header names and the token type.
const (
	HeaderDPoP = "DPoP"
	TokenType  = "DPoP"
)

var b64 = base64.RawURLEncoding

// tokenClaims are the claims of an access token. The token is a JWT MACed
// with HS256 under the instance's token key: only this service issues and
// reads it, and cnf.jkt binds it to one device key (RFC 9449 §6).
type tokenClaims struct {
	Sub string `json:"sub"`
	Org string `json:"org"`
	Dev string `json:"dev"`
	IAT int64  `json:"iat"`
	Exp int64  `json:"exp"`
	JTI string `json:"jti"`
	Cnf struct {
		JKT string `json:"jkt,omitempty"`      // DPoP: the device key's thumbprint
		X5T string `json:"x5t#S256,omitempty"` // RFC 8705: the client certificate's thumbprint
	} `json:"cnf"`
}

const tokenHeader = `{"alg":"HS256","typ":"at+jwt"}`

var tokenHeaderB64 = b64.EncodeToString([]byte(tokenHeader))

func (s *Service) mac(input string) []byte {
	m := hmac.New(sha256.New, s.cfg.TokenKey)
	m.Write([]byte(input))
	return m.Sum(nil)
}

func (s *Service) mintToken(d *Device, now time.Time) (string, time.Time) {
	return s.mintBoundToken(d, d.ID, "", now)
}

// mintBoundToken mints a token bound to a DPoP key (jkt) or a client
// certificate (x5t, RFC 8705).
func (s *Service) mintBoundToken(d *Device, jkt, x5t string, now time.Time) (string, time.Time) {
	var jti [12]byte
	rand.Read(jti[:])
	exp := now.Add(s.tokenTTL)
	if d.ExpiresAt != nil && d.ExpiresAt.Before(exp) {
		exp = *d.ExpiresAt // a session device's token ends with the session
	}
	c := tokenClaims{Sub: d.Principal, Org: d.Org, Dev: d.ID, IAT: now.Unix(), Exp: exp.Unix(), JTI: b64.EncodeToString(jti[:])}
	c.Cnf.JKT, c.Cnf.X5T = jkt, x5t
	p, _ := json.Marshal(c)
	input := tokenHeaderB64 + "." + b64.EncodeToString(p)
	return input + "." + b64.EncodeToString(s.mac(input)), time.Unix(c.Exp, 0)
}

// readToken checks an access token and returns its claims and its hash
// (the ath its proofs must carry). A token whose MAC checked out is
// remembered, keyed by its exact string, until it expires, so the MAC, the
// decoding and the hash are done once per token; its expiry is checked on
// every use, and the device, principal and org behind it are checked by
// the caller on every request whatever this cache holds.
func (s *Service) readToken(tok string, now time.Time) (*tokenClaims, string, error) {
	e := s.tokens.get(tok)
	if e == nil {
		var err error
		if e, err = s.parseToken(tok); err != nil {
			return nil, "", err
		}
		if now.Unix() < e.c.Exp {
			s.tokens.put(tok, e)
		}
	}
	if now.Unix() >= e.c.Exp {
		return nil, "", sekisho.TypedErrorf(sekisho.EUnauthorized, "token-expired", "the access token expired; get a new one with POST /v1/token and a fresh DPoP proof")
	}
	return e.c, e.ath, nil
}

// parseToken checks a token's form and MAC and decodes its claims.
func (s *Service) parseToken(tok string) (*tokenEntry, error) {
	bad := sekisho.TypedErrorf(sekisho.EUnauthorized, "token-invalid", "the access token is not valid; get a new one with POST /v1/token")
	i := strings.LastIndexByte(tok, '.')
	if i < 0 || len(tok) > 2048 || !strings.HasPrefix(tok, tokenHeaderB64+".") {
		return nil, bad
	}
	sig, err := b64.DecodeString(tok[i+1:])
	if err != nil || !hmac.Equal(sig, s.mac(tok[:i])) {
		return nil, bad
	}
	pb, err := b64.DecodeString(tok[len(tokenHeaderB64)+1 : i])
	if err != nil {
		return nil, bad
	}
	var c tokenClaims
	if err := json.Unmarshal(pb, &c); err != nil {
		return nil, bad
	}
	return &tokenEntry{c: &c, ath: dpop.TokenHash(tok)}, nil
}

// tokenCache remembers the access tokens whose MAC checked out, with their
// claims and hash. It is bounded, and emptied when full: a token dropped
// is checked again on its next use, and one that expired is refused on
// every use whether cached or not.
type tokenCache struct {
	max int64
	n   atomic.Int64
	m   sync.Map // token -> *tokenEntry
}

type tokenEntry struct {
	c   *tokenClaims // shared: read, never written
	ath string
}

func (c *tokenCache) get(tok string) *tokenEntry {
	if v, ok := c.m.Load(tok); ok {
		return v.(*tokenEntry)
	}
	return nil
}

func (c *tokenCache) put(tok string, e *tokenEntry) {
	if c.n.Load() >= c.max {
		c.m.Clear()
		c.n.Store(0)
	}
	if _, loaded := c.m.LoadOrStore(tok, e); !loaded {
		c.n.Add(1)
	}
}

// IssueToken answers POST /v1/token: the request carries a DPoP proof signed
// by an approved device key, and gets an access token bound to that key.
// Refreshing is the same call with a new proof, so it needs the device key.
func (s *Service) IssueToken(r *http.Request) (*sekisho.TokenResponse, error) {
	if err := s.refuseQuarantinedKey(r); err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	if len(r.Header.Values(HeaderDPoP)) == 0 {
		// No proof: a service over mTLS gets a certificate-bound token.
		if key, ok, err := s.CertKey(r); ok {
			if err != nil {
				return nil, err
			}
			return s.issueCertToken(r, key, now)
		}
	}
	v, err := s.checkProof(r, "", now)
	if err != nil {
		return nil, err
	}
	d, p, err := s.deviceState(r.Context(), v.Thumbprint)
	if err != nil {
		return nil, err
	}
	// A person who signed in through the IdP: the IdP renews the session
	// first, and refuses a person it disabled.
	if p, err = s.renewSession(r.Context(), d, p); err != nil {
		return nil, err
	}
	tok, exp := s.mintToken(d, now)
	return &sekisho.TokenResponse{AccessToken: tok, TokenType: TokenType, ExpiresIn: int64(exp.Sub(now) / time.Second), ExpiresAt: exp.UTC(),
		Principal: p.ID, Org: p.Org, Device: d.ID}, nil
}

// ProofKey verifies the DPoP proof of a request that has no access token
// (device enrolment, bootstrap) and returns the key it proves possession of.
func (s *Service) ProofKey(r *http.Request) (dpop.JWK, error) {
	v, err := s.checkProof(r, "", s.cfg.Now())
	if err != nil {
		return dpop.JWK{}, err
	}
	return v.JWK, nil
}

// Authenticate implements httpapi.Authenticator: an access token in
// "Authorization: DPoP <token>", and a DPoP proof of the same key for this
// method and URL, fresh and never seen before; then the device, its
// principal and its org must be in good standing (state at most
// MaxCacheTTL old), and neither the principal nor the device quarantined
// (Config.Quarantine).
func (s *Service) Authenticate(r *http.Request) (sekisho.Caller, error) {
	c, err := s.authenticate(r)
	if err != nil || s.cfg.Quarantine == nil {
		return c, err
	}
	// A quarantined principal or device, or a token issued before a
	// quarantine of either (lifted or not), is refused. The credential was
	// valid: the caller is returned with the error, so that the refusal is
	// audited under its principal and device.
	if err := s.cfg.Quarantine.Quarantined(r.Context(), c.Principal, c.Device, c.TokenIssued); err != nil {
		return c, err
	}
	return c, nil
}

// refuseQuarantinedKey refuses a token request or a device enrolment made
// with a quarantined device key: the key of the request's DPoP proof (its
// signature checked, the proof not spent: the full check comes after), or
// without a proof, the key of the verified client certificate.
func (s *Service) refuseQuarantinedKey(r *http.Request) error {
	if s.cfg.Quarantine == nil {
		return nil
	}
	thumb := ""
	if v, err := dpop.Verify(r.Header.Get(HeaderDPoP)); err == nil {
		thumb = v.Thumbprint
	} else if r.Header.Get(HeaderDPoP) == "" {
		if k, ok, err := s.CertKey(r); ok && err == nil {
			thumb = k.Thumbprint()
		}
	}
	if thumb == "" {
		return nil
	}
	return s.cfg.Quarantine.Quarantined(r.Context(), "", thumb, time.Time{})
}

func (s *Service) authenticate(r *http.Request) (sekisho.Caller, error) {
	now := s.cfg.Now()
	h := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(h, " ")
	switch {
	case h == "":
		return sekisho.Caller{}, sekisho.TypedErrorf(sekisho.EUnauthorized, "credential-missing",
			"send a device-bound credential: Authorization: DPoP <token> and a DPoP proof (sekisho login, then sekisho api)")
	case strings.EqualFold(scheme, "bearer"):
		// Only a certificate-bound token (RFC 8705) is a Bearer token here.
		return s.authenticateCert(r, tok, now)
	case !strings.EqualFold(scheme, TokenType):
		return sekisho.Caller{}, sekisho.TypedErrorf(sekisho.EUnauthorized, "credential-invalid", "unknown authorization scheme %q; use DPoP", scheme)
	}
	tok = strings.TrimSpace(tok)
	tc, ath, err := s.readToken(tok, now)
	if err != nil {
		return sekisho.Caller{}, err
	}
	v, err := s.checkProof(r, ath, now)
	if err != nil {
		return sekisho.Caller{}, err
	}
	if tc.Cnf.JKT == "" || v.Thumbprint != tc.Cnf.JKT {
		// The token's MAC checked out: it is this principal's and device's
		// token, used with another key (stolen). The refusal is returned with
		// them, so that it is audited as their denied attempt and an
		// incident's scope of the suspect counts it.
		return sekisho.Caller{Principal: tc.Sub, Org: tc.Org, Device: tc.Dev}, sekisho.TypedErrorf(sekisho.EUnauthorized, "token-key-mismatch",
			"the access token is bound to another device key than the one that signed the proof")
	}
	d, p, err := s.deviceState(r.Context(), tc.Dev)
	if err != nil {
		return sekisho.Caller{}, err
	}
	return sekisho.Caller{Principal: p.ID, Org: p.Org, Device: d.ID, Roles: append([]string(nil), p.Roles...), TokenIssued: tc.issued()}, nil
}

// Standing checks again, during a long request (an event stream), the
// credential c was authenticated with: its token not expired (its issue
// time plus the token lifetime), its device and principal still in good
// standing and the same, and role (if not "") still the principal's.
func (s *Service) Standing(ctx context.Context, c sekisho.Caller, role string) error {
	if !c.TokenIssued.IsZero() && !s.cfg.Now().Before(c.TokenIssued.Add(s.tokenTTL)) {
		return sekisho.TypedErrorf(sekisho.EUnauthorized, "token-expired", "the access token expired; get a new one with POST /v1/token and a fresh DPoP proof")
	}
	d, p, err := s.deviceState(ctx, c.Device)
	if err != nil {
		return err
	}
	if d.Principal != c.Principal || p.ID != c.Principal {
		return sekisho.TypedErrorf(sekisho.EUnauthorized, "device-revoked", "device %s is no longer %s's", d.ID, c.Principal)
	}
	if role != "" && !slices.Contains(p.Roles, role) {
		return sekisho.TypedErrorf(sekisho.EForbidden, role+"-required", "%s no longer holds the role %s", p.ID, role)
	}
	return nil
}

// issued is the token's issue time, zero when it has none.
func (tc *tokenClaims) issued() time.Time {
	if tc.IAT == 0 {
		return time.Time{}
	}
	return time.Unix(tc.IAT, 0)
}

// RequestURL is the htu a proof must carry for r: scheme, host and path,
// or, when the service has a public URL (it runs behind a proxy), that URL
// followed by the path.
func (s *Service) RequestURL(r *http.Request) string {
	if s.publicURL != "" {
		return s.publicURL + r.URL.EscapedPath()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}

// BaseURL is the URL clients reach the server at: the public URL, or the
// scheme and host of r.
func (s *Service) BaseURL(r *http.Request) string {
	if s.publicURL != "" {
		return s.publicURL
	}
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// CertBoundTokens reports whether the service issues certificate-bound
// tokens (RFC 8705) to clients that present a TLS client certificate.
func (s *Service) CertBoundTokens() bool { return s.cfg.ClientCertificates }

// isRequestURL reports whether htu == s.RequestURL(r), without building it.
func (s *Service) isRequestURL(htu string, r *http.Request) bool {
	var rest string
	var ok bool
	if s.publicURL != "" {
		// Behind a proxy the Host header and the scheme the server sees are
		// the proxy's choice: only the public URL counts.
		rest, ok = strings.CutPrefix(htu, s.publicURL)
	} else {
		scheme := "http://"
		if r.TLS != nil {
			scheme = "https://"
		}
		if rest, ok = strings.CutPrefix(htu, scheme); ok {
			rest, ok = strings.CutPrefix(rest, r.Host)
		}
	}
	return ok && rest == r.URL.EscapedPath()
}

// checkProof verifies the DPoP proof of r: signature, method, URL, time
// window, access token hash (when ath, the hash of the request's access
// token, is not "") and uniqueness of its jti.
func (s *Service) checkProof(r *http.Request, ath string, now time.Time) (*dpop.Verified, error) {
	vals := r.Header.Values(HeaderDPoP)
	if len(vals) != 1 {
		return nil, sekisho.TypedErrorf(sekisho.EUnauthorized, "dpop-proof-missing", "send exactly one DPoP header: a proof signed by the device key (RFC 9449)")
	}
	v, err := s.keys.Verify(vals[0])
	if err != nil {
		return nil, sekisho.TypedErrorf(sekisho.EUnauthorized, "dpop-proof-invalid", "the DPoP proof is not valid: %v", err)
	}
	if v.HTM != r.Method || !s.isRequestURL(v.HTU, r) {
		return nil, sekisho.TypedErrorf(sekisho.EUnauthorized, "dpop-proof-mismatch",
			"the DPoP proof is for %s %s, not this request %s %s", v.HTM, v.HTU, r.Method, s.RequestURL(r))
	}
	if err := s.checkNonce(v, now); err != nil {
		return nil, err
	}
	iat := time.Unix(v.IAT, 0)
	if iat.Before(now.Add(-s.proofWin)) || iat.After(now.Add(5*time.Second)) {
		return nil, sekisho.TypedErrorf(sekisho.EUnauthorized, "dpop-proof-stale",
			"the DPoP proof was made at %s, outside the accepted window of %s (check the clock)", iat.UTC().Format(time.RFC3339), s.proofWin)
	}
	if ath != "" && !hmac.Equal([]byte(v.ATH), []byte(ath)) {
		return nil, sekisho.TypedErrorf(sekisho.EUnauthorized, "dpop-proof-invalid", "the DPoP proof's ath does not match the access token")
	}
	// The jti is remembered for the proof window plus the allowed skew, so a
	// proof can be used once: first in this process (a cheap refusal of a
	// local replay), then in the store, which every node shares and which
	// survives a restart.
	until := iat.Add(s.proofWin + 5*time.Second)
	replayed := sekisho.TypedErrorf(sekisho.EUnauthorized, "dpop-proof-replayed", "this DPoP proof was already used; make a new proof for every request")
	h := sha256.New()
	h.Write([]byte("sekisho dpop jti\x00"))
	h.Write([]byte(v.Thumbprint))
	h.Write([]byte{0})
	h.Write([]byte(v.JTI))
	var key [sha256.Size]byte
	h.Sum(key[:0])
	switch s.replay.add(key, until, now) {
	case replaySeen:
		return nil, replayed
	case replayFull:
		return nil, sekisho.TypedErrorf(sekisho.EUnavailable, "replay-cache-full", "too many requests to check for replay; retry shortly")
	}
	if s.cfg.Replay != nil {
		fresh, err := s.cfg.Replay.UseOnce(r.Context(), key[:], until, now)
		if sekisho.IsStorageFull(err) {
			return nil, err // fail closed, and say why: the disk is full
		}
		if err != nil {
			// Fail closed: a proof that cannot be checked is not accepted.
			return nil, &sekisho.Error{Code: sekisho.EUnavailable, Type: "replay-state-unavailable",
				Message: "the replay state cannot be checked; retry shortly", Err: err}
		}
		if !fresh {
			return nil, replayed
		}
	}
	return v, nil
}

// deviceState returns an approved device and its active principal, both
// of an active org, or the error that says which one is not.
func (s *Service) deviceState(ctx context.Context, id string) (*Device, *Principal, error) {
	d, err := cachedGet[Device](ctx, s, sekisho.KindDevice, id)
	if sekisho.Code(err) == sekisho.ENotFound {
		return nil, nil, sekisho.TypedErrorf(sekisho.EUnauthorized, "device-unknown", "device key %s is not enrolled (sekisho login)", id)
	}
	if err != nil {
		return nil, nil, err
	}
	switch d.Status {
	case StatusPending:
		return nil, nil, sekisho.TypedErrorf(sekisho.EUnauthorized, "device-not-approved",
			"device %s of %s is enrolled but not yet approved: ask an admin of %s to run: sekisho device approve -- %s", d.ID, d.Principal, d.Org, d.ID)
	case StatusRevoked:
		return nil, nil, sekisho.TypedErrorf(sekisho.EUnauthorized, "device-revoked", "device %s was revoked", d.ID)
	case StatusApproved:
		if d.ExpiresAt != nil && !s.cfg.Now().Before(*d.ExpiresAt) {
			return nil, nil, sekisho.TypedErrorf(sekisho.EUnauthorized, ProblemDeviceExpired,
				"the sign-in session of device %s ended at %s; sign in again", d.ID, d.ExpiresAt.UTC().Format(time.RFC3339))
		}
	default:
		return nil, nil, sekisho.TypedErrorf(sekisho.EUnauthorized, "device-revoked", "device %s is %s", d.ID, d.Status)
	}
	p, err := cachedGet[Principal](ctx, s, sekisho.KindPrincipal, d.Principal)
	if sekisho.Code(err) == sekisho.ENotFound {
		return nil, nil, sekisho.TypedErrorf(sekisho.EUnauthorized, "principal-revoked", "principal %s no longer exists", d.Principal)
	}
	if err != nil {
		return nil, nil, err // the store, not the principal: 503, retried
	}
	if p.Status != StatusActive {
		return nil, nil, sekisho.TypedErrorf(sekisho.EUnauthorized, "principal-revoked", "principal %s was revoked", p.ID)
	}
	o, err := cachedGet[Org](ctx, s, sekisho.KindOrg, p.Org)
	if err != nil && sekisho.Code(err) != sekisho.ENotFound {
		return nil, nil, err // the store, not the org: 503, retried
	}
	if err != nil || o.Status != StatusActive {
		return nil, nil, sekisho.TypedErrorf(sekisho.EUnauthorized, "org-suspended", "org %s is not active", p.Org)
	}
	return d, p, nil
}
