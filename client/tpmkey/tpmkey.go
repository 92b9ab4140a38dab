// Package tpmkey keeps a device key inside a TPM 2.0: an ECDSA P-256
// signing key created by the TPM under its storage root key (the owner
// hierarchy's primary key made from the TCG's ECC SRK template), with the
// attributes fixedTPM and fixedParent, so that its private part never
// leaves the TPM in the clear and cannot be duplicated to another TPM.
//
// What a profile keeps is a Blob: the key's public area, its private area
// as the TPM wrapped it (encrypted and integrity-protected under the SRK,
// whose seed never leaves that TPM), and the SRK's template. Copied to
// another machine, the blob is useless: the other TPM's SRK is a different
// key, and TPM2_Load refuses the private area (integrity check).
//
// Every signature opens the TPM, re-creates the SRK from its template (the
// same key on the same TPM: a primary key is derived from the hierarchy's
// seed), loads the key, signs, and flushes both, so no transient object is
// left behind in a TPM without a resource manager (swtpm over TCP).
//
// It uses github.com/google/go-tpm's tpm2 (direct) API.
package tpmkey

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// DefaultTCTI is the TPM used when none is named: the kernel's resource
// manager device.
const DefaultTCTI = "/dev/tpmrm0"

// Blob is a TPM-resident key as a profile stores it. None of it is secret
// outside its TPM.
type Blob struct {
	// TPM is the TCTI string of the TPM that holds the key (a profile
	// records it in its profile.json).
	TPM string `json:"-"`
	// ParentTemplate is the TPMT_PUBLIC the parent (SRK) is created from.
	ParentTemplate []byte `json:"parent_template"`
	// Public is the key's TPMT_PUBLIC.
	Public []byte `json:"public"`
	// Private is the key's TPM2B_PRIVATE buffer, wrapped by the parent.
	Private []byte `json:"private"`
}

// Open connects to the TPM a TCTI string names:
//
//	""                                   /dev/tpmrm0
//	/dev/tpmrm0, device:/dev/tpm0        a TPM character device
//	swtpm:host=127.0.0.1,port=2321       swtpm's TCP server (raw TPM commands)
//	swtpm:path=/run/swtpm.sock           swtpm's UNIX socket server
//
// swtpm must have been started (swtpm socket --flags startup-clear, or
// tpm2_startup -c).
func Open(ctx context.Context, tcti string) (transport.TPMCloser, error) {
	if tcti == "" {
		tcti = DefaultTCTI
	}
	kind, conf, _ := strings.Cut(tcti, ":")
	if strings.HasPrefix(tcti, "/") {
		kind, conf = "device", tcti
	}
	switch kind {
	case "device":
		if conf == "" {
			conf = DefaultTCTI
		}
		t, err := linuxtpm.Open(conf)
		if err != nil {
			return nil, fmt.Errorf("open TPM %s: %w", conf, err)
		}
		return t, nil
	case "swtpm":
		opts := map[string]string{"host": "localhost", "port": "2321"}
		if conf != "" {
			for _, kv := range strings.Split(conf, ",") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || (k != "host" && k != "port" && k != "path") {
					return nil, fmt.Errorf("TPM %q: want swtpm:host=H,port=P or swtpm:path=SOCKET", tcti)
				}
				opts[k] = v
			}
		}
		network, addr := "tcp", net.JoinHostPort(opts["host"], opts["port"])
		if p := opts["path"]; p != "" {
			network, addr = "unix", p
		}
		d := net.Dialer{Timeout: 10 * time.Second}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, fmt.Errorf("connect to TPM %s: %w", tcti, err)
		}
		return &stream{c: c}, nil
	}
	return nil, fmt.Errorf("TPM %q: unsupported TCTI (want a device path, device:PATH or swtpm:host=H,port=P)", tcti)
}

// stream sends raw TPM commands over a connection (swtpm's socket
// interface) and reads whole responses, however the bytes arrive.
type stream struct {
	mu sync.Mutex
	c  net.Conn
}

// maxResponse bounds a response (TPM responses are a few KiB at most).
const maxResponse = 1 << 16

func (s *stream) Send(cmd []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := s.c.Write(cmd); err != nil {
		return nil, fmt.Errorf("send TPM command: %w", err)
	}
	hdr := make([]byte, 10) // tag, size, response code
	if _, err := io.ReadFull(s.c, hdr); err != nil {
		return nil, fmt.Errorf("read TPM response: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[2:6])
	if n < 10 || n > maxResponse {
		return nil, fmt.Errorf("read TPM response: size %d", n)
	}
	rsp := make([]byte, n)
	copy(rsp, hdr)
	if _, err := io.ReadFull(s.c, rsp[10:]); err != nil {
		return nil, fmt.Errorf("read TPM response: %w", err)
	}
	return rsp, nil
}

func (s *stream) Close() error { return s.c.Close() }

// keyTemplate is the device key: ECDSA P-256 with SHA-256, made inside the
// TPM (sensitiveDataOrigin), bound to this TPM and parent (fixedTPM,
// fixedParent), used with an empty password (the TPM is the machine's).
func keyTemplate() tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:            true,
			FixedParent:         true,
			SensitiveDataOrigin: true,
			UserWithAuth:        true,
			SignEncrypt:         true,
			NoDA:                true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
			Y: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
		}),
	}
}

