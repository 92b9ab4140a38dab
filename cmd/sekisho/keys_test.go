package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

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
	c := sekisho.Caller{Principal: "alice", Org: "operator", Device: "d1", Roles: []string{"admin"}, Purpose: "support"}
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
	u := sekisho.Caller{Principal: "alice", Org: "operator", Device: "d1", Purpose: "support"}
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

// serveProc is a `sekisho serve` process of the binary under test.
type serveProc struct {
	url  string
	cmd  *exec.Cmd
	done chan error
	log  *bytes.Buffer
}

// freeAddr returns a loopback address with a free port.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServe runs `sekisho serve --data dir --addr addr extra...` (the
// master key from the test's environment) and waits until /readyz answers.
func startServe(t *testing.T, dir, addr string, extra ...string) *serveProc {
	t.Helper()
	args := append([]string{"serve", "--data", dir, "--addr", addr, "--metrics-addr", "127.0.0.1:0", "--checkpoint-interval", "1s"}, extra...)
	s := &serveProc{url: "http://" + addr, cmd: exec.Command(binary(t), args...), done: make(chan error, 1), log: &bytes.Buffer{}}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() { s.stop(t) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(s.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("sekisho serve exited: %v\n%s", err, s.log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sekisho serve did not become ready:\n%s", s.log)
		}
	}
}

// stop ends the server (SIGTERM: a clean shutdown) and waits for it.
func (s *serveProc) stop(t *testing.T) {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		t.Errorf("sekisho serve did not stop on SIGTERM")
		<-s.done
	}
}

// cliAdmin logs the first admin in to the server of data directory dir with
// its bootstrap token and returns the profile directory.
func cliAdmin(t *testing.T, url, dir string) string {
	t.Helper()
	admin := filepath.Join(t.TempDir(), "admin")
	var lr loginResult
	runJSON(t, &lr, "login", "--server", url, "--bootstrap-token-file", filepath.Join(dir, bootstrapTokenFile), "--profile", admin)
	if lr.Status != "approved" {
		t.Fatalf("login: %+v", lr)
	}
	return admin
}

// cliRecord creates a users record in region through the server with the
// CLI and returns its id.
func cliRecord(t *testing.T, profile, region, name string) string {
	t.Helper()
	out, _, code := run(t, "api", "--profile", profile, "POST", "/v1/collections/users/records", "-H", "Sekisho-Purpose: support",
		"--data", `{"region":"`+region+`","fields":{"display_name":"`+name+`"}}`)
	var rec struct{ ID string }
	if code != 0 || json.Unmarshal([]byte(out), &rec) != nil || rec.ID == "" {
		t.Fatalf("create a record in %s: exit %d: %s", region, code, out)
	}
	return rec.ID
}

// cliRead reads a record's display_name through the server with the CLI
// and returns the answer (status line and body) and the exit status.
func cliRead(t *testing.T, profile, id string) (string, int) {
	t.Helper()
	out, _, code := run(t, "api", "--profile", profile, "--include", "GET", "/v1/collections/users/records/"+id+"?fields=display_name",
		"-H", "Sekisho-Purpose: support")
	return out, code
}

