// Package client is a small Go client of the sekisho API that signs every
// request with a device key: it fetches a DPoP-bound access token from
// POST /v1/token, refreshes it before it expires (which needs the key
// again), and sends a fresh DPoP proof with every request. The CLI and the
// tests use it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access/dpop"
)

// Client sends requests as one device.
type Client struct {
	// Server is the base URL, e.g. http://127.0.0.1:8700.
	Server string
	Key    *dpop.Key
	HTTP   *http.Client
	// Now is the clock of proofs (tests); default time.Now.
	Now func() time.Time
	// Renew makes Do get a new token and retry once when a cached token is
	// refused (the CLI's profiles set it; tests of the server leave it off
	// to see the refusal itself).
	Renew bool
	// KeyStorage is where Key lives (file, tpm), claimed at enrolment and
	// bootstrap as the device's key_storage; "" claims nothing (file).
	KeyStorage string
	// Attestation, when set, is sent with Enrol: evidence of where Key
	// lives (a TPM key attestation, AttestTPM).
	Attestation any

	mu      sync.Mutex
	token   string
	expires time.Time
	nonce   string // the latest DPoP-Nonce the server sent
}

// New returns a client of server for the device key.
func New(server string, key *dpop.Key) *Client {
	return &Client{Server: strings.TrimRight(server, "/"), Key: key, HTTP: http.DefaultClient}
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Problem is an RFC 9457 problem returned by the server.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

func (p *Problem) Error() string {
	return fmt.Sprintf("%d %s: %s (%s)", p.Status, strings.TrimPrefix(p.Type, "https://sekisho.dev/problems/"), p.Detail, p.RequestID)
}

// ProblemType returns the short problem type of err ("device-revoked"), or "".
func ProblemType(err error) string {
	var p *Problem
	if errors.As(err, &p) {
		return strings.TrimPrefix(p.Type, "https://sekisho.dev/problems/")
	}
	return ""
}

// Token is an access token: the answer of POST /v1/token.
type Token = sekisho.TokenResponse

// SetToken installs a cached token (from a profile).
func (c *Client) SetToken(tok string, expires time.Time) {
	c.mu.Lock()
	c.token, c.expires = tok, expires
	c.mu.Unlock()
}

// CurrentToken returns the token in use and its expiry.
func (c *Client) CurrentToken() (string, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token, c.expires
}

// Refresh gets a new access token with a proof of the device key.
func (c *Client) Refresh(ctx context.Context) (*Token, error) {
	var t Token
	body := []byte("grant_type=client_credentials") // RFC 6749 §4.4; the client authenticates with the proof
	if err := c.unauthenticatedRaw(ctx, "POST", "/v1/token", body, "application/x-www-form-urlencoded", "", &t); err != nil {
		return nil, err
	}
	c.SetToken(t.AccessToken, t.ExpiresAt)
	return &t, nil
}

// SignIn redeems a sign-in grant of a person (the form of an
// authorization code with its PKCE verifier, or of a device code; package
// sso makes it) at the token endpoint, with a proof of this client's key:
// the server enrols or reuses the key as the person's device and returns
// a token bound to it. A device code not yet approved is a Problem of
// type authorization-pending (or slow-down).
func (c *Client) SignIn(ctx context.Context, grant url.Values) (*Token, error) {
	var t Token
	form := url.Values{}
	for k, v := range grant {
		form[k] = v
	}
	if c.KeyStorage != "" {
		form.Set("key_storage", c.KeyStorage)
	}
	if c.Attestation != nil {
		b, err := json.Marshal(c.Attestation)
		if err != nil {
			return nil, err
		}
		form.Set("attestation", string(b))
	}
	if err := c.unauthenticatedRaw(ctx, "POST", "/v1/token", []byte(form.Encode()), "application/x-www-form-urlencoded", "", &t); err != nil {
		return nil, err
	}
	c.SetToken(t.AccessToken, t.ExpiresAt)
	return &t, nil
}

// tokenFor returns a token valid for at least 30 more seconds, and whether
// it was fetched just now (a cached one may have been revoked since).
func (c *Client) tokenFor(ctx context.Context) (string, bool, error) {
	c.mu.Lock()
	tok, exp := c.token, c.expires
	c.mu.Unlock()
	if tok != "" && c.now().Add(30*time.Second).Before(exp) {
		return tok, false, nil
	}
	t, err := c.Refresh(ctx)
	if err != nil {
		return "", false, err
	}
	return t.AccessToken, true, nil
}

// NewRequest builds a request with the device-bound credential: the access
// token and a fresh DPoP proof for its method and URL.
func (c *Client) NewRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, _, err := c.newRequest(ctx, method, path, body)
	return req, err
}

func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, bool, error) {
	tok, fresh, err := c.tokenFor(ctx)
	if err != nil {
		return nil, false, err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Server+path, body)
	if err != nil {
		return nil, false, err
	}
	proof, err := c.Key.ProofNonce(method, req.URL.Scheme+"://"+req.URL.Host+req.URL.EscapedPath(), tok, c.serverNonce(), c.now())
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Authorization", "DPoP "+tok)
	req.Header.Set("DPoP", proof)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, fresh, nil
}

// UnreachableError says the server could not be reached at all (no answer:
// connection refused, name not found, TLS failure, timeout).
type UnreachableError struct {
	Server string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("could not reach the server at %s: %v (is `sekisho serve` running at %s?)", e.Server, e.Err, e.Server)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// send is HTTP.Do with a transport failure reported as *UnreachableError.
// It remembers the server nonce of every response (RFC 9449 §8-9), and
// reports whether a refusal came with a nonce other than the one its proof
// carried: the request is then worth sending once more with it (the
// refusal happened before the server acted).
func (c *Client) send(req *http.Request) (*http.Response, bool, error) {
	used := c.serverNonce()
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, false, ctxErr
		}
		return nil, false, &UnreachableError{Server: c.Server, Err: err}
	}
	n := resp.Header.Get("DPoP-Nonce")
	if n == "" {
		return resp, false, nil
	}
	c.mu.Lock()
	c.nonce = n
	c.mu.Unlock()
	retry := n != used && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusBadRequest)
	return resp, retry, nil
}

