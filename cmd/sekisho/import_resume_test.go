package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/gen"
	"github.com/sekisho/sekisho/internal/pgtest"
	"github.com/sekisho/sekisho/sqlite"
	"github.com/sekisho/sekisho/vault"
)

// An import --data killed (SIGKILL) after some of its batches were stored
// and run again with the same file continues where it stopped: the second
// run says how many rows the first had stored and skips them, the store then
// holds every row exactly once (no duplicate, none missing: every generated
// display name once), every record opens, is found by its phone (the blind
// index entries the killed run had staged were moved into the index), and
// is named by an import audit event. The control: the same file imported
// again after a complete import is imported again (marks are forgotten once
// an import is complete), so the count would catch a skipped batch too.
// Both stores: the embedded SQLite and PostgreSQL (--store; skipped without
// SEKISHO_TEST_POSTGRES, failed with SEKISHO_REQUIRE_POSTGRES).
func TestImportResumesAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 12,000 records")
	}
	t.Run("sqlite", func(t *testing.T) { testImportResumesAfterKill(t, "") })
	t.Run("postgres", func(t *testing.T) { testImportResumesAfterKill(t, pgtest.DSN(t)) })
}

// countStored counts the users stored so far without opening the store as
// a sekisho.Store (PostgreSQL's Open would finish the bulk load under way).
func countStored(ctx context.Context, data, dsn string) int64 {
	if dsn == "" {
		st, err := sqlite.OpenReadOnly(ctx, filepath.Join(data, dbFile))
		if err != nil {
			return 0
		}
		defer st.Close()
		n, _ := st.CountRecords(ctx, "users", "")
		return n
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0
	}
	defer conn.Close(ctx)
	var n int64
	conn.QueryRow(ctx, `SELECT count(*) FROM records WHERE collection = 'users'`).Scan(&n)
	return n
}

func testImportResumesAfterKill(t *testing.T, dsn string) {
	setMasterKey(t)
	ctx := context.Background()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	file := filepath.Join(dir, "users.ndjson")
	const total = 12000
	g := gen.New(7)
	var buf bytes.Buffer
	names := map[string]string{} // display name -> phone
	for i := range total {
		u := g.User()
		u.Fields["display_name"] = json.RawMessage(strconv.Quote(fmt.Sprintf("user %06d", i)))
		var phone string
		json.Unmarshal(u.Fields["phone"], &phone)
		names[fmt.Sprintf("user %06d", i)] = phone
		b, _ := json.Marshal(u)
		buf.Write(append(b, '\n'))
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var store []string
	if dsn != "" {
		store = []string{"--store", dsn}
	}
	args := append(append([]string{"import", "--data", data}, store...), "--batch", "250", "users", file)

	// The first run, killed once it has stored a few batches.
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "SEKISHO_PROFILE="+filepath.Join(dir, "no-profile"))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stored := int64(0)
	deadline := time.Now().Add(2 * time.Minute)
	for stored < 750 {
		select {
		case err := <-exited:
			t.Fatalf("the import ended (%v) before it could be interrupted (%d records stored)", err, stored)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the import stored nothing in 2 minutes")
		}
		stored = countStored(ctx, data, dsn)
	}
	cmd.Process.Kill()
	<-exited
	if stored >= total {
		t.Fatalf("the import had finished (%d records) before the kill", stored)
	}

	// The second run continues.
	out, stderr, code := run(t, args...)
	if code != 0 {
		t.Fatalf("resumed import: exit %d\n%s%s", code, out, stderr)
	}
	m := regexp.MustCompile(`imported (\d+) records, rejected 0, .*; (\d+) rows were stored by the interrupted run before and were skipped`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the resumed import does not say what it skipped: %q", out)
	}
	imported, _ := strconv.Atoi(m[1])
	resumed, _ := strconv.Atoi(m[2])
	if imported+resumed != total || resumed < 750 || resumed%250 != 0 {
		t.Fatalf("resumed import: %d imported + %d skipped, want %d in all, at least the 750 stored before the kill, whole batches", imported, resumed, total)
	}

	in, err := openInstance(ctx, instanceOptions{DataDir: data, Store: dsn, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	caller := sekisho.Caller{Principal: "alice", Org: "operator", Device: "d1", Roles: []string{"admin"}, Source: "127.0.0.1", Purpose: "support", RequestID: "check"}
	var ids []string
	for after := ""; ; {
		page, err := in.store.ListRecordIDs(ctx, "users", "", after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		ids = append(ids, page...)
		after = page[len(page)-1]
	}
	if len(ids) != total {
		t.Fatalf("the store holds %d users after the resumed import, want %d", len(ids), total)
	}
	seen := map[string]bool{}
	for start := 0; start < len(ids); start += 100 {
		recs, err := in.vault.BatchGet(ctx, caller, "users", ids[start:min(len(ids), start+100)], []string{"display_name"})
		if err != nil {
			t.Fatalf("records do not open: %v", err)
		}
		for _, r := range recs {
			var name string
			json.Unmarshal(r.Fields["display_name"], &name)
			if seen[name] {
				t.Fatalf("%q stored twice", name)
			}
			seen[name] = true
		}
	}
	for name := range names {
		if !seen[name] {
			t.Fatalf("%q is missing", name)
		}
	}
	// Found by phone, among them rows the killed run stored.
	for i := 0; i < total; i += 331 {
		name := fmt.Sprintf("user %06d", i)
		recs, err := in.vault.Lookup(ctx, caller, "users", vault.LookupRequest{Field: "phone", Value: json.RawMessage(strconv.Quote(names[name])), Fields: []string{"display_name"}})
		if err != nil || len(recs) == 0 {
			t.Fatalf("lookup of %s's phone: %d records, %v", name, len(recs), err)
		}
	}
	// Every stored id is named by an import event.
	entries, err := in.store.QueryAudit(ctx, sekisho.AuditFilter{Principal: "cli-import"})
	if err != nil {
		t.Fatal(err)
	}
	audited := map[string]bool{}
	for _, e := range entries {
		for _, id := range e.Records {
			audited[id] = true
		}
	}
	for _, id := range ids {
		if !audited[id] {
			t.Fatalf("record %s is in no import audit event", id)
		}
	}
	in.Close()

	// Control: a complete import forgets its marks; the same file again is
	// a new import.
	out, stderr, code = run(t, args...)
	if code != 0 || !regexp.MustCompile(fmt.Sprintf(`imported %d records, rejected 0`, total)).MatchString(out) {
		t.Fatalf("import after a complete one: exit %d\n%s%s", code, out, stderr)
	}
}
