package keys_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/softhsm"
	"github.com/sekisho/sekisho/keys"
)

// TestPKCS11DuplicateKeysHarmless: a token that already holds two KEKs
// under one label and two index keys of one org (made by processes that
// raced before makeKey, without CKA_IDs). Every data key wrapped under
// either KEK opens (the code before kept one handle per label, and the
// data keys of the other did not open); a forgery still does not; both
// providers agree on the index root; destroying the region destroys both
// KEKs (before, one survived the crypto-shred in the token).
func TestPKCS11DuplicateKeysHarmless(t *testing.T) {
	ctx := context.Background()
	tok := softhsm.New(t, "sekisho-dups")
	p := openHSM(t, tok)
	for range 2 {
		if err := keys.ExtraKEK(ctx, p, "operator", "jp", 1, false); err != nil {
			t.Fatal(err)
		}
		if err := keys.ExtraIndexKey(ctx, p, "operator"); err != nil {
			t.Fatal(err)
		}
	}
	if index, keks, err := keys.KeyCounts(ctx, p, "operator", "jp"); err != nil || index != 2 || keks[1] != 2 {
		t.Fatalf("set-up: %d index keys, KEKs %v, %v", index, keks, err)
	}
	var ws [][]byte
	var deks [][]byte
	for i := range 2 {
		dek, _ := keys.NewKey()
		a := keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: fmt.Sprint("r", i), KEKVersion: 1}
		w, err := keys.WrapUnder(ctx, p, a, dek, i)
		if err != nil {
			t.Fatal(err)
		}
		if len(w) != 60 {
			t.Fatalf("a wrapping under a KEK without id is %d bytes, want the legacy 60", len(w))
		}
		ws, deks = append(ws, w), append(deks, dek)
	}
	other := openHSM(t, tok)
	for i, w := range ws {
		a := keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: fmt.Sprint("r", i), KEKVersion: 1}
		for name, q := range map[string]*keys.PKCS11{"same": p, "other": other} {
			if got, err := q.UnwrapDEK(ctx, a, w); err != nil || !bytes.Equal(got, deks[i]) {
				t.Errorf("%s provider: the data key wrapped under KEK %d does not open: %v", name, i, err)
			}
		}
		// Negative controls: trying every KEK opens no forgery and no
		// data key moved to another record.
		bad := bytes.Clone(w)
		bad[len(bad)-1] ^= 1
		if _, err := p.UnwrapDEK(ctx, a, bad); !errors.Is(err, keys.ErrOpen) {
			t.Errorf("a flipped tag: %v, want ErrOpen", err)
		}
		moved := a
		moved.RecordID = "elsewhere"
		if _, err := p.UnwrapDEK(ctx, moved, w); !errors.Is(err, keys.ErrOpen) {
			t.Errorf("a data key moved to another record: %v, want ErrOpen", err)
		}
	}
	r1, err := p.IndexRoot(ctx, "operator")
	if err != nil {
		t.Fatal(err)
	}
	if r2, err := other.IndexRoot(ctx, "operator"); err != nil || !bytes.Equal(r1, r2) {
		t.Fatalf("two connections disagree on the index root: %v", err)
	}
	if _, err := p.DestroyKEKs(ctx, "operator", "jp"); err != nil {
		t.Fatal(err)
	}
	if _, keks, err := keys.KeyCounts(ctx, other, "operator", "jp"); err != nil || len(keks) != 0 {
		t.Fatalf("after destroy the token still holds KEKs %v (%v)", keks, err)
	}
}

