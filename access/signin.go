package access

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access/dpop"
)

// Single sign-on for people: the company's identity provider (OpenID
// Connect) proves who signs in, the device key (a DPoP proof) proves from
// where. The token endpoint redeems the IdP's grant (an authorization code
// with its PKCE verifier, or a device code) through an IdentityProvider,
// maps the person to a principal and roles, enrols or reuses the device
// key, and keeps the IdP's refresh token (sealed) as the device's sign-in
// session. Every later token refresh of that device renews the session at
// the IdP first: a person the IdP disabled is refused there.

// Identity is a person as the identity provider vouches for them, mapped
// to sekisho's principal, org and roles.
type Identity struct {
	// Issuer and Subject name the person at the IdP (the ID token's iss
	// and sub, verified).
	Issuer, Subject string
	// Principal, Org and Roles are the mapping's answer; Name is shown.
	Principal, Org, Name string
	Roles                []string
	// Bind says the mapping names this subject for Principal explicitly,
	// so an existing principal that no IdP subject holds yet may be bound
	// to it. A principal derived from a claim never takes over one that
	// exists without this subject.
	Bind bool
	// RefreshToken is the IdP's refresh token ("" when it gave none): kept
	// sealed, never returned, never logged.
	RefreshToken string
}

// IdentityProvider redeems sign-in grants at the IdP and renews sessions
// there (package sso implements it with OpenID Connect).
type IdentityProvider interface {
	// SignIn redeems the grant of a token request form (grant_type
	// authorization_code with code, code_verifier, redirect_uri and
	// nonce; or the device_code grant) and returns the verified identity.
	// A device code not yet approved is an error of type
	// ProblemAuthorizationPending (or ProblemSlowDown).
	SignIn(ctx context.Context, grant url.Values) (*Identity, error)
	// Refresh renews a session with the IdP's refresh token: the person
	// again, or an error when the IdP refuses (disabled, signed out).
	Refresh(ctx context.Context, refreshToken string) (*Identity, error)
	// Issuer, ClientID and Scopes are published in the server metadata,
	// so that clients find the IdP and ask it for the right scopes.
	Issuer() string
	ClientID() string
	Scopes() []string
}

// Problem types of the sign-in grants. The first four are RFC 8628's
// device flow errors, relayed from the IdP.
const (
	ProblemAuthorizationPending = "authorization-pending"
	ProblemSlowDown             = "slow-down"
	ProblemExpiredToken         = "expired-token"
	ProblemAccessDenied         = "access-denied"
	// ProblemSignInRefused: the IdP refused the grant or the ID token did
	// not verify (issuer, audience, nonce, expiry, signature).
	ProblemSignInRefused = "sign-in-refused"
	// ProblemSignInUnmapped: the person has no principal or no role in
	// the mapping.
	ProblemSignInUnmapped = "sign-in-unmapped"
	// ProblemSignInConflict: the mapped principal exists and is not this
	// person's (another subject, or a principal that never signed in
	// through the IdP and that the mapping does not name explicitly).
	ProblemSignInConflict = "sign-in-conflict"
	// ProblemSessionRefused: at a token refresh the IdP refused to renew
	// the person's session (disabled, signed out, session expired).
	ProblemSessionRefused = "sign-in-session-refused"
)

// session is a device's sign-in session: who the IdP said it is and the
// IdP's refresh token, sealed under a key derived from the token key.
type session struct {
	Device    string    `json:"device"`
	Principal string    `json:"principal"`
	Issuer    string    `json:"issuer"`
	Subject   string    `json:"subject"`
	Sealed    []byte    `json:"sealed_refresh_token,omitempty"`
	SignedIn  time.Time `json:"signed_in_at"`
	Refreshed time.Time `json:"refreshed_at"`
	// Claim is held, until ClaimUntil, by the one token request that is
	// redeeming the refresh token at the IdP (see renewSession).
	Claim      string    `json:"claim,omitempty"`
	ClaimUntil time.Time `json:"claim_until,omitzero"`
	// Ended says why the IdP refused to renew the session: it is over
	// (the refresh token erased) until the person signs in again.
	Ended string `json:"ended,omitempty"`
}

