package sso

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Login is the client side of a sign-in (sekisho login --oidc): it finds
// the IdP's endpoints and runs the authorization-code flow with PKCE in
// the person's browser, or starts the device flow. What it gets (a code
// and its verifier, or a device code) is a grant for sekisho's token
// endpoint, which redeems it at the IdP: the IdP's tokens go to the
// server, never into the profile.
type Login struct {
	Issuer, ClientID string
	Scopes           []string
	// HTTP talks to the IdP (default http.DefaultClient).
	HTTP *http.Client
}

func (l *Login) config(ctx context.Context) (*oauth2.Config, error) {
	if l.HTTP != nil {
		ctx = oidc.ClientContext(ctx, l.HTTP)
	}
	p, err := oidc.NewProvider(ctx, l.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover the identity provider %s: %w", l.Issuer, err)
	}
	scopes := l.Scopes
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams
	return &oauth2.Config{ClientID: l.ClientID, Endpoint: ep, Scopes: scopes}, nil
}

func random() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// CallbackPath is the path of the loopback redirect URI
// (http://127.0.0.1:PORT/callback; register http://127.0.0.1/callback at
// the IdP: any port matches, RFC 8252 §7.3).
const CallbackPath = "/callback"

// Browser runs the authorization-code flow with PKCE (S256): it listens
// on a loopback port, calls show with the URL the person opens in a
// browser, and waits (until ctx ends) for the IdP's redirect. A redirect
// with another state is answered 400 and ignored. It returns the form of
// the token request that redeems the code.
func (l *Login) Browser(ctx context.Context, show func(authURL string)) (url.Values, error) {
	conf, err := l.config(ctx)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the sign-in redirect: %w", err)
	}
	defer ln.Close()
	conf.RedirectURL = "http://" + ln.Addr().String() + CallbackPath
	state, nonce, verifier := random(), random(), oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))

	type result struct {
		code string
		err  error
	}
	done := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc(CallbackPath, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
			http.Error(w, "sekisho: this sign-in response is not for the sign-in under way (state mismatch); ignored", http.StatusBadRequest)
			return
		}
		var res result
		if e := q.Get("error"); e != "" {
			res.err = fmt.Errorf("the identity provider refused the sign-in: %s %s", e, q.Get("error_description"))
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, "<!doctype html><title>sekisho</title><p>Sign-in refused: %s</p>", html.EscapeString(e))
		} else if res.code = q.Get("code"); res.code == "" {
			res.err = errors.New("the identity provider's redirect carries no code")
			w.WriteHeader(http.StatusBadRequest)
		} else {
			fmt.Fprint(w, "<!doctype html><title>sekisho</title><p>Signed in to the identity provider. Return to the terminal: sekisho finishes the sign-in there.</p>")
		}
		select {
		case done <- res:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer func() {
		// Gracefully: the browser gets the page the handler wrote.
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(c)
	}()
	show(authURL)
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("no sign-in redirect came back: %w", ctx.Err())
	case res := <-done:
		if res.err != nil {
			return nil, res.err
		}
		return url.Values{"grant_type": {GrantAuthorizationCode}, "code": {res.code}, "code_verifier": {verifier},
			"redirect_uri": {conf.RedirectURL}, "nonce": {nonce}}, nil
	}
}

// Device starts the device flow (RFC 8628) at the IdP: the person opens
// the verification URI on another machine and enters the user code; the
// grant (with the device code) is then polled at sekisho's token endpoint.
func (l *Login) Device(ctx context.Context) (*oauth2.DeviceAuthResponse, url.Values, error) {
	conf, err := l.config(ctx)
	if err != nil {
		return nil, nil, err
	}
	if conf.Endpoint.DeviceAuthURL == "" {
		return nil, nil, fmt.Errorf("the identity provider %s has no device authorization endpoint", l.Issuer)
	}
	if l.HTTP != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, l.HTTP)
	}
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("start the device sign-in at %s: %w", l.Issuer, err)
	}
	return da, url.Values{"grant_type": {GrantDeviceCode}, "device_code": {da.DeviceCode}}, nil
}
