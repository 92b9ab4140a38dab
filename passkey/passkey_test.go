package passkey_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/passkey"
	"github.com/sekisho/sekisho/sqlite"
)

const origin = "https://vault.example.jp"

type world struct {
	store  *sqlite.Store
	access *access.Service
	pk     *passkey.Service
	admin  sekisho.Caller
	skew   *atomic.Int64 // added to the clock, in seconds
}

func newWorld(t testing.TB, roots *x509.CertPool) *world {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	signer, _, err := audit.LoadOrCreateKeys(dir, audit.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.New(ctx, store, signer, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close(); store.Close() })
	skew := new(atomic.Int64)
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load()) * time.Second) }
	as, err := access.New(access.Config{Store: store, Audit: log, TokenKey: bytes.Repeat([]byte{1}, 32), BootstrapToken: "boot", Now: now,
		Schema: func(context.Context, string) (*sekisho.Schema, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := dpop.GenerateKey("p256")
	if _, err := as.SpendBootstrap(ctx, sekisho.Caller{}, "boot", access.Bootstrap{Principal: "admin", Key: key.JWK()}); err != nil {
		t.Fatal(err)
	}
	admin := sekisho.Caller{Principal: "admin", Org: as.RootOrg(), Roles: []string{access.RoleAdmin}}
	for _, p := range []*access.Principal{
		{ID: "bob", Org: as.RootOrg(), Kind: "person", Roles: []string{access.RoleMember}},
		{ID: "robot", Org: as.RootOrg(), Kind: "service", Roles: []string{access.RoleService}},
	} {
		if _, err := as.CreatePrincipal(ctx, admin, p); err != nil {
			t.Fatal(err)
		}
	}
	pk, err := passkey.New(passkey.Config{Origins: []string{origin}, Roots: roots, Store: store, Audit: log, Access: as, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return &world{store: store, access: as, pk: pk, admin: admin, skew: skew}
}

func newKey(t testing.TB) dpop.JWK {
	t.Helper()
	k, err := dpop.GenerateKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	return k.JWK()
}

func problem(err error) string {
	var e *sekisho.Error
	if err == nil {
		return "<nil>"
	}
	for ; err != nil; err = unwrap(err) {
		if se, ok := err.(*sekisho.Error); ok && se.Type != "" {
			return se.Type
		}
		e, _ = err.(*sekisho.Error)
	}
	if e != nil {
		return string(e.Code)
	}
	return "untyped"
}

func unwrap(err error) error {
	u, ok := err.(interface{ Unwrap() error })
	if !ok {
		return nil
	}
	return u.Unwrap()
}

// register runs a whole registration of a for principal with key.
func (w *world) register(t *testing.T, a *softAuthenticator, principal string, key dpop.JWK) (*passkey.Registered, error) {
	t.Helper()
	ctx := context.Background()
	o, err := w.pk.BeginRegistration(ctx, sekisho.Caller{}, key, principal)
	if err != nil {
		t.Fatal(err)
	}
	return w.pk.FinishRegistration(ctx, sekisho.Caller{}, key, o.Ceremony, a.create(t, o.PublicKey, origin), "yubikey", "console")
}

// login runs a whole sign-in with a and a new session key.
func (w *world) login(t *testing.T, a *softAuthenticator) (*access.Device, error) {
	t.Helper()
	ctx := context.Background()
	key := newKey(t)
	o, err := w.pk.BeginLogin(ctx, sekisho.Caller{}, key)
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := w.pk.FinishLogin(ctx, sekisho.Caller{}, key, o.Ceremony, a.get(t, o.PublicKey, origin), "console session")
	return d, err
}

// TestCeremonies (issue 16 point 5): a person registers a passkey with the
// browser's DPoP key; the key is a pending webauthn device, attested by a
// trusted packed attestation; the passkey signs in once an admin approved
// that device, and each sign-in enrols the session's key approved. Refused
// with their problem types, each beside a control that succeeds: before
// approval, a replayed challenge, an expired one, a ceremony answered with
// another key, an unknown credential, a bad signature, another origin, a
// counter that did not grow, a revoked passkey.
func TestCeremonies(t *testing.T) {
	ctx := context.Background()
	ca := newTestCA(t, "maker root")
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	w := newWorld(t, roots)

	a := newSoftAuthenticator(t, "packed", ca)
	browser := newKey(t)
	reg, err := w.register(t, a, "bob", browser)
	if err != nil {
		t.Fatal(err)
	}
	if reg.Passkey == nil || reg.Passkey.Status != passkey.StatusPending || !reg.Passkey.Attested || reg.Passkey.AttestationFormat != "packed" {
		t.Fatalf("registered passkey: %+v", reg.Passkey)
	}
	dev, err := w.access.GetDevice(ctx, w.admin, browser.Thumbprint())
	if err != nil {
		t.Fatal(err)
	}
	if dev.Status != access.StatusPending || dev.KeyStorage != access.KeyStorageWebAuthn || !dev.Attested || dev.Principal != "bob" {
		t.Fatalf("the browser's device: %+v", dev)
	}

	// Not approved yet: refused.
	if _, err := w.login(t, a); problem(err) != passkey.ProblemNotApproved {
		t.Fatalf("sign-in before approval: %v, want %s", err, passkey.ProblemNotApproved)
	}
	if _, err := w.access.ApproveDevice(ctx, w.admin, browser.Thumbprint()); err != nil {
		t.Fatal(err)
	}

	// Control: approved, the passkey signs in; the session key is an
	// approved webauthn device of bob, attested like the passkey.
	key := newKey(t)
	o, err := w.pk.BeginLogin(ctx, sekisho.Caller{}, key)
	if err != nil {
		t.Fatal(err)
	}
	answer := a.get(t, o.PublicKey, origin)
	d, pk, err := w.pk.FinishLogin(ctx, sekisho.Caller{}, key, o.Ceremony, answer, "console session")
	if err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	if d.ID != key.Thumbprint() || d.Principal != "bob" || d.Status != access.StatusApproved || d.KeyStorage != "webauthn" || !d.Attested {
		t.Fatalf("session device: %+v", d)
	}
	if pk.Status != passkey.StatusActive || pk.Credential.Authenticator.SignCount != a.counter || pk.LastUsedAt == nil {
		t.Fatalf("passkey after sign-in: %+v", pk)
	}

	// The same answer again (a replayed challenge), with the same or a new key.
	if _, _, err := w.pk.FinishLogin(ctx, sekisho.Caller{}, key, o.Ceremony, answer, "again"); problem(err) != passkey.ProblemChallenge {
		t.Fatalf("replayed answer: %v, want %s", err, passkey.ProblemChallenge)
	}
	if _, _, err := w.pk.FinishLogin(ctx, sekisho.Caller{}, newKey(t), o.Ceremony, answer, "again"); problem(err) != passkey.ProblemChallenge {
		t.Fatalf("replayed answer, new key: %v, want %s", err, passkey.ProblemChallenge)
	}

	// Begun with one key, answered with another: refused (and spent).
	k1, k2 := newKey(t), newKey(t)
	o, _ = w.pk.BeginLogin(ctx, sekisho.Caller{}, k1)
	if _, _, err := w.pk.FinishLogin(ctx, sekisho.Caller{}, k2, o.Ceremony, a.get(t, o.PublicKey, origin), "x"); problem(err) != passkey.ProblemKeyMismatch {
		t.Fatalf("another key: %v, want %s", err, passkey.ProblemKeyMismatch)
	}
	if _, _, err := w.pk.FinishLogin(ctx, sekisho.Caller{}, k1, o.Ceremony, a.get(t, o.PublicKey, origin), "x"); problem(err) != passkey.ProblemChallenge {
		t.Fatalf("after a refused answer the ceremony is spent: %v", err)
	}

	// Expired: answered after the TTL.
	o, _ = w.pk.BeginLogin(ctx, sekisho.Caller{}, k1)
	w.skew.Store(int64(passkey.DefaultTTL/time.Second) + 1)
	if _, _, err := w.pk.FinishLogin(ctx, sekisho.Caller{}, k1, o.Ceremony, a.get(t, o.PublicKey, origin), "x"); problem(err) != passkey.ProblemChallenge {
		t.Fatalf("expired ceremony: %v, want %s", err, passkey.ProblemChallenge)
	}
	w.skew.Store(0)
	// An unknown ceremony id.
	if _, _, err := w.pk.FinishLogin(ctx, sekisho.Caller{}, k1, "nope", a.get(t, o.PublicKey, origin), "x"); problem(err) != passkey.ProblemChallenge {
		t.Fatalf("unknown ceremony: %v, want %s", err, passkey.ProblemChallenge)
	}

	// A passkey nobody registered.
	stranger := newSoftAuthenticator(t, "packed", ca)
	stranger.user = []byte("bob")
	if _, err := w.login(t, stranger); problem(err) != passkey.ProblemUnknownCredential {
		t.Fatalf("unknown credential: %v, want %s", err, passkey.ProblemUnknownCredential)
	}
	// bob's credential id signed by another key.
	forger := newSoftAuthenticator(t, "packed", ca)
	forger.credID, forger.user, forger.counter = a.credID, a.user, a.counter+10
	if _, err := w.login(t, forger); problem(err) != passkey.ProblemInvalid || !strings.Contains(err.Error(), "ignature") {
		t.Fatalf("forged signature: %v, want %s", err, passkey.ProblemInvalid)
	}
	// Another origin (a phishing page relaying the challenge).
	k3 := newKey(t)
	o, _ = w.pk.BeginLogin(ctx, sekisho.Caller{}, k3)
	if _, _, err := w.pk.FinishLogin(ctx, sekisho.Caller{}, k3, o.Ceremony, a.get(t, o.PublicKey, "https://vault.example.jp.evil.test"), "x"); problem(err) != passkey.ProblemInvalid {
		t.Fatalf("another origin: %v, want %s", err, passkey.ProblemInvalid)
	}
	// A counter that did not grow: a clone.
	clone := *a
	clone.counter = 1
	if _, err := w.login(t, &clone); problem(err) != passkey.ProblemCloned {
		t.Fatalf("counter went back: %v, want %s", err, passkey.ProblemCloned)
	}
	// Control: the real one still signs in.
	if _, err := w.login(t, a); err != nil {
		t.Fatalf("sign-in after the refusals: %v", err)
	}

	// Revoked: refused; bob's own revocation.
	bob := sekisho.Caller{Principal: "bob", Org: w.access.RootOrg(), Roles: []string{access.RoleMember}}
	if _, err := w.pk.Revoke(ctx, bob, reg.Passkey.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := w.login(t, a); problem(err) != passkey.ProblemRevoked {
		t.Fatalf("revoked passkey: %v, want %s", err, passkey.ProblemRevoked)
	}

	// The ceremonies are audited, allowed and denied.
	n, err := w.store.AuditSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := w.store.AuditLeaves(ctx, 0, int(n))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, l := range leaves {
		ev, err := sekisho.UnmarshalEvent(l.Leaf)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(ev.Action, "passkey.") {
			seen[ev.Action+" "+ev.Decision]++
		}
	}
	for _, want := range []string{"passkey.register allow", "passkey.login allow", "passkey.login deny", "passkey.revoke allow"} {
		if seen[want] == 0 {
			t.Errorf("no %s event; seen %v", want, seen)
		}
	}
}

// TestAttestation (issue 16 point 2, browsers): a passkey is attested only
// when its attestation statement verifies and chains to a trusted root;
// none, self and an untrusted maker register unattested (the note says
// why); a statement whose signature does not verify is refused with
// attestation-invalid and nothing is stored.
func TestAttestation(t *testing.T) {
	ctx := context.Background()
	trusted, other := newTestCA(t, "trusted maker"), newTestCA(t, "other maker")
	roots := x509.NewCertPool()
	roots.AddCert(trusted.cert)
	w := newWorld(t, roots)
	for _, tc := range []struct {
		name     string
		a        *softAuthenticator
		attested bool
		note     string
	}{
		{"trusted packed", newSoftAuthenticator(t, "packed", trusted), true, ""},
		{"untrusted packed", newSoftAuthenticator(t, "packed", other), false, "does not chain to a trusted root"},
		{"self", newSoftAuthenticator(t, "self", nil), false, "self attestation"},
		{"none", newSoftAuthenticator(t, "none", nil), false, "format none"},
	} {
		key := newKey(t)
		reg, err := w.register(t, tc.a, "bob", key)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		d, err := w.access.GetDevice(ctx, w.admin, key.Thumbprint())
		if err != nil {
			t.Fatal(err)
		}
		if reg.Passkey.Attested != tc.attested || d.Attested != tc.attested || d.KeyStorage != "webauthn" || !strings.Contains(reg.Passkey.AttestationNote, tc.note) {
			t.Errorf("%s: passkey attested %v (%q), device attested %v %s; want %v", tc.name, reg.Passkey.Attested, reg.Passkey.AttestationNote, d.Attested, d.KeyStorage, tc.attested)
		}
	}

	// A packed statement signed by another key than its certificate's.
	bad := newSoftAuthenticator(t, "packed", trusted)
	badKey, _ := trusted.issue(t)
	bad.attKey = badKey
	key := newKey(t)
	if _, err := w.register(t, bad, "bob", key); problem(err) != access.ProblemAttestationInvalid {
		t.Fatalf("bad attestation signature: %v, want %s", err, access.ProblemAttestationInvalid)
	}
	if _, err := w.access.GetDevice(ctx, w.admin, key.Thumbprint()); sekisho.Code(err) != sekisho.ENotFound {
		t.Fatalf("a refused registration stored its device: %v", err)
	}
	if l, _ := w.pk.List(ctx, w.admin, "bob", true); len(l) != 4 {
		t.Fatalf("%d passkeys of bob, want the 4 registered above", len(l))
	}

	// An unknown principal and a service: answered like a registration
	// (a pending device), nothing stored.
	for _, who := range []string{"nobody", "robot"} {
		key := newKey(t)
		reg, err := w.register(t, newSoftAuthenticator(t, "none", nil), who, key)
		if err != nil || reg.Device == nil || reg.Device.Status != access.StatusPending || reg.Passkey != nil {
			t.Fatalf("%s: %v %+v", who, err, reg)
		}
		if _, err := w.access.GetDevice(ctx, w.admin, key.Thumbprint()); sekisho.Code(err) != sekisho.ENotFound {
			t.Fatalf("%s: a device was stored: %v", who, err)
		}
	}
	if l, _ := w.pk.List(ctx, w.admin, "", true); len(l) != 4 {
		b, _ := json.Marshal(l)
		t.Fatalf("passkeys: %s", b)
	}
}
