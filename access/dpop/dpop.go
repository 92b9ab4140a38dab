// Package dpop implements the parts of DPoP (RFC 9449) that sekisho needs:
// device keys (Ed25519 or ECDSA P-256) as JWKs with RFC 7638 thumbprints,
// proof JWTs signed by the device key, and their verification. It has no
// state: the replay cache and the access tokens live in package access.
//
// Only two signature schemes are accepted, Ed25519 (JWS alg "EdDSA", or
// "Ed25519", its fully specified name from RFC 9864) and "ES256" (P-256
// with SHA-256); a proof names its algorithm in its header, and the
// algorithm must match the key type, so that no algorithm confusion is
// possible.
package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Algorithms.
const (
	AlgEdDSA   = "EdDSA"
	AlgEd25519 = "Ed25519" // RFC 9864: the same signature as EdDSA with an Ed25519 key
	AlgES256   = "ES256"
)

// Algs lists the accepted JWS algorithms, as servers advertise them
// (dpop_signing_alg_values_supported, WWW-Authenticate algs).
var Algs = []string{AlgEdDSA, AlgEd25519, AlgES256}

// ProofType is the "typ" header of a DPoP proof.
const ProofType = "dpop+jwt"

var b64 = base64.RawURLEncoding

// JWK is a public key as a JSON Web Key: OKP/Ed25519 or EC/P-256.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y,omitempty"`
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of the key, base64url
// without padding. It is the device's id and the cnf.jkt of its tokens.
// It is computed over the canonical encoding of the key's coordinates (the
// one base64url spelling of their bytes), so that a key is one device
// whatever bytes spelled it; keys are decoded strictly (PublicKey), so a
// key that reaches a thumbprint has only that spelling anyway.
func (k JWK) Thumbprint() string {
	if c, err := k.Canonical(); err == nil {
		k = c
	}
	// RFC 7638: the required members only, in lexicographic order, no spaces.
	var s string
	switch k.Kty {
	case "OKP":
		s = fmt.Sprintf(`{"crv":%q,"kty":"OKP","x":%q}`, k.Crv, k.X)
	default:
		s = fmt.Sprintf(`{"crv":%q,"kty":%q,"x":%q,"y":%q}`, k.Crv, k.Kty, k.X, k.Y)
	}
	h := sha256.Sum256([]byte(s))
	return b64.EncodeToString(h[:])
}

// Canonical returns the key with its coordinates re-encoded from their
// strictly decoded bytes, or the decoding's error.
func (k JWK) Canonical() (JWK, error) {
	x, y, err := k.coords()
	if err != nil {
		return JWK{}, err
	}
	c := JWK{Kty: k.Kty, Crv: k.Crv, X: b64.EncodeToString(x)}
	if y != nil {
		c.Y = b64.EncodeToString(y)
	}
	return c, nil
}

// decodeStrict decodes one base64url coordinate strictly: the URL-safe
// alphabet only (no padding, no whitespace, no line breaks, which Go's
// decoder would otherwise skip), unused bits zero, exactly n bytes.
func decodeStrict(name, s string, n int) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("jwk: %s is not base64url without padding", name)
		}
	}
	b, err := b64.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("jwk: %s is not canonical base64url (non-zero unused bits)", name)
	}
	if len(b) != n {
		return nil, fmt.Errorf("jwk: %s is %d bytes, want %d", name, len(b), n)
	}
	return b, nil
}

// coords decodes the key's coordinates strictly for its type.
func (k JWK) coords() (x, y []byte, err error) {
	switch {
	case k.Kty == "OKP" && k.Crv == "Ed25519":
		if k.Y != "" {
			return nil, nil, errors.New("jwk: an Ed25519 key has no y")
		}
		x, err = decodeStrict("x", k.X, ed25519.PublicKeySize)
		return x, nil, err
	case k.Kty == "EC" && k.Crv == "P-256":
		if x, err = decodeStrict("x", k.X, 32); err != nil {
			return nil, nil, err
		}
		if y, err = decodeStrict("y", k.Y, 32); err != nil {
			return nil, nil, err
		}
		return x, y, nil
	}
	return nil, nil, fmt.Errorf("jwk: unsupported key type %q/%q (want OKP/Ed25519 or EC/P-256)", k.Kty, k.Crv)
}

