package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sekisho/sekisho/sqlite"
)

// smallDisk mounts a tmpfs of size at a fresh directory, unmounted at the
// end. It needs root: with SEKISHO_REQUIRE_ROOT set (scripts/test.sh, CI)
// a failed mount fails the test, otherwise it skips.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		if os.Getenv("SEKISHO_REQUIRE_ROOT") != "" {
			t.Fatalf("mount a %s tmpfs (needs root): %v", size, err)
		}
		t.Skipf("mount a %s tmpfs: %v (run as root, or set SEKISHO_REQUIRE_ROOT to fail instead)", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file in dir until the file system is full and returns its
// path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for n := len(buf); n >= 512; {
		if _, err := f.Write(buf[:n]); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			n /= 2
		}
	}
	return p
}

// TestFullDisk: sekisho serve with its data directory on a small file
// system that fills up. Writes are refused with the storage-full problem
// (503, Retry-After), reads that cannot be audited are refused and return
// no data, every record acknowledged before is intact, the database passes
// PRAGMA integrity_check and the audit log verifies; when space returns the
// same server takes writes and reads again, by itself.
func TestFullDisk(t *testing.T) {
	mnt := smallDisk(t, "24m")
	dir := filepath.Join(mnt, "data")
	srv := startServer(t, dir, masterKey())
	ctx := context.Background()
	tok, err := os.ReadFile(filepath.Join(dir, "bootstrap-admin-token"))
	ok(t, "bootstrap token", err)
	admin := newClient(t, srv, nil)
	_, err = admin.Bootstrap(ctx, strings.TrimSpace(string(tok)), "admin", "admin's laptop")
	ok(t, "bootstrap", err)
	svc := principal(t, srv, admin, admin, "disk-svc", "operator", "service")

	create := func(name string) (string, error) {
		var rec struct{ ID string }
		err := svc.JSON(ctx, "POST", "/v1/collections/users/records", "ops", map[string]any{"region": "jp",
			"fields": map[string]any{"display_name": name, "country": "JP"}}, &rec)
		return rec.ID, err
	}
	read := func(id string) (string, error) {
		var rec struct {
			Fields map[string]any `json:"fields"`
		}
		err := svc.JSON(ctx, "GET", "/v1/collections/users/records/"+id+"?fields=display_name", "ops", nil, &rec)
		name, _ := rec.Fields["display_name"].(string)
		return name, err
	}
	acked := map[string]string{}
	for i := range 20 {
		name := fmt.Sprintf("before-full %d", i)
		id, err := create(name)
		ok(t, "create before the disk is full", err)
		acked[id] = name
	}
	var anyID string
	for id := range acked {
		anyID = id
		break
	}

	filler := fill(t, mnt)
	// Writes: refused as storage-full, 503 with Retry-After, through the
	// raw response too. A write that still fits is acknowledged (its WAL
	// frames overwrite a WAL the checkpointer had copied and SQLite started
	// over: no new space) and must survive; writes go on until 10 were
	// refused, which they are once the WAL or the file must grow.
	var refused int
	for i := 0; refused < 10 && i < 300; i++ {
		id, err := create(fmt.Sprintf("while-full %d", i))
		if err == nil {
			// A page SQLite still had free: acknowledged, so it must survive.
			acked[id] = fmt.Sprintf("while-full %d", i)
			continue
		}
		refusedWith(t, "create on a full disk", err, "storage-full")
		refused++
	}
	if refused == 0 {
		t.Fatal("no write was refused on a full disk")
	}
	resp, err := svc.Do(ctx, "POST", "/v1/collections/users/records", []byte(`{"region":"jp","fields":{"display_name":"raw"}}`),
		http.Header{"Sekisho-Purpose": {"ops"}, "Content-Type": {"application/json"}})
	ok(t, "raw create", err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), "storage-full") {
		t.Fatalf("create on a full disk: %s, Retry-After %q: %s", resp.Status, resp.Header.Get("Retry-After"), body)
	}
	// Reads cannot be audited: refused, and nothing of the record returned.
	name, err := read(anyID)
	if err == nil {
		t.Fatalf("a read was answered with no room for its audit event (%q)", name)
	}
	refusedWith(t, "read on a full disk", err, "storage-full")
	if name != "" {
		t.Fatalf("a refused read returned data: %q", name)
	}

	// Space returns: the same server works again by itself.
	ok(t, "free space", os.Remove(filler))
	var id string
	deadline := time.Now().Add(30 * time.Second)
	for id, err = create("after-full"); err != nil && time.Now().Before(deadline); id, err = create("after-full") {
		time.Sleep(100 * time.Millisecond)
	}
	ok(t, "create after space returned", err)
	acked[id] = "after-full"
	for id, want := range acked {
		got, err := read(id)
		ok(t, "read "+id+" after space returned", err)
		if got != want {
			t.Fatalf("record %s: %q, want %q", id, got, want)
		}
	}

	// Nothing corrupted: the database and the audit log check out.
	srv.kill()
	if err := sqlite.CheckFile(ctx, filepath.Join(dir, "sekisho.db")); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "audit", "verify", "--data", dir).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "OK") {
		t.Fatalf("audit verify after a full disk: %v\n%s", err, out)
	}
	t.Logf("full disk: %d writes refused as storage-full, %d records intact; %s", refused, len(acked), strings.TrimSpace(string(out)))
}
