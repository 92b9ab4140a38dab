// Package softhsm makes SoftHSM2 tokens for tests: each test gets its own
// token directory and configuration (SOFTHSM2_CONF), so that tests run
// against a real PKCS#11 module without touching the machine's tokens.
//
// When SoftHSM2 is missing the test is skipped, unless
// SEKISHO_REQUIRE_SOFTHSM is set (scripts/test.sh sets it, so CI fails).
package softhsm

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sekisho/sekisho/keys"
)

// Candidate paths of Debian's libsofthsm2.so (package softhsm2).
var modules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// Module returns the path of the SoftHSM2 module ($SEKISHO_PKCS11_MODULE
// first), or "".
func Module() string {
	if m := os.Getenv("SEKISHO_PKCS11_MODULE"); m != "" {
		return m
	}
	for _, m := range modules {
		if _, err := os.Stat(m); err == nil {
			return m
		}
	}
	return ""
}

// Token is a SoftHSM2 token made for one test.
type Token struct {
	Module   string
	Label    string
	PIN      string
	PINFile  string
	Conf     string // the SOFTHSM2_CONF file
	TokenDir string // the directory holding the token's files
}

// New makes a token labelled label in a temporary directory and points
// SOFTHSM2_CONF at it for the rest of the test.
func New(t testing.TB, label string) *Token {
	t.Helper()
	module := Module()
	util, err := exec.LookPath("softhsm2-util")
	if module == "" || err != nil {
		if os.Getenv("SEKISHO_REQUIRE_SOFTHSM") != "" {
			t.Fatalf("SoftHSM2 is required (SEKISHO_REQUIRE_SOFTHSM) but missing: module %q, softhsm2-util: %v (apt-get install softhsm2)", module, err)
		}
		t.Skip("SoftHSM2 not installed (apt-get install softhsm2); scripts/test.sh requires it")
	}
	dir := t.TempDir()
	tok := &Token{Module: module, Label: label, PIN: "1234", Conf: filepath.Join(dir, "softhsm2.conf"),
		TokenDir: filepath.Join(dir, "tokens"), PINFile: filepath.Join(dir, "pin")}
	if err := os.Mkdir(tok.TokenDir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := "directories.tokendir = " + tok.TokenDir + "\nobjectstore.backend = file\nlog.level = ERROR\n"
	if err := os.WriteFile(tok.Conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tok.PINFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", tok.Conf)
	cmd := exec.Command(util, "--init-token", "--free", "--label", label, "--pin", tok.PIN, "--so-pin", "5678")
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+tok.Conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return tok
}

// Config is the provider configuration for this token (with the PIN file).
func (tok *Token) Config() keys.PKCS11Config {
	return keys.PKCS11Config{Module: tok.Module, TokenLabel: tok.Label, PINFile: tok.PINFile}
}

// Remove takes the token away (its directory moves aside), as if the HSM
// were unplugged; Restore brings it back.
func (tok *Token) Remove(t testing.TB) {
	t.Helper()
	if err := os.Rename(tok.TokenDir, tok.TokenDir+".away"); err != nil {
		t.Fatal(err)
	}
}

// Restore undoes Remove.
func (tok *Token) Restore(t testing.TB) {
	t.Helper()
	if err := os.Rename(tok.TokenDir+".away", tok.TokenDir); err != nil {
		t.Fatal(err)
	}
}
