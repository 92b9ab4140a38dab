package passkey_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// softAuthenticator is a WebAuthn authenticator in software (go-webauthn
// has no client): a P-256 credential key, a signature counter, and an
// attestation key with its certificate for packed attestation.
type softAuthenticator struct {
	key     *ecdsa.PrivateKey
	credID  []byte
	counter uint32
	aaguid  [16]byte
	user    []byte // the user handle given at registration
	// attestation: "none", "self" or "packed" (x5c: attCert issued by a CA)
	format  string
	attKey  *ecdsa.PrivateKey
	attCert []byte
	// noUV: the assertion says the user was present, not verified.
	noUV bool
}

var b64 = base64.RawURLEncoding

func newSoftAuthenticator(t testing.TB, format string, ca *testCA) *softAuthenticator {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a := &softAuthenticator{key: k, credID: make([]byte, 32), format: format}
	rand.Read(a.credID)
	copy(a.aaguid[:], "sekisho-softauth")
	if format == "packed" {
		a.attKey, a.attCert = ca.issue(t)
	}
	return a
}

// testCA is an authenticator maker's attestation CA.
type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name, Organization: []string{"Test Maker"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{key: k, cert: c}
}

// issue makes an attestation key and its certificate (the subject WebAuthn
// §8.2.1 requires of packed attestation certificates).
func (ca *testCA) issue(t testing.TB) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{Country: []string{"JP"}, Organization: []string{"Test Maker"},
		OrganizationalUnit: []string{"Authenticator Attestation"}, CommonName: "soft authenticator"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return k, der
}

func (a *softAuthenticator) coseKey() []byte {
	pub, err := a.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	x, y := pub[1:33], pub[33:]
	b, _ := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
	return b
}

func clientData(typ string, challenge []byte, origin string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": b64.EncodeToString(challenge), "origin": origin, "crossOrigin": false})
	return b
}

func sign(t testing.TB, k *ecdsa.PrivateKey, data ...[]byte) []byte {
	t.Helper()
	h := sha256.New()
	for _, d := range data {
		h.Write(d)
	}
	sig, err := ecdsa.SignASN1(rand.Reader, k, h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// create answers navigator.credentials.create: the PublicKeyCredential as
// JSON (what the console posts).
func (a *softAuthenticator) create(t testing.TB, opts any, origin string) []byte {
	t.Helper()
	cc := opts.(*protocol.CredentialCreation)
	rpHash := sha256.Sum256([]byte(cc.Response.RelyingParty.ID))
	a.user = []byte(cc.Response.User.ID.(protocol.URLEncodedBase64))
	a.counter++
	auth := append([]byte{}, rpHash[:]...)
	auth = append(auth, 0x01|0x04|0x40) // UP, UV, AT
	auth = binary.BigEndian.AppendUint32(auth, a.counter)
	auth = append(auth, a.aaguid[:]...)
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(a.credID)))
	auth = append(auth, a.credID...)
	auth = append(auth, a.coseKey()...)
	cd := clientData("webauthn.create", cc.Response.Challenge, origin)
	cdHash := sha256.Sum256(cd)
	var stmt map[string]any
	format := a.format
	switch a.format {
	case "none":
		stmt = map[string]any{}
	case "self":
		format = "packed"
		stmt = map[string]any{"alg": -7, "sig": sign(t, a.key, auth, cdHash[:])}
	case "packed":
		stmt = map[string]any{"alg": -7, "sig": sign(t, a.attKey, auth, cdHash[:]), "x5c": []any{a.attCert}}
	}
	obj, err := webauthncbor.Marshal(map[string]any{"fmt": format, "attStmt": stmt, "authData": auth})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"id": b64.EncodeToString(a.credID), "rawId": b64.EncodeToString(a.credID), "type": "public-key",
		"response":               map[string]any{"clientDataJSON": b64.EncodeToString(cd), "attestationObject": b64.EncodeToString(obj), "transports": []string{"internal"}},
		"clientExtensionResults": map[string]any{}})
	return b
}

// get answers navigator.credentials.get with this passkey.
func (a *softAuthenticator) get(t testing.TB, opts any, origin string) []byte {
	t.Helper()
	ca := opts.(*protocol.CredentialAssertion)
	rpHash := sha256.Sum256([]byte(ca.Response.RelyingPartyID))
	a.counter++
	auth := append([]byte{}, rpHash[:]...)
	flags := byte(0x01 | 0x04) // UP, UV
	if a.noUV {
		flags = 0x01
	}
	auth = append(auth, flags)
	auth = binary.BigEndian.AppendUint32(auth, a.counter)
	cd := clientData("webauthn.get", ca.Response.Challenge, origin)
	cdHash := sha256.Sum256(cd)
	b, _ := json.Marshal(map[string]any{"id": b64.EncodeToString(a.credID), "rawId": b64.EncodeToString(a.credID), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(auth),
			"signature": b64.EncodeToString(sign(t, a.key, auth, cdHash[:])), "userHandle": b64.EncodeToString(a.user)},
		"clientExtensionResults": map[string]any{}})
	return b
}
