package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/client"
)

// Credential puts one principal's credential on a request. It is the only
// thing the load generator knows about authentication, so that the bench
// can move to another kind of credential (mTLS, say) by adding an
// implementation, not by changing the workloads.
type Credential interface {
	// Apply sets the credential headers of req. It is called once per
	// request, just before it is sent, and may be called concurrently.
	Apply(req *http.Request) error
	// String says who the credential is, for the report.
	String() string
}

// deviceCred is a device-bound credential (RFC 9449) of package client: an
// access token bound to a device key, and a fresh proof signed by that key
// on every request, as `sekisho api` sends them. The proof is made here,
// per request, so the bench pays the client's signing cost like any caller.
type deviceCred struct {
	c         *client.Client
	principal string

	refresh sync.Mutex // one refresh at a time
}

func (d *deviceCred) String() string {
	return fmt.Sprintf("DPoP device-bound (Ed25519) credential of non-admin principal %s (role member), device %s", d.principal, d.c.Key.Thumbprint())
}

// token returns an access token valid for at least another minute.
func (d *deviceCred) token(ctx context.Context) (string, error) {
	tok, exp := d.c.CurrentToken()
	if tok != "" && time.Until(exp) > time.Minute {
		return tok, nil
	}
	d.refresh.Lock()
	defer d.refresh.Unlock()
	if tok, exp = d.c.CurrentToken(); tok != "" && time.Until(exp) > time.Minute {
		return tok, nil
	}
	t, err := d.c.Refresh(ctx)
	if err != nil {
		return "", fmt.Errorf("refresh access token: %w", err)
	}
	return t.AccessToken, nil
}

func (d *deviceCred) Apply(req *http.Request) error {
	tok, err := d.token(req.Context())
	if err != nil {
		return err
	}
	u := req.URL
	proof, err := d.c.Key.Proof(req.Method, u.Scheme+"://"+u.Host+u.EscapedPath(), tok, time.Now())
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "DPoP "+tok)
	req.Header.Set("DPoP", proof)
	return nil
}

// readerPrincipal is the non-admin principal the workloads run as.
const readerPrincipal = "bench-reader"

// enrol returns the credential the workloads use. It spends the bootstrap
// token to enrol an admin (as `sekisho login` does), has that admin create
// a principal with the role member in the root org, enrols and approves a
// device key for it, and returns that principal's credential: the hot path
// is then exactly a non-admin's request (token MAC, proof signature, replay
// check, device state, Cedar decision).
func enrol(ctx context.Context, hc *http.Client, base, bootstrapToken, org string) (Credential, error) {
	adminKey, err := dpop.GenerateKey("ed25519")
	if err != nil {
		return nil, err
	}
	admin := client.New(base, adminKey)
	admin.HTTP = hc
	if _, err := admin.Bootstrap(ctx, bootstrapToken, "bench-admin", "bench"); err != nil {
		return nil, fmt.Errorf("spend the bootstrap token: %w", err)
	}
	err = admin.JSON(ctx, "POST", "/v1/principals", "",
		map[string]any{"id": readerPrincipal, "org": org, "kind": "service", "roles": []string{"member"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("create principal %s: %w", readerPrincipal, err)
	}
	key, err := dpop.GenerateKey("ed25519")
	if err != nil {
		return nil, err
	}
	reader := client.New(base, key)
	reader.HTTP = hc
	dev, err := reader.Enrol(ctx, readerPrincipal, "bench")
	if err != nil {
		return nil, fmt.Errorf("enrol device: %w", err)
	}
	if err := admin.JSON(ctx, "POST", "/v1/devices/"+dev.ID+"/approve", "", nil, nil); err != nil {
		return nil, fmt.Errorf("approve device: %w", err)
	}
	d := &deviceCred{c: reader, principal: readerPrincipal}
	if _, err := d.token(ctx); err != nil {
		return nil, err
	}
	return d, nil
}
