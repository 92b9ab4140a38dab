package keys

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func mustKey(t testing.TB) []byte {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestOpenFieldRefusesMovedCiphertext(t *testing.T) {
	dek := mustKey(t)
	base := FieldAD{Collection: "users", RecordID: "r1", Field: "phone", KeyVersion: 1}
	ct, err := SealField(dek, base, []byte(`"+819012345678"`))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := OpenField(dek, base, ct); err != nil || string(pt) != `"+819012345678"` {
		t.Fatalf("open own ciphertext = %q, %v", pt, err)
	}
	tests := []struct {
		name string
		ad   FieldAD
		key  []byte
		ct   []byte
	}{
		{"other record", FieldAD{"users", "r2", "phone", 1}, dek, ct},
		{"other field", FieldAD{"users", "r1", "email", 1}, dek, ct},
		{"other collection", FieldAD{"partners", "r1", "phone", 1}, dek, ct},
		{"other key version", FieldAD{"users", "r1", "phone", 2}, dek, ct},
		{"other key", base, mustKey(t), ct},
		{"flipped bit", base, dek, append(append([]byte{}, ct[:len(ct)-1]...), ct[len(ct)-1]^1)},
		{"truncated", base, dek, ct[:10]},
		// Length prefixes keep ("ab","c") and ("a","bc") apart.
		{"shifted boundary", FieldAD{"user", "sr1", "phone", 1}, dek, ct},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := OpenField(tc.key, tc.ad, tc.ct); !errors.Is(err, ErrOpen) {
				t.Fatalf("OpenField = %v, want ErrOpen", err)
			}
		})
	}
}

func TestWrapDEKBindsRecord(t *testing.T) {
	kek, dek := mustKey(t), mustKey(t)
	a := DEKAD{Org: "operator", Region: "jp", Collection: "users", RecordID: "r1", KEKVersion: 1}
	w, err := WrapDEK(kek, a, dek)
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnwrapDEK(kek, a, w)
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("unwrap = %v", err)
	}
	for _, b := range []DEKAD{
		{"affiliate", "jp", "users", "r1", 1},
		{"operator", "th", "users", "r1", 1},
		{"operator", "jp", "users", "r2", 1},
		{"operator", "jp", "users", "r1", 2},
	} {
		if _, err := UnwrapDEK(kek, b, w); !errors.Is(err, ErrOpen) {
			t.Errorf("unwrap with %+v = %v, want ErrOpen", b, err)
		}
	}
}

func TestBlindIndexKeysDifferPerField(t *testing.T) {
	root := mustKey(t)
	k1, _ := IndexKey(root, "users", "phone")
	k2, _ := IndexKey(root, "users", "email")
	k3, _ := IndexKey(mustKey(t), "users", "phone")
	v := []byte(`"+819012345678"`)
	t1, t2, t3 := BlindIndex(k1, v), BlindIndex(k2, v), BlindIndex(k3, v)
	if !bytes.Equal(t1, BlindIndex(k1, v)) {
		t.Fatal("blind index is not deterministic")
	}
	if bytes.Equal(t1, t2) || bytes.Equal(t1, t3) {
		t.Fatal("blind index tokens of different fields or orgs match")
	}
}

func TestLocalKeyring(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	master := mustKey(t)
	l, err := OpenLocal(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	k1, v1, err := l.KEK(ctx, "operator", "jp")
	if err != nil || v1 != 1 {
		t.Fatalf("KEK = v%d, %v", v1, err)
	}
	v2, err := l.RotateKEK(ctx, "operator", "jp")
	if err != nil || v2 != 2 {
		t.Fatalf("rotate = v%d, %v", v2, err)
	}
	root, err := l.IndexRoot(ctx, "operator")
	if err != nil {
		t.Fatal(err)
	}

	// Reopened with the same master key, the keyring has the same keys.
	l2, err := OpenLocal(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	old, err := l2.KEKVersion(ctx, "operator", "jp", 1)
	if err != nil || !bytes.Equal(old, k1) {
		t.Fatalf("KEK v1 after reopen: %v", err)
	}
	if _, v, _ := l2.KEK(ctx, "operator", "jp"); v != 2 {
		t.Fatalf("current version after reopen = %d, want 2", v)
	}
	if r, _ := l2.IndexRoot(ctx, "operator"); !bytes.Equal(r, root) {
		t.Fatal("index root changed across reopen")
	}

	// The keyring file holds no key in the clear.
	raw, err := os.ReadFile(filepath.Join(dir, KeyringFile))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, k1) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(k1))) {
		t.Fatal("keyring file contains a KEK in the clear")
	}
	// A wrong master key is refused with a clear error.
	if _, err := OpenLocal(dir, mustKey(t)); err == nil {
		t.Fatal("keyring opened with a wrong master key")
	}
}