// IdentityLink is the IdP identity a principal signs in as.
type IdentityLink struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
}

// SignInEnabled reports whether people may sign in through an IdP.
func (s *Service) SignInEnabled() bool { return s.cfg.IdentityProvider != nil }

// IdP returns the configured identity provider, or nil.
func (s *Service) IdP() IdentityProvider { return s.cfg.IdentityProvider }

func (s *Service) sessionAEAD() cipher.AEAD {
	m := hmac.New(sha256.New, s.cfg.TokenKey)
	m.Write([]byte("sekisho sign-in session refresh token"))
	b, _ := aes.NewCipher(m.Sum(nil))
	g, _ := cipher.NewGCM(b)
	return g
}

func (s *Service) seal(device, secret string) []byte {
	if secret == "" {
		return nil
	}
	g := s.sessionAEAD()
	nonce := make([]byte, g.NonceSize())
	rand.Read(nonce)
	return g.Seal(nonce, nonce, []byte(secret), []byte(device))
}

func (s *Service) open(device string, sealed []byte) (string, error) {
	g := s.sessionAEAD()
	if len(sealed) < g.NonceSize() {
		return "", sekisho.Errorf(sekisho.EInternal, "the sign-in session of device %s is damaged", device)
	}
	b, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], []byte(device))
	if err != nil {
		return "", &sekisho.Error{Code: sekisho.EInternal, Message: "the sign-in session of device " + device + " does not open (another token key?)", Err: err}
	}
	return string(b), nil
}

// SignIn answers POST /v1/token with a sign-in grant (authorization_code,
// or urn:ietf:params:oauth:grant-type:device_code): the request's DPoP
// proof names the device key, the IdP names the person. It creates the
// mapped principal when it does not exist, updates its roles to the
// mapping's, enrols the key as an approved device of it (or reuses the
// device it already is), keeps the session and returns an access token
// bound to the key. The form's key_storage and device_name are the
// client's claim and label for a new device; c is the anonymous caller
// (request id, source) its audit events carry.
func (s *Service) SignIn(r *http.Request, c sekisho.Caller, grant url.Values) (*sekisho.TokenResponse, error) {
	// A quarantined device key signs in under no principal.
	if err := s.refuseQuarantinedKey(r); err != nil {
		return nil, err
	}
	idp := s.cfg.IdentityProvider
	if idp == nil {
		return nil, &sekisho.Error{Code: sekisho.EInvalid, Type: "unsupported-grant-type", Field: "grant_type",
			Message: "this server has no identity provider (serve --oidc-issuer URL --oidc-client-id ID); use grant_type=client_credentials"}
	}
	now := s.cfg.Now()
	v, err := s.checkProof(r, "", now)
	if err != nil {
		return nil, err
	}
	storage, err := checkKeyStorage(grant.Get("key_storage"))
	if err != nil {
		return nil, err
	}
	attested := false
	if raw := grant.Get("attestation"); raw != "" {
		// Evidence of where the key lives (a TPM key attestation, as at
		// enrolment), verified before the IdP is asked.
		var ev TPMEvidence
		if err := json.Unmarshal([]byte(raw), &ev); err != nil {
			return nil, &sekisho.Error{Code: sekisho.EInvalid, Type: ProblemAttestationInvalid, Field: "attestation", Message: "the attestation does not decode: " + err.Error()}
		}
		if storage != KeyStorageTPM {
			return nil, &sekisho.Error{Code: sekisho.EInvalid, Type: ProblemAttestationInvalid, Field: "key_storage",
				Message: "a TPM attestation attests key_storage tpm, not " + storage}
		}
		if err := s.VerifyTPMEvidence(&ev, v.JWK); err != nil {
			return nil, s.event(r.Context(), sekisho.Caller{Principal: "sign-in", Device: v.Thumbprint, Source: c.Source, RequestID: c.RequestID},
				"sign-in", "attestation refused, device "+v.Thumbprint, err)
		}
		attested = true
	}
	name := grant.Get("device_name")
	if len(name) > 100 {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "device_name", "device name is longer than 100 characters")
	}
	ctx := r.Context()
	c.Principal, c.Device = "sign-in", v.Thumbprint
	id, err := idp.SignIn(ctx, grant)
	if err != nil {
		switch problemTypeOf(err) {
		case ProblemAuthorizationPending, ProblemSlowDown:
			return nil, err // the device flow's polling: not an attempt yet
		}
		return nil, s.event(ctx, c, "sign-in", "device "+v.Thumbprint, err)
	}
	c.Principal, c.Org = id.Principal, id.Org
	detail := "principal " + id.Principal + " subject " + id.Subject + " roles " + strings.Join(id.Roles, ",") + " device " + v.Thumbprint
	p, err := s.signInPrincipal(ctx, id)
	if err != nil {
		return nil, s.event(ctx, c, "sign-in", detail, err)
	}
	d, err := s.signInDevice(ctx, p, v.JWK, name, storage, attested, id.Issuer)
	if err != nil {
		return nil, s.event(ctx, c, "sign-in", detail, err)
	}
	c.Device = d.ID
	if err := s.putSession(ctx, d, id, true); err != nil {
		return nil, err
	}
	if err := s.event(ctx, c, "sign-in", detail, nil); err != nil {
		return nil, err
	}
	tok, exp := s.mintToken(d, now)
	return &sekisho.TokenResponse{AccessToken: tok, TokenType: TokenType, ExpiresIn: int64(s.tokenTTL / time.Second), ExpiresAt: exp.UTC(),
		Principal: p.ID, Org: p.Org, Device: d.ID}, nil
}

