package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho/internal/softhsm"
)

// A vault on the PKCS#11 provider (SoftHSM2): records are created and read
// across a restart; the data directory holds no KEK (the same directory
// opened with the local provider and a master key cannot open a record);
// with the token removed, reads answer key-unavailable and are audited and
// /readyz fails; with the token back, both recover.
func TestHSMCustody(t *testing.T) {
	tok := softhsm.New(t, "sekisho-e2e")
	hsm := []string{"--key-provider", "pkcs11", "--pkcs11-module", tok.Module, "--pkcs11-token", tok.Label, "--pkcs11-pin-file", tok.PINFile}
	dir := filepath.Join(t.TempDir(), "data")
	// No master key at all: with the HSM, the data directory needs none.
	srv := startServer(t, dir, "", hsm...)
	admin := enrol(t, srv)
	auth := admin.authorize(t, srv)
	var ids []string
	for _, region := range []string{"jp", "th"} {
		resp, b, err := do(srv.http, auth, "POST", srv.base+"/v1/collections/users/records", "support",
			[]byte(`{"region":"`+region+`","fields":{"display_name":"Sakura","email":"sakura@example.jp"}}`))
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("create: %v %s", err, b)
		}
		var rec struct{ ID string }
		json.Unmarshal(b, &rec)
		ids = append(ids, rec.ID)
	}
	read := func(srv *server, auth func(*http.Request), id string) (int, map[string]any) {
		t.Helper()
		resp, b, err := do(srv.http, auth, "GET", srv.base+"/v1/collections/users/records/"+id, "support", nil)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	// Across a restart.
	srv.kill()
	srv = startServer(t, dir, "", hsm...)
	auth = admin.authorize(t, srv)
	for _, id := range ids {
		if code, m := read(srv, auth, id); code != http.StatusOK || m["fields"].(map[string]any)["email"] != "sakura@example.jp" {
			t.Fatalf("read %s after a restart: %d %v", id, code, m)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "keyring.sealed")); err == nil {
		t.Fatal("the data directory has a keyring")
	}
	// The progress report counts the records sealed under HSM-held keys
	// (issue 21 point 8): here every one.
	if got := hsmShare(t, srv, auth); !strings.HasPrefix(got, "2 of 2 live records (100.0%) are sealed under data keys wrapped by key-encryption keys held in an HSM") ||
		!strings.Contains(got, "pkcs11 token="+tok.Label) {
		t.Fatalf("progress report, keys in the HSM: %q", got)
	}

	// Token removed: readiness fails, reads answer key-unavailable, audited.
	tok.Remove(t)
	if resp, err := srv.http.Get(srv.base + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the token removed: %v %v", resp, err)
	}
	code, m := read(srv, auth, ids[0])
	if code != http.StatusServiceUnavailable || m["type"] != "https://sekisho.dev/problems/key-unavailable" || m["fields"] != nil {
		t.Fatalf("read with the token removed: %d %v", code, m)
	}
	reqID, _ := m["request_id"].(string)
	if ev := auditEvents(t, srv, auth)[reqID]; ev == nil || ev["decision"] != "deny" || !strings.Contains(ev["reason"].(string), "unavailable") {
		t.Fatalf("the refused read is not audited as a denial: %v", ev)
	}
	// Back: both recover without a restart.
	tok.Restore(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := srv.http.Get(srv.base + "/readyz")
		if err == nil && resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not recover: %v %v", resp, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, m := read(srv, auth, ids[0]); code != http.StatusOK {
		t.Fatalf("read after the token came back: %d %v", code, m)
	}
	srv.kill()

	// The data directory alone (and a master key) opens nothing: a copy
	// served with the local provider reads no record.
	cp := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", dir, cp).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v %s", err, out)
	}
	// The data directory remembers its custody and refuses another provider.
	cmd := exec.Command(binary, "serve", "--addr", freeAddr(t), "--data", cp)
	cmd.Env = append(os.Environ(), "SEKISHO_MASTER_KEY="+masterKey())
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "keeps its keys") {
		t.Fatalf("serve with the local provider on an HSM data directory: %v %s", err, out)
	}
	os.Remove(filepath.Join(cp, "key-custody"))
	local := startServer(t, cp, masterKey())
	lauth := admin.authorize(t, local)
	for _, id := range ids {
		if code, m := read(local, lauth, id); code == http.StatusOK || m["fields"] != nil {
			t.Fatalf("record %s opened without the HSM: %d %v", id, code, m)
		}
	}
	// The same records served with the local provider: none under an HSM.
	if got := hsmShare(t, local, lauth); !strings.HasPrefix(got, "0 of 2 live records (0.0%)") {
		t.Fatalf("progress report, local keys: %q", got)
	}
}

// hsmShare is the text of the progress report's item on keys held in an HSM.
func hsmShare(t *testing.T, srv *server, auth func(*http.Request)) string {
	t.Helper()
	resp, b, err := do(srv.http, auth, "GET", srv.base+"/v1/reports/progress?format=json", "", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("progress report: %v %s", err, b)
	}
	var r struct{ Items []struct{ Key, Text string } }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	for _, it := range r.Items {
		if it.Key == "hsm" {
			return it.Text
		}
	}
	t.Fatalf("progress report without the hsm item: %s", b)
	return ""
}
