package access

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access/dpop"
)

// ProblemAttestationInvalid is the problem type of an enrolment whose
// evidence of where its key lives does not verify (or that this server
// cannot verify: no trusted EK roots).
const ProblemAttestationInvalid = "attestation-invalid"

// ActivationTTL is how long a credential-activation challenge may be
// answered.
const ActivationTTL = 5 * time.Minute

// TPMEvidence is a TPM 2.0 key attestation of a device key (attestation
// format "tpm"): the TPM's EK certificate and EK public area, an
// attestation key (AK) of the same TPM, the AK's TPM2_Certify of the device
// key over SHA-256(device thumbprint), and the secret of a credential
// activation challenge (Service.AttestationChallenge) that the TPM of the
// EK opened for the AK. TPM structures are in the TPM's wire format.
type TPMEvidence struct {
	Format           string `json:"format"`
	EKCert           []byte `json:"ek_cert"`
	EKPublic         []byte `json:"ek_public"`
	AKPublic         []byte `json:"ak_public"`
	KeyPublic        []byte `json:"key_public"`
	CertifyInfo      []byte `json:"certify_info"`
	CertifySignature []byte `json:"certify_signature"`
	ActivationSecret []byte `json:"activation_secret"`
	Challenge        string `json:"challenge"`
}

// ChallengeRequest asks for a credential-activation challenge for an AK.
type ChallengeRequest struct {
	EKCert   []byte `json:"ek_cert"`
	EKPublic []byte `json:"ek_public"`
	AKPublic []byte `json:"ak_public"`
}

// Challenge is a credential-activation challenge (TPM2_MakeCredential done
// in software): a secret only the TPM of the EK can open, and only for the
// AK named. The server keeps nothing: the secret is a MAC of the challenge.
type Challenge struct {
	Challenge       string    `json:"challenge"`
	CredentialBlob  []byte    `json:"credential_blob"`
	EncryptedSecret []byte    `json:"encrypted_secret"`
	ExpiresAt       time.Time `json:"expires_at"`
}

func badAttestation(format string, args ...any) error {
	return &sekisho.Error{Code: sekisho.EInvalid, Type: ProblemAttestationInvalid, Field: "attestation", Message: fmt.Sprintf(format, args...)}
}

// checkEK verifies the EK certificate against the trusted roots and that
// the EK public area is the certificate's key.
func (s *Service) checkEK(certDER, public []byte, now time.Time) (*tpm2.TPMTPublic, error) {
	if s.cfg.TPMRoots == nil {
		return nil, badAttestation("this server trusts no TPM endorsement key roots (serve --tpm-ek-roots), so it cannot verify a TPM attestation")
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, badAttestation("the EK certificate does not parse: %v", err)
	}
	// TCG EK certificates carry a critical subject alternative name with
	// the TPM's manufacturer and model, which crypto/x509 does not read.
	var unhandled []asn1.ObjectIdentifier
	for _, oid := range cert.UnhandledCriticalExtensions {
		if !oid.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) {
			unhandled = append(unhandled, oid)
		}
	}
	cert.UnhandledCriticalExtensions = unhandled
	if _, err := cert.Verify(x509.VerifyOptions{Roots: s.cfg.TPMRoots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, badAttestation("the EK certificate is not issued by a trusted TPM manufacturer root: %v", err)
	}
	ek, err := tpm2.Unmarshal[tpm2.TPMTPublic](public)
	if err != nil {
		return nil, badAttestation("the EK public area does not parse: %v", err)
	}
	if !ek.ObjectAttributes.FixedTPM || !ek.ObjectAttributes.Restricted || !ek.ObjectAttributes.Decrypt {
		return nil, badAttestation("the EK public area is not an endorsement key (fixedTPM, restricted, decrypt)")
	}
	switch k := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		pub, err := eccPublic(ek)
		if err != nil || !pub.Equal(k) {
			return nil, badAttestation("the EK public area is not the key of the EK certificate")
		}
	case *rsa.PublicKey:
		n, err := ek.Unique.RSA()
		if err != nil || new(big.Int).SetBytes(n.Buffer).Cmp(k.N) != 0 {
			return nil, badAttestation("the EK public area is not the key of the EK certificate")
		}
	default:
		return nil, badAttestation("the EK certificate's key is neither ECC nor RSA")
	}
	return ek, nil
}