func problemTypeOf(err error) string {
	var e *sekisho.Error
	if errors.As(err, &e) {
		return e.Type
	}
	return ""
}

// checkIdentity checks the mapping's answer.
func checkIdentity(id *Identity) error {
	if id.Subject == "" || id.Issuer == "" {
		return sekisho.TypedErrorf(sekisho.EUnauthorized, ProblemSignInRefused, "the identity provider named no subject")
	}
	if !ValidID(id.Principal) || !ValidID(id.Org) {
		return sekisho.TypedErrorf(sekisho.EForbidden, ProblemSignInUnmapped, "the sign-in mapping gives no valid principal and org for subject %s", id.Subject)
	}
	if len(id.Roles) == 0 {
		return sekisho.TypedErrorf(sekisho.EForbidden, ProblemSignInUnmapped,
			"subject %s (principal %s) is in no group that the sign-in mapping gives a role", id.Subject, id.Principal)
	}
	for _, r := range id.Roles {
		if !slices.Contains(Roles, r) {
			return sekisho.TypedErrorf(sekisho.EForbidden, ProblemSignInUnmapped, "the sign-in mapping gives an unknown role %q", r)
		}
	}
	return nil
}

// signInPrincipal finds or creates the principal of id and sets its roles
// to the mapping's.
func (s *Service) signInPrincipal(ctx context.Context, id *Identity) (*Principal, error) {
	if err := checkIdentity(id); err != nil {
		return nil, err
	}
	roles := slices.Clone(id.Roles)
	sort.Strings(roles)
	roles = slices.Compact(roles)
	link := &IdentityLink{Issuer: id.Issuer, Subject: id.Subject}
	p, version, err := get[Principal](ctx, s, sekisho.KindPrincipal, id.Principal)
	if sekisho.Code(err) == sekisho.ENotFound {
		o, _, err := get[Org](ctx, s, sekisho.KindOrg, id.Org)
		if err != nil || o.Status != StatusActive {
			return nil, sekisho.TypedErrorf(sekisho.EForbidden, ProblemSignInUnmapped, "the sign-in mapping names org %q, which does not exist or is not active", id.Org)
		}
		p = &Principal{ID: id.Principal, Org: id.Org, Name: id.Name, Kind: "person", Roles: roles, Status: StatusActive,
			CreatedAt: s.now(), CreatedBy: "sign-in:" + id.Issuer, Identity: link}
		if err := s.put(ctx, sekisho.KindPrincipal, p.ID, p.Org, 1, p); err != nil {
			return nil, err
		}
		return p, nil
	}
	if err != nil {
		return nil, err
	}
	bind := false
	switch {
	case p.Identity != nil && *p.Identity == *link:
	case p.Identity == nil && id.Bind:
		p.Identity, bind = link, true
	default:
		return nil, sekisho.TypedErrorf(sekisho.EForbidden, ProblemSignInConflict,
			"principal %s exists and is not subject %s of %s (name it under users in the sign-in mapping to bind it)", p.ID, id.Subject, id.Issuer)
	}
	if p.Org != id.Org {
		return nil, sekisho.TypedErrorf(sekisho.EForbidden, ProblemSignInConflict, "principal %s is of org %s, the mapping says %s", p.ID, p.Org, id.Org)
	}
	if p.Status != StatusActive {
		return nil, sekisho.TypedErrorf(sekisho.EUnauthorized, "principal-revoked", "principal %s was revoked", p.ID)
	}
	if slices.Equal(p.Roles, roles) && !bind {
		return p, nil
	}
	p.Roles = roles
	if err := s.put(ctx, sekisho.KindPrincipal, p.ID, p.Org, version+1, p); err != nil {
		return nil, err
	}
	return p, nil
}

