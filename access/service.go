package access

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access/dpop"
)

// MaxCacheTTL is the longest any cached device, principal, org, grant or
// policy state may be used: a revocation made on any node takes effect on
// every node within it.
const MaxCacheTTL = time.Second

// Config configures a Service.
type Config struct {
	Store sekisho.ObjectStore
	// Schema returns a collection's schema (the vault's, cached).
	Schema func(ctx context.Context, collection string) (*sekisho.Schema, error)
	Audit  sekisho.Auditor
	// TokenKey MACs access tokens (at least 32 bytes). Nodes that serve one
	// store share it; it is derived from the keyring, never stored.
	TokenKey []byte
	// BootstrapToken is the token the first serve wrote; it enrols the
	// first admin and is then spent. Only its hash is kept.
	BootstrapToken string
	// RootOrg is the org of the first admin (the operator); RootRegion its
	// home region (default "jp").
	RootOrg    string
	RootRegion string
	Purposes   []string // default DefaultPurposes
	// Regions are the residency regions a grant may name (default
	// sekisho.DefaultRegions).
	Regions []string
	Now     func() time.Time
	// CacheTTL is how long state is cached (default 500ms, at most MaxCacheTTL).
	CacheTTL time.Duration
	// TokenTTL is the lifetime of access tokens (default 5 minutes).
	TokenTTL time.Duration
	// ProofWindow is how far a proof's iat may lie in the past (default 60s);
	// the replay cache keeps a jti for as long.
	ProofWindow time.Duration
	// Replay keeps the ids of used proofs for every node that shares the
	// store, across restarts (default: Store, when it is a
	// sekisho.ReplayStore). Without one, replay state is this process's only.
	Replay sekisho.ReplayStore
	// MaxReplayEntries bounds the replay cache (default 1<<20).
	MaxReplayEntries int
	// MaxKeyEntries bounds the cache of parsed device keys (proof headers,
	// default dpop.DefaultKeyCacheEntries); MaxTokenEntries the cache of
	// access tokens whose MAC checked out (default 1<<14).
	MaxKeyEntries, MaxTokenEntries int
	// PublicURL, when set, is the URL clients reach the server at
	// (https://vault.example.jp behind a TLS-terminating proxy): proofs'
	// htu is checked against it followed by the request's path, and a
	// proof for the URL the server itself sees is refused.
	PublicURL string
	// RequireNonce makes every DPoP proof carry a current server nonce
	// (RFC 9449 §8-9): a proof without one is refused with
	// dpop-nonce-required (use_dpop_nonce) and the nonce to use.
	RequireNonce bool
	// ClientCertificates is set when the listener asks for TLS client
	// certificates (--client-ca): a device can then be a certificate's key,
	// and gets certificate-bound tokens (RFC 8705).
	ClientCertificates bool
	// DeviceDefault is the device requirement (any, hardware-bound,
	// attested) of orgs that set none of their own, across orgs and for
	// sensitive fields; "" is hardware-bound.
	DeviceDefault string
	// Alert raises an alert that no request's caller raised (a stored
	// policy that no longer compiles) through the guard's alert channels
	// (guard.Guard.Raise); nil: the failure is only logged and audited.
	Alert func(ctx context.Context, rule, org, detail string)
	// Quarantine refuses quarantined principals and device keys (the
	// guard): at authentication, token issuance and device enrolment. Nil:
	// nothing is quarantined (no guard runs).
	Quarantine Quarantine
	// TPMRoots are the trusted roots of TPM endorsement key certificates
	// (the TPM manufacturers' CAs): a TPM key attestation is verified
	// against them (nil: attestations are refused, attestation-invalid).
	TPMRoots *x509.CertPool
	// IdentityProvider, when set, lets people sign in through the
	// company's OpenID Connect provider (serve --oidc-issuer): the token
	// endpoint's authorization_code and device_code grants, and the
	// renewal of the sign-in session at every refresh of their devices.
	IdentityProvider IdentityProvider
}

// Quarantine says whether the guard has quarantined a principal or a device
// key: an error (problem type quarantined) when principal or device is
// quarantined, or when a token issued at issued predates a quarantine of
// either, lifted or not. An empty principal or device, or a zero issued,
// is not checked. guard.Guard implements it.
type Quarantine interface {
	Quarantined(ctx context.Context, principal, device string, issued time.Time) error
}

