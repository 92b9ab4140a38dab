package tpmkey

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// NV indices of the EK certificates (TCG EK Credential Profile 2.0, 2.2.1.4).
const (
	EKCertIndexRSA = 0x01c00002
	EKCertIndexECC = 0x01c0000a
)

// ErrNoEKCertificate is returned by Attest when the TPM holds no ECC EK
// certificate: the key can be used, but not attested.
var ErrNoEKCertificate = errors.New("the TPM holds no ECC endorsement key certificate (NV index 0x01c0000a)")

// Evidence is a TPM key attestation of a device key, as the enrolment
// carries it (attestation.format "tpm"): the TPM's EK certificate and EK
// public area, an attestation key (AK) made in the same TPM, and the AK's
// TPM2_Certify of the device key over qualifying data that names the
// device. The server proves that the AK lives in the TPM of the EK by
// credential activation (a challenge only that TPM can open), then checks
// the certification.
type Evidence struct {
	Format string `json:"format"` // "tpm"
	// EKCert is the DER of the EK certificate, from the TPM's NV.
	EKCert []byte `json:"ek_cert"`
	// EKPublic, AKPublic and KeyPublic are TPMT_PUBLIC structures.
	EKPublic  []byte `json:"ek_public"`
	AKPublic  []byte `json:"ak_public"`
	KeyPublic []byte `json:"key_public"`
	// CertifyInfo is the TPMS_ATTEST the AK signed; CertifySignature its
	// TPMT_SIGNATURE.
	CertifyInfo      []byte `json:"certify_info"`
	CertifySignature []byte `json:"certify_signature"`
	// ActivationSecret is the secret the server's challenge held, opened by
	// this TPM; Challenge is the challenge's id (the server's, echoed).
	ActivationSecret []byte `json:"activation_secret,omitempty"`
	Challenge        string `json:"challenge,omitempty"`
}

// AKTemplate is the attestation key: a restricted ECDSA P-256 signing key
// made as a primary key of the endorsement hierarchy (so the same AK is
// re-created from the template whenever it is needed), fixed to its TPM.
func AKTemplate() tpm2.TPMTPublic {
	t := keyTemplate() // the device key's template, restricted to signing TPM-made data
	t.ObjectAttributes.Restricted = true
	return t
}

// ReadNV reads an NV index whole.
func ReadNV(t transport.TPM, index uint32) ([]byte, error) {
	rp, err := tpm2.NVReadPublic{NVIndex: tpm2.TPMHandle(index)}.Execute(t)
	if err != nil {
		return nil, err
	}
	pub, err := rp.NVPublic.Contents()
	if err != nil {
		return nil, err
	}
	var out []byte
	for off := uint16(0); off < pub.DataSize; {
		n := pub.DataSize - off
		if n > 768 {
			n = 768
		}
		rsp, err := tpm2.NVRead{
			AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(index), Name: rp.NVName, Auth: tpm2.PasswordAuth(nil)},
			NVIndex:    tpm2.NamedHandle{Handle: tpm2.TPMHandle(index), Name: rp.NVName},
			Size:       n,
			Offset:     off,
		}.Execute(t)
		if err != nil {
			return nil, err
		}
		out = append(out, rsp.Data.Buffer...)
		off += n
	}
	return out, nil
}

func createEK(t transport.TPM) (*tpm2.CreatePrimaryResponse, error) {
	rsp, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(tpm2.ECCEKTemplate)}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("TPM: create the endorsement key: %w", err)
	}
	return rsp, nil
}

func createAK(t transport.TPM) (*tpm2.CreatePrimaryResponse, error) {
	rsp, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(AKTemplate())}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("TPM: create the attestation key: %w", err)
	}
	return rsp, nil
}

