package sso

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/access"
)

// forgingOP is an identity provider that answers whatever ID token the
// test made (as a compromised or malicious IdP, or a man in the middle
// of its token endpoint, would): discovery, its RS256 key set, and a
// token endpoint that returns the current forged token.
type forgingOP struct {
	srv *httptest.Server
	key *rsa.PrivateKey
	mu  sync.Mutex
	tok string
}

var b64url = base64.RawURLEncoding

func newForgingOP(t *testing.T) *forgingOP {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	o := &forgingOP{key: k}
	mux := http.NewServeMux()
	o.srv = httptest.NewServer(mux)
	t.Cleanup(o.srv.Close)
	iss := o.srv.URL
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "authorization_endpoint": iss + "/auth", "token_endpoint": iss + "/token",
			"jwks_uri": iss + "/keys", "id_token_signing_alg_values_supported": []string{"RS256", "HS256", "none"}})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
			"n": b64url.EncodeToString(k.N.Bytes()), "e": b64url.EncodeToString(big.NewInt(int64(k.E)).Bytes())}}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		tok := o.tok
		o.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": tok})
	})
	return o
}

// sign makes a JWT of claims with header alg (RS256 with the OP's key,
// or by key when given; HS256 keyed with the OP's public key, the "alg
// confusion" attack; none unsigned).
func (o *forgingOP) sign(t *testing.T, alg string, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]any{"alg": alg, "kid": "k1", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	input := b64url.EncodeToString(h) + "." + b64url.EncodeToString(c)
	switch alg {
	case "none":
		return input + "."
	case "HS256":
		pub, _ := x509.MarshalPKIXPublicKey(&o.key.PublicKey)
		m := hmac.New(sha256.New, pub)
		m.Write([]byte(input))
		return input + "." + b64url.EncodeToString(m.Sum(nil))
	}
	if key == nil {
		key = o.key
	}
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64url.EncodeToString(sig)
}

// TestForgedIDTokens: ID tokens an IdP's token endpoint might answer,
// each forged in one way, are refused sign-in-refused by the whole
// sign-in (the code redeemed at the token endpoint, the ID token
// verified): expired, without exp, unsigned (alg none), HMAC-signed with the IdP's public key (alg confusion), signed by
// another key under the IdP's kid, another audience, another issuer,
// another nonce, no subject. Control: the same claims, signed right, sign
// in and map to the principal.
func TestForgedIDTokens(t *testing.T) {
	op := newForgingOP(t)
	ctx := context.Background()
	p, err := New(Config{Issuer: op.srv.URL, ClientID: "sekisho", Mapping: mapping(t)})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"iss": op.srv.URL, "aud": "sekisho", "sub": "s-alice", "exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(),
			"nonce": "n-1", "email": "alice@example.jp", "email_verified": true, "groups": []string{"staff"}}
	}
	with := func(k string, v any) map[string]any {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	grant := url.Values{"grant_type": {GrantAuthorizationCode}, "code": {"c"}, "code_verifier": {strings.Repeat("v", 43)},
		"redirect_uri": {"http://127.0.0.1:1/callback"}, "nonce": {"n-1"}}
	for _, tc := range []struct {
		name string
		tok  string
		want string // "" signs in; else a part of the refusal
	}{
		{"control: signed right", op.sign(t, "RS256", nil, good()), ""},
		{"expired", op.sign(t, "RS256", nil, with("exp", now.Add(-time.Minute).Unix())), "expired"},
		{"no exp", op.sign(t, "RS256", nil, with("exp", nil)), "does not verify"},
		{"alg none", op.sign(t, "none", nil, good()), "does not verify"},
		{"HS256 keyed with the IdP's public key", op.sign(t, "HS256", nil, good()), "does not verify"},
		{"signed by another key under the IdP's kid", op.sign(t, "RS256", other, good()), "signature"},
		{"another audience", op.sign(t, "RS256", nil, with("aud", "other-app")), "audience"},
		{"another issuer", op.sign(t, "RS256", nil, with("iss", "https://evil.example")), "issued by a different provider"},
		{"another nonce (a replayed token)", op.sign(t, "RS256", nil, with("nonce", "n-0")), "nonce"},
		{"no nonce", op.sign(t, "RS256", nil, with("nonce", nil)), "nonce"},
		{"no subject", op.sign(t, "RS256", nil, with("sub", nil)), "subject"},
		{"no ID token", "", "no ID token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op.mu.Lock()
			op.tok = tc.tok
			op.mu.Unlock()
			id, err := p.SignIn(ctx, grant)
			if tc.want == "" {
				if err != nil || id.Subject != "s-alice" || id.Principal != "alice" || id.Issuer != op.srv.URL {
					t.Fatalf("refused: %v %+v", err, id)
				}
				return
			}
			if err == nil || problem(err) != access.ProblemSignInRefused || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (%s) %+v, want a sign-in-refused naming %q", err, problem(err), id, tc.want)
			}
			if tc.tok != "" && strings.Contains(err.Error(), tc.tok) {
				t.Fatal("the refusal carries the token")
			}
		})
	}
}

// TestIssuerScheme: an http issuer only on loopback (a test IdP): over
// plain HTTP anyone on the path answers discovery, keys and ID tokens.
func TestIssuerScheme(t *testing.T) {
	m := mapping(t)
	for _, tc := range []struct {
		issuer string
		ok     bool
	}{
		{"https://idp.example.jp/realms/staff", true},
		{"http://127.0.0.1:8080", true},
		{"http://[::1]:8080", true},
		{"http://localhost:8080/realms/x", true},
		{"http://idp.example.jp/realms/staff", false},
		{"http://10.0.0.5:8080", false},
		{"ftp://idp.example.jp", false},
		{"idp.example.jp", false},
	} {
		_, err := New(Config{Issuer: tc.issuer, ClientID: "sekisho", Mapping: m})
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok %v", tc.issuer, err, tc.ok)
		}
	}
}