// PublicKey parses the JWK into an ed25519.PublicKey or *ecdsa.PublicKey,
// with its algorithm. Coordinates are decoded strictly (see decodeStrict).
func (k JWK) PublicKey() (crypto.PublicKey, string, error) {
	x, y, err := k.coords()
	if err != nil {
		return nil, "", err
	}
	if y == nil {
		return ed25519.PublicKey(x), AlgEdDSA, nil
	}
	// Parse through the uncompressed point encoding, which checks that the
	// point is on the curve.
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		return nil, "", fmt.Errorf("jwk: P-256 point: %w", err)
	}
	return pub, AlgES256, nil
}

// Key is a device's private key.
type Key struct {
	signer crypto.Signer
	alg    string
	jwk    JWK
}

// GenerateKey makes a new device key; kind is "ed25519" (default) or "p256".
func GenerateKey(kind string) (*Key, error) {
	switch kind {
	case "", "ed25519":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return NewKey(priv)
	case "p256", "es256":
		priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return NewKey(priv)
	}
	return nil, fmt.Errorf("key type %q: want ed25519 or p256", kind)
}

// NewKey wraps an ed25519.PrivateKey, a P-256 *ecdsa.PrivateKey, or any
// crypto.Signer of a P-256 public key whose Sign returns an ASN.1 ECDSA
// signature of a SHA-256 digest (a key inside a TPM or a PKCS #11 token,
// which never leaves it: such a key does not MarshalPEM).
func NewKey(s crypto.Signer) (*Key, error) {
	switch k := s.(type) {
	case ed25519.PrivateKey:
		return &Key{signer: k, alg: AlgEdDSA, jwk: JWK{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(k.Public().(ed25519.PublicKey))}}, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("ecdsa key is not P-256")
		}
		raw, err := k.PublicKey.Bytes() // 0x04 || X || Y
		if err != nil {
			return nil, err
		}
		return &Key{signer: k, alg: AlgES256, jwk: JWK{Kty: "EC", Crv: "P-256", X: b64.EncodeToString(raw[1:33]), Y: b64.EncodeToString(raw[33:])}}, nil
	}
	if pub, ok := s.Public().(*ecdsa.PublicKey); ok {
		if pub.Curve != elliptic.P256() {
			return nil, errors.New("ecdsa key is not P-256")
		}
		raw, err := pub.Bytes() // 0x04 || X || Y
		if err != nil {
			return nil, err
		}
		return &Key{signer: s, alg: AlgES256, jwk: JWK{Kty: "EC", Crv: "P-256", X: b64.EncodeToString(raw[1:33]), Y: b64.EncodeToString(raw[33:])}}, nil
	}
	return nil, fmt.Errorf("unsupported key %T", s)
}

// JWK returns the public key.
func (k *Key) JWK() JWK { return k.jwk }

// Thumbprint returns the key's RFC 7638 thumbprint.
func (k *Key) Thumbprint() string { return k.jwk.Thumbprint() }

// Alg returns the JWS algorithm of the key.
func (k *Key) Alg() string { return k.alg }

// ErrNotExportable is MarshalPEM's answer for a key that lives in a TPM or
// a token.
var ErrNotExportable = errors.New("the device key is not exportable (it lives in a TPM or a token)")

// Exportable reports whether the private key is in memory (and MarshalPEM
// can write it).
func (k *Key) Exportable() bool {
	switch k.signer.(type) {
	case ed25519.PrivateKey, *ecdsa.PrivateKey:
		return true
	}
	return false
}

// MarshalPEM encodes the private key as PKCS #8 PEM.
func (k *Key) MarshalPEM() ([]byte, error) {
	if !k.Exportable() {
		return nil, ErrNotExportable
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.signer)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePEM decodes a PKCS #8 PEM private key.
func ParsePEM(b []byte) (*Key, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PKCS #8 PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("key cannot sign")
	}
	return NewKey(s)
}