// createParent re-creates the SRK from its template; the caller flushes it.
func createParent(t transport.TPM, template []byte) (*tpm2.CreatePrimaryResponse, error) {
	tmpl, err := tpm2.Unmarshal[tpm2.TPMTPublic](template)
	if err != nil {
		return nil, fmt.Errorf("parent template: %w", err)
	}
	rsp, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(*tmpl)}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("TPM: create the storage root key: %w", err)
	}
	return rsp, nil
}

func flush(t transport.TPM, h tpm2.TPMHandle) {
	tpm2.FlushContext{FlushHandle: h}.Execute(t) // best effort: the handle is transient
}

// Create makes a new device key inside the TPM tcti names.
func Create(ctx context.Context, tcti string) (*Blob, error) {
	if tcti == "" {
		tcti = DefaultTCTI
	}
	t, err := Open(ctx, tcti)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	b := &Blob{TPM: tcti, ParentTemplate: tpm2.Marshal(tpm2.ECCSRKTemplate)}
	parent, err := createParent(t, b.ParentTemplate)
	if err != nil {
		return nil, err
	}
	defer flush(t, parent.ObjectHandle)
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: parent.ObjectHandle, Name: parent.Name, Auth: tpm2.PasswordAuth(nil)},
		InPublic:     tpm2.New2B(keyTemplate()),
	}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("TPM: create the device key: %w", err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("TPM: device key public area: %w", err)
	}
	b.Public, b.Private = tpm2.Marshal(pub), rsp.OutPrivate.Buffer
	if _, err := b.PublicKey(); err != nil {
		return nil, err
	}
	return b, nil
}

// PublicKey returns the key's public key from its public area.
func (b *Blob) PublicKey() (*ecdsa.PublicKey, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](b.Public)
	if err != nil {
		return nil, fmt.Errorf("TPM key public area: %w", err)
	}
	if pub.Type != tpm2.TPMAlgECC {
		return nil, errors.New("TPM key is not an ECC key")
	}
	parms, err := pub.Parameters.ECCDetail()
	if err != nil {
		return nil, fmt.Errorf("TPM key parameters: %w", err)
	}
	point, err := pub.Unique.ECC()
	if err != nil {
		return nil, fmt.Errorf("TPM key point: %w", err)
	}
	if parms.CurveID != tpm2.TPMECCNistP256 || len(point.X.Buffer) > 32 || len(point.Y.Buffer) > 32 {
		return nil, errors.New("TPM key is not a P-256 key")
	}
	raw := make([]byte, 65)
	raw[0] = 4
	copy(raw[1+32-len(point.X.Buffer):33], point.X.Buffer)
	copy(raw[33+32-len(point.Y.Buffer):], point.Y.Buffer)
	// Parsing the uncompressed point checks that it is on the curve.
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("TPM key point: %w", err)
	}
	return k, nil
}

// Signer returns a crypto.Signer that signs with the key inside its TPM.
func (b *Blob) Signer() (crypto.Signer, error) {
	pub, err := b.PublicKey()
	if err != nil {
		return nil, err
	}
	return &signer{blob: b, pub: pub}, nil
}

type signer struct {
	blob *Blob
	pub  *ecdsa.PublicKey
}

func (s *signer) Public() crypto.PublicKey { return s.pub }

// Sign signs a SHA-256 digest in the TPM and returns an ASN.1 ECDSA
// signature, as crypto.Signer does.
func (s *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.SHA256 || len(digest) != 32 {
		return nil, errors.New("TPM device key: want a SHA-256 digest")
	}
	t, err := Open(context.Background(), s.blob.TPM)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	parent, err := createParent(t, s.blob.ParentTemplate)
	if err != nil {
		return nil, err
	}
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](s.blob.Public)
	if err != nil {
		flush(t, parent.ObjectHandle)
		return nil, fmt.Errorf("TPM key public area: %w", err)
	}
	loaded, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: parent.ObjectHandle, Name: parent.Name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    tpm2.TPM2BPrivate{Buffer: s.blob.Private},
		InPublic:     tpm2.New2B(*pub),
	}.Execute(t)
	flush(t, parent.ObjectHandle)
	if err != nil {
		return nil, fmt.Errorf("TPM %s refuses to load the device key (it was made in another TPM, or this TPM was cleared): %w", s.blob.TPM, err)
	}
	defer flush(t, loaded.ObjectHandle)
	rsp, err := tpm2.Sign{
		KeyHandle: tpm2.AuthHandle{Handle: loaded.ObjectHandle, Name: loaded.Name, Auth: tpm2.PasswordAuth(nil)},
		Digest:    tpm2.TPM2BDigest{Buffer: digest},
		InScheme: tpm2.TPMTSigScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256}),
		},
		Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
	}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("TPM: sign: %w", err)
	}
	sig, err := rsp.Signature.Signature.ECDSA()
	if err != nil {
		return nil, fmt.Errorf("TPM: signature: %w", err)
	}
	return asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(sig.SignatureR.Buffer), new(big.Int).SetBytes(sig.SignatureS.Buffer),
	})
}

// TCTIFromEnv returns $SEKISHO_TPM, or DefaultTCTI.
func TCTIFromEnv() string {
	if v := os.Getenv("SEKISHO_TPM"); v != "" {
		return v
	}
	return DefaultTCTI
}
