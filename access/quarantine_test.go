package access_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/sqlite"
)

// quarantine is a Quarantine over a set of quarantined ids ("principal:"+id,
// "device:"+id): what the guard answers for an active quarantine, here
// without the guard's rules (httpapi's guard tests run the guard itself).
type quarantine struct {
	mu    sync.Mutex
	ids   map[string]bool
	asked int
}

func (q *quarantine) Quarantined(_ context.Context, principal, device string, _ time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.asked++
	for _, id := range []string{"principal:" + principal, "device:" + device} {
		if q.ids[id] {
			return sekisho.TypedErrorf(sekisho.EUnauthorized, "quarantined", "%s is quarantined", id)
		}
	}
	return nil
}

func (q *quarantine) add(id string) {
	q.mu.Lock()
	q.ids[id] = true
	q.mu.Unlock()
}

// TestQuarantineRefusedByAccess (issue 14 point 3): access refuses a
// quarantined device key through the Quarantine it was made with, at each
// door: a token request, a device enrolment with that key (under any
// principal), and a request with a token issued before. The control: the
// same requests with another device of the same kind, not quarantined,
// succeed, and before the quarantine the first device's did.
func TestQuarantineRefusedByAccess(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, t.TempDir()+"/s.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clk := &clock{t: time.Now()}
	q := &quarantine{ids: map[string]bool{}}
	s, err := access.New(access.Config{Store: store, TokenKey: bytes.Repeat([]byte{1}, 32), BootstrapToken: "boot", Now: clk.now,
		Schema: func(context.Context, string) (*sekisho.Schema, error) { return nil, nil }, Quarantine: q})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := dpop.GenerateKey("p256")
	if _, err := s.SpendBootstrap(ctx, sekisho.Caller{}, "boot", access.Bootstrap{Principal: "admin", Key: key.JWK()}); err != nil {
		t.Fatal(err)
	}
	admin := sekisho.Caller{Principal: "admin", Org: s.RootOrg(), Roles: []string{access.RoleAdmin}}
	// A second device of the admin, approved: the control.
	key2, _ := dpop.GenerateKey("p256")
	d2, err := s.EnrolDevice(ctx, sekisho.Caller{}, "admin", "second", "", key2.JWK())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApproveDevice(ctx, admin, d2.ID); err != nil {
		t.Fatal(err)
	}

	const base = "http://sekisho.test"
	token := func(k *dpop.Key) (string, error) {
		p, err := k.Proof("POST", base+"/v1/token", "", clk.now())
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("POST", base+"/v1/token", nil)
		r.Header.Set("DPoP", p)
		tr, err := s.IssueToken(r)
		if err != nil {
			return "", err
		}
		return tr.AccessToken, nil
	}
	whoami := func(k *dpop.Key, tok string) (sekisho.Caller, error) {
		p, err := k.Proof("GET", base+"/v1/whoami", tok, clk.now())
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", base+"/v1/whoami", nil)
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", p)
		return s.Authenticate(r)
	}
	enrolKey := func(k *dpop.Key) error {
		p, err := k.Proof("POST", base+"/v1/devices", "", clk.now())
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("POST", base+"/v1/devices", nil)
		r.Header.Set("DPoP", p)
		_, _, err = s.DeviceKey(r)
		return err
	}
	quarantined := func(what string, err error) {
		t.Helper()
		var e *sekisho.Error
		if !errors.As(err, &e) || e.Type != "quarantined" {
			t.Fatalf("%s: %v, want refused as quarantined", what, err)
		}
	}

	// Before: every door opens for both devices.
	tok1, err := token(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := whoami(key, tok1); err != nil {
		t.Fatal(err)
	}
	if err := enrolKey(key); err != nil {
		t.Fatal(err)
	}
	asked := q.asked
	if asked < 3 {
		t.Fatalf("the quarantine was asked %d times for a token, a request and an enrolment", asked)
	}

	q.add("device:" + key.Thumbprint())
	_, err = token(key)
	quarantined("token for the quarantined key", err)
	c, err := whoami(key, tok1)
	quarantined("request with the quarantined key's token", err)
	if c.Principal != "admin" || c.Device != key.Thumbprint() {
		t.Errorf("the refused caller is %+v: want it named, so that the refusal is audited under it", c)
	}
	quarantined("enrolment of the quarantined key", enrolKey(key))

	// Control: the admin's other device is not quarantined.
	tok2, err := token(key2)
	if err != nil {
		t.Fatalf("token for the other device: %v", err)
	}
	if c, err := whoami(key2, tok2); err != nil || c.Device != d2.ID {
		t.Fatalf("request with the other device: %+v, %v", c, err)
	}
	other, _ := dpop.GenerateKey("p256")
	if err := enrolKey(other); err != nil {
		t.Fatalf("enrolment of a fresh key: %v", err)
	}
}
