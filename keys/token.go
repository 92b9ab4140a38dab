package keys

import (
	"crypto/aes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/xts"
)

// Tokens for other systems.
//
// A token stands for a value of a lookup field, so that another system can
// store it and join on it without holding the value. It is the value's
// blind index (HMAC-SHA-256 under the field's index key, see BlindIndex),
// encrypted with XTS-AES-256 (IEEE 1619, NIST SP 800-38E) under a token key
// derived, like the index key, with HKDF from the org's index root and bound
// to (collection, field):
//
//   - deterministic: the same value gives the same token within (org,
//     collection, field), so tokens join; another org, collection or field
//     has another index key and another token key, so its tokens differ;
//   - reversible only by sekisho, and only to the blind index: turning a
//     token back into a value is a lookup of the records that hold it, which
//     the vault authorises, audits and opens like any read. A token of an
//     erased record (its index entries destroyed) no longer resolves;
//   - nothing about the value can be read from a token without the key.
//
// XTS is used as a deterministic, length-preserving cipher over exactly two
// AES blocks (no ciphertext stealing). Its known limit — equal 16-byte
// blocks at the same position encrypt to equal blocks — does not matter
// here: its input is an HMAC output, so two different values share a block
// with probability about 2^-128. A token carries no integrity check: a
// forged token decrypts to a random index entry that matches no record.
const (
	labelTokenKey = "sekisho/token/v1"
	// TokenPrefix starts every token, so that one is recognisable in logs
	// and other systems' tables.
	TokenPrefix  = "tok_"
	tokenKeySize = 64 // two AES-256 keys for XTS
)

// ErrToken is returned for a string that is not a token.
var ErrToken = errors.New("keys: not a token")

// TokenKey derives the token key of (collection, field) from an org's index
// root key with HKDF-SHA-256.
func TokenKey(root []byte, collection, field string) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, root, nil, string(ad(labelTokenKey, collection, field)), tokenKeySize)
	if err != nil {
		return nil, fmt.Errorf("keys: derive token key: %w", err)
	}
	return k, nil
}

// Token returns the token of a blind index (see BlindIndex).
func Token(tokenKey, blindIndex []byte) (string, error) {
	c, err := tokenCipher(tokenKey, blindIndex)
	if err != nil {
		return "", err
	}
	out := make([]byte, len(blindIndex))
	c.Encrypt(out, blindIndex, 0)
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(out), nil
}

// Untoken returns the blind index a token was made from.
func Untoken(tokenKey []byte, token string) ([]byte, error) {
	rest, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok {
		return nil, ErrToken
	}
	ct, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(ct) != sha256.Size {
		return nil, ErrToken
	}
	c, err := tokenCipher(tokenKey, ct)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(ct))
	c.Decrypt(out, ct, 0)
	return out, nil
}

func tokenCipher(key, data []byte) (*xts.Cipher, error) {
	if len(key) != tokenKeySize {
		return nil, fmt.Errorf("keys: token key is %d bytes, want %d", len(key), tokenKeySize)
	}
	if len(data) != sha256.Size {
		return nil, fmt.Errorf("keys: a token encrypts a %d-byte blind index, not %d bytes", sha256.Size, len(data))
	}
	c, err := xts.NewCipher(aes.NewCipher, key)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return c, nil
}
