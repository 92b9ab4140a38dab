// Package passkey signs persons in with WebAuthn passkeys (issue 16 point 5):
// the registration and authentication ceremonies of
// github.com/go-webauthn/webauthn, with their challenges kept server-side
// (single use, expiring), the persons' credentials, and the attestation of
// a new credential checked against configured roots.
//
// A passkey never signs API requests itself: every request stays signed by
// a DPoP device key. The browser makes a non-extractable WebCrypto key and
// proves it in every ceremony request; the ceremony binds that key:
//
//   - Registration (anonymous, like device enrolment): the person's new
//     passkey and the browser's key are enrolled together, the key as a
//     pending device with key_storage webauthn (attested when the passkey's
//     attestation verified). An admin's approval of that device approves the
//     passkey too.
//   - Sign-in: an assertion of an approved passkey enrols the session's new
//     key as an approved device of the passkey's principal (key_storage
//     webauthn, attested as the passkey), so it gets tokens at once.
//
// Both ceremonies are audited (passkey.register, passkey.login) and refused
// with stable problem types (see the Problem constants).
package passkey

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
)

// Problem types of the ceremonies.
const (
	// ProblemNotConfigured: the server has no WebAuthn relying party
	// (serve --webauthn-origin, or a loopback or --public-url default).
	ProblemNotConfigured = "webauthn-not-configured"
	// ProblemChallenge: the ceremony's challenge is unknown, used already
	// (each is single use) or expired.
	ProblemChallenge = "webauthn-challenge-invalid"
	// ProblemKeyMismatch: the ceremony was begun with another DPoP key.
	ProblemKeyMismatch = "webauthn-key-mismatch"
	// ProblemInvalid: the authenticator's response does not verify
	// (signature, challenge, origin, RP ID, user presence or verification).
	ProblemInvalid = "webauthn-invalid"
	// ProblemUnknownCredential: no passkey of that id is registered.
	ProblemUnknownCredential = "webauthn-credential-unknown"
	// ProblemNotApproved: the passkey's device was not approved (yet).
	ProblemNotApproved = "passkey-not-approved"
	// ProblemRevoked: the passkey was revoked.
	ProblemRevoked = "passkey-revoked"
	// ProblemCloned: the authenticator's signature counter did not grow
	// (a cloned authenticator, WebAuthn §6.1.1).
	ProblemCloned = "passkey-cloned"
	// ProblemKnown: that credential is registered already.
	ProblemKnown = "passkey-known"
)

// Object kinds this package owns.
const (
	KindPasskey  = "passkey"
	KindCeremony = "webauthn-ceremony"
)

// DefaultTTL is how long a ceremony's challenge may be answered.
const DefaultTTL = 5 * time.Minute

// DefaultSessionTTL is how long the device of a passkey sign-in (the
// browser's session key) gets tokens: a working day. Then the person signs
// in again.
const DefaultSessionTTL = 12 * time.Hour

// Access is what the ceremonies need of the access control plane
// (*access.Service).
type Access interface {
	PersonOrg(ctx context.Context, principal string) (string, error)
	EnrolWebAuthnDevice(ctx context.Context, c sekisho.Caller, principal, name string, attested bool, key dpop.JWK) (*access.Device, error)
	DeviceEverApproved(ctx context.Context, id, principal string) (bool, error)
	EnrolSignInDevice(ctx context.Context, c sekisho.Caller, principal, name string, attested bool, key dpop.JWK, passkey string, expires time.Time) (*access.Device, error)
	RevokeSignInDevices(ctx context.Context, c sekisho.Caller, org, passkeyID string) (int, error)
}

// Config configures a Service.
type Config struct {
	// Origins are the web origins the console is served at
	// (https://vault.example.jp); the RP ID is the first one's host unless
	// RPID is set.
	Origins []string
	RPID    string
	// RPName is shown by authenticators (default "sekisho").
	RPName string
	// Roots are the trusted roots of authenticator attestation
	// certificates (the authenticator makers' CAs): a passkey whose
	// attestation chains to one is attested. Nil: no passkey is attested.
	Roots  *x509.CertPool
	Store  sekisho.ObjectStore
	Replay sekisho.ReplayStore // default: Store, when it is one
	Audit  sekisho.Auditor
	Access Access
	Now    func() time.Time
	TTL    time.Duration // default DefaultTTL
	// SessionTTL ends the session device of each sign-in (default
	// DefaultSessionTTL).
	SessionTTL time.Duration
}