// auditActionsOnline lists the actions and decisions of the default log
// through the server (the admin is an auditor too).
func auditActionsOnline(t *testing.T, profile string) []string {
	t.Helper()
	out, _, code := run(t, "api", "--profile", profile, "GET", "/v1/audit/events?limit=1000")
	var evs struct {
		Events []struct {
			Event struct{ Action, Decision string } `json:"event"`
		} `json:"events"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &evs) != nil {
		t.Fatalf("audit events: exit %d: %s", code, out)
	}
	var acts []string
	for _, e := range evs.Events {
		acts = append(acts, e.Event.Action+"/"+e.Event.Decision)
	}
	return acts
}

// Issue 18 point 4: `sekisho keys rotate --org O --region R` through a
// running `sekisho serve` (with a short --key-rotation-grace; the default
// stays a minute) starts the rotation, follows it with a progress bar to
// the end, and reports the new version, the data keys re-wrapped and the
// version retired; --format json prints the finished rotation. The records
// read as before, other regions are untouched, an unknown org is refused
// with nothing rotated, and the log has keys.rotate before
// keys.rotate.finished.
func TestKeysRotateOnlineCLI(t *testing.T) {
	if _, errOut, code := run(t, "keys", "rotate", "--org", "operator"); code != exitUsage || !strings.Contains(errOut, "--region") {
		t.Fatalf("keys rotate without --region: exit %d %s", code, errOut)
	}
	help, _, _ := run(t, "serve", "--help")
	if !regexp.MustCompile(`--key-rotation-grace duration .*\(default 1m0s\)`).MatchString(help) {
		t.Fatalf("serve --help does not give --key-rotation-grace with the one-minute default:\n%s", help)
	}
	if _, errOut, code := run(t, "serve", "--data", t.TempDir(), "--key-rotation-grace", "0s"); code == 0 || !strings.Contains(errOut, "--key-rotation-grace") {
		t.Fatalf("serve --key-rotation-grace 0s: exit %d %s", code, errOut)
	}
	setMasterKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServe(t, dir, freeAddr(t), "--key-rotation-grace", "1s")
	admin := cliAdmin(t, srv.url, dir)
	jp := []string{cliRecord(t, admin, "jp", "Hanako"), cliRecord(t, admin, "jp", "Taro"), cliRecord(t, admin, "jp", "Yui")}
	th := cliRecord(t, admin, "th", "Somchai")

	out, errOut, code := run(t, "keys", "rotate", "--org", "operator", "--region", "jp", "--profile", admin)
	if code != 0 {
		t.Fatalf("keys rotate: exit %d\n%s\n%s", code, out, errOut)
	}
	if !regexp.MustCompile(`rotation rot-[0-9a-f]+: KEK of operator/jp, new version 2`).MatchString(errOut) ||
		!strings.Contains(errOut, "[##############################] 100%") || !strings.Contains(errOut, "finished") {
		t.Fatalf("keys rotate shows no start line or progress bar:\n%s", errOut)
	}
	if !regexp.MustCompile(`^KEK of operator/jp is now version 2; 3 data keys re-wrapped in [0-9.]+m?s; versions \[1\] retired\n$`).MatchString(out) {
		t.Fatalf("keys rotate printed %q", out)
	}
	var rot vault.Rotation
	runJSON(t, &rot, "keys", "rotate", "--org", "operator", "--region", "jp", "--profile", admin)
	if rot.State != vault.RotationFinished || rot.Version != 3 || rot.Rewrapped != 3 || !slices.Equal(rot.Retired, []int{2}) {
		t.Fatalf("keys rotate --format json: %+v", rot)
	}
	for i, id := range append(jp, th) {
		body, code := cliRead(t, admin, id)
		if code != 0 || !strings.Contains(body, []string{"Hanako", "Taro", "Yui", "Somchai"}[i]) {
			t.Fatalf("record %s after the rotations: exit %d %s", id, code, body)
		}
	}
	if _, errOut, code := run(t, "keys", "rotate", "--org", "nowhere", "--region", "jp", "--profile", admin); code != exitRefused || !strings.Contains(errOut, "not-found") {
		t.Fatalf("keys rotate of an unknown org: exit %d %s", code, errOut)
	}
	var list struct{ Rotations []vault.Rotation }
	out, _, _ = run(t, "api", "--profile", admin, "GET", "/v1/keys/rotations")
	if json.Unmarshal([]byte(out), &list) != nil || len(list.Rotations) != 2 {
		t.Fatalf("rotations listed: %s", out)
	}
	acts := auditActionsOnline(t, admin)
	start, end := slices.Index(acts, "keys.rotate/allow"), slices.Index(acts, "keys.rotate.finished/allow")
	if start < 0 || end < start {
		t.Fatalf("audit log: keys.rotate at %d, keys.rotate.finished at %d: %v", start, end, acts)
	}
}

// Issue 18 point 5: `sekisho keys destroy` through a running `sekisho
// serve` takes two admins. The request alone destroys nothing (the records
// read); the requester cannot approve it (two-person-rule), nor an admin of
// less than a day (approver-too-recent), and nothing is destroyed then;
// the second admin of a day's standing approves it, the CLI reports the
// records erased, and every record of that org in that region answers
// erased (410) while the org's other region reads (positive control).
func TestKeysDestroyCLI(t *testing.T) {
	setMasterKey(t)
	dir := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	srv := startServe(t, dir, addr)
	admin := cliAdmin(t, srv.url, dir)
	if _, errOut, code := run(t, "principal", "create", "admin2", "--role", "admin", "--profile", admin); code != 0 {
		t.Fatalf("principal create admin2: exit %d %s", code, errOut)
	}
	admin2 := filepath.Join(t.TempDir(), "admin2")
	var lr loginResult
	runJSON(t, &lr, "login", "--server", srv.url, "--principal", "admin2", "--profile", admin2)
	if _, _, code := run(t, "device", "approve", "--profile", admin, "--", lr.Device); code != 0 {
		t.Fatalf("device approve: exit %d", code)
	}
	thRecs := []string{cliRecord(t, admin, "th", "Somchai"), cliRecord(t, admin, "th", "Malee")}
	jpRec := cliRecord(t, admin, "jp", "Hanako")
	readable := func(when string) {
		t.Helper()
		for _, id := range append(slices.Clone(thRecs), jpRec) {
			if body, code := cliRead(t, admin, id); code != 0 {
				t.Fatalf("%s: record %s does not read: exit %d %s", when, id, code, body)
			}
		}
	}

	if _, errOut, code := run(t, "keys", "destroy", "--org", "operator", "--profile", admin); code != exitUsage || !strings.Contains(errOut, "--region") {
		t.Fatalf("keys destroy without --region: exit %d %s", code, errOut)
	}
	out, _, code := run(t, "keys", "destroy", "--org", "operator", "--region", "th", "--profile", admin)
	m := regexp.MustCompile(`^destruction (kd-[0-9a-f]+) of the KEK of operator/th requested; nothing is destroyed until a second admin runs:\n  sekisho keys destroy --approve (kd-[0-9a-f]+)\n$`).FindStringSubmatch(out)
	if code != 0 || m == nil || m[1] != m[2] {
		t.Fatalf("keys destroy request: exit %d %q", code, out)
	}
	id := m[1]
	readable("after the request alone")
	if _, errOut, code := run(t, "keys", "destroy", "--approve", id, "--profile", admin); code != exitRefused || !strings.Contains(errOut, "two-person-rule") {
		t.Fatalf("the requester approving: exit %d %s", code, errOut)
	}
	if _, errOut, code := run(t, "keys", "destroy", "--approve", id, "--profile", admin2); code != exitRefused || !strings.Contains(errOut, "approver-too-recent") {
		t.Fatalf("an admin of minutes approving: exit %d %s", code, errOut)
	}
	readable("after the refused approvals")

	// admin2 has been an admin for a day: its principal and device are
	// dated back in the store while the server is stopped.
	srv.stop(t)
	backdateAdmin(t, dir, "admin2", 25*time.Hour)
	startServe(t, dir, addr) // on the same address: the profiles name it

	out, errOut, code := run(t, "keys", "destroy", "--approve", id, "--profile", admin2)
	if code != 0 || out != "KEK of operator/th destroyed (versions up to 1): 2 records erased\n" {
		t.Fatalf("the second admin approving: exit %d %q %s", code, out, errOut)
	}
	for _, rec := range thRecs {
		body, code := cliRead(t, admin, rec)
		if code != exitRefused || !strings.HasPrefix(body, "HTTP/1.1 410") || !strings.Contains(body, "erased") ||
			strings.Contains(body, "Somchai") || strings.Contains(body, "Malee") {
			t.Fatalf("record %s in the destroyed region: exit %d %s", rec, code, body)
		}
	}
	if body, code := cliRead(t, admin, jpRec); code != 0 || !strings.Contains(body, "Hanako") {
		t.Fatalf("the other region after the destruction: exit %d %s", code, body)
	}
	if _, errOut, code := run(t, "keys", "destroy", "--approve", id, "--profile", admin2); code != exitRefused || !strings.Contains(errOut, "destruction-not-pending") {
		t.Fatalf("approving again: exit %d %s", code, errOut)
	}
	var d vault.Destruction
	out, _, _ = run(t, "api", "--profile", admin, "GET", "/v1/keys/destructions/"+id)
	if json.Unmarshal([]byte(out), &d) != nil || d.State != vault.DestructionDestroyed || d.Records != 2 || d.ApprovedBy != "admin2" {
		t.Fatalf("the destruction: %s", out)
	}
	acts := auditActionsOnline(t, admin)
	for _, want := range []string{"keys.destroy.request/allow", "keys.destroy/deny", "keys.destroy/allow", "keys.destroy.finished/allow", "read/deny"} {
		if !slices.Contains(acts, want) {
			t.Errorf("no %s in the audit log: %v", want, acts)
		}
	}
}

// backdateAdmin dates principal's creation and its devices' approval back
// by d in a stopped server's data directory, as if it had been an admin
// that long.
func backdateAdmin(t *testing.T, dir, principal string, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	in, err := openInstance(ctx, instanceOptions{DataDir: dir, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	back := func(o *sekisho.Object, key string) {
		var m map[string]any
		if err := json.Unmarshal(o.Body, &m); err != nil {
			t.Fatal(err)
		}
		at, err := time.Parse(time.RFC3339Nano, m[key].(string))
		if err != nil {
			t.Fatal(err)
		}
		m[key] = at.Add(-d)
		o.Body, _ = json.Marshal(m)
		o.Version++
		if err := in.store.PutObject(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	p, err := in.store.GetObject(ctx, "principal", principal)
	if err != nil {
		t.Fatal(err)
	}
	back(p, "created_at")
	devs, err := in.store.ListObjects(ctx, "device", p.Org)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range devs {
		var dev struct{ Principal string }
		if json.Unmarshal(o.Body, &dev) == nil && dev.Principal == principal {
			back(o, "approved_at")
			n++
		}
	}
	if n == 0 {
		t.Fatalf("%s has no device", principal)
	}
}
