package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sekisho/sekisho/internal/swtpmtest"
)

// startNodeWith is startNodeOn with the node configuration c (Token, Org
// and Region are filled in).
func startNodeWith(t *testing.T, c nodeConfig) (url, tokenFile string) {
	t.Helper()
	setMasterKey(t)
	dir := t.TempDir()
	ctx := context.Background()
	in, err := openInstance(ctx, instanceOptions{DataDir: dir, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	token, _, err := bootstrapToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	c.Token, c.Org, c.Region = token, "operator", "jp"
	n, err := newNode(ctx, in, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	srv := httptest.NewServer(n.srv)
	t.Cleanup(srv.Close)
	return srv.URL, filepath.Join(dir, bootstrapTokenFile)
}

// TestDevicePolicyTPM (issue 16 point 3, the Must-show policy test): on a
// server with the default device requirement, a grant created with
// --device-requirement hardware-bound refuses the grantee's file-key device
// with device-not-hardware-bound and allows the same principal's TPM device
// (swtpm). The org defaults: a sensitive field read from a file key is
// refused and allowed once the org sets --sensitive any; a grant that says
// nothing is held to the org's cross-org default (hardware-bound) and
// follows `org device-requirements --cross-org any`.
func TestDevicePolicyTPM(t *testing.T) {
	url, tokenFile := startNodeWith(t, nodeConfig{NoGuard: true})
	tpm := swtpmtest.Start(t)
	admin := filepath.Join(t.TempDir(), "admin")
	if out, code := cli(t, "login", "--server", url, "--bootstrap-token-file", tokenFile, "--profile", admin); code != 0 {
		t.Fatalf("login: %d %s", code, out)
	}
	run := func(args ...string) string {
		t.Helper()
		i := len(args)
		for j, a := range args {
			if a == "--" {
				i = j
				break
			}
		}
		full := append(append(append([]string{}, args[:i]...), "--profile", admin), args[i:]...)
		out, code := cli(t, full...)
		if code != 0 {
			t.Fatalf("%v: %d %s", args, code, out)
		}
		return out
	}
	run("org", "create", "affiliate", "--home-region", "jp")
	run("principal", "create", "bob", "--org", "affiliate", "--role", "member")
	enrol := func(name string, extra ...string) string {
		dir := filepath.Join(t.TempDir(), name)
		out, code := cli(t, append([]string{"login", "--server", url, "--principal", "bob", "--profile", dir, "--format", "json"}, extra...)...)
		var res struct{ Device string }
		if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Device == "" {
			t.Fatalf("login %s: %d %s", name, code, out)
		}
		run("device", "approve", "--", res.Device)
		return dir
	}
	bobFile := enrol("bob-file")
	bobTPM := enrol("bob-tpm", "--key-store", "tpm", "--tpm", tpm.TCTI)

	// A record of the operator, created from the admin's file key (a
	// create is not a read).
	out := run("api", "POST", "/v1/collections/users/records", "-H", "Sekisho-Purpose: support",
		"--data", `{"region":"jp","fields":{"display_name":"Hanako","phone":"+81 90-1234-5678","gender":"female"}}`)
	var rec struct{ ID string }
	if err := json.Unmarshal([]byte(out), &rec); err != nil || rec.ID == "" {
		t.Fatalf("create: %v %s", err, out)
	}
	read := func(profile, fields string) (string, int) {
		t.Helper()
		return cli(t, "api", "--profile", profile, "GET", "/v1/collections/users/records/"+rec.ID+"?fields="+fields, "-H", "Sekisho-Purpose: support")
	}
	refused := func(what, profile, fields string) {
		t.Helper()
		out, code := read(profile, fields)
		if code == 0 || !strings.Contains(out, "device-not-hardware-bound") || strings.Contains(out, "+81") || strings.Contains(out, "female") {
			t.Errorf("%s: exit %d %s; want device-not-hardware-bound and no data", what, code, out)
		}
	}
	allowed := func(what, profile, fields, want string) {
		t.Helper()
		if out, code := read(profile, fields); code != 0 || !strings.Contains(out, want) {
			t.Errorf("%s: exit %d %s; want %s", what, code, out, want)
		}
	}

	// The grant requires hardware-bound devices.
	out = run("grant", "create", "--to", "affiliate", "--collection", "users", "--field", "phone", "--region", "jp", "--purpose", "support",
		"--expires", "1h", "--device-requirement", "hardware-bound", "--format", "json")
	var g struct {
		ID                string `json:"id"`
		DeviceRequirement string `json:"device_requirement"`
		Cedar             string `json:"cedar"`
	}
	if err := json.Unmarshal([]byte(out), &g); err != nil || g.DeviceRequirement != "hardware-bound" || !strings.Contains(g.Cedar, "context.device_key_storage") {
		t.Fatalf("grant: %v %s", err, out)
	}
	refused("grant hardware-bound, bob's file key", bobFile, "phone")
	allowed("grant hardware-bound, bob's TPM key", bobTPM, "phone", "+81")
	run("grant", "revoke", g.ID)

	// A grant that says nothing, under the org's cross-org default.
	run("grant", "create", "--to", "affiliate", "--collection", "users", "--field", "phone", "--region", "jp", "--purpose", "support", "--expires", "1h")
	refused("default cross-org requirement, bob's file key", bobFile, "phone")
	allowed("default cross-org requirement, bob's TPM key", bobTPM, "phone", "+81")
	run("org", "device-requirements", "operator", "--cross-org", "any")
	allowed("cross-org any, bob's file key", bobFile, "phone", "+81")

	// Sensitive fields of the operator's own records, from the admin's file key.
	refused("default sensitive requirement, the admin's file key, gender", admin, "gender")
	allowed("default sensitive requirement, the admin's file key, phone", admin, "phone", "+81")
	out = run("org", "device-requirements", "operator", "--cross-org", "any", "--sensitive", "any", "--format", "json")
	if !strings.Contains(out, `"sensitive": "any"`) && !strings.Contains(out, `"sensitive":"any"`) {
		t.Errorf("org device-requirements: %s", out)
	}
	allowed("sensitive any, the admin's file key, gender", admin, "gender", "female")

	// A bad level is refused and changes nothing.
	if out, code := cli(t, "org", "device-requirements", "operator", "--sensitive", "tpm", "--profile", admin); code != 1 {
		t.Errorf("--sensitive tpm: %d %s", code, out)
	}
	allowed("after a refused change, the admin's file key, gender", admin, "gender", "female")
}