// Service runs the ceremonies.
type Service struct {
	cfg Config
	wa  *webauthn.WebAuthn
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if len(cfg.Origins) == 0 {
		return nil, errors.New("passkey: no origin")
	}
	for _, o := range cfg.Origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("passkey: origin %q: want scheme://host[:port]", o)
		}
	}
	if cfg.RPID == "" {
		u, _ := url.Parse(cfg.Origins[0])
		cfg.RPID = u.Hostname()
	}
	if err := protocol.ValidateRPID(cfg.RPID); err != nil {
		return nil, fmt.Errorf("passkey: RP ID %q (a domain name; browsers refuse IP addresses: use localhost): %w", cfg.RPID, err)
	}
	if cfg.RPName == "" {
		cfg.RPName = "sekisho"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Replay == nil {
		cfg.Replay, _ = cfg.Store.(sekisho.ReplayStore)
	}
	if cfg.Store == nil || cfg.Replay == nil || cfg.Access == nil {
		return nil, errors.New("passkey: a store, a replay store and the access service are needed")
	}
	origins := make([]string, len(cfg.Origins))
	for i, o := range cfg.Origins {
		origins[i] = strings.TrimSuffix(o, "/")
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID: cfg.RPID, RPDisplayName: cfg.RPName, RPOrigins: origins,
		// Direct: the authenticator's attestation statement, which is
		// checked against Roots.
		AttestationPreference: protocol.PreferDirectAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationRequired,
		},
		// The ceremony's expiry is ours (Config.TTL on Config.Now).
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: cfg.TTL, TimeoutUVD: cfg.TTL},
			Registration: webauthn.TimeoutConfig{Timeout: cfg.TTL, TimeoutUVD: cfg.TTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	cfg.Origins = origins
	return &Service{cfg: cfg, wa: wa}, nil
}

// RPID returns the relying party id.
func (s *Service) RPID() string { return s.cfg.RPID }

// Origins returns the accepted origins.
func (s *Service) Origins() []string { return s.cfg.Origins }