// TestPKCS11WrappedNamesItsKEK: a data key wrapped now names the CKA_ID of
// its KEK. With a second KEK of the same version in the token (another
// host's, with an id of its own) the data keys wrapped under each open,
// new wraps all use one of them (the lowest id), and a wrapped key whose
// id was altered is refused as naming no KEK, not tried under another.
func TestPKCS11WrappedNamesItsKEK(t *testing.T) {
	ctx := context.Background()
	tok := softhsm.New(t, "sekisho-ids")
	p := openHSM(t, tok)
	dek, _ := keys.NewKey()
	a := keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: "r1"}
	w, v, err := p.WrapDEK(ctx, a, dek)
	if err != nil || v != 1 {
		t.Fatalf("wrap: v%d %v", v, err)
	}
	a.KEKVersion = 1
	if len(w) != 2+16+60 || w[0] != 1 || w[1] != 16 {
		t.Fatalf("wrapped key: %d bytes starting %x, want 0x01, 16, a 16-byte id, 60 bytes", len(w), w[:2])
	}
	if err := keys.ExtraKEK(ctx, p, "operator", "jp", 1, true); err != nil {
		t.Fatal(err)
	}
	fresh := openHSM(t, tok)
	var ids [][]byte
	for i := range 2 {
		b := keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: fmt.Sprint("s", i), KEKVersion: 1}
		wi, err := keys.WrapUnder(ctx, p, b, dek, i)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := fresh.UnwrapDEK(ctx, b, wi); err != nil || !bytes.Equal(got, dek) {
			t.Errorf("the data key wrapped under KEK %d does not open: %v", i, err)
		}
		ids = append(ids, wi[2:18])
	}
	if got, err := fresh.UnwrapDEK(ctx, a, w); err != nil || !bytes.Equal(got, dek) {
		t.Errorf("the first data key does not open with two KEKs of its version: %v", err)
	}
	for i := range 4 {
		b := keys.DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: fmt.Sprint("n", i)}
		for _, q := range []*keys.PKCS11{p, fresh} {
			wn, _, err := q.WrapDEK(ctx, b, dek)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(wn[2:18], ids[0]) {
				t.Errorf("a new wrap used KEK id %x, want the lowest %x", wn[2:18], ids[0])
			}
		}
	}
	bad := bytes.Clone(w)
	bad[2] ^= 0xff
	if _, err := fresh.UnwrapDEK(ctx, a, bad); !errors.Is(err, keys.ErrKeyUnavailable) {
		t.Errorf("a wrapped key naming no KEK: %v, want ErrKeyUnavailable", err)
	}
	if _, err := fresh.UnwrapDEK(ctx, a, bad[:40]); !errors.Is(err, keys.ErrOpen) {
		t.Errorf("a truncated wrapped key: %v, want ErrOpen", err)
	}
}

// TestPKCS11Claims: the claims that keep processes of different hosts
// (here a provider with a lock directory of its own, so that only the
// claims in the token can hold it) from making one key each: another
// process's live claim holds a first key back; a stale one (a process that
// died holding it) does not.
func TestPKCS11Claims(t *testing.T) {
	ctx := context.Background()
	tok := softhsm.New(t, "sekisho-claims")
	cfg := tok.Config()
	cfg.Retry = time.Millisecond
	cfg.LockDir = t.TempDir()
	p, err := keys.OpenPKCS11(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	// A live claim on an org's first KEK: no key is made while it stands
	// (the call gives up with its context).
	if err := keys.Claim(ctx, p, "kek/jp/held", time.Now()); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	dek, _ := keys.NewKey()
	if _, _, err := p.WrapDEK(short, keys.DEKAD{Org: "held", Region: "jp", Collection: "users", RecordID: "r"}, dek); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first key under another's live claim: %v, want to wait", err)
	}
	if _, keks, _ := keys.KeyCounts(ctx, p, "held", "jp"); len(keks) != 0 {
		t.Fatalf("a KEK was made under another process's live claim: %v", keks)
	}
	// Control: a stale claim (its process died a minute ago) does not hold.
	if err := keys.Claim(ctx, p, "kek/jp/dead", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, v, err := p.WrapDEK(ctx, keys.DEKAD{Org: "dead", Region: "jp", Collection: "users", RecordID: "r"}, dek); err != nil || v != 1 {
		t.Fatalf("first key beside a stale claim: v%d %v", v, err)
	}
}
