package access

import (
	"crypto/x509"
	"testing"

	"github.com/sekisho/sekisho/access/dpop"

	"github.com/google/go-tpm/tpm2"
)

// FuzzTPMEvidence feeds arbitrary bytes to every parser of a TPM key
// attestation that an anonymous enrolment reaches (the AK, EK and device
// key public areas, the certification, its signature, the EK
// certificate): none may panic, and what they refuse is
// attestation-invalid.
func FuzzTPMEvidence(f *testing.F) {
	f.Add(tpm2.Marshal(tpm2.ECCEKTemplate))
	f.Add(tpm2.Marshal(tpm2.ECCSRKTemplate))
	f.Add(tpm2.Marshal(tpm2.RSAEKTemplate))
	f.Add(tpm2.Marshal(tpm2.TPMSAttest{Magic: tpm2.TPMGeneratedValue, Type: tpm2.TPMSTAttestCertify,
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestCertify, &tpm2.TPMSCertifyInfo{Name: tpm2.TPM2BName{Buffer: []byte{0, 11, 1, 2}}})}))
	f.Add(tpm2.Marshal(tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA,
		&tpm2.TPMSSignatureECC{Hash: tpm2.TPMAlgSHA256, SignatureR: tpm2.TPM2BECCParameter{Buffer: []byte{1}}, SignatureS: tpm2.TPM2BECCParameter{Buffer: []byte{2}}})}))
	f.Add([]byte{})
	s, _ := fuzzService(f)
	s.cfg.TPMRoots = x509.NewCertPool() // trusts nothing: the EK certificate is parsed and refused
	k, err := dpop.GenerateKey("p256")
	if err != nil {
		f.Fatal(err)
	}
	jwk := k.JWK()
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, _, err := checkAK(b); err != nil {
			typed(t, "checkAK", err)
		}
		if p, err := tpm2.Unmarshal[tpm2.TPMTPublic](b); err == nil {
			tpm2.ObjectName(p)
			eccPublic(p)
			tpm2.ImportEncapsulationKey(p)
		}
		if a, err := tpm2.Unmarshal[tpm2.TPMSAttest](b); err == nil {
			a.Attested.Certify()
		}
		if sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](b); err == nil {
			sig.Signature.ECDSA()
		}
		ev := &TPMEvidence{Format: "tpm", EKCert: b, EKPublic: b, AKPublic: b, KeyPublic: b, CertifyInfo: b, CertifySignature: b, Challenge: string(b)}
		if err := s.VerifyTPMEvidence(ev, jwk); err == nil {
			t.Fatal("arbitrary evidence verified")
		} else {
			typed(t, "VerifyTPMEvidence", err)
		}
		if _, err := s.AttestationChallenge(t.Context(), ChallengeRequest{EKCert: b, EKPublic: b, AKPublic: b}); err == nil {
			t.Fatal("a challenge for arbitrary bytes")
		}
	})
}
