package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/internal/softhsm"
	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/sqlite"
	"github.com/sekisho/sekisho/vault"
)

// auditActions reads the actions of a data directory's audit log, in order.
func auditActions(t *testing.T, dir string) []string {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.OpenReadOnly(ctx, filepath.Join(dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.QueryAudit(ctx, sekisho.AuditFilter{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		var m struct {
			Action string `json:"action"`
		}
		if err := json.Unmarshal(e.Leaf, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Action)
	}
	return out
}

// rootDataDir makes a data directory as serve leaves it (the root org
// "operator" exists) with n records of operator in jp.
func rootDataDir(t *testing.T, n int) string {
	t.Helper()
	setMasterKey(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	in, err := openInstance(ctx, instanceOptions{DataDir: dir, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := newAccess(ctx, in, "sekisho-bootstrap-test", "operator", "jp", nil); err != nil {
		t.Fatal(err)
	}
	c := vault.Caller{Principal: "alice", Org: "operator", Device: "d1", Roles: []string{"admin"}, Purpose: "support"}
	for range n {
		if _, err := in.vault.Create(ctx, c, "users", &sekisho.RecordInput{Region: "jp",
			Fields: map[string]json.RawMessage{"display_name": json.RawMessage(`"User"`)}}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Issue 13 point 12: the offline keys rotate refuses an org that does not
// exist (nothing rotated, nothing logged) and logs a rotation before it
// starts; the same command on the root org rotates.
func TestKeysRotateOfflineRefusesUnknownOrg(t *testing.T) {
	dir := rootDataDir(t, 3)
	before := auditActions(t, dir)
	out, code := runCLI(t, "keys", "rotate", "--data", dir, "--org", "nosuchorg", "--region", "jp")
	if code == 0 {
		t.Fatalf("rotate of an unknown org succeeded: %s", out)
	}
	if after := auditActions(t, dir); len(after) != len(before) {
		t.Fatalf("a refused rotation wrote events: %v", after[len(before):])
	}
	out, code = runCLI(t, "keys", "rotate", "--data", dir, "--org", "operator", "--region", "jp")
	if code != 0 || !strings.Contains(out, "3 data keys re-wrapped") {
		t.Fatalf("rotate operator/jp: %d %s", code, out)
	}
	acts := auditActions(t, dir)
	i, j := slices.Index(acts, "keys.rotate"), slices.Index(acts, "keys.rotate.finished")
	if i < 0 || j < i {
		t.Fatalf("want keys.rotate before keys.rotate.finished, got %v", acts)
	}
}

// Issue 13 point 12: incident open --data records incident.create in the
// audit log, as POST /v1/incidents does; without --data (a --store alone
// lacks the signing key) it is refused and nothing is stored.
func TestIncidentOpenOfflineIsAudited(t *testing.T) {
	dir, since, until := incidentDataDir(t)
	before := auditActions(t, dir)
	out, code := runCLI(t, "incident", "open", "--data", dir, "--principal", "mallory", "--since", since, "--until", until, "--cause", "malware")
	if code != 0 {
		t.Fatalf("incident open: %d %s", code, out)
	}
	id := strings.TrimSpace(strings.TrimPrefix(out, "incident id: "))
	after := auditActions(t, dir)
	if len(after) != len(before)+1 || after[len(after)-1] != "incident.create" {
		t.Fatalf("incident open --data logged %v, want one incident.create", after[len(before):])
	}
	ctx := context.Background()
	st, err := sqlite.OpenReadOnly(ctx, filepath.Join(dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, _ := st.QueryAudit(ctx, sekisho.AuditFilter{Limit: 100000})
	if leaf := string(evs[len(evs)-1].Leaf); !strings.Contains(leaf, id) || !strings.Contains(leaf, `"principal":"cli-incident"`) {
		t.Fatalf("the event does not name the incident %s and its opener: %s", id, leaf)
	}
	if _, code := runCLI(t, "incident", "open", "--store", "postgres://nobody@127.0.0.1:1/x", "--principal", "mallory", "--since", since); code == 0 {
		t.Fatal("incident open --store without --data succeeded without an audit log")
	}
}

// Per-region keys: the long form of a region in the config file gives it a
// key provider of its own (the plain form keeps working), and a vault opened
// with it keeps that region's KEKs in that region's HSM only.
func TestRegionKeysInTheirOwnHSM(t *testing.T) {
	tok := softhsm.New(t, "sekisho-th")
	setMasterKey(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "sekisho.yaml")
	cfg := "regions:\n  jp: sqlite\n  th:\n    keys:\n      provider: pkcs11\n      module: " + tok.Module +
		"\n      token_label: " + tok.Label + "\n      pin_file: " + tok.PINFile + "\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.Regions["jp"] != "sqlite" || c.RegionKeys["th"].TokenLabel != tok.Label || c.RegionKeys["jp"] != (keysConfig{}) {
		t.Fatalf("regions %v, region keys %+v", c.Regions, c.RegionKeys)
	}
	if err := os.WriteFile(cfgPath, []byte("regions:\n  th:\n    keys: {provider: pkcs11, modul: x}\n"), 0o600); err == nil {
		if _, err := loadConfig(cfgPath); err == nil || !strings.Contains(err.Error(), "modul") {
			t.Fatalf("a misspelt key of a region's keys was accepted: %v", err)
		}
	}
	ctx := context.Background()
	data := filepath.Join(dir, "data")
	in, err := openInstance(ctx, instanceOptions{DataDir: data, Stderr: io.Discard, RegionKeys: c.RegionKeys})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	u := vault.Caller{Principal: "alice", Org: "operator", Device: "d1", Purpose: "support"}
	for _, region := range []string{"jp", "th"} {
		if _, err := in.vault.Create(ctx, u, "users", &sekisho.RecordInput{Region: region,
			Fields: map[string]json.RawMessage{"display_name": json.RawMessage(`"User"`)}}); err != nil {
			t.Fatal(err)
		}
	}
	hsm, err := keys.OpenPKCS11(tok.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer hsm.Close()
	if vs, _ := hsm.KEKVersions(ctx, "operator", "th"); len(vs) != 1 {
		t.Fatalf("th's KEK is not in th's HSM: %v", vs)
	}
	if vs, _ := hsm.KEKVersions(ctx, "operator", "jp"); len(vs) != 0 {
		t.Fatalf("jp's KEK is in th's HSM: %v", vs)
	}
	b, _ := os.ReadFile(filepath.Join(data, custodyFile))
	if string(b) != "default local\nregion th pkcs11 token="+tok.Label+"\n" {
		t.Fatalf("custody file: %q", b)
	}
	// The progress report, offline, reads the custody file: th's record is
	// under HSM-held keys, jp's is not (issue 21 point 8).
	out, code := runCLI(t, "report", "progress", "--data", data, "--format", "md")
	for _, want := range []string{"1 of 2 live records (50.0%) are sealed under data keys wrapped by key-encryption keys held in an HSM (PKCS#11) (regions th); the others (regions jp)",
		"| operator | th | 1 | pkcs11 token=" + tok.Label + " | yes |", "| operator | jp | 1 | local | no |"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("report progress --data: exit %d, lacks %q:\n%s", code, want, out)
		}
	}
}