// eccPublic returns a P-256 public area's key.
func eccPublic(p *tpm2.TPMTPublic) (*ecdsa.PublicKey, error) {
	if p.Type != tpm2.TPMAlgECC {
		return nil, fmt.Errorf("not an ECC key")
	}
	parms, err := p.Parameters.ECCDetail()
	if err != nil || parms.CurveID != tpm2.TPMECCNistP256 {
		return nil, fmt.Errorf("not a P-256 key")
	}
	pt, err := p.Unique.ECC()
	if err != nil || len(pt.X.Buffer) > 32 || len(pt.Y.Buffer) > 32 {
		return nil, fmt.Errorf("no P-256 point")
	}
	raw := make([]byte, 65)
	raw[0] = 4
	copy(raw[1+32-len(pt.X.Buffer):33], pt.X.Buffer)
	copy(raw[33+32-len(pt.Y.Buffer):], pt.Y.Buffer)
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
}

// checkAK checks the AK is a restricted signing key fixed to its TPM, and
// returns it with its name.
func checkAK(public []byte) (*ecdsa.PublicKey, []byte, error) {
	ak, err := tpm2.Unmarshal[tpm2.TPMTPublic](public)
	if err != nil {
		return nil, nil, badAttestation("the AK public area does not parse: %v", err)
	}
	a := ak.ObjectAttributes
	if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin || !a.Restricted || !a.SignEncrypt || a.Decrypt {
		return nil, nil, badAttestation("the AK is not a restricted signing key made in and fixed to its TPM")
	}
	key, err := eccPublic(ak)
	if err != nil {
		return nil, nil, badAttestation("the AK is not an ECDSA P-256 key: %v", err)
	}
	name, err := tpm2.ObjectName(ak)
	if err != nil {
		return nil, nil, badAttestation("the AK's name: %v", err)
	}
	return key, name.Buffer, nil
}

// activationSecret is the secret of the challenge issued at issued for an
// AK and an EK certificate: a MAC under the token key, so the server keeps
// no state between the challenge and the enrolment.
func (s *Service) activationSecret(issued int64, akName, ekCert []byte) []byte {
	m := hmac.New(sha256.New, s.cfg.TokenKey)
	m.Write([]byte("sekisho tpm credential activation\x00"))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(issued))
	m.Write(b[:])
	h := sha256.Sum256(ekCert)
	m.Write(h[:])
	m.Write(akName)
	return m.Sum(nil)
}

// AttestationChallenge answers POST /v1/devices/attestation-challenge: it
// checks the EK certificate and the AK, and returns a credential that only
// the TPM of the EK can activate, for that AK (TCG credential protection,
// go-tpm's CreateCredential). It is anonymous, like enrolment.
func (s *Service) AttestationChallenge(_ context.Context, req ChallengeRequest) (*Challenge, error) {
	now := s.cfg.Now()
	ek, err := s.checkEK(req.EKCert, req.EKPublic, now)
	if err != nil {
		return nil, err
	}
	_, akName, err := checkAK(req.AKPublic)
	if err != nil {
		return nil, err
	}
	encKey, err := tpm2.ImportEncapsulationKey(ek)
	if err != nil {
		return nil, badAttestation("the EK cannot encrypt a credential: %v", err)
	}
	issued := now.Unix()
	blob, secret, err := tpm2.CreateCredential(rand.Reader, encKey, akName, s.activationSecret(issued, akName, req.EKCert))
	if err != nil {
		return nil, badAttestation("make the credential: %v", err)
	}
	return &Challenge{Challenge: strconv.FormatInt(issued, 10), CredentialBlob: blob, EncryptedSecret: secret,
		ExpiresAt: time.Unix(issued, 0).Add(ActivationTTL).UTC()}, nil
}

// AttestationQualifyingData is what the AK's certification of a device key
// must be made over: SHA-256 of the device's thumbprint, so that the
// certification names the device it is for.
func AttestationQualifyingData(thumbprint string) []byte {
	h := sha256.Sum256([]byte("sekisho device " + thumbprint))
	return h[:]
}

