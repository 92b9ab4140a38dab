package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/access/dpop"
	"github.com/sekisho/sekisho/client"
	"github.com/sekisho/sekisho/internal/swtpmtest"
)

// TestLoginTPM (issue 16 point 1): login --key-store tpm makes the device
// key inside a TPM (swtpm), every proof is signed there and records are
// read with them; the device record says key_storage tpm, attested false.
// The profile directory copied to another machine (another swtpm state)
// cannot sign a proof: its TPM refuses the key, and the copied cached
// token with a proof of any other key is refused by the server, while the
// original profile keeps working.
func TestLoginTPM(t *testing.T) {
	url, tokenFile := startServer(t)
	tpmA, tpmB := swtpmtest.Start(t), swtpmtest.Start(t)

	admin := filepath.Join(t.TempDir(), "admin")
	out, code := cli(t, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", admin,
		"--key-store", "tpm", "--tpm", tpmA.TCTI)
	if code != 0 || !strings.Contains(out, "Logged in as admin") || !strings.Contains(out, "lives in the TPM "+tpmA.TCTI) {
		t.Fatalf("login --key-store tpm: %d %s", code, out)
	}
	// Only the TPM's blob is in the profile, no private key.
	if _, err := os.Stat(filepath.Join(admin, client.KeyFile)); !os.IsNotExist(err) {
		t.Fatalf("a TPM profile holds %s: %v", client.KeyFile, err)
	}
	var prof client.Profile
	readJSONFile(t, filepath.Join(admin, client.ProfileFile), &prof)
	if prof.KeyStorage != "tpm" || prof.TPM != tpmA.TCTI {
		t.Fatalf("profile: %+v", prof)
	}
	blob, err := os.ReadFile(filepath.Join(admin, client.TPMKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(blob), "PRIVATE KEY") {
		t.Fatal("the TPM blob holds a PEM private key")
	}

	// Records written and read with TPM-signed proofs (a fresh token too).
	os.Remove(filepath.Join(admin, client.TokenFile))
	out, code = cli(t, "api", "--profile", admin, "POST", "/v1/collections/users/records", "-H", "Sekisho-Purpose: support",
		"--data", `{"region":"jp","fields":{"display_name":"Hanako","phone":"+81 90-1234-5678"}}`)
	if code != 0 {
		t.Fatalf("create with the TPM key: %d %s", code, out)
	}
	var rec struct{ ID string }
	if err := json.Unmarshal([]byte(out), &rec); err != nil || rec.ID == "" {
		t.Fatalf("create: %v %s", err, out)
	}
	readPath := "/v1/collections/users/records/" + rec.ID + "?fields=phone"
	out, code = cli(t, "api", "--profile", admin, "GET", readPath, "-H", "Sekisho-Purpose: support")
	if code != 0 || !strings.Contains(out, "+81") {
		t.Fatalf("read with the TPM key: %d %s", code, out)
	}
	// The server saw the TPM's key: its thumbprint is the device.
	_, c, err := client.LoadProfile(admin)
	if err != nil {
		t.Fatal(err)
	}
	if c.Key.Exportable() || c.Key.Alg() != dpop.AlgES256 {
		t.Fatalf("the profile's key is exportable or not ES256: %s", c.Key.Alg())
	}

	// The device listing shows where each key lives: the admin's TPM key,
	// and (control) a file key of another principal.
	if out, code := cli(t, "principal", "create", "clerk", "--role", "admin", "--profile", admin); code != 0 {
		t.Fatalf("principal create: %d %s", code, out)
	}
	clerk := filepath.Join(t.TempDir(), "clerk")
	if out, code := cli(t, "login", "--server", url, "--principal", "clerk", "--profile", clerk); code != 0 {
		t.Fatalf("login (file key): %d %s", code, out)
	}
	out, code = cli(t, "device", "list", "--profile", admin, "--format", "json")
	if code != 0 {
		t.Fatalf("device list: %d %s", code, out)
	}
	var list struct {
		Devices []struct {
			ID         string `json:"id"`
			Principal  string `json:"principal"`
			KeyStorage string `json:"key_storage"`
			Attested   *bool  `json:"attested"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, d := range list.Devices {
		if d.Attested == nil || *d.Attested {
			t.Fatalf("device %s: attested %v, want false (no evidence was given)", d.ID, d.Attested)
		}
		seen[d.Principal] = d.KeyStorage
		if d.Principal == "admin" && d.ID != prof.Device {
			t.Fatalf("admin's device %s, profile says %s", d.ID, prof.Device)
		}
	}
	if seen["admin"] != "tpm" || seen["clerk"] != "file" {
		t.Fatalf("key_storage: %v", seen)
	}
	out, code = cli(t, "device", "list", "--profile", admin)
	if code != 0 || !strings.Contains(out, "KEY_STORAGE") || !strings.Contains(out, " tpm ") {
		t.Fatalf("device list table: %d\n%s", code, out)
	}

	// The profile directory copied to another machine, whose TPM is another
	// swtpm state: the profile names that machine's TPM.
	stolen := filepath.Join(t.TempDir(), "stolen")
	if err := os.CopyFS(stolen, os.DirFS(admin)); err != nil {
		t.Fatal(err)
	}
	prof.TPM = tpmB.TCTI
	writeJSONFile(t, filepath.Join(stolen, client.ProfileFile), prof)
	out, code = cli(t, "api", "--profile", stolen, "GET", readPath, "-H", "Sekisho-Purpose: support")
	if code == 0 || strings.Contains(out, "+81") {
		t.Fatalf("the copied profile read a record on another TPM: %d %s", code, out)
	}
	if _, c, err := client.LoadProfile(stolen); err != nil {
		t.Fatal(err)
	} else if _, err := c.Key.Proof("GET", url+"/v1/whoami", "", time.Now()); err == nil || !strings.Contains(err.Error(), "refuses to load the device key") {
		t.Fatalf("another TPM signed a proof of the copied key: %v", err)
	}
	// The copied cached token with a proof of any other key: refused.
	var tok client.Token
	readJSONFile(t, filepath.Join(stolen, client.TokenFile), &tok)
	other, _ := dpop.GenerateKey("p256")
	req, _ := http.NewRequestWithContext(context.Background(), "GET", url+"/v1/collections/users/records/"+rec.ID+"?fields=phone", nil)
	proof, _ := other.Proof("GET", url+"/v1/collections/users/records/"+rec.ID, tok.AccessToken, time.Now())
	req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
	req.Header.Set("DPoP", proof)
	req.Header.Set("Sekisho-Purpose", "support")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(body), "+81") {
		t.Fatalf("stolen token with another key's proof: %d %s", resp.StatusCode, body)
	}
	// Control: the original profile, on its own TPM, still reads.
	out, code = cli(t, "api", "--profile", admin, "GET", readPath, "-H", "Sekisho-Purpose: support")
	if code != 0 || !strings.Contains(out, "+81") {
		t.Fatalf("the original profile after the copy: %d %s", code, out)
	}
	// Control: the same copy pointed back at the original TPM works, so the
	// refusal above is the other TPM's, not a broken copy.
	prof.TPM = tpmA.TCTI
	writeJSONFile(t, filepath.Join(stolen, client.ProfileFile), prof)
	if out, code := cli(t, "api", "--profile", stolen, "GET", "/v1/whoami"); code != 0 {
		t.Fatalf("the copy on the original TPM: %d %s", code, out)
	}
}

// TestLoginKeyStoreFlags: bad --key-store / --tpm combinations are usage
// errors (exit 2) and leave no profile behind.
func TestLoginKeyStoreFlags(t *testing.T) {
	url, _ := startServer(t)
	for _, args := range [][]string{
		{"--key-store", "floppy"},
		{"--tpm", "swtpm:host=127.0.0.1,port=1"},
		{"--key-store", "tpm", "--key-type", "ed25519"},
	} {
		dir := filepath.Join(t.TempDir(), "p")
		if out, code := cli(t, append([]string{"login", "--server", url, "--principal", "x", "--profile", dir}, args...)...); code != 2 {
			t.Errorf("%v: exit %d %s, want 2", args, code, out)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%v left a profile directory", args)
		}
	}
}

func readJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func writeJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