// signInDevice returns the device of key for p: enrolled now, approved by
// the sign-in, or the approved device of p it already is.
func (s *Service) signInDevice(ctx context.Context, p *Principal, key dpop.JWK, name, storage string, attested bool, issuer string) (*Device, error) {
	key, err := key.Canonical()
	if err != nil {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "key", "%v", err)
	}
	now := s.now()
	version := int64(1)
	if d, v, err := get[Device](ctx, s, sekisho.KindDevice, key.Thumbprint()); err == nil {
		if d.expired(now) && d.Principal == p.ID {
			version = v + 1 // a pending enrolment of this person that expired: replaced
		} else if d.Principal != p.ID {
			return nil, errKeyKnown()
		} else if d.Status == StatusPending {
			// The IdP vouches for the person: their own pending enrolment
			// of this key is approved by the sign-in.
			d.Status, d.ApprovedAt, d.ApprovedBy = StatusApproved, &now, "sign-in:"+issuer
			if err := s.put(ctx, sekisho.KindDevice, d.ID, d.Org, v+1, d); err != nil {
				return nil, err
			}
			return d, nil
		} else if d.Status != StatusApproved {
			return nil, sekisho.TypedErrorf(sekisho.EUnauthorized, "device-revoked", "device %s was revoked; make a new key (sekisho login --oidc --force)", d.ID)
		} else {
			return d, nil
		}
	} else if sekisho.Code(err) != sekisho.ENotFound {
		return nil, err
	}
	d := &Device{ID: key.Thumbprint(), Principal: p.ID, Org: p.Org, Name: name, Key: key, Status: StatusApproved,
		EnrolledAt: now, ApprovedAt: &now, ApprovedBy: "sign-in:" + issuer, KeyStorage: storage, Attested: attested}
	if err := s.put(ctx, sekisho.KindDevice, d.ID, d.Org, version, d); err != nil {
		if sekisho.Code(err) == sekisho.EConflict {
			err = errKeyKnown()
		}
		return nil, err
	}
	return d, nil
}

