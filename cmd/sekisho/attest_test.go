package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/client/tpmkey"
	"github.com/sekisho/sekisho/internal/swtpmtest"
	"github.com/sekisho/sekisho/internal/testpki"
)

// TestLoginTPMAttested (issue 16 point 2, the Must-show "attested: true when
// evidence was given"): a swtpm provisioned with an EK certificate by a
// "manufacturer" CA that the server trusts (serve --tpm-ek-roots): login
// --key-store tpm --attest enrols a device that says key_storage tpm and
// attested: true, and admins see it. Refused: a TPM whose EK certificate
// another CA issued (--attest fails; without it the device is enrolled
// unattested), and evidence that does not verify over HTTP is
// attestation-invalid with nothing stored: a certification tampered with,
// evidence of another key, a wrong activation secret (control: the same
// evidence untouched is attested).
func TestLoginTPMAttested(t *testing.T) {
	maker, err := testpki.NewCA("TPM maker")
	if err != nil {
		t.Fatal(err)
	}
	rogue, _ := testpki.NewCA("rogue TPM maker")
	url, tokenFile := startNodeWith(t, nodeConfig{NoGuard: true, DeviceDefault: access.DeviceAny, TPMRoots: maker.Pool()})
	good, untrusted := swtpmtest.Start(t), swtpmtest.Start(t)
	good.ProvisionEK(t, maker)
	untrusted.ProvisionEK(t, rogue)

	// The first admin (bootstrap) on the trusted TPM, attested; the
	// bootstrap token is spent only by an enrolment whose evidence verified.
	admin := filepath.Join(t.TempDir(), "admin")
	out, code := cli(t, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", admin,
		"--key-store", "tpm", "--tpm", good.TCTI, "--attest", "--format", "json")
	var boot loginResult
	if code != 0 || json.Unmarshal([]byte(out), &boot) != nil || !boot.Attested || boot.KeyStorage != "tpm" {
		t.Fatalf("bootstrap login --attest: %d %s", code, out)
	}
	for _, p := range []string{"bob", "eve"} {
		if out, code := cli(t, "principal", "create", p, "--role", "member", "--profile", admin); code != 0 {
			t.Fatalf("principal create: %d %s", code, out)
		}
	}
	login := func(principal, tcti string, extra ...string) (loginResult, int) {
		t.Helper()
		out, code := cli(t, append([]string{"login", "--server", url, "--principal", principal, "--profile", filepath.Join(t.TempDir(), "p"),
			"--key-store", "tpm", "--tpm", tcti, "--format", "json"}, extra...)...)
		var res loginResult
		if code == 0 {
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("login output: %v %s", err, out)
			}
		}
		return res, code
	}
	res, code := login("bob", good.TCTI, "--attest")
	if code != 0 || !res.Attested || res.KeyStorage != "tpm" {
		t.Fatalf("login --attest on the trusted TPM: %d %+v", code, res)
	}
	device := func(id string) (storage string, attested bool) {
		t.Helper()
		out, code := cli(t, "api", "--profile", admin, "GET", "/v1/devices/"+id)
		var d struct {
			KeyStorage string `json:"key_storage"`
			Attested   bool   `json:"attested"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &d) != nil {
			t.Fatalf("device get: %d %s", code, out)
		}
		return d.KeyStorage, d.Attested
	}
	if s, a := device(res.Device); s != "tpm" || !a {
		t.Fatalf("the admin sees %s attested %v, want tpm attested", s, a)
	}

	// A TPM whose EK certificate the server does not trust.
	if _, code := login("eve", untrusted.TCTI, "--attest"); code != 1 {
		t.Fatalf("login --attest on an untrusted TPM: exit %d, want 1", code)
	}
	res, code = login("eve", untrusted.TCTI)
	if code != 0 || res.Attested {
		t.Fatalf("login on an untrusted TPM without --attest: %d %+v", code, res)
	}
	if s, a := device(res.Device); s != "tpm" || a {
		t.Fatalf("the untrusted TPM's device: %s attested %v, want tpm unattested", s, a)
	}

	// Evidence that does not verify, over HTTP.
	ctx := context.Background()
	fresh := func() (*client.Client, *tpmkey.Blob, *dpop.Key) {
		t.Helper()
		blob, err := tpmkey.Create(ctx, good.TCTI)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := blob.Signer()
		key, err := dpop.NewKey(s)
		if err != nil {
			t.Fatal(err)
		}
		c := client.New(url, key)
		c.KeyStorage = "tpm"
		return c, blob, key
	}
	refused := func(what string, c *client.Client, key *dpop.Key) {
		t.Helper()
		_, err := c.Enrol(ctx, "bob", "laptop")
		if client.ProblemType(err) != access.ProblemAttestationInvalid {
			t.Errorf("%s: %v, want %s", what, err, access.ProblemAttestationInvalid)
		}
		if out, code := cli(t, "api", "--profile", admin, "GET", "/v1/devices/"+key.Thumbprint()); code == 0 {
			t.Errorf("%s: the device was stored: %s", what, out)
		}
	}
	c, blob, key := fresh()
	ev, err := c.AttestTPM(ctx, blob, access.AttestationQualifyingData(key.Thumbprint()))
	if err != nil {
		t.Fatal(err)
	}
	orig := *ev
	tampered := orig
	tampered.CertifyInfo = append([]byte(nil), orig.CertifyInfo...)
	tampered.CertifyInfo[len(tampered.CertifyInfo)-1] ^= 1
	c.Attestation = &tampered
	refused("a certification tampered with", c, key)
	wrongSecret := orig
	wrongSecret.ActivationSecret = append([]byte(nil), orig.ActivationSecret...)
	wrongSecret.ActivationSecret[0] ^= 1
	c.Attestation = &wrongSecret
	refused("a wrong activation secret", c, key)
	// The evidence of this key, sent with another key's enrolment.
	other, _, otherKey := fresh()
	other.Attestation = &orig
	refused("evidence of another key", other, otherKey)
	// Control: the evidence untouched is attested.
	c.Attestation = &orig
	d, err := c.Enrol(ctx, "bob", "laptop")
	if err != nil || !d.Attested || d.KeyStorage != "tpm" {
		t.Fatalf("control: %v %+v", err, d)
	}
}