// sign returns the JWS signature of the signing input.
func (k *Key) sign(input []byte) ([]byte, error) {
	switch k.alg {
	case AlgEdDSA:
		return k.signer.Sign(rand.Reader, input, crypto.Hash(0))
	default:
		h := sha256.Sum256(input)
		var r, s *big.Int
		if priv, ok := k.signer.(*ecdsa.PrivateKey); ok {
			var err error
			if r, s, err = ecdsa.Sign(rand.Reader, priv, h[:]); err != nil {
				return nil, err
			}
		} else {
			der, err := k.signer.Sign(rand.Reader, h[:], crypto.SHA256)
			if err != nil {
				return nil, fmt.Errorf("device key: sign: %w", err)
			}
			var sig struct{ R, S *big.Int }
			if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) != 0 || sig.R == nil || sig.S == nil ||
				sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.BitLen() > 256 || sig.S.BitLen() > 256 {
				return nil, errors.New("device key: the signer returned a malformed ECDSA signature")
			}
			r, s = sig.R, sig.S
		}
		// JWS ES256 signatures are R || S, each 32 bytes (RFC 7518 §3.4).
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig, nil
	}
}

// Claims are the claims of a DPoP proof.
type Claims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

type header struct {
	Typ string `json:"typ"`
	Alg string `json:"alg"`
	JWK *JWK   `json:"jwk"`
}

// Proof returns a DPoP proof for one request: method, URL (without query
// or fragment) and, when an access token is sent, its hash (ath).
func (k *Key) Proof(method, url, accessToken string, now time.Time) (string, error) {
	return k.ProofNonce(method, url, accessToken, "", now)
}

// ProofNonce is Proof carrying a server-provided nonce (RFC 9449 §8), when
// nonce is not "".
func (k *Key) ProofNonce(method, url, accessToken, nonce string, now time.Time) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", err
	}
	c := Claims{JTI: b64.EncodeToString(jti[:]), HTM: method, HTU: StripURL(url), IAT: now.Unix(), Nonce: nonce}
	if accessToken != "" {
		c.ATH = TokenHash(accessToken)
	}
	h, _ := json.Marshal(header{Typ: ProofType, Alg: k.alg, JWK: &k.jwk})
	p, _ := json.Marshal(c)
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	sig, err := k.sign([]byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// TokenHash is the ath of an access token: base64url(SHA-256(token)).
func TokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return b64.EncodeToString(h[:])
}

// StripURL removes the query and fragment of a URL, as htu is compared
// without them (RFC 9449 §4.3).
func StripURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}

// MaxProofBytes bounds the size of a proof before it is parsed.
const MaxProofBytes = 4096

// Verified is a proof whose signature checked out.
type Verified struct {
	Claims
	JWK        JWK
	Thumbprint string
}

// Verify checks a proof's form and signature with the key it carries, and
// returns its claims. The caller checks htm, htu, iat, ath and jti.
func Verify(proof string) (*Verified, error) { return (*KeyCache)(nil).Verify(proof) }

// KeyCache remembers the parsed protected header of proofs whose signature
// verified: algorithm, public key and thumbprint, keyed by the header's
// exact base64url encoding. A device's proofs all carry the same header, so
// a hit saves decoding the header's JSON, parsing the JWK (for P-256 the
// point's curve check) and hashing its thumbprint on every request. The
// signature over each proof is still verified with the key every time; a
// cached entry is a pure function of its key string, so it never needs to
// be invalidated (whether the device may still be used is the caller's
// check). It holds at most its bound and is emptied when full. A nil
// *KeyCache caches nothing. It is safe for concurrent use.
type KeyCache struct {
	max int64
	n   atomic.Int64
	m   sync.Map // header segment -> *parsedHeader
}

// DefaultKeyCacheEntries bounds a KeyCache made with NewKeyCache(0).
const DefaultKeyCacheEntries = 10_000

