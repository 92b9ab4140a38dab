package swtpmtest

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/sekisho/sekisho/client/tpmkey"
	"github.com/sekisho/sekisho/internal/testpki"
)

// ProvisionEK does what a TPM's manufacturer (or swtpm_setup
// --create-ek-cert) does: it issues a certificate for the TPM's ECC
// endorsement key (the TCG EK template's key, derived from this TPM's
// seed) signed by ca, and writes it to the TPM's EK certificate NV index
// (0x01c0000a), defined under the platform hierarchy. It returns the
// certificate.
func (tpm *TPM) ProvisionEK(t testing.TB, ca *testpki.CA) *x509.Certificate {
	t.Helper()
	c, err := tpmkey.Open(context.Background(), tpm.TCTI)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ek, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(tpm2.ECCEKTemplate)}.Execute(c)
	if err != nil {
		t.Fatalf("swtpmtest: create the EK: %v", err)
	}
	defer tpm2.FlushContext{FlushHandle: ek.ObjectHandle}.Execute(c)
	pub, err := ek.OutPublic.Contents()
	if err != nil {
		t.Fatal(err)
	}
	// The EK's point, read as a P-256 public key (as a device key's is).
	ekKey, err := (&tpmkey.Blob{Public: tpm2.Marshal(pub)}).PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "swtpm EK"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, ekKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	def := tpm2.NVDefineSpace{
		AuthHandle: tpm2.TPMRHPlatform,
		PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{
			NVIndex: tpm2.TPMHandle(tpmkey.EKCertIndexECC),
			NameAlg: tpm2.TPMAlgSHA256,
			Attributes: tpm2.TPMANV{
				PPWrite: true, PPRead: true, OwnerRead: true, AuthRead: true,
				NoDA: true, PlatformCreate: true, NT: tpm2.TPMNTOrdinary,
			},
			DataSize: uint16(len(der)),
		}),
	}
	if _, err := def.Execute(c); err != nil {
		t.Fatalf("swtpmtest: define the EK certificate index: %v", err)
	}
	nvPub, _ := def.PublicInfo.Contents()
	name, err := tpm2.NVName(nvPub)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(der); off += 512 {
		end := min(off+512, len(der))
		if _, err := (tpm2.NVWrite{
			AuthHandle: tpm2.TPMRHPlatform,
			NVIndex:    tpm2.NamedHandle{Handle: nvPub.NVIndex, Name: *name},
			Data:       tpm2.TPM2BMaxNVBuffer{Buffer: der[off:end]},
			Offset:     uint16(off),
		}).Execute(c); err != nil {
			t.Fatalf("swtpmtest: write the EK certificate: %v", err)
		}
	}
	return cert
}
