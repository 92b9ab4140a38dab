package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"sync"
)

// KeySize is the size of every symmetric key: AES-256 and HMAC-SHA-256.
const KeySize = 32

// ErrOpen is returned when a ciphertext fails to authenticate: wrong key,
// wrong associated data, or tampering. It carries no detail on purpose.
var ErrOpen = errors.New("keys: ciphertext does not authenticate")

// Labels of the associated data; each names its use and format version.
const (
	labelField    = "sekisho/field/v1"
	labelDEK      = "sekisho/dek/v1"
	labelKeyring  = "sekisho/keyring/v1"
	labelIndexKey = "sekisho/blind-index/v1"
)

// NewKey returns a fresh random 256-bit key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("keys: random: %w", err)
	}
	return k, nil
}

// FieldAD identifies the place a field value is sealed for.
type FieldAD struct {
	Collection string
	RecordID   string
	Field      string
	// KeyVersion is the version of the record's DEK. KEK rotation re-wraps a
	// DEK without changing it, so field ciphertexts survive rotation.
	KeyVersion int
}

func (a FieldAD) bytes() []byte {
	return ad(labelField, a.Collection, a.RecordID, a.Field, strconv.Itoa(a.KeyVersion))
}

// DEKAD identifies the record a data key is wrapped for.
type DEKAD struct {
	Org        string
	Region     string
	Collection string
	RecordID   string
	KEKVersion int
}

func (a DEKAD) bytes() []byte {
	return ad(labelDEK, a.Org, a.Region, a.Collection, a.RecordID, strconv.Itoa(a.KEKVersion))
}

// SealField encrypts one canonical field value under a record's DEK.
func SealField(dek []byte, a FieldAD, plaintext []byte) ([]byte, error) {
	return seal(dek, a.bytes(), plaintext)
}

// OpenField decrypts one field value; it fails with ErrOpen if the
// ciphertext was made for another record, field or key.
func OpenField(dek []byte, a FieldAD, ciphertext []byte) ([]byte, error) {
	return open(dek, a.bytes(), ciphertext)
}

// RecordKey is a record's DEK ready to seal and open many fields: the AES
// key schedule is computed once per record, not once per field.
type RecordKey struct {
	aead cipher.AEAD
}

// NewRecordKey prepares dek for sealing and opening fields.
func NewRecordKey(dek []byte) (*RecordKey, error) {
	aead, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	return &RecordKey{aead: aead}, nil
}

// Seal is SealField with a prepared key.
func (k *RecordKey) Seal(a FieldAD, plaintext []byte) ([]byte, error) {
	return sealWith(k.aead, a.bytes(), plaintext)
}

// Open is OpenField with a prepared key.
func (k *RecordKey) Open(a FieldAD, ciphertext []byte) ([]byte, error) {
	return openWith(k.aead, a.bytes(), ciphertext)
}

// WrapDEK encrypts a DEK under a KEK for one record.
func WrapDEK(kek []byte, a DEKAD, dek []byte) ([]byte, error) {
	return seal(kek, a.bytes(), dek)
}

// UnwrapDEK decrypts a wrapped DEK.
func UnwrapDEK(kek []byte, a DEKAD, wrapped []byte) ([]byte, error) {
	return open(kek, a.bytes(), wrapped)
}

// IndexKey derives the blind-index key of (collection, field) from an org's
// index root key with HKDF-SHA-256. Each field gets its own key, so tokens of
// two fields (or two orgs) holding the same value do not match.
func IndexKey(root []byte, collection, field string) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, root, nil, string(ad(labelIndexKey, collection, field)), KeySize)
	if err != nil {
		return nil, fmt.Errorf("keys: derive index key: %w", err)
	}
	return k, nil
}

// BlindIndex returns the token of a normalised value: HMAC-SHA-256 under the
// field's index key. Equal values give equal tokens; the token reveals
// nothing else to whoever lacks the key.
func BlindIndex(indexKey, normalized []byte) []byte {
	m := hmac.New(sha256.New, indexKey)
	m.Write(normalized)
	return m.Sum(nil)
}

// BlindIndexer computes BlindIndex under one index key, reusing HMAC states
// (their key pads are computed once, not once per value). It is safe for
// concurrent use.
type BlindIndexer struct {
	pool sync.Pool
}

// NewBlindIndexer returns the indexer of indexKey.
func NewBlindIndexer(indexKey []byte) *BlindIndexer {
	k := bytes.Clone(indexKey)
	return &BlindIndexer{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}}
}

// Index is BlindIndex(indexKey, normalized).
func (b *BlindIndexer) Index(normalized []byte) []byte {
	m := b.pool.Get().(hash.Hash)
	m.Reset()
	m.Write(normalized)
	out := m.Sum(make([]byte, 0, sha256.Size))
	b.pool.Put(m)
	return out
}

func seal(key, additional, plaintext []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return sealWith(aead, additional, plaintext)
}

// sealWith seals under an AEAD that draws its own random nonce and puts it
// before the ciphertext (cipher.NewGCMWithRandomNonce): the same layout as
// nonce || ciphertext || tag, and an approved use of AES-GCM in FIPS 140-3
// mode, where GCM with caller-chosen nonces is refused.
func sealWith(aead cipher.AEAD, additional, plaintext []byte) ([]byte, error) {
	return aead.Seal(make([]byte, 0, len(plaintext)+aead.Overhead()), nil, plaintext, additional), nil
}

func open(key, additional, ciphertext []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return openWith(aead, additional, ciphertext)
}

func openWith(aead cipher.AEAD, additional, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < aead.Overhead() {
		return nil, ErrOpen
	}
	pt, err := aead.Open(nil, nil, ciphertext, additional)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("keys: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// ad encodes a label and a tuple of strings unambiguously: each part is
// preceded by its length as a 32-bit big-endian integer.
func ad(label string, parts ...string) []byte {
	n := 4 + len(label)
	for _, p := range parts {
		n += 4 + len(p)
	}
	b := make([]byte, 0, n)
	b = binary.BigEndian.AppendUint32(b, uint32(len(label)))
	b = append(b, label...)
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}