// putSession stores the sign-in session of d (fresh: a new sign-in).
func (s *Service) putSession(ctx context.Context, d *Device, id *Identity, fresh bool) error {
	now := s.now()
	old, version, err := get[session](ctx, s, sekisho.KindSignInSession, d.ID)
	if err != nil && sekisho.Code(err) != sekisho.ENotFound {
		return err
	}
	ss := &session{Device: d.ID, Principal: d.Principal, Issuer: id.Issuer, Subject: id.Subject, SignedIn: now, Refreshed: now,
		Sealed: s.seal(d.ID, id.RefreshToken)}
	if old != nil && !fresh {
		ss.SignedIn = old.SignedIn
	}
	return s.put(ctx, sekisho.KindSignInSession, d.ID, d.Org, version+1, ss)
}

// sessionClaimTTL bounds how long one token request may hold a sign-in
// session's claim while it redeems the refresh token at the IdP (the IdP
// client's timeouts: the token request and the userinfo request); a claim
// older than that is taken over (its holder died).
const sessionClaimTTL = 35 * time.Second

// renewSession is called at every token refresh of device d: a device
// with a sign-in session renews it at the IdP, which refuses a person it
// disabled; the principal's roles follow the mapping. A device without a
// session (enrolled with sekisho login --principal) is not concerned.
//
// Concurrent refreshes of one device (two processes of one profile, two
// nodes) redeem the session's refresh token once: the first claims the
// session (a versioned write, so across nodes) and goes to the IdP; the
// others wait for its outcome and share it (a token if the IdP renewed
// the session, the refusal if not). So an IdP that rotates refresh tokens
// never sees one of ours twice.
//
// When the IdP refuses the refresh token (invalid_grant: the person is
// disabled, the session was revoked, or the token was used already, the
// reuse RFC 9700 §4.14.2 treats as a theft), the session ends for good:
// the sealed token is erased and every later refresh of the device is
// refused at once, without asking the IdP, until the person signs in again
// (sekisho login --oidc). That is RFC 9700's revocation of the token
// family on our side; the device key itself is not revoked (the token was
// never on it).
//
// A device of a principal bound to an IdP identity that has no session of
// its own (enrolled with sekisho login --principal and approved by an
// admin, before or beside the sign-ins) renews the person's most recently
// renewed live session of another device instead: the IdP is asked about
// the person at its refreshes too. With no live session left (every one
// refused by the IdP) it is refused until the person signs in again.
func (s *Service) renewSession(ctx context.Context, d *Device, p *Principal) (*Principal, error) {
	if p.Identity == nil {
		return p, nil // never signed in through an IdP: no session to look up
	}
	c := sekisho.Caller{Principal: p.ID, Org: p.Org, Device: d.ID}
	detail := "principal " + p.ID + " device " + d.ID
	refused := func(why string) error {
		return s.event(ctx, c, "sign-in.refresh", detail, sekisho.TypedErrorf(sekisho.EUnauthorized, ProblemSessionRefused,
			"the identity provider did not renew the sign-in of %s: %s; sign in again with sekisho login --oidc", p.ID, why))
	}
	sid := d.ID // the device whose session is renewed
	if _, _, err := get[session](ctx, s, sekisho.KindSignInSession, d.ID); sekisho.Code(err) == sekisho.ENotFound {
		all, err := list[session](ctx, s, sekisho.KindSignInSession, d.Org)
		if err != nil {
			return nil, err
		}
		var best *session
		for _, o := range all {
			if o.Principal == p.ID && o.Ended == "" && (best == nil || o.Refreshed.After(best.Refreshed)) {
				best = o
			}
		}
		if best == nil {
			return nil, refused("device " + d.ID + " has no sign-in session and " + p.ID + " has no live one left")
		}
		sid = best.Device
		detail += " (through the session of device " + sid + ")"
	} else if err != nil {
		return nil, err
	}
	base := detail
	begun := s.now()
	waited := false
	deadline := time.Now().Add(sessionClaimTTL + 5*time.Second)
	var (
		ss      *session
		version int64
		claim   string
	)
	for {
		var err error
		ss, version, err = get[session](ctx, s, sekisho.KindSignInSession, sid)
		if sekisho.Code(err) == sekisho.ENotFound {
			return p, nil
		}
		if err != nil {
			return nil, err
		}
		detail = base + " subject " + ss.Subject
		if ss.Ended != "" {
			return nil, refused("the sign-in session ended (" + ss.Ended + ")")
		}
		claimed := ss.Claim != "" && s.now().Before(ss.ClaimUntil)
		if waited && !claimed && !ss.Refreshed.Before(begun) {
			// A concurrent request renewed the session at the IdP after
			// this one began: its answer is this one's too.
			np, _, err := get[Principal](ctx, s, sekisho.KindPrincipal, p.ID)
			if err != nil {
				return nil, err
			}
			if np.Status != StatusActive {
				return nil, s.event(ctx, c, "sign-in.refresh", detail, sekisho.TypedErrorf(sekisho.EUnauthorized, "principal-revoked", "principal %s was revoked", p.ID))
			}
			return np, s.event(ctx, c, "sign-in.refresh", detail+" roles "+strings.Join(np.Roles, ",")+" (renewed by a concurrent refresh)", nil)
		}
		if !claimed {
			var b [12]byte
			rand.Read(b[:])
			claim = b64.EncodeToString(b[:])
			ss.Claim, ss.ClaimUntil = claim, s.now().Add(sessionClaimTTL)
			err := s.put(ctx, sekisho.KindSignInSession, sid, d.Org, version+1, ss)
			if err == nil {
				version++
				break
			}
			if sekisho.Code(err) != sekisho.EConflict {
				return nil, err
			}
		}
		// Another request holds the session (or took it first): wait
		// for its outcome.
		waited = true
		if time.Now().After(deadline) {
			return nil, sekisho.TypedErrorf(sekisho.EUnavailable, "sign-in-session-busy", "another token request of device %s is renewing its sign-in at the identity provider; retry shortly", d.ID)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	// This request holds the claim: it redeems the refresh token, then
	// writes the outcome and releases the claim.
	release := func(end string) error {
		ss.Claim, ss.ClaimUntil = "", time.Time{}
		if end != "" {
			ss.Ended, ss.Sealed = end, nil
		}
		return s.put(ctx, sekisho.KindSignInSession, sid, d.Org, version+1, ss)
	}
	end := func(why string) error {
		if err := release(why); err != nil {
			return err
		}
		return refused(why)
	}
	idp := s.cfg.IdentityProvider
	if idp == nil || idp.Issuer() != ss.Issuer {
		return nil, end("this server no longer trusts the identity provider " + ss.Issuer)
	}
	if len(ss.Sealed) == 0 {
		return nil, end("it gave no refresh token")
	}
	rt, err := s.open(sid, ss.Sealed)
	if err != nil {
		release("")
		return nil, err
	}
	id, err := idp.Refresh(ctx, rt)
	if err != nil {
		if sekisho.Code(err) == sekisho.EUnavailable || sekisho.Code(err) == sekisho.EInternal {
			// The IdP is down: 503, retried; not the person's refusal,
			// and the session stays.
			if rerr := release(""); rerr != nil {
				return nil, rerr
			}
			return nil, err
		}
		return nil, end(sekisho.Message(err))
	}
	if id.Subject != ss.Subject || id.Issuer != ss.Issuer {
		return nil, end("it answered for another subject")
	}
	if id.Principal != p.ID {
		return nil, end("the mapping now gives principal " + id.Principal)
	}
	if id.RefreshToken == "" {
		id.RefreshToken = rt // the IdP did not rotate it
	}
	ss.Sealed = s.seal(sid, id.RefreshToken)
	np, err := s.signInPrincipal(ctx, id)
	if err != nil {
		// Refused here (unmapped now, revoked): the IdP's new refresh
		// token is kept, the session stays.
		if rerr := release(""); rerr != nil {
			return nil, rerr
		}
		return nil, s.event(ctx, c, "sign-in.refresh", detail, err)
	}
	ss.Refreshed = s.now()
	if err := release(""); err != nil {
		return nil, err
	}
	return np, s.event(ctx, c, "sign-in.refresh", detail+" roles "+strings.Join(np.Roles, ","), nil)
}