// VerifyTPMEvidence checks a TPM key attestation of key: the EK certificate
// chains to a trusted root, the activation secret is the one the challenge
// held (so the AK lives in the TPM of the EK), the AK's TPM2_Certify names
// the device key's public area over the device's qualifying data and its
// signature verifies, and that public area is key: a P-256 signing key made
// in the TPM and fixed to it.
func (s *Service) VerifyTPMEvidence(ev *TPMEvidence, key dpop.JWK) error {
	now := s.cfg.Now()
	if ev.Format != "tpm" {
		return badAttestation("attestation format %q: this server verifies tpm", ev.Format)
	}
	if _, err := s.checkEK(ev.EKCert, ev.EKPublic, now); err != nil {
		return err
	}
	akKey, akName, err := checkAK(ev.AKPublic)
	if err != nil {
		return err
	}
	issued, err := strconv.ParseInt(ev.Challenge, 10, 64)
	if err != nil {
		return badAttestation("challenge %q is not one this server issued", ev.Challenge)
	}
	if at := time.Unix(issued, 0); now.Sub(at) > ActivationTTL || at.After(now.Add(5*time.Second)) {
		return badAttestation("the credential-activation challenge expired (answer it within %s)", ActivationTTL)
	}
	if subtle.ConstantTimeCompare(ev.ActivationSecret, s.activationSecret(issued, akName, ev.EKCert)) != 1 {
		return badAttestation("the activation secret is wrong: the AK is not shown to live in the TPM of the EK certificate")
	}
	info, err := tpm2.Unmarshal[tpm2.TPMSAttest](ev.CertifyInfo)
	if err != nil {
		return badAttestation("the certification does not parse: %v", err)
	}
	if info.Magic != tpm2.TPMGeneratedValue || info.Type != tpm2.TPMSTAttestCertify {
		return badAttestation("the certification is not a TPM-generated TPM2_Certify")
	}
	sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](ev.CertifySignature)
	if err != nil {
		return badAttestation("the certification's signature does not parse: %v", err)
	}
	es, err := sig.Signature.ECDSA()
	if err != nil || sig.SigAlg != tpm2.TPMAlgECDSA || es.Hash != tpm2.TPMAlgSHA256 {
		return badAttestation("the certification's signature is not ECDSA with SHA-256")
	}
	digest := sha256.Sum256(ev.CertifyInfo)
	if !ecdsa.Verify(akKey, digest[:], new(big.Int).SetBytes(es.SignatureR.Buffer), new(big.Int).SetBytes(es.SignatureS.Buffer)) {
		return badAttestation("the certification's signature does not verify under the AK")
	}
	if !bytes.Equal(info.ExtraData.Buffer, AttestationQualifyingData(key.Thumbprint())) {
		return badAttestation("the certification was not made for this device key (qualifying data)")
	}
	certified, err := info.Attested.Certify()
	if err != nil {
		return badAttestation("the certification: %v", err)
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](ev.KeyPublic)
	if err != nil {
		return badAttestation("the device key's public area does not parse: %v", err)
	}
	name, err := tpm2.ObjectName(pub)
	if err != nil || !bytes.Equal(name.Buffer, certified.Name.Buffer) {
		return badAttestation("the certification names another key than the device key's public area")
	}
	a := pub.ObjectAttributes
	if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin || !a.SignEncrypt || a.Decrypt {
		return badAttestation("the device key is not a signing key made in its TPM and fixed to it (fixedTPM, fixedParent, sensitiveDataOrigin)")
	}
	kp, err := eccPublic(pub)
	if err != nil {
		return badAttestation("the device key is not a P-256 key: %v", err)
	}
	jp, _, err := key.PublicKey()
	if err != nil || !kp.Equal(jp) {
		return badAttestation("the attested key is not the enrolled device key")
	}
	return nil
}

// EnrolAttestedDevice is EnrolDevice with evidence: the evidence is
// verified first (whoever the principal is, so a refusal tells nothing
// about who exists), and the device is recorded key_storage tpm,
// attested: true.
func (s *Service) EnrolAttestedDevice(ctx context.Context, c sekisho.Caller, principal, name string, key dpop.JWK, ev *TPMEvidence) (*Device, error) {
	if err := s.VerifyTPMEvidence(ev, key); err != nil {
		return nil, s.event(ctx, c, "device.enrol", "device "+key.Thumbprint()+" for "+principal+": attestation refused", err)
	}
	return s.enrolDevice(ctx, c, principal, name, KeyStorageTPM, true, key)
}