// Service is the access control plane: orgs, principals, devices, grants
// and policies, the DPoP authenticator and the Cedar authoriser.
type Service struct {
	cfg       Config
	store     sekisho.ObjectStore
	bootHash  [32]byte
	purposes  map[string]bool
	regions   map[string]bool
	validator *validate.Validator
	replay    *replayCache
	keys      *dpop.KeyCache
	tokens    *tokenCache
	cache     *stateCache
	snap      snapshotCache
	entities  callerEntities
	cacheTTL  time.Duration
	tokenTTL  time.Duration
	proofWin  time.Duration
	rootOrg   string
	rootRegio string
	publicURL string
	nonceKey  []byte
	nonce     atomic.Pointer[currentNonce]
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if len(cfg.TokenKey) < 32 {
		return nil, fmt.Errorf("access: token key must be at least 32 bytes")
	}
	if err := checkDeviceLevel("device requirement default", cfg.DeviceDefault); err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Purposes) == 0 {
		cfg.Purposes = DefaultPurposes
	}
	if len(cfg.Regions) == 0 {
		cfg.Regions = sekisho.DefaultRegions
	}
	if cfg.Replay == nil {
		cfg.Replay, _ = cfg.Store.(sekisho.ReplayStore)
	}
	val, err := newValidator()
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, store: cfg.Store, purposes: map[string]bool{}, regions: map[string]bool{}, validator: val, rootOrg: cfg.RootOrg, rootRegio: cfg.RootRegion,
		cacheTTL: cfg.CacheTTL, tokenTTL: cfg.TokenTTL, proofWin: cfg.ProofWindow}
	if s.rootOrg == "" {
		s.rootOrg = "operator"
	}
	if cfg.PublicURL != "" {
		u, err := ParsePublicURL(cfg.PublicURL)
		if err != nil {
			return nil, err
		}
		s.publicURL = u
	}
	if s.rootRegio == "" {
		s.rootRegio = "jp"
	}
	if s.cacheTTL <= 0 {
		s.cacheTTL = 500 * time.Millisecond
	}
	s.cacheTTL = min(s.cacheTTL, MaxCacheTTL)
	if s.tokenTTL <= 0 {
		s.tokenTTL = 5 * time.Minute
	}
	if s.proofWin <= 0 {
		s.proofWin = time.Minute
	}
	if cfg.MaxReplayEntries <= 0 {
		cfg.MaxReplayEntries = 1 << 20
	}
	for _, p := range cfg.Purposes {
		s.purposes[p] = true
	}
	for _, r := range cfg.Regions {
		s.regions[r] = true
	}
	if cfg.BootstrapToken != "" {
		s.bootHash = sha256.Sum256([]byte(cfg.BootstrapToken))
	}
	s.nonceKey = s.nonceKeyFrom(cfg.TokenKey)
	s.replay = newReplayCache(cfg.MaxReplayEntries)
	s.keys = dpop.NewKeyCache(cfg.MaxKeyEntries)
	if cfg.MaxTokenEntries <= 0 {
		cfg.MaxTokenEntries = 1 << 14
	}
	s.tokens = &tokenCache{max: int64(cfg.MaxTokenEntries)}
	s.cache = newStateCache(s.cacheTTL, cfg.Now)
	return s, nil
}

// KnownPurpose reports whether p is a purpose of this instance.
func (s *Service) KnownPurpose(p string) bool { return s.purposes[p] }

// RootOrg returns the id of the org that runs the instance.
func (s *Service) RootOrg() string { return s.rootOrg }

// ParsePublicURL checks a public URL (an absolute http or https URL with
// no query, fragment or user) and returns it without a trailing slash.
func ParsePublicURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("public URL %q: want an absolute https:// URL such as https://vault.example.jp", raw)
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// get loads and decodes one object, uncached.
func get[T any](ctx context.Context, s *Service, kind, id string) (*T, int64, error) {
	o, err := s.store.GetObject(ctx, kind, id)
	if err != nil {
		if sekisho.Code(err) == sekisho.ENotFound {
			return nil, 0, sekisho.Errorf(sekisho.ENotFound, "%s %q not found", kind, id)
		}
		return nil, 0, err
	}
	v, err := decode[T](o)
	return v, o.Version, err
}