// NewKeyCache returns a cache of at most max headers (DefaultKeyCacheEntries
// when max <= 0).
func NewKeyCache(max int) *KeyCache {
	if max <= 0 {
		max = DefaultKeyCacheEntries
	}
	return &KeyCache{max: int64(max)}
}

// Len returns the number of cached headers.
func (c *KeyCache) Len() int { return int(c.n.Load()) }

type parsedHeader struct {
	jwk   JWK
	pub   crypto.PublicKey
	thumb string
}

func (c *KeyCache) get(seg string) *parsedHeader {
	if c == nil {
		return nil
	}
	if v, ok := c.m.Load(seg); ok {
		return v.(*parsedHeader)
	}
	return nil
}

func (c *KeyCache) put(seg string, h *parsedHeader) {
	if c == nil {
		return
	}
	if c.n.Load() >= c.max {
		c.m.Clear()
		c.n.Store(0)
	}
	if _, loaded := c.m.LoadOrStore(seg, h); !loaded {
		c.n.Add(1)
	}
}

// parseHeader decodes and checks a proof's protected header: its type, its
// key and that its algorithm is the key's.
func parseHeader(seg string) (*parsedHeader, error) {
	hb, err := b64.DecodeString(seg)
	if err != nil {
		return nil, errors.New("proof header is not base64url")
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, errors.New("proof header is not JSON")
	}
	if h.Typ != ProofType {
		return nil, fmt.Errorf("proof typ is %q, want %q", h.Typ, ProofType)
	}
	if h.JWK == nil {
		return nil, errors.New("proof header carries no jwk")
	}
	pub, alg, err := h.JWK.PublicKey()
	if err != nil {
		return nil, err
	}
	if h.Alg != alg && !(alg == AlgEdDSA && h.Alg == AlgEd25519) {
		return nil, fmt.Errorf("proof alg %q does not match its %s key", h.Alg, h.JWK.Kty)
	}
	return &parsedHeader{jwk: *h.JWK, pub: pub, thumb: h.JWK.Thumbprint()}, nil
}

// Verify is the package's Verify, with the proof's header looked up in c
// first and remembered there once the proof's signature verified.
func (c *KeyCache) Verify(proof string) (*Verified, error) {
	if len(proof) > MaxProofBytes {
		return nil, errors.New("proof is too large")
	}
	i, j := strings.IndexByte(proof, '.'), strings.LastIndexByte(proof, '.')
	if i < 0 || i == j || strings.IndexByte(proof[i+1:j], '.') >= 0 {
		return nil, errors.New("proof is not a compact JWS")
	}
	seg := proof[:i]
	h := c.get(seg)
	cached := h != nil
	if !cached {
		var err error
		if h, err = parseHeader(seg); err != nil {
			return nil, err
		}
	}
	sig, err := b64.DecodeString(proof[j+1:])
	if err != nil {
		return nil, errors.New("proof signature is not base64url")
	}
	input := []byte(proof[:j])
	switch k := h.pub.(type) {
	case ed25519.PublicKey:
		if !ed25519.Verify(k, input, sig) {
			return nil, errors.New("proof signature does not verify")
		}
	case *ecdsa.PublicKey:
		if len(sig) != 64 {
			return nil, errors.New("proof signature does not verify")
		}
		hash := sha256.Sum256(input)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(k, hash[:], r, s) {
			return nil, errors.New("proof signature does not verify")
		}
	default:
		return nil, errors.New("proof signature does not verify")
	}
	if !cached {
		c.put(seg, h)
	}
	pb, err := b64.DecodeString(proof[i+1 : j])
	if err != nil {
		return nil, errors.New("proof payload is not base64url")
	}
	var cl Claims
	if err := json.Unmarshal(pb, &cl); err != nil {
		return nil, errors.New("proof payload is not JSON")
	}
	if cl.JTI == "" || len(cl.JTI) > 128 || cl.HTM == "" || cl.HTU == "" || cl.IAT == 0 {
		return nil, errors.New("proof lacks jti, htm, htu or iat")
	}
	return &Verified{Claims: cl, JWK: h.jwk, Thumbprint: h.thumb}, nil
}
