package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/sekisho/sekisho"
)

// BearerToken returns the bearer token of a request, or "".
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// TokenAuth authenticates one static bearer token as one caller: the
// bootstrap admin token of the first serve. Only its SHA-256 is kept.
type TokenAuth struct {
	hash   [32]byte
	caller sekisho.Caller
}

// NewTokenAuth returns a TokenAuth for token, acting as caller.
func NewTokenAuth(token string, caller sekisho.Caller) *TokenAuth {
	return &TokenAuth{hash: sha256.Sum256([]byte(token)), caller: caller}
}

// Authenticate implements Authenticator.
func (a *TokenAuth) Authenticate(r *http.Request) (sekisho.Caller, error) {
	tok := BearerToken(r)
	if tok == "" {
		return sekisho.Caller{}, sekisho.TypedErrorf(sekisho.EUnauthorized, "credential-missing", "send a credential: Authorization: Bearer <token>")
	}
	h := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(h[:], a.hash[:]) != 1 {
		return sekisho.Caller{}, sekisho.TypedErrorf(sekisho.EUnauthorized, "credential-invalid", "the credential is not valid")
	}
	return a.caller, nil
}