func (c *Client) serverNonce() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nonce
}

// discard drains and closes a response that is not returned.
func discard(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}

// Do sends one request with the device-bound credential and returns the
// response as it came (any status). With Renew, when a cached token is refused (401:
// expired, revoked, or predating a quarantine that was lifted since), Do
// gets a new one with the device key and sends the request once more; the
// refusal happens before the server acts, so the retry is safe for writes.
func (c *Client) Do(ctx context.Context, method, path string, body []byte, header http.Header) (*http.Response, error) {
	send := func() (*http.Response, bool, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, fresh, err := c.newRequest(ctx, method, path, rd)
		if err != nil {
			return nil, false, err
		}
		for k, vs := range header {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		resp, retry, err := c.send(req)
		if err == nil && retry {
			// A new server nonce: the same request once more with it.
			discard(resp)
			if req, fresh, err = c.newRequest(ctx, method, path, bodyReader(body)); err != nil {
				return nil, false, err
			}
			for k, vs := range header {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			resp, _, err = c.send(req)
		}
		return resp, fresh, err
	}
	resp, fresh, err := send()
	if err != nil || fresh || !c.Renew || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	c.SetToken("", time.Time{}) // the next request fetches a new token
	resp, _, err = send()
	return resp, err
}

// JSON sends in (if not nil) as JSON and decodes a 2xx answer into out (if
// not nil); any other status is a *Problem.
func (c *Client) JSON(ctx context.Context, method, path, purpose string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	h := http.Header{}
	if purpose != "" {
		h.Set("Sekisho-Purpose", purpose)
	}
	resp, err := c.Do(ctx, method, path, body, h)
	if err != nil {
		return err
	}
	return decode(resp, out)
}

// unauthenticated sends a request that carries a DPoP proof of the key but
// no access token (token, enrolment, bootstrap), with an optional bearer.
func (c *Client) unauthenticated(ctx context.Context, method, path string, in any, bearer string, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	return c.unauthenticatedRaw(ctx, method, path, body, "application/json", bearer, out)
}

// unauthenticatedRaw is unauthenticated with a body of the given type; a
// refusal that brings a new server nonce is retried once with it.
func (c *Client) unauthenticatedRaw(ctx context.Context, method, path string, body []byte, contentType, bearer string, out any) error {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, c.Server+path, bodyReader(body))
		if err != nil {
			return err
		}
		proof, err := c.Key.ProofNonce(method, req.URL.Scheme+"://"+req.URL.Host+req.URL.EscapedPath(), "", c.serverNonce(), c.now())
		if err != nil {
			return err
		}
		req.Header.Set("DPoP", proof)
		if body != nil {
			req.Header.Set("Content-Type", contentType)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, retry, err := c.send(req)
		if err != nil {
			return err
		}
		if retry && attempt == 0 {
			discard(resp)
			continue
		}
		return decode(resp, out)
	}
}

func bodyReader(b []byte) io.Reader {
	if b == nil {
		return nil
	}
	return bytes.NewReader(b)
}

func decode(resp *http.Response, out any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		p := &Problem{Status: resp.StatusCode}
		if json.Unmarshal(b, p) != nil || p.Type == "" {
			p.Type, p.Detail = "http-"+fmt.Sprint(resp.StatusCode), strings.TrimSpace(string(b))
		}
		return p
	}
	if out == nil || len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, out)
}

// BootstrapResult is the answer of the bootstrap.
type BootstrapResult struct {
	Org       json.RawMessage `json:"org"`
	Principal struct {
		ID  string `json:"id"`
		Org string `json:"org"`
	} `json:"principal"`
	Device struct {
		ID       string `json:"id"`
		Status   string `json:"status"`
		Attested bool   `json:"attested"`
	} `json:"device"`
}

// Bootstrap spends the bootstrap token to enrol the first admin, principal,
// with this client's key as its device, approved.
func (c *Client) Bootstrap(ctx context.Context, token, principal, deviceName string) (*BootstrapResult, error) {
	var out BootstrapResult
	body := map[string]any{"principal": principal, "device_name": deviceName}
	if c.KeyStorage != "" {
		body["key_storage"] = c.KeyStorage
	}
	if c.Attestation != nil {
		body["attestation"] = c.Attestation
	}
	err := c.unauthenticated(ctx, "POST", "/v1/bootstrap", body, token, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Device is a device as the API returns it.
type Device struct {
	ID        string `json:"id"`
	Principal string `json:"principal"`
	Org       string `json:"org"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	// KeyStorage is where the enrolment said the key lives (file, tpm,
	// pkcs11, webauthn); Attested whether evidence of it was verified.
	KeyStorage string `json:"key_storage"`
	Attested   bool   `json:"attested"`
}

// Enrol enrols this client's key as a device of principal (pending until an
// admin of its org approves it).
func (c *Client) Enrol(ctx context.Context, principal, deviceName string) (*Device, error) {
	var out Device
	body := map[string]any{"principal": principal, "name": deviceName}
	if c.KeyStorage != "" {
		body["key_storage"] = c.KeyStorage
	}
	if c.Attestation != nil {
		body["attestation"] = c.Attestation
	}
	if err := c.unauthenticated(ctx, "POST", "/v1/devices", body, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}
