package passkey_test

import (
	"context"
	"crypto/x509"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/passkey"
)

// FuzzCeremonyAnswers: the answers an anonymous browser sends (the
// PublicKeyCredential JSON of a registration and of a sign-in) never panic
// and are refused with a problem type unless they verify. Seeds: a real
// answer of each kind from the software authenticator, each answered to
// another ceremony than its own (refused), and an empty credential.
//
// The seeds run with every go test. Under -fuzz with the default
// -fuzzminimizetime (60 s per new input) it spends its time minimizing and
// seems to stall; scripts/test.sh runs it with -fuzzminimizetime 20x
// (about 300 executions a second here).
func FuzzCeremonyAnswers(f *testing.F) {
	ctx := context.Background()
	ca := newTestCA(f, "maker")
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	w := newWorld(f, roots)
	a := newSoftAuthenticator(f, "packed", ca)
	k := newKey(f)
	o, err := w.pk.BeginRegistration(ctx, sekisho.Caller{}, k, "bob")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(a.create(f, o.PublicKey, origin), true)
	o, err = w.pk.BeginLogin(ctx, sekisho.Caller{}, k)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(a.get(f, o.PublicKey, origin), false)
	f.Add([]byte(`{"id":"","rawId":"","type":"public-key","response":{}}`), false)
	f.Fuzz(func(t *testing.T, answer []byte, register bool) {
		key := newKey(t)
		var err error
		if register {
			o, berr := w.pk.BeginRegistration(ctx, sekisho.Caller{}, key, "bob")
			if berr != nil {
				t.Fatal(berr)
			}
			_, err = w.pk.FinishRegistration(ctx, sekisho.Caller{}, key, o.Ceremony, answer, "n", "d")
		} else {
			o, berr := w.pk.BeginLogin(ctx, sekisho.Caller{}, key)
			if berr != nil {
				t.Fatal(berr)
			}
			_, _, err = w.pk.FinishLogin(ctx, sekisho.Caller{}, key, o.Ceremony, answer, "d")
		}
		if err == nil {
			return // a replayed seed may verify (its challenge is another's: it cannot)
		}
		switch problem(err) {
		case passkey.ProblemInvalid, passkey.ProblemUnknownCredential, passkey.ProblemNotApproved, passkey.ProblemKnown, "attestation-invalid":
		default:
			t.Fatalf("answer %q: %v (problem %s)", answer, err, problem(err))
		}
	})
}
