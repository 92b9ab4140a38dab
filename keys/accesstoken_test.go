package keys

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

// The access-token key is the keyring's: the same after a reopen (so every
// node with the keyring accepts the same tokens), another keyring's differs,
// and it is exactly what servers derived before it moved here (HMAC of the
// label under the reserved entry's index root), so tokens issued before an
// upgrade stay valid.
func TestAccessTokenKey(t *testing.T) {
	ctx := context.Background()
	dir, master := t.TempDir(), mustKey(t)
	l, err := OpenLocal(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	k, err := AccessTokenKey(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if len(k) < 32 {
		t.Fatalf("key of %d bytes, access wants at least 32", len(k))
	}
	root, err := l.IndexRoot(ctx, "sekisho.access-token")
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, root)
	m.Write([]byte("sekisho access token MAC v1"))
	if !bytes.Equal(k, m.Sum(nil)) {
		t.Fatal("the access token key is not the one servers derived before: issued tokens would stop working")
	}
	if bytes.Equal(k, root) {
		t.Fatal("the access token key is the index root itself")
	}
	l2, err := OpenLocal(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	if k2, err := AccessTokenKey(ctx, l2); err != nil || !bytes.Equal(k2, k) {
		t.Fatalf("reopened keyring: another key (%v)", err)
	}
	other, err := OpenLocal(t.TempDir(), mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if k3, err := AccessTokenKey(ctx, other); err != nil || bytes.Equal(k3, k) {
		t.Fatalf("another keyring derives the same key (%v)", err)
	}
}