func TestLoadMasterKey(t *testing.T) {
	data := t.TempDir()
	outside := filepath.Join(t.TempDir(), "cfg", "master.key")
	t.Setenv(EnvMasterKey, "")
	t.Setenv(EnvMasterKeyFile, "")

	if _, _, err := LoadMasterKey(data, filepath.Join(data, "master.key"), "", true); err == nil {
		t.Fatal("a master key file inside the data directory was accepted")
	}
	k, src, err := LoadMasterKey(data, "", outside, true)
	if err != nil || !src.Generated {
		t.Fatalf("generate: %v %+v", err, src)
	}
	if fi, err := os.Stat(outside); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key file mode: %v %v", fi.Mode(), err)
	}
	k2, src, err := LoadMasterKey(data, "", outside, true)
	if err != nil || src.Generated || !bytes.Equal(k, k2) {
		t.Fatalf("reload: %v %+v", err, src)
	}
	t.Setenv(EnvMasterKey, base64.StdEncoding.EncodeToString(k))
	if k3, src, err := LoadMasterKey(data, "", outside, false); err != nil || !bytes.Equal(k3, k) || src.Where != "env "+EnvMasterKey {
		t.Fatalf("env: %v %+v", err, src)
	}
	t.Setenv(EnvMasterKey, "too-short")
	if _, _, err := LoadMasterKey(data, "", outside, false); err == nil {
		t.Fatal("a malformed env key was accepted")
	}
}

func BenchmarkSealOpenUserRecord(b *testing.B) {
	// A typical user record: seven fields of 10-60 bytes.
	values := [][]byte{[]byte(`"Sakura Tanaka"`), []byte(`"+819012345678"`), []byte(`"sakura.tanaka@example.jp"`),
		[]byte(`"1990-04-01"`), []byte(`"female"`), []byte(`"JP"`), []byte(`{"calls_per_week":12,"stickers":3}`)}
	names := []string{"display_name", "phone", "email", "birth_date", "gender", "country", "usage_summary"}
	kek := mustKey(b)
	b.ReportAllocs()
	for b.Loop() {
		dek, _ := NewKey()
		w, _ := WrapDEK(kek, DEKAD{"operator", "jp", "users", "r1", 1}, dek)
		cts := make([][]byte, len(values))
		for i, v := range values {
			cts[i], _ = SealField(dek, FieldAD{"users", "r1", names[i], 1}, v)
		}
		d2, err := UnwrapDEK(kek, DEKAD{"operator", "jp", "users", "r1", 1}, w)
		if err != nil {
			b.Fatal(err)
		}
		for i := range cts {
			if _, err := OpenField(d2, FieldAD{"users", "r1", names[i], 1}, cts[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// A prepared RecordKey and the one-shot functions produce interchangeable
// ciphertexts and refuse the same misplaced ones.
func TestRecordKeyMatchesOneShot(t *testing.T) {
	dek := mustKey(t)
	rk, err := NewRecordKey(dek)
	if err != nil {
		t.Fatal(err)
	}
	a := FieldAD{Collection: "users", RecordID: "r1", Field: "email", KeyVersion: 1}
	ct, err := rk.Seal(a, []byte(`"a@example.jp"`))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := OpenField(dek, a, ct); err != nil || string(pt) != `"a@example.jp"` {
		t.Fatalf("OpenField of RecordKey.Seal = %q, %v", pt, err)
	}
	ct2, _ := SealField(dek, a, []byte("x"))
	if pt, err := rk.Open(a, ct2); err != nil || string(pt) != "x" {
		t.Fatalf("RecordKey.Open of SealField = %q, %v", pt, err)
	}
	if _, err := rk.Open(FieldAD{Collection: "users", RecordID: "r2", Field: "email", KeyVersion: 1}, ct); !errors.Is(err, ErrOpen) {
		t.Fatalf("RecordKey.Open of another record's ciphertext = %v", err)
	}
}

func TestMasterKeyFileGuards(t *testing.T) {
	t.Setenv(EnvMasterKey, "")
	t.Setenv(EnvMasterKeyFile, "")
	data, outside := t.TempDir(), t.TempDir()
	k := base64.StdEncoding.EncodeToString(mustKey(t))
	open := filepath.Join(outside, "open.key")
	if err := os.WriteFile(open, []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadMasterKey(data, open, "", false); err == nil {
		t.Fatal("a master key file readable by others was accepted")
	}
	// A link outside the data directory to a key inside it is still inside.
	inner := filepath.Join(data, "hidden.key")
	if err := os.WriteFile(inner, []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(outside, "link.key")
	if err := os.Symlink(inner, link); err != nil {
		t.Skip("no symlinks here")
	}
	if _, _, err := LoadMasterKey(data, link, "", false); err == nil {
		t.Fatal("a symlink to a key inside the data directory was accepted")
	}
}

// The ciphertext layout did not change when sealing moved to
// cipher.NewGCMWithRandomNonce (FIPS 140-3 mode): a value sealed the old way,
// nonce || ciphertext || tag with a caller-drawn nonce, still opens, and a
// value sealed the new way opens with the old construction.
func TestCiphertextLayoutUnchanged(t *testing.T) {
	key, _ := NewKey()
	a := FieldAD{Collection: "users", RecordID: "r1", Field: "email", KeyVersion: 1}
	fips140.WithoutEnforcement(func() {
		block, _ := aes.NewCipher(key)
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			t.Fatal(err)
		}
		nonce := make([]byte, gcm.NonceSize())
		rand.Read(nonce)
		old := gcm.Seal(append([]byte{}, nonce...), nonce, []byte("old"), a.bytes())
		if pt, err := OpenField(key, a, old); err != nil || string(pt) != "old" {
			t.Fatalf("old layout: %q %v", pt, err)
		}
		ct, err := SealField(key, a, []byte("new"))
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := gcm.Open(nil, ct[:12], ct[12:], a.bytes()); err != nil || string(pt) != "new" {
			t.Fatalf("new layout read the old way: %q %v", pt, err)
		}
	})
}
