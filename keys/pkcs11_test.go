package keys_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/softhsm"
	"github.com/sekisho/sekisho/keys"
)

func openHSM(t *testing.T, tok *softhsm.Token) *keys.PKCS11 {
	t.Helper()
	cfg := tok.Config()
	cfg.Retry = time.Millisecond
	p, err := keys.OpenPKCS11(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// The PKCS#11 provider against a real SoftHSM2 token: a DEK wrapped in the
// HSM opens with the same associated data only; rotation, retirement and
// destruction; the index root is stable across a reconnect.
func TestPKCS11Provider(t *testing.T) {
	ctx := context.Background()
	tok := softhsm.New(t, "sekisho-keys")
	p := openHSM(t, tok)
	dek, _ := keys.NewKey()
	a := keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: "r1"}
	w, v, err := p.WrapDEK(ctx, a, dek)
	if err != nil || v != 1 {
		t.Fatalf("wrap: v%d %v", v, err)
	}
	a.KEKVersion = 1
	got, err := p.UnwrapDEK(ctx, a, w)
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("unwrap: %v", err)
	}
	for name, b := range map[string]keys.DEKAD{
		"other record": {Org: "operator", Region: "jp", Collection: "users", RecordID: "r2", KEKVersion: 1},
		"other org":    {Org: "affiliate", Region: "jp", Collection: "users", RecordID: "r1", KEKVersion: 1},
	} {
		if _, err := p.UnwrapDEK(ctx, b, w); err == nil {
			t.Errorf("%s: the wrapped DEK opened", name)
		}
	}
	flipped := append([]byte{}, w...)
	flipped[len(flipped)-1] ^= 1
	if _, err := p.UnwrapDEK(ctx, a, flipped); !errors.Is(err, keys.ErrOpen) {
		t.Errorf("a flipped tag: %v, want ErrOpen", err)
	}
	root1, err := p.IndexRoot(ctx, "operator")
	if err != nil || len(root1) != keys.KeySize {
		t.Fatalf("index root: %d bytes, %v", len(root1), err)
	}
	// Rotate: version 2 is current; version 1 still opens until retired.
	if v2, err := p.RotateKEK(ctx, "operator", "jp"); err != nil || v2 != 2 {
		t.Fatalf("rotate: v%d %v", v2, err)
	}
	if _, v, _ := p.WrapDEK(ctx, keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: "r3"}, dek); v != 2 {
		t.Fatalf("wrap after rotation used v%d", v)
	}
	if err := p.RetireKEK(ctx, "operator", "jp", 2); err == nil {
		t.Fatal("the current version was retired")
	}
	if err := p.RetireKEK(ctx, "operator", "jp", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := p.UnwrapDEK(ctx, a, w); !errors.Is(err, keys.ErrKeyUnavailable) {
		t.Fatalf("unwrap under a retired version: %v", err)
	}
	// A new connection (another process) sees the same keys.
	p2 := openHSM(t, tok)
	if vs, err := p2.KEKVersions(ctx, "operator", "jp"); err != nil || len(vs) != 1 || vs[0] != 2 {
		t.Fatalf("versions seen anew: %v %v", vs, err)
	}
	if root2, _ := p2.IndexRoot(ctx, "operator"); !bytes.Equal(root1, root2) {
		t.Fatal("the index root changed across connections")
	}
	// Destroy: every version is gone for good, and a new key starts above.
	w3, _, _ := p.WrapDEK(ctx, keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: "r4"}, dek)
	if top, err := p.DestroyKEKs(ctx, "operator", "jp"); err != nil || top != 2 {
		t.Fatalf("destroy: %d %v", top, err)
	}
	if _, err := p2.UnwrapDEK(ctx, keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: "r4", KEKVersion: 2}, w3); !errors.Is(err, keys.ErrKeyDestroyed) {
		t.Fatalf("unwrap after destroy: %v, want ErrKeyDestroyed", err)
	}
	if _, v, err := p2.WrapDEK(ctx, keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: "r5"}, dek); err != nil || v != 3 {
		t.Fatalf("first key after destroy: v%d %v, want v3", v, err)
	}
	// Other regions are untouched.
	if _, v, err := p.WrapDEK(ctx, keys.DEKAD{Org: "operator", Region: "th", Collection: "users", RecordID: "r6"}, dek); err != nil || v != 1 {
		t.Fatalf("th: v%d %v", v, err)
	}
}

