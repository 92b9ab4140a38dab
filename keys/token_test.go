package keys

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	root := bytes.Repeat([]byte{1}, KeySize)
	idx, _ := IndexKey(root, "users", "phone")
	tk, err := TokenKey(root, "users", "phone")
	if err != nil {
		t.Fatal(err)
	}
	bi := BlindIndex(idx, []byte(`"+819012345678"`))
	tok, err := Token(tk, bi)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Token(tk, bi)
	if tok != again {
		t.Fatalf("tokens of one value differ: %s %s", tok, again)
	}
	back, err := Untoken(tk, tok)
	if err != nil || !bytes.Equal(back, bi) {
		t.Fatalf("Untoken = %x, %v; want %x", back, err, bi)
	}
	// Another field's key: another token, and this token does not open to
	// the same index entry under it.
	tk2, _ := TokenKey(root, "users", "email")
	if tok2, _ := Token(tk2, bi); tok2 == tok {
		t.Fatal("two fields' keys give the same token")
	}
	if b, _ := Untoken(tk2, tok); bytes.Equal(b, bi) {
		t.Fatal("a token opens under another field's key")
	}
	for _, bad := range []string{"", "tok_", "tok_!!", "xyz_" + tok[4:], tok + "AA", tok[:len(tok)-2]} {
		if _, err := Untoken(tk, bad); !errors.Is(err, ErrToken) {
			t.Errorf("Untoken(%q) = %v, want ErrToken", bad, err)
		}
	}
}

// TestTokenVector pins the token format: a change of derivation or cipher
// would break every token other systems hold.
func TestTokenVector(t *testing.T) {
	b, err := os.ReadFile("testdata/token.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Comment, Root, Collection, Field, Value, Token string
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	root, _ := hex.DecodeString(v.Root)
	idx, _ := IndexKey(root, v.Collection, v.Field)
	tk, _ := TokenKey(root, v.Collection, v.Field)
	tok, err := Token(tk, BlindIndex(idx, []byte(v.Value)))
	if err != nil || tok != v.Token {
		t.Fatalf("token = %s, %v; want %s", tok, err, v.Token)
	}
}
