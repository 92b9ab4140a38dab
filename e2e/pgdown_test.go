package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pgCluster starts a PostgreSQL cluster of its own for one test with
// scripts/pg.sh (which a test may stop and start again on the same port).
// Without PostgreSQL the test skips, or fails when SEKISHO_REQUIRE_POSTGRES
// is set (scripts/test.sh, CI).
func pgCluster(t *testing.T) (dir, dsn string) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "sekisho-e2e-pg-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	out, err := pgScript("start", dir)
	if err != nil {
		os.RemoveAll(dir)
		if os.Getenv("SEKISHO_REQUIRE_POSTGRES") != "" {
			t.Fatalf("start PostgreSQL: %v\n%s", err, out)
		}
		t.Skipf("no PostgreSQL (%v); set SEKISHO_REQUIRE_POSTGRES to fail instead", err)
	}
	t.Cleanup(func() {
		pgScript("stop", dir)
		os.RemoveAll(dir)
	})
	return dir, strings.TrimSpace(out)
}

func pgScript(verb string, dirs ...string) (string, error) {
	cmd := exec.Command("../scripts/pg.sh", append([]string{verb}, dirs...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out) + stderr.String(), err
	}
	return string(out), nil
}

// TestPostgresUnreachable: a sekisho serve on PostgreSQL whose database
// goes away mid-run. /readyz fails; data requests answer store-unavailable
// (503, Retry-After) and never data; when the database is back, the same
// server serves again by itself, every acknowledged write is there and the
// audit log verifies. Starting against a database that is not there fails
// with a clear error.
func TestPostgresUnreachable(t *testing.T) {
	pgdir, dsn := pgCluster(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	key := masterKey()
	srv := startServer(t, dir, key, "--store", dsn)
	tok, err := os.ReadFile(filepath.Join(dir, "bootstrap-admin-token"))
	ok(t, "bootstrap token", err)
	admin := newClient(t, srv, nil)
	_, err = admin.Bootstrap(ctx, strings.TrimSpace(string(tok)), "admin", "admin's laptop")
	ok(t, "bootstrap", err)
	svc := principal(t, srv, admin, admin, "pg-svc", "operator", "service")
	create := func(name string) (string, error) {
		var rec struct{ ID string }
		err := svc.JSON(ctx, "POST", "/v1/collections/users/records", "ops", map[string]any{"region": "jp",
			"fields": map[string]any{"display_name": name}}, &rec)
		return rec.ID, err
	}
	read := func(id string) (*http.Response, string, error) {
		resp, err := svc.Do(ctx, "GET", "/v1/collections/users/records/"+id+"?fields=display_name", nil, http.Header{"Sekisho-Purpose": {"ops"}})
		if err != nil {
			return nil, "", err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b), nil
	}
	acked := map[string]string{}
	for i := range 10 {
		id, err := create(fmt.Sprintf("before %d", i))
		ok(t, "create", err)
		acked[id] = fmt.Sprintf("before %d", i)
	}
	var someID string
	for id := range acked {
		someID = id
	}

	if out, err := pgScript("stop", pgdir); err != nil {
		t.Fatalf("stop PostgreSQL: %v\n%s", err, out)
	}
	resp, err := srv.http.Get(srv.base + "/readyz")
	ok(t, "readyz", err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the database down: %s", resp.Status)
	}
	for i := range 5 {
		_, err := create(fmt.Sprintf("down %d", i))
		refusedWith(t, "create with the database down", err, "store-unavailable")
		resp, body, err := read(someID)
		ok(t, "read with the database down", err)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			!strings.Contains(body, "store-unavailable") || strings.Contains(body, "before") {
			t.Fatalf("read with the database down: %s, Retry-After %q: %s", resp.Status, resp.Header.Get("Retry-After"), body)
		}
	}

	if out, err := pgScript("start", pgdir); err != nil {
		t.Fatalf("restart PostgreSQL: %v\n%s", err, out)
	}
	start := time.Now()
	var id string
	for id, err = create("after"); err != nil && time.Since(start) < 60*time.Second; id, err = create("after") {
		time.Sleep(200 * time.Millisecond)
	}
	ok(t, "create after the database returned", err)
	t.Logf("the server took writes again %v after the database restarted", time.Since(start).Round(time.Millisecond))
	acked[id] = "after"
	for id, want := range acked {
		resp, body, err := read(id)
		ok(t, "read "+id, err)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("record %s after the database returned: %s %s", id, resp.Status, body)
		}
	}
	srv.kill()
	out, err := exec.Command(binary, "audit", "verify", "--data", dir, "--store", dsn).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "OK") {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}

	// A server started while the database is away says so and exits.
	if out, err := pgScript("stop", pgdir); err != nil {
		t.Fatalf("stop PostgreSQL: %v\n%s", err, out)
	}
	cmd := exec.Command(binary, "serve", "--addr", freeAddr(t), "--data", dir, "--store", dsn)
	cmd.Env = append(os.Environ(), "SEKISHO_MASTER_KEY="+key)
	done := make(chan []byte, 1)
	go func() { b, _ := cmd.CombinedOutput(); done <- b }()
	select {
	case b := <-done:
		if !strings.Contains(string(b), "store") || strings.Contains(string(b), "password") {
			t.Errorf("serve without its database: %s", b)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("serve kept waiting for a database that is not there")
	}
}