func list[T any](ctx context.Context, s *Service, kind, org string) ([]*T, error) {
	objs, err := s.store.ListObjects(ctx, kind, org)
	if err != nil {
		return nil, err
	}
	out := make([]*T, 0, len(objs))
	for _, o := range objs {
		v, err := decode[T](o)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// put stores v as version (1 creates; an existing object is EConflict) and
// drops any cached copy.
func (s *Service) put(ctx context.Context, kind, id, org string, version int64, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	err = s.store.PutObject(ctx, &sekisho.Object{Kind: kind, ID: id, Org: org, Version: version, Body: b, Updated: s.now()})
	s.cache.drop(kind, id)
	if kind == sekisho.KindGrant || kind == sekisho.KindPolicy {
		s.snap.invalidate()
	}
	if sekisho.Code(err) == sekisho.EConflict {
		if version == 1 {
			return sekisho.TypedErrorf(sekisho.EConflict, "already-exists", "%s %q already exists", kind, id)
		}
		return sekisho.Errorf(sekisho.EConflict, "%s %q changed concurrently; retry", kind, id)
	}
	return err
}

// event records one control-plane decision; an admin action is refused when
// it cannot be audited.
func (s *Service) event(ctx context.Context, c sekisho.Caller, action, detail string, err error) error {
	ev := sekisho.Event{Time: s.now(), RequestID: c.RequestID, ClientRequestID: c.ClientRequestID, Org: c.Org, Principal: c.Principal, Device: c.Device,
		Source: c.Source, Purpose: c.Purpose, Action: action, Decision: sekisho.Allow, Policy: "access-admin", Detail: detail}
	if err != nil {
		ev.Decision = sekisho.Deny
		ev.Reason = sekisho.Message(err)
	}
	if s.cfg.Audit == nil {
		return err
	}
	if _, aerr := s.cfg.Audit.Append(ctx, ev); aerr != nil {
		return &sekisho.Error{Code: sekisho.EUnavailable, Message: "the audit log is unavailable; nothing was changed", Err: aerr}
	}
	return err
}

// isRootAdmin reports whether c is an admin of the org that runs the instance.
func (s *Service) isRootAdmin(c sekisho.Caller) bool {
	return c.Org == s.rootOrg && c.HasRole(RoleAdmin)
}

// seesAll reports whether c may list every org's control-plane objects.
func (s *Service) seesAll(c sekisho.Caller) bool { return s.isRootAdmin(c) || c.HasRole(RoleAuditor) }

func errAdmin(what string) error {
	return sekisho.TypedErrorf(sekisho.EForbidden, "admin-required", "%s needs an admin of the org concerned", what)
}

func errScope(org string) error {
	return sekisho.TypedErrorf(sekisho.EForbidden, "org-scope-forbidden", "you may list only your own org's objects, not org %q's", org)
}

// requireAdminOf checks that c is an admin of org (or of the root org when
// rootToo).
func (s *Service) requireAdminOf(c sekisho.Caller, org, what string, rootToo bool) error {
	if c.HasRole(RoleAdmin) && (c.Org == org || (rootToo && s.isRootAdmin(c))) {
		return nil
	}
	return errAdmin(what)
}

// stateCache keeps devices, principals and orgs for at most ttl, so that
// authentication costs no store round trip on most requests while a
// revocation on another node is seen within ttl.
type stateCache struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	m   map[stateKey]cached
}

type stateKey struct{ kind, id string }

type cached struct {
	v   any
	err error
	at  time.Time
}

func newStateCache(ttl time.Duration, now func() time.Time) *stateCache {
	return &stateCache{ttl: ttl, now: now, m: map[stateKey]cached{}}
}

func (c *stateCache) drop(kind, id string) {
	c.mu.Lock()
	delete(c.m, stateKey{kind, id})
	c.mu.Unlock()
}

func cachedGet[T any](ctx context.Context, s *Service, kind, id string) (*T, error) {
	k := stateKey{kind, id}
	now := s.cache.now()
	s.cache.mu.Lock()
	e, ok := s.cache.m[k]
	s.cache.mu.Unlock()
	if ok && now.Sub(e.at) < s.cache.ttl && now.Sub(e.at) >= 0 {
		if e.err != nil {
			return nil, e.err
		}
		return e.v.(*T), nil
	}
	v, _, err := get[T](ctx, s, kind, id)
	if err != nil && sekisho.Code(err) != sekisho.ENotFound {
		return nil, err // a store failure is not cached
	}
	s.cache.mu.Lock()
	if len(s.cache.m) > 100_000 {
		clear(s.cache.m)
	}
	s.cache.m[k] = cached{v: v, err: err, at: now}
	s.cache.mu.Unlock()
	return v, err
}