// Passkey is a person's registered WebAuthn credential.
type Passkey struct {
	// ID is the credential id, base64url without padding.
	ID        string `json:"id"`
	Principal string `json:"principal"`
	Org       string `json:"org"`
	Name      string `json:"name,omitempty"`
	// Device is the device key enrolled with the passkey: the passkey is
	// approved when that device is.
	Device string `json:"device"`
	Status string `json:"status"` // pending, active, revoked
	// Attested says the authenticator's attestation verified and chains
	// to a trusted root; AttestationFormat is its format (none, packed,
	// tpm, ...), AttestationNote why it is not attested.
	Attested          bool       `json:"attested"`
	AttestationFormat string     `json:"attestation_format"`
	AttestationNote   string     `json:"attestation_note,omitempty"`
	AAGUID            string     `json:"aaguid,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
	LastUsedAt        *time.Time `json:"last_used_at,omitempty"`
	RevokedAt         *time.Time `json:"revoked_at,omitempty"`
	RevokedBy         string     `json:"revoked_by,omitempty"`
	// SignCount is the authenticator's signature counter at the last use.
	SignCount uint32 `json:"sign_count"`
	// Credential is go-webauthn's credential record (public key, sign
	// counter, flags, the raw attestation): stored, not shown.
	Credential webauthn.Credential `json:"-"`
}

// record is a passkey as stored: with its credential record.
type record struct {
	*Passkey
	Credential webauthn.Credential `json:"credential"`
}

// Statuses of a passkey.
const (
	StatusPending = "pending"
	StatusActive  = "active"
	StatusRevoked = "revoked"
)

// ceremony is one begun ceremony, stored until it is answered or expires.
type ceremony struct {
	ID        string               `json:"id"`
	Kind      string               `json:"kind"` // register or login
	Principal string               `json:"principal,omitempty"`
	JKT       string               `json:"jkt"` // the DPoP key that began it
	Expires   time.Time            `json:"expires"`
	Session   webauthn.SessionData `json:"session"`
}

// Options is the answer of a ceremony's begin: its id and the options for
// navigator.credentials.create or .get ({"publicKey": ...}).
type Options struct {
	Ceremony string    `json:"ceremony"`
	Expires  time.Time `json:"expires_at"`
	// PublicKey is a CredentialCreation or CredentialAssertion.
	PublicKey any `json:"options"`
}

// user is a principal as go-webauthn sees it: its user handle is the
// principal id.
type user struct {
	id    string
	creds []webauthn.Credential
}

func (u user) WebAuthnID() []byte                         { return []byte(u.id) }
func (u user) WebAuthnName() string                       { return u.id }
func (u user) WebAuthnDisplayName() string                { return u.id }
func (u user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// BeginRegistration begins registering a passkey for principal, for the
// browser whose DPoP key is key. Anonymous: the answer is the same whether
// the principal exists or not.
func (s *Service) BeginRegistration(ctx context.Context, c sekisho.Caller, key dpop.JWK, principal string) (*Options, error) {
	if !access.ValidID(principal) {
		return nil, sekisho.FieldErrorf(sekisho.EInvalid, "principal", "principal id %q: use lower-case letters, digits, '-' and '_'", principal)
	}
	creation, session, err := s.wa.BeginRegistration(user{id: principal})
	if err != nil {
		return nil, fmt.Errorf("passkey: begin registration: %w", err)
	}
	cer, err := s.store(ctx, "register", principal, key, session)
	if err != nil {
		return nil, err
	}
	return &Options{Ceremony: cer.ID, Expires: cer.Expires, PublicKey: creation}, nil
}

// BeginLogin begins a sign-in with a discoverable passkey, for the browser
// whose DPoP key is key (the session key the sign-in enrols).
func (s *Service) BeginLogin(ctx context.Context, c sekisho.Caller, key dpop.JWK) (*Options, error) {
	assertion, session, err := s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, fmt.Errorf("passkey: begin login: %w", err)
	}
	cer, err := s.store(ctx, "login", "", key, session)
	if err != nil {
		return nil, err
	}
	return &Options{Ceremony: cer.ID, Expires: cer.Expires, PublicKey: assertion}, nil
}

// store keeps a begun ceremony, and drops the expired ones.
func (s *Service) store(ctx context.Context, kind, principal string, key dpop.JWK, session *webauthn.SessionData) (*ceremony, error) {
	now := s.now()
	var b [18]byte
	rand.Read(b[:])
	cer := &ceremony{ID: base64.RawURLEncoding.EncodeToString(b[:]), Kind: kind, Principal: principal, JKT: key.Thumbprint(), Expires: now.Add(s.cfg.TTL), Session: *session}
	body, err := json.Marshal(cer)
	if err != nil {
		return nil, err
	}
	if err := s.sweep(ctx, now); err != nil {
		return nil, err
	}
	if err := s.cfg.Store.PutObject(ctx, &sekisho.Object{Kind: KindCeremony, ID: cer.ID, Version: 1, Body: body, Updated: now}); err != nil {
		return nil, fmt.Errorf("passkey: store the ceremony: %w", err)
	}
	return cer, nil
}

// sweep deletes expired ceremonies (begun and never answered).
func (s *Service) sweep(ctx context.Context, now time.Time) error {
	objs, err := s.cfg.Store.ListObjects(ctx, KindCeremony, "")
	if err != nil {
		return err
	}
	for _, o := range objs {
		var cer ceremony
		if json.Unmarshal(o.Body, &cer) != nil || !now.Before(cer.Expires) {
			if err := s.cfg.Store.DeleteObject(ctx, KindCeremony, o.ID); err != nil && sekisho.Code(err) != sekisho.ENotFound {
				return err
			}
		}
	}
	return nil
}

func errChallenge(format string, args ...any) error {
	return sekisho.TypedErrorf(sekisho.EUnauthorized, ProblemChallenge, format, args...)
}

// take spends a ceremony: once, before it expires, by the key that began it.
func (s *Service) take(ctx context.Context, id, kind string, key dpop.JWK) (*ceremony, error) {
	now := s.now()
	if id == "" || len(id) > 64 {
		return nil, errChallenge("no such %s ceremony (challenges are single use and expire after %s): begin again", kind, s.cfg.TTL)
	}
	o, err := s.cfg.Store.GetObject(ctx, KindCeremony, id)
	if sekisho.Code(err) == sekisho.ENotFound {
		return nil, errChallenge("no such %s ceremony (challenges are single use and expire after %s): begin again", kind, s.cfg.TTL)
	}
	if err != nil {
		return nil, err
	}
	var cer ceremony
	if err := json.Unmarshal(o.Body, &cer); err != nil {
		return nil, &sekisho.Error{Code: sekisho.EInternal, Message: "stored ceremony does not decode", Err: err}
	}
	// Single use across every node of the store, even when two answers
	// race: the replay store admits the first.
	ok, err := s.cfg.Replay.UseOnce(ctx, []byte("webauthn-ceremony:"+id), cer.Expires, now)
	if err != nil {
		return nil, fmt.Errorf("passkey: spend the ceremony: %w", err)
	}
	if derr := s.cfg.Store.DeleteObject(ctx, KindCeremony, id); derr != nil && sekisho.Code(derr) != sekisho.ENotFound {
		return nil, derr
	}
	switch {
	case !ok:
		return nil, errChallenge("the %s ceremony's challenge was answered already (single use)", kind)
	case !now.Before(cer.Expires):
		return nil, errChallenge("the %s ceremony's challenge expired at %s", kind, cer.Expires.Format(time.RFC3339))
	case cer.Kind != kind:
		return nil, errChallenge("ceremony %s is a %s ceremony, not %s", id, cer.Kind, kind)
	case cer.JKT != key.Thumbprint():
		return nil, sekisho.TypedErrorf(sekisho.EUnauthorized, ProblemKeyMismatch, "the ceremony was begun with another DPoP key than the one that signed this request")
	}
	return &cer, nil
}

// invalid turns a go-webauthn verification error into a problem.
func invalid(code sekisho.ErrorCode, err error) error {
	msg := err.Error()
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		msg += " (" + pe.DevInfo + ")"
	}
	return sekisho.TypedErrorf(code, ProblemInvalid, "the authenticator's response does not verify: %s", msg)
}

// isAttestationError reports whether a registration failed on the
// attestation statement (not on the ceremony itself).
func isAttestationError(err error) bool {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Type {
	case protocol.ErrAttestation.Type, protocol.ErrInvalidAttestation.Type, protocol.ErrAttestationCertificate.Type:
		return true
	}
	return false
}

// Registered is what a registration made: the passkey (nil when the
// principal is unknown: not told to the caller) and the device.
type Registered struct {
	Passkey *Passkey
	Device  *access.Device
}

// FinishRegistration verifies the browser's attestation response
// (navigator.credentials.create's PublicKeyCredential as JSON) to ceremony
// id, signed for by key, and enrols the passkey (pending) and the key (a
// pending device, key_storage webauthn, attested when the attestation
// chains to Config.Roots).
func (s *Service) FinishRegistration(ctx context.Context, c sekisho.Caller, key dpop.JWK, id string, response []byte, name, deviceName string) (*Registered, error) {
	detail := "passkey registration for device " + key.Thumbprint()
	cer, err := s.take(ctx, id, "register", key)
	if err != nil {
		return nil, s.event(ctx, c, "passkey.register", detail, err)
	}
	detail += " of " + cer.Principal
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, s.event(ctx, c, "passkey.register", detail, invalid(sekisho.EInvalid, err))
	}
	cred, err := s.wa.CreateCredential(user{id: cer.Principal}, cer.Session, parsed)
	if err != nil {
		if isAttestationError(err) {
			err = &sekisho.Error{Code: sekisho.EInvalid, Type: access.ProblemAttestationInvalid, Field: "credential",
				Message: "the passkey's attestation statement does not verify: " + err.Error()}
		} else {
			err = invalid(sekisho.EInvalid, err)
		}
		return nil, s.event(ctx, c, "passkey.register", detail, err)
	}
	attested, note := s.attested(parsed)
	pk := &Passkey{ID: base64.RawURLEncoding.EncodeToString(cred.ID), Principal: cer.Principal, Name: name, Device: key.Thumbprint(), Status: StatusPending,
		Attested: attested, AttestationFormat: parsed.Response.AttestationObject.Format, AttestationNote: note, CreatedAt: s.now(), Credential: *cred}
	if len(cred.Authenticator.AAGUID) == 16 {
		pk.AAGUID = fmt.Sprintf("%x", cred.Authenticator.AAGUID)
	}
	org, err := s.cfg.Access.PersonOrg(ctx, cer.Principal)
	switch {
	case sekisho.Code(err) == sekisho.ENotFound:
		// Unknown, revoked or a service: answered like a stored
		// registration (a pending device), so that registration does not
		// tell who exists; audited with the reason, nothing stored.
		stub := &access.Device{ID: key.Thumbprint(), Principal: cer.Principal, Name: deviceName, Status: access.StatusPending, EnrolledAt: s.now(),
			KeyStorage: access.KeyStorageWebAuthn, Attested: attested}
		if aerr := s.event(ctx, c, "passkey.register", detail, sekisho.TypedErrorf(sekisho.ENotFound, "principal-unknown",
			"principal %q is not an active person (not told to the caller)", cer.Principal)); sekisho.Code(aerr) == sekisho.EUnavailable {
			return nil, aerr
		}
		return &Registered{Device: stub}, nil
	case err != nil:
		return nil, err
	}
	pk.Org = org
	if _, err := s.cfg.Store.GetObject(ctx, KindPasskey, pk.ID); err == nil {
		return nil, s.event(ctx, c, "passkey.register", detail, sekisho.TypedErrorf(sekisho.EConflict, ProblemKnown, "this passkey is registered already"))
	} else if sekisho.Code(err) != sekisho.ENotFound {
		return nil, err
	}
	d, err := s.cfg.Access.EnrolWebAuthnDevice(ctx, c, cer.Principal, deviceName, attested, key)
	if err != nil {
		return nil, err
	}
	if d.Org == "" {
		// The enrolment was answered, not stored (too many enrolments of
		// the principal wait already; access audited why): the passkey is
		// not stored either, so that no passkey ever waits on a device
		// that does not exist.
		return &Registered{Device: d}, nil
	}
	if err := s.put(ctx, pk, 1); err != nil {
		if sekisho.Code(err) == sekisho.EConflict {
			err = sekisho.TypedErrorf(sekisho.EConflict, ProblemKnown, "this passkey is registered already")
		}
		return nil, s.event(ctx, c, "passkey.register", detail, err)
	}
	c.Principal, c.Org = cer.Principal, org
	return &Registered{Passkey: pk, Device: d}, s.event(ctx, c, "passkey.register",
		fmt.Sprintf("passkey %s of %s with device %s, attestation %s, attested %t", pk.ID, pk.Principal, d.ID, pk.AttestationFormat, pk.Attested), nil)
}

// attested checks an attestation statement that verified (go-webauthn
// checked its signature) against the trusted roots.
func (s *Service) attested(p *protocol.ParsedCredentialCreationData) (bool, string) {
	att := p.Response.AttestationObject
	if att.Format == string(protocol.AttestationFormatNone) {
		return false, "the authenticator gave no attestation (format none)"
	}
	raw, _ := att.AttStatement["x5c"].([]any)
	if len(raw) == 0 {
		return false, "self attestation (format " + att.Format + "): nothing vouches for the authenticator"
	}
	if s.cfg.Roots == nil {
		return false, "no trusted attestation roots are configured (serve --webauthn-attestation-roots)"
	}
	var chain []*x509.Certificate
	for _, r := range raw {
		der, ok := r.([]byte)
		if !ok {
			return false, "an x5c entry is not a certificate"
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return false, "an x5c certificate does not parse: " + err.Error()
		}
		chain = append(chain, cert)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: s.cfg.Roots, Intermediates: inter, CurrentTime: s.now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return false, "the attestation certificate does not chain to a trusted root: " + err.Error()
	}
	return true, ""
}

// FinishLogin verifies the browser's assertion (navigator.credentials.get's
// PublicKeyCredential as JSON) to ceremony id, signed for by key; the
// passkey must be approved. Then key is enrolled as the session's device
// of the passkey's principal, approved.
func (s *Service) FinishLogin(ctx context.Context, c sekisho.Caller, key dpop.JWK, id string, response []byte, deviceName string) (*access.Device, *Passkey, error) {
	detail := "passkey sign-in of device " + key.Thumbprint()
	cer, err := s.take(ctx, id, "login", key)
	if err != nil {
		return nil, nil, s.event(ctx, c, "passkey.login", detail, err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, nil, s.event(ctx, c, "passkey.login", detail, invalid(sekisho.EUnauthorized, err))
	}
	var (
		pk      *Passkey
		version int64
		lookErr error
	)
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		pk, version, lookErr = s.get(ctx, base64.RawURLEncoding.EncodeToString(rawID))
		if lookErr != nil {
			return nil, lookErr
		}
		if !bytes.Equal(userHandle, []byte(pk.Principal)) {
			lookErr = sekisho.TypedErrorf(sekisho.EUnauthorized, ProblemUnknownCredential, "the passkey's user handle is not its principal's")
			return nil, lookErr
		}
		return user{id: pk.Principal, creds: []webauthn.Credential{pk.Credential}}, nil
	}
	_, cred, err := s.wa.ValidatePasskeyLogin(handler, cer.Session, parsed)
	if err != nil {
		switch {
		case lookErr != nil && sekisho.Code(lookErr) == sekisho.ENotFound:
			err = sekisho.TypedErrorf(sekisho.EUnauthorized, ProblemUnknownCredential, "no passkey with this credential id is registered")
		case lookErr != nil:
			err = lookErr
		default:
			err = invalid(sekisho.EUnauthorized, err)
		}
		return nil, nil, s.event(ctx, c, "passkey.login", detail, err)
	}
	c.Principal, c.Org = pk.Principal, pk.Org
	detail = "passkey " + pk.ID + " of " + pk.Principal + ": session device " + key.Thumbprint()
	switch pk.Status {
	case StatusRevoked:
		return nil, nil, s.event(ctx, c, "passkey.login", detail, sekisho.TypedErrorf(sekisho.EForbidden, ProblemRevoked, "this passkey was revoked"))
	case StatusPending:
		ok, err := s.cfg.Access.DeviceEverApproved(ctx, pk.Device, pk.Principal)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return nil, nil, s.event(ctx, c, "passkey.login", detail, sekisho.TypedErrorf(sekisho.EForbidden, ProblemNotApproved,
				"this passkey waits for an admin to approve device %s, enrolled with it", pk.Device))
		}
		pk.Status = StatusActive
	}
	if cred.Authenticator.CloneWarning {
		return nil, nil, s.event(ctx, c, "passkey.login", detail, sekisho.TypedErrorf(sekisho.EUnauthorized, ProblemCloned,
			"the authenticator's signature counter did not grow (%d after %d): it may be cloned", parsed.Response.AuthenticatorData.Counter, pk.Credential.Authenticator.SignCount))
	}
	now := s.now()
	pk.Credential, pk.LastUsedAt = *cred, &now
	if err := s.put(ctx, pk, version+1); err != nil {
		// A concurrent sign-in with the same passkey: one counter wins.
		return nil, nil, s.event(ctx, c, "passkey.login", detail, err)
	}
	d, err := s.cfg.Access.EnrolSignInDevice(ctx, c, pk.Principal, deviceName, pk.Attested, key, pk.ID, now.Add(s.cfg.SessionTTL))
	if err != nil {
		return nil, nil, s.event(ctx, c, "passkey.login", detail, err)
	}
	return d, pk, s.event(ctx, c, "passkey.login", detail, nil)
}

func (s *Service) get(ctx context.Context, id string) (*Passkey, int64, error) {
	o, err := s.cfg.Store.GetObject(ctx, KindPasskey, id)
	if err != nil {
		return nil, 0, err
	}
	pk, err := decode(o)
	return pk, o.Version, err
}

func decode(o *sekisho.Object) (*Passkey, error) {
	rec := record{Passkey: &Passkey{}}
	if err := json.Unmarshal(o.Body, &rec); err != nil {
		return nil, &sekisho.Error{Code: sekisho.EInternal, Message: "stored passkey does not decode", Err: err}
	}
	rec.Passkey.Credential = rec.Credential
	return rec.Passkey, nil
}

func (s *Service) put(ctx context.Context, pk *Passkey, version int64) error {
	pk.SignCount = pk.Credential.Authenticator.SignCount
	b, err := json.Marshal(record{Passkey: pk, Credential: pk.Credential})
	if err != nil {
		return err
	}
	return s.cfg.Store.PutObject(ctx, &sekisho.Object{Kind: KindPasskey, ID: pk.ID, Org: pk.Org, Version: version, Body: b, Updated: s.now()})
}

// List returns the passkeys a caller may see: its own, or (admins) its
// org's, or (root admins and auditors: seesAll) every org's.
func (s *Service) List(ctx context.Context, c sekisho.Caller, principal string, seesAll bool) ([]*Passkey, error) {
	org := c.Org
	if seesAll {
		org = ""
	}
	objs, err := s.cfg.Store.ListObjects(ctx, KindPasskey, org)
	if err != nil {
		return nil, err
	}
	out := []*Passkey{}
	for _, o := range objs {
		pk, err := decode(o)
		if err != nil {
			return nil, err
		}
		if principal != "" && pk.Principal != principal {
			continue
		}
		if !seesAll && !c.HasRole(access.RoleAdmin) && pk.Principal != c.Principal {
			continue
		}
		out = append(out, pk)
	}
	return out, nil
}

// Revoke revokes a passkey: its own principal, an admin of its org, or a
// root admin (rootAdmin). The session devices it signed in are revoked with
// it (a lost or stolen authenticator ends its sessions); the device it was
// registered with is not (a key of the browser, approved by an admin).
func (s *Service) Revoke(ctx context.Context, c sekisho.Caller, id string, rootAdmin bool) (*Passkey, error) {
	pk, v, err := s.get(ctx, id)
	if err != nil || (pk.Org != c.Org && !rootAdmin) {
		return nil, sekisho.Errorf(sekisho.ENotFound, "passkey %q not found", id)
	}
	detail := "passkey " + id + " of " + pk.Principal
	if pk.Principal != c.Principal && !rootAdmin && !(c.HasRole(access.RoleAdmin) && c.Org == pk.Org) {
		return nil, s.event(ctx, c, "passkey.revoke", detail, sekisho.TypedErrorf(sekisho.EForbidden, "admin-required", "revoking another person's passkey needs an admin of its org"))
	}
	now := s.now()
	pk.Status, pk.RevokedAt, pk.RevokedBy = StatusRevoked, &now, c.Principal
	if err := s.put(ctx, pk, v+1); err != nil {
		return nil, err
	}
	if err := s.event(ctx, c, "passkey.revoke", detail, nil); err != nil {
		return nil, err
	}
	if _, err := s.cfg.Access.RevokeSignInDevices(ctx, c, pk.Org, pk.ID); err != nil {
		return nil, fmt.Errorf("passkey %s revoked, its sessions not all: %w", pk.ID, err)
	}
	return pk, nil
}

// event records a ceremony's decision; a ceremony that cannot be audited
// fails.
func (s *Service) event(ctx context.Context, c sekisho.Caller, action, detail string, err error) error {
	ev := sekisho.Event{Time: s.now(), RequestID: c.RequestID, ClientRequestID: c.ClientRequestID, Org: c.Org, Principal: c.Principal, Device: c.Device,
		Source: c.Source, Action: action, Decision: sekisho.Allow, Policy: "passkey", Detail: detail}
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
