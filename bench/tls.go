package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/internal/testpki"
)

// With -tls the server, and the floor (floor_tls), serve TLS with a
// certificate of a throw-away CA, which also issues the services' client
// certificates: hot_read is then DPoP over TLS, and hot_read_mtls a service
// over mTLS with a certificate-bound token (RFC 8705) and no proof.

// benchPKI is the run's CA, the server's certificate files and the client CA file.
type benchPKI struct {
	ca                       *testpki.CA
	certFile, keyFile, caPEM string
}

func newBenchPKI(dir string) (*benchPKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := testpki.NewCA("sekisho bench CA")
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Server()
	if err != nil {
		return nil, err
	}
	p := &benchPKI{ca: ca, caPEM: filepath.Join(dir, "client-ca.pem")}
	if p.certFile, p.keyFile, err = leaf.WriteFiles(dir, "server"); err != nil {
		return nil, err
	}
	return p, os.WriteFile(p.caPEM, ca.PEM, 0o600)
}

// certHeader names, on the way from Apply to the transport, which
// service's certificate a request goes out with; it is removed before the
// request is sent.
const certHeader = "Sekisho-Bench-Cert"

// certTransport sends each request over the connections of the transport
// whose client certificate matches its token.
type certTransport struct {
	ts []*http.Transport
}

func (c *certTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	i, err := strconv.Atoi(req.Header.Get(certHeader))
	if err != nil || i < 0 || i >= len(c.ts) {
		return nil, errors.New("bench: request without a service certificate")
	}
	r2 := req.Clone(req.Context())
	r2.Header.Del(certHeader)
	return c.ts[i].RoundTrip(r2)
}

// mtlsPool is the credentials of n services over mTLS: a certificate-bound
// token each, sent with no proof, round robin.
type mtlsPool struct {
	tokens []string
	next   atomic.Uint64
}

func (p *mtlsPool) Apply(req *http.Request) error {
	i := (p.next.Add(1) - 1) % uint64(len(p.tokens))
	req.Header.Set("Authorization", "Bearer "+p.tokens[i])
	req.Header.Set(certHeader, strconv.FormatUint(i, 10))
	return nil
}

func (p *mtlsPool) String() string {
	return fmt.Sprintf("mTLS certificate-bound tokens (RFC 8705, P-256 client certificates) of %d service principals %s-mtls-0..%d, no proof",
		len(p.tokens), principalPrefix, len(p.tokens)-1)
}

// enrolMTLS creates n service principals, each with a client certificate
// whose key is enrolled (over mTLS, no proof) and approved by admin, and
// gets each a certificate-bound token (tokens live 5 minutes: the mTLS
// workload is measured right after). It returns the credential and the
// client that sends each request with the matching certificate.
func enrolMTLS(ctx context.Context, base string, pki *benchPKI, admin *client.Client, org string, n, conns int) (*mtlsPool, *http.Client, error) {
	ct := &certTransport{ts: make([]*http.Transport, n)}
	pool := &mtlsPool{tokens: make([]string, n)}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("%s-mtls-%d", principalPrefix, i)
			leaf, err := pki.ca.Client(id, "p256")
			if err != nil {
				errs[i] = err
				return
			}
			per := max(conns/n, 2)
			ct.ts[i] = &http.Transport{MaxIdleConns: per, MaxIdleConnsPerHost: per, MaxConnsPerHost: per, DisableCompression: true,
				TLSClientConfig: &tls.Config{RootCAs: pki.ca.Pool(), Certificates: []tls.Certificate{leaf.TLS()}}}
			hc := &http.Client{Transport: ct.ts[i]}
			if err := admin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": id, "org": org, "kind": "service", "roles": []string{"service"}}, nil); err != nil {
				errs[i] = fmt.Errorf("create principal %s: %w", id, err)
				return
			}
			var dev struct{ ID string }
			if err := postJSON(ctx, hc, base+"/v1/devices", "application/json", `{"principal":"`+id+`","name":"bench mtls"}`, &dev); err != nil {
				errs[i] = fmt.Errorf("enrol certificate of %s: %w", id, err)
				return
			}
			if err := admin.JSON(ctx, "POST", "/v1/devices/"+dev.ID+"/approve", "", nil, nil); err != nil {
				errs[i] = fmt.Errorf("approve certificate of %s: %w", id, err)
				return
			}
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			if err := postJSON(ctx, hc, base+"/v1/token", "application/x-www-form-urlencoded", "grant_type=client_credentials", &tok); err != nil {
				errs[i] = fmt.Errorf("token of %s: %w", id, err)
				return
			}
			pool.tokens[i] = tok.AccessToken
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return pool, &http.Client{Transport: ct}, nil
}

// postJSON posts body and decodes a 2xx JSON answer into out.
func postJSON(ctx context.Context, hc *http.Client, url, contentType, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	return decodeAnswer(resp, out)
}

func decodeAnswer(resp *http.Response, out any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	return json.Unmarshal(b, out)
}
