package access

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access/dpop"
)

// HeaderDPoPNonce carries a server-provided nonce (RFC 9449 §8 and §9).
const HeaderDPoPNonce = "DPoP-Nonce"

// ProblemNonce is the problem type of a proof without the current server
// nonce; its OAuth error is use_dpop_nonce.
const ProblemNonce = "dpop-nonce-required"

// NonceLifetime is how long a server nonce is current; a nonce is accepted
// while it is current and for one lifetime after (so between one and two
// lifetimes), which bounds how long a proof made in advance stays usable.
const NonceLifetime = time.Minute

// Server nonces are stateless, so that every node that shares the token
// key accepts every node's nonces: a nonce is the number of its period
// (unix time / NonceLifetime) and a MAC of that number under a key derived
// from the token key, base64url. Nothing is stored, and a nonce cannot be
// made ahead of its period without the key.
func (s *Service) nonceFor(period int64) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(period))
	m := hmac.New(sha256.New, s.nonceKey)
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return b64.EncodeToString(b[:])
}

func (s *Service) nonceKeyFrom(tokenKey []byte) []byte {
	m := hmac.New(sha256.New, tokenKey)
	m.Write([]byte("sekisho DPoP server nonce v1"))
	return m.Sum(nil)
}

// Nonce returns the current server nonce when the service requires nonces,
// or "" when it does not. The HTTP layer sends it in DPoP-Nonce.
func (s *Service) Nonce() string {
	if !s.cfg.RequireNonce {
		return ""
	}
	p := s.cfg.Now().Unix() / int64(NonceLifetime/time.Second)
	if c := s.nonce.Load(); c != nil && c.period == p {
		return c.value
	}
	c := &currentNonce{period: p, value: s.nonceFor(p)}
	s.nonce.Store(c)
	return c.value
}

type currentNonce struct {
	period int64
	value  string
}

// checkNonce refuses a proof without a current or just-previous nonce when
// the service requires nonces.
func (s *Service) checkNonce(v *dpop.Verified, now time.Time) error {
	if !s.cfg.RequireNonce {
		return nil
	}
	p := now.Unix() / int64(NonceLifetime/time.Second)
	if v.Nonce != "" && (hmac.Equal([]byte(v.Nonce), []byte(s.nonceFor(p))) || hmac.Equal([]byte(v.Nonce), []byte(s.nonceFor(p-1)))) {
		return nil
	}
	msg := "this server requires a server nonce in DPoP proofs: sign the proof again with the nonce of the DPoP-Nonce response header"
	if v.Nonce != "" {
		msg = "the DPoP proof's nonce is not current: sign the proof again with the nonce of the DPoP-Nonce response header"
	}
	return sekisho.TypedErrorf(sekisho.EUnauthorized, ProblemNonce, "%s", msg)
}