// Attest makes the evidence of the blob's key in its TPM: the EK
// certificate (ErrNoEKCertificate when there is none), the EK and AK public
// areas, and the AK's certification of the key over qualifying.
// The activation secret is added by Activate, once the server answered.
func (b *Blob) Attest(ctx context.Context, qualifying []byte) (*Evidence, error) {
	t, err := Open(ctx, b.TPM)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	cert, err := ReadNV(t, EKCertIndexECC)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoEKCertificate, err)
	}
	ek, err := createEK(t)
	if err != nil {
		return nil, err
	}
	ekPub, err := ek.OutPublic.Contents()
	flush(t, ek.ObjectHandle)
	if err != nil {
		return nil, err
	}
	ak, err := createAK(t)
	if err != nil {
		return nil, err
	}
	defer flush(t, ak.ObjectHandle)
	akPub, err := ak.OutPublic.Contents()
	if err != nil {
		return nil, err
	}
	parent, err := createParent(t, b.ParentTemplate)
	if err != nil {
		return nil, err
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](b.Public)
	if err != nil {
		flush(t, parent.ObjectHandle)
		return nil, fmt.Errorf("TPM key public area: %w", err)
	}
	key, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: parent.ObjectHandle, Name: parent.Name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    tpm2.TPM2BPrivate{Buffer: b.Private},
		InPublic:     tpm2.New2B(*pub),
	}.Execute(t)
	flush(t, parent.ObjectHandle)
	if err != nil {
		return nil, fmt.Errorf("TPM %s refuses to load the device key: %w", b.TPM, err)
	}
	defer flush(t, key.ObjectHandle)
	rsp, err := tpm2.Certify{
		ObjectHandle:   tpm2.AuthHandle{Handle: key.ObjectHandle, Name: key.Name, Auth: tpm2.PasswordAuth(nil)},
		SignHandle:     tpm2.AuthHandle{Handle: ak.ObjectHandle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: qualifying},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
	}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("TPM: certify the device key: %w", err)
	}
	info, err := rsp.CertifyInfo.Contents()
	if err != nil {
		return nil, err
	}
	return &Evidence{Format: "tpm", EKCert: cert, EKPublic: tpm2.Marshal(ekPub), AKPublic: tpm2.Marshal(akPub), KeyPublic: b.Public,
		CertifyInfo: tpm2.Marshal(info), CertifySignature: tpm2.Marshal(rsp.Signature)}, nil
}

// Activate opens a credential-activation challenge (TPM2_ActivateCredential
// with the EK, authorised by the endorsement hierarchy's policy, for the AK)
// and returns the secret it held: only the TPM of the EK, holding the AK,
// can.
func (b *Blob) Activate(ctx context.Context, credentialBlob, encryptedSecret []byte) ([]byte, error) {
	t, err := Open(ctx, b.TPM)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	ek, err := createEK(t)
	if err != nil {
		return nil, err
	}
	defer flush(t, ek.ObjectHandle)
	ak, err := createAK(t)
	if err != nil {
		return nil, err
	}
	defer flush(t, ak.ObjectHandle)
	ekPolicy := func(t transport.TPM, handle tpm2.TPMISHPolicy, nonceTPM tpm2.TPM2BNonce) error {
		_, err := tpm2.PolicySecret{AuthHandle: tpm2.TPMRHEndorsement, PolicySession: handle, NonceTPM: nonceTPM}.Execute(t)
		return err
	}
	rsp, err := tpm2.ActivateCredential{
		ActivateHandle: tpm2.AuthHandle{Handle: ak.ObjectHandle, Name: ak.Name, Auth: tpm2.PasswordAuth(nil)},
		KeyHandle:      tpm2.AuthHandle{Handle: ek.ObjectHandle, Name: ek.Name, Auth: tpm2.Policy(tpm2.TPMAlgSHA256, 16, ekPolicy)},
		CredentialBlob: tpm2.TPM2BIDObject{Buffer: credentialBlob},
		Secret:         tpm2.TPM2BEncryptedSecret{Buffer: encryptedSecret},
	}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("TPM: activate the credential: %w", err)
	}
	return rsp.CertInfo.Buffer, nil
}
