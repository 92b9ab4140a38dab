package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/client/pkcs11key"
	"github.com/sekisho/sekisho/internal/softhsm"
)

// TestLoginPKCS11 (issue 16 point 1): login --key-store pkcs11 makes the
// device key inside a PKCS#11 token (SoftHSM2), every proof is signed there
// and records are written and read with them, on a server with the default
// device requirement (hardware-bound): the token's device reads a sensitive
// field, a file-key device of another admin is refused
// device-not-hardware-bound. The device record says key_storage pkcs11. The
// profile directory copied and pointed at another token signs nothing
// (control: the original still reads).
func TestLoginPKCS11(t *testing.T) {
	url, tokenFile := startNodeWith(t, nodeConfig{NoGuard: true})
	tok := softhsm.New(t, "bob-card")
	util, _ := exec.LookPath("softhsm2-util")
	init := exec.Command(util, "--init-token", "--free", "--label", "other-card", "--pin", tok.PIN, "--so-pin", "5678")
	init.Env = append(os.Environ(), "SOFTHSM2_CONF="+tok.Conf)
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("second token: %v %s", err, out)
	}

	admin := filepath.Join(t.TempDir(), "admin")
	out, code := cli(t, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", admin, "--key-store", "pkcs11",
		"--pkcs11-module", tok.Module, "--pkcs11-token", tok.Label, "--pkcs11-pin-file", tok.PINFile)
	if code != 0 || !strings.Contains(out, "PKCS#11 token") {
		t.Fatalf("login --key-store pkcs11: %d %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(admin, client.KeyFile)); !os.IsNotExist(err) {
		t.Fatalf("a PKCS#11 profile holds %s: %v", client.KeyFile, err)
	}
	var ref pkcs11key.Ref
	readJSONFile(t, filepath.Join(admin, client.PKCS11KeyFile), &ref)
	if ref.Token != tok.Label || ref.ID == "" {
		t.Fatalf("key reference: %+v", ref)
	}
	var stored map[string]string
	readJSONFile(t, filepath.Join(admin, client.PKCS11KeyFile), &stored)
	for k := range stored {
		if k != "module" && k != "token" && k != "id" && k != "public" && k != "pin_file" {
			t.Fatalf("the key reference holds %q", k)
		}
	}
	_, c, err := client.LoadProfile(admin)
	if err != nil {
		t.Fatal(err)
	}
	if c.Key.Exportable() {
		t.Fatal("the PKCS#11 key is exportable")
	}

	os.Remove(filepath.Join(admin, client.TokenFile))
	out, code = cli(t, "api", "--profile", admin, "POST", "/v1/collections/users/records", "-H", "Sekisho-Purpose: support",
		"--data", `{"region":"jp","fields":{"display_name":"Hanako","phone":"+81 90-1234-5678","gender":"female"}}`)
	var rec struct{ ID string }
	if code != 0 || json.Unmarshal([]byte(out), &rec) != nil || rec.ID == "" {
		t.Fatalf("create with the token's key: %d %s", code, out)
	}
	readPath := "/v1/collections/users/records/" + rec.ID + "?fields=phone,gender"
	out, code = cli(t, "api", "--profile", admin, "GET", readPath, "-H", "Sekisho-Purpose: support")
	if code != 0 || !strings.Contains(out, "female") || !strings.Contains(out, "+81") {
		t.Fatalf("a sensitive read from the token's key: %d %s", code, out)
	}
	// Another admin on a file key: refused the sensitive field.
	if out, code := cli(t, "principal", "create", "clerk", "--role", "admin", "--profile", admin); code != 0 {
		t.Fatalf("principal create: %d %s", code, out)
	}
	clerk := filepath.Join(t.TempDir(), "clerk")
	out, code = cli(t, "login", "--server", url, "--principal", "clerk", "--profile", clerk, "--format", "json")
	var res struct{ Device string }
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("login (file key): %d %s", code, out)
	}
	if out, code := cli(t, "device", "approve", "--profile", admin, "--", res.Device); code != 0 {
		t.Fatalf("approve: %d %s", code, out)
	}
	if out, code := cli(t, "api", "--profile", clerk, "GET", readPath, "-H", "Sekisho-Purpose: support"); code == 0 ||
		!strings.Contains(out, "device-not-hardware-bound") || strings.Contains(out, "female") {
		t.Fatalf("a sensitive read from a file key: %d %s", code, out)
	}

	out, code = cli(t, "device", "list", "--profile", admin, "--format", "json")
	var list struct {
		Devices []struct {
			Principal  string `json:"principal"`
			KeyStorage string `json:"key_storage"`
		} `json:"devices"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("device list: %d %s", code, out)
	}
	seen := map[string]string{}
	for _, d := range list.Devices {
		seen[d.Principal] = d.KeyStorage
	}
	if seen["admin"] != "pkcs11" || seen["clerk"] != "file" {
		t.Fatalf("key_storage: %v", seen)
	}

	// The profile directory copied to another machine with another token.
	stolen := filepath.Join(t.TempDir(), "stolen")
	if err := os.CopyFS(stolen, os.DirFS(admin)); err != nil {
		t.Fatal(err)
	}
	ref.Token = "other-card"
	writeJSONFile(t, filepath.Join(stolen, client.PKCS11KeyFile), ref)
	if out, code := cli(t, "api", "--profile", stolen, "GET", readPath, "-H", "Sekisho-Purpose: support"); code == 0 || strings.Contains(out, "+81") {
		t.Fatalf("the copied profile read a record with another token: %d %s", code, out)
	}
	if _, c, err := client.LoadProfile(stolen); err != nil {
		t.Fatal(err)
	} else if _, err := c.Key.Proof("GET", url+"/v1/whoami", "", time.Now()); err == nil || !strings.Contains(err.Error(), "holds no device key") {
		t.Fatalf("another token signed a proof of the copied key: %v", err)
	}
	// Control: the original profile still reads.
	if out, code := cli(t, "api", "--profile", admin, "GET", readPath, "-H", "Sekisho-Purpose: support"); code != 0 || !strings.Contains(out, "female") {
		t.Fatalf("the original profile after the copy: %d %s", code, out)
	}
	// Flags: pkcs11 flags without --key-store pkcs11, and a missing token, are usage errors.
	for _, args := range [][]string{
		{"--pkcs11-token", "x"},
		{"--key-store", "pkcs11", "--pkcs11-module", tok.Module},
		{"--key-store", "pkcs11", "--pkcs11-module", tok.Module, "--pkcs11-token", tok.Label, "--key-type", "ed25519"},
	} {
		dir := filepath.Join(t.TempDir(), "p")
		if out, code := cli(t, append([]string{"login", "--server", url, "--principal", "x", "--profile", dir}, args...)...); code != 2 {
			t.Errorf("%v: exit %d %s, want 2", args, code, out)
		}
	}
}
