package pkcs11key_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/sekisho/sekisho/client/pkcs11key"
	"github.com/sekisho/sekisho/internal/softhsm"
)

// TestKeyStaysInItsToken: a key made in a SoftHSM2 token signs (the
// signatures verify under the public key the reference keeps); its private
// half is sensitive and not extractable (the token refuses to give its
// value); the same reference pointed at another token signs nothing, and a
// wrong PIN is refused (controls: the right token and PIN sign).
func TestKeyStaysInItsToken(t *testing.T) {
	tok := softhsm.New(t, "device")
	util, _ := exec.LookPath("softhsm2-util")
	cmd := exec.Command(util, "--init-token", "--free", "--label", "other", "--pin", tok.PIN, "--so-pin", "5678")
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+tok.Conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("second token: %v %s", err, out)
	}
	ref, err := pkcs11key.Create(tok.Module, tok.Label, tok.PINFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ref.Public, "PRIVATE") || len(ref.ID) != 32 {
		t.Fatalf("ref: %+v", ref)
	}
	s, err := ref.Signer()
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("proof"))
	sig, err := s.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("the token's signature does not verify")
	}
	other := sha256.Sum256([]byte("other"))
	if ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), other[:], sig) {
		t.Fatal("a signature verified for another digest")
	}

	// The private key's value cannot be read out of the token.
	c := pkcs11.New(tok.Module)
	if err := c.Initialize(); err != nil && !strings.Contains(err.Error(), "CKR_CRYPTOKI_ALREADY_INITIALIZED") {
		t.Fatal(err)
	}
	slots, _ := c.GetSlotList(true)
	var slot uint
	for _, sl := range slots {
		if ti, _ := c.GetTokenInfo(sl); strings.TrimRight(ti.Label, " \x00") == tok.Label {
			slot = sl
		}
	}
	sh, err := c.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(sh, pkcs11.CKU_USER, tok.PIN); err != nil && !strings.Contains(err.Error(), "ALREADY_LOGGED_IN") {
		t.Fatal(err)
	}
	if err := c.FindObjectsInit(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)}); err != nil {
		t.Fatal(err)
	}
	hs, _, _ := c.FindObjects(sh, 10)
	c.FindObjectsFinal(sh)
	if len(hs) != 1 {
		t.Fatalf("%d private keys in the token, want 1", len(hs))
	}
	attrs, err := c.GetAttributeValue(sh, hs[0], []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil)})
	if err != nil || len(attrs) != 2 || attrs[0].Value[0] != 1 || attrs[1].Value[0] != 0 {
		t.Fatalf("sensitive/extractable: %v %v", err, attrs)
	}
	if v, err := c.GetAttributeValue(sh, hs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); err == nil {
		t.Fatalf("the token gave out the private key's value: %x", v[0].Value)
	}
	c.CloseSession(sh) // the last session: the application is logged out

	// Another token (another machine's): no such key there.
	moved := *ref
	moved.Token = "other"
	ms, err := moved.Signer()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Sign(nil, digest[:], crypto.SHA256); err == nil || !strings.Contains(err.Error(), "holds no device key") {
		t.Fatalf("another token signed with the copied reference: %v", err)
	}
	// A wrong PIN.
	t.Setenv("SEKISHO_PKCS11_PIN", "0000")
	ws, err := ref.Signer()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Sign(nil, digest[:], crypto.SHA256); err == nil || !strings.Contains(err.Error(), "log in") {
		t.Fatalf("a wrong PIN signed: %v", err)
	}
	// Control: the right PIN on the right token still signs.
	t.Setenv("SEKISHO_PKCS11_PIN", tok.PIN)
	rs, _ := ref.Signer()
	if _, err := rs.Sign(nil, digest[:], crypto.SHA256); err != nil {
		t.Fatalf("control: %v", err)
	}
}