// A token taken away: operations and Ping fail with ErrKeyUnavailable; when
// it comes back the provider reconnects by itself.
func TestPKCS11TokenRemovedAndBack(t *testing.T) {
	ctx := context.Background()
	tok := softhsm.New(t, "sekisho-gone")
	p := openHSM(t, tok)
	dek, _ := keys.NewKey()
	a := keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: "r1"}
	w, v, err := p.WrapDEK(ctx, a, dek)
	if err != nil {
		t.Fatal(err)
	}
	a.KEKVersion = v
	if err := p.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	tok.Remove(t)
	if err := p.Ping(ctx); !errors.Is(err, keys.ErrKeyUnavailable) {
		t.Fatalf("ping with the token removed: %v, want ErrKeyUnavailable", err)
	}
	if _, err := p.UnwrapDEK(ctx, a, w); !errors.Is(err, keys.ErrKeyUnavailable) {
		t.Fatalf("unwrap with the token removed: %v, want ErrKeyUnavailable", err)
	}
	tok.Restore(t)
	time.Sleep(5 * time.Millisecond)
	if err := p.Ping(ctx); err != nil {
		t.Fatalf("ping after the token came back: %v", err)
	}
	if got, err := p.UnwrapDEK(ctx, a, w); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("unwrap after the token came back: %v", err)
	}
}

// Callers in flight while the token goes and comes back: each call answers
// (the key or ErrKeyUnavailable, nothing else), the process survives the
// module being re-initialised under them, and all recover.
func TestPKCS11ConcurrentLoss(t *testing.T) {
	ctx := context.Background()
	tok := softhsm.New(t, "sekisho-flap")
	p := openHSM(t, tok)
	dek, _ := keys.NewKey()
	a := keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: "r1"}
	w, v, err := p.WrapDEK(ctx, a, dek)
	if err != nil {
		t.Fatal(err)
	}
	a.KEKVersion = v
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				got, err := p.UnwrapDEK(ctx, a, w)
				if err != nil && !errors.Is(err, keys.ErrKeyUnavailable) {
					errs <- err
					return
				}
				if err == nil && !bytes.Equal(got, dek) {
					errs <- errors.New("wrong key")
					return
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	tok.Remove(t)
	time.Sleep(200 * time.Millisecond)
	tok.Restore(t)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := p.UnwrapDEK(ctx, a, w)
		if err == nil && bytes.Equal(got, dek) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPKCS11FirstKeyOnce: many callers using an (org, region) and an org
// for the first time at once (a parallel import, a busy server) make one
// KEK and one index key between them, not one each: every DEK they wrapped
// opens on a fresh connection to the token, and every index root is the
// same. On the old code each racing caller generated its own "v1" KEK and
// index key under the same label, and the records wrapped under the one a
// later scan did not pick read as tampered (found by go run ./bench
// -key-provider pkcs11).
func TestPKCS11FirstKeyOnce(t *testing.T) {
	ctx := context.Background()
	tok := softhsm.New(t, "sekisho-first")
	p := openHSM(t, tok)
	const n = 16
	type wrapped struct {
		a keys.DEKAD
		w []byte
	}
	var (
		mu    sync.Mutex
		deks  = map[string][]byte{}
		ws    []wrapped
		roots [][]byte
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			dek, _ := keys.NewKey()
			a := keys.DEKAD{Org: "operator", Region: "id", Collection: "users", RecordID: fmt.Sprint("r", i)}
			w, v, err := p.WrapDEK(ctx, a, dek)
			if err != nil {
				t.Error(err)
				return
			}
			a.KEKVersion = v
			root, err := p.IndexRoot(ctx, "operator")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			deks[a.RecordID], ws, roots = dek, append(ws, wrapped{a, w}), append(roots, root)
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	fresh := openHSM(t, tok)
	for _, x := range ws {
		if x.a.KEKVersion != 1 {
			t.Errorf("%s wrapped under KEK v%d, want v1", x.a.RecordID, x.a.KEKVersion)
		}
		got, err := fresh.UnwrapDEK(ctx, x.a, x.w)
		if err != nil || !bytes.Equal(got, deks[x.a.RecordID]) {
			t.Errorf("%s does not open on a fresh connection: %v", x.a.RecordID, err)
		}
	}
	want, err := fresh.IndexRoot(ctx, "operator")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range roots {
		if !bytes.Equal(r, want) {
			t.Errorf("caller %d got another index root than a fresh connection", i)
		}
	}
}
