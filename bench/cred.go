package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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
	return fmt.Sprintf("DPoP device-bound (Ed25519) credential of principal %s, device %s", d.principal, d.c.Key.Thumbprint())
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

// pool spreads requests over several principals' credentials, round robin.
type pool struct {
	creds []*deviceCred
	next  atomic.Uint64
}

func (p *pool) Apply(req *http.Request) error {
	return p.creds[(p.next.Add(1)-1)%uint64(len(p.creds))].Apply(req)
}

func (p *pool) String() string {
	return fmt.Sprintf("DPoP device-bound (Ed25519) credentials of %d non-admin principals %s-0..%d (role service, purpose %s), one device each, round robin",
		len(p.creds), principalPrefix, len(p.creds)-1, benchPurpose)
}

// principalPrefix names the non-admin principals the workloads run as.
const principalPrefix = "bench-svc"

// benchPurpose is the purpose of every data request: one that the default
// policy of the role service allows.
const benchPurpose = "ops"

// enrol returns the credential the workloads use, and the admin's client. It spends the bootstrap
// token to enrol an admin (as `sekisho login` does), which creates n
// principals with the role service in the root org and enrols and approves
// a device key for each. The hot path is then exactly a non-admin's request:
// token MAC, proof signature, replay check, device state, Cedar decision,
// guard check.
//
// Why n principals: the guard holds each principal and each device to its
// role's volume budget (a service's is 20,000 records a minute), which one
// load generator passes in seconds; a budget always holds, so the load is
// spread as a fleet of service instances would spread it. Why the
// enumeration rule is set to log: random lookups by phone are, to the
// guard, an enumeration; it is still evaluated on every lookup (its cost
// is measured), only its quarantine is off.
func enrol(ctx context.Context, hc *http.Client, base, bootstrapToken, org string, n int) (Credential, *client.Client, []string, error) {
	var notes []string
	adminKey, err := dpop.GenerateKey("ed25519")
	if err != nil {
		return nil, nil, nil, err
	}
	admin := client.New(base, adminKey)
	admin.HTTP = hc
	if _, err := admin.Bootstrap(ctx, bootstrapToken, "bench-admin", "bench"); err != nil {
		return nil, nil, nil, fmt.Errorf("spend the bootstrap token: %w", err)
	}
	err = admin.JSON(ctx, "PUT", "/v1/guard/rules/enumeration", "", map[string]any{"action": "log"}, nil)
	switch {
	case err == nil:
		notes = append(notes, "guard rule enumeration set to action log (evaluated on every lookup, no quarantine): random lookups by phone are an enumeration to it")
	case client.ProblemType(err) == "route-not-found" || strings.Contains(err.Error(), "404"):
	default:
		return nil, nil, nil, fmt.Errorf("set guard rule enumeration: %w", err)
	}
	p := &pool{creds: make([]*deviceCred, n)}
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p.creds[i], errs[i] = enrolOne(ctx, hc, base, admin, fmt.Sprintf("%s-%d", principalPrefix, i), org)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, nil, err
	}
	return p, admin, notes, nil
}

// enrolOne creates a service principal, enrols its device and has the
// admin approve it.
func enrolOne(ctx context.Context, hc *http.Client, base string, admin *client.Client, id, org string) (*deviceCred, error) {
	err := admin.JSON(ctx, "POST", "/v1/principals", "", map[string]any{"id": id, "org": org, "kind": "service", "roles": []string{"service"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("create principal %s: %w", id, err)
	}
	key, err := dpop.GenerateKey("ed25519")
	if err != nil {
		return nil, err
	}
	c := client.New(base, key)
	c.HTTP = hc
	dev, err := c.Enrol(ctx, id, "bench")
	if err != nil {
		return nil, fmt.Errorf("enrol device of %s: %w", id, err)
	}
	if err := admin.JSON(ctx, "POST", "/v1/devices/"+dev.ID+"/approve", "", nil, nil); err != nil {
		return nil, fmt.Errorf("approve device of %s: %w", id, err)
	}
	d := &deviceCred{c: c, principal: id}
	if _, err := d.token(ctx); err != nil {
		return nil, err
	}
	return d, nil
}
