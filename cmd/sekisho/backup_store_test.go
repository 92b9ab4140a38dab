package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/internal/pgtest"
	"github.com/sekisho/sekisho/postgres"
)

// TestBackupStore: `backup --config` of a deployment whose default store and
// jp store are PostgreSQL and whose th store is SQLite, taken while records
// are being created: one file holds the three, each checked (PostgreSQL:
// pg_dump from an exported snapshot, the snapshot's audit log verified, the
// dump's row counts and audit events equal to the snapshot's); the dumps
// load into empty databases with pg_restore and their audit logs verify
// there. A dump that disagrees with its snapshot is refused (checkDump), and
// a store whose audit log was edited is not backed up.
func TestBackupStore(t *testing.T) {
	setMasterKey(t)
	ctx := context.Background()
	dsn, dsnJP := pgtest.DSN(t), pgtest.DSN(t)
	root := t.TempDir()
	data := filepath.Join(root, "data")
	regions := map[string]string{"jp": dsnJP, "th": "sqlite:th.db"}
	in, err := openInstance(ctx, instanceOptions{DataDir: data, Store: dsn, Regions: regions, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	caller := sekisho.Caller{Principal: "alice", Org: "operator", Device: "d1", Roles: []string{"admin"}, Source: "127.0.0.1", Purpose: "support"}
	create := func(region, name string) error {
		_, err := in.vault.Create(ctx, caller, "users", &sekisho.RecordInput{Region: region,
			Fields: map[string]json.RawMessage{"display_name": json.RawMessage(fmt.Sprintf("%q", name))}})
		return err
	}
	for i := range 10 {
		for _, r := range []string{"jp", "th", "tw"} { // tw has no store of its own: the default store
			if err := create(r, fmt.Sprintf("%s %d", r, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := in.logs.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	// Creates go on during the backup.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := create([]string{"jp", "tw"}[i%2], fmt.Sprintf("during %d", i)); err != nil {
				t.Errorf("create during the backup: %v", err)
				return
			}
		}
	})
	out := filepath.Join(root, "backup.tar.gz")
	cfg := filepath.Join(root, "sekisho.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("data: %s\nstore: %s\nregions:\n  jp: %s\n  th: sqlite:th.db\n", data, dsn, dsnJP)), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, code := runCLI(t, "backup", "--config", cfg, "--out", out, "--format", "json")
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup --config: exit %d\n%s", code, stdout)
	}
	var res struct{ Manifest backupManifest }
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	m := res.Manifest
	if len(m.Stores) != 3 || m.Stores[0].Log != "default" || m.Stores[0].Kind != "postgres" || m.Stores[1].Log != "jp" || m.Stores[1].Kind != "postgres" ||
		m.Stores[2].Log != "th" || m.Stores[2].Kind != "sqlite" {
		t.Fatalf("stores: %s", stdout)
	}
	for _, st := range m.Stores[:2] {
		// The audit log's rows are in its monthly partitions, as pg_dump
		// dumps them.
		var events int64
		for _, p := range st.AuditTables {
			if !strings.HasPrefix(p, "audit_entries_") {
				t.Fatalf("%s: audit table %s is not a partition of audit_entries", st.Log, p)
			}
			events += st.Tables[p]
		}
		if st.AuditSize < 10 || len(st.AuditTables) == 0 || events != int64(st.AuditSize) || st.Tables["records"] < 10 || st.AuditDigest == "" {
			t.Fatalf("%s: %+v", st.Log, st)
		}
		if _, ok := st.Tables["audit_entries"]; ok {
			t.Fatalf("%s: the partitioned table itself is counted (pg_dump dumps its partitions): %+v", st.Log, st.Tables)
		}
	}

	// Restore: the files come back checked; the dumps load with pg_restore.
	dir := filepath.Join(root, "restored")
	stdout, code = runCLI(t, "restore", "--from", out, "--data", dir)
	if code != 0 || !strings.Contains(stdout, "store.dump") || !strings.Contains(stdout, "region-jp.dump") {
		t.Fatalf("restore: exit %d\n%s", code, stdout)
	}
	v, err := audit.LoadVerifier(filepath.Join(dir, audit.VerifierKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range m.Stores[:2] {
		target := pgtest.DSN(t)
		if b, err := exec.Command("pg_restore", "--no-owner", "--dbname="+target, filepath.Join(dir, st.File)).CombinedOutput(); err != nil {
			t.Fatalf("pg_restore %s: %v\n%s", st.File, err, b)
		}
		ps, err := postgres.Open(ctx, target)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(ctx, ps, v, nil)
		ps.Close()
		if err != nil || !rep.OK || rep.Size != st.AuditSize {
			t.Fatalf("restored %s: verify %+v, %v; want OK with %d events", st.File, rep, err, st.AuditSize)
		}
	}

	// The dump check refuses a dump that disagrees with its snapshot.
	dump := filepath.Join(dir, "store.dump")
	good := *m.Stores[0]
	if err := checkDump(ctx, dump, &good); err != nil {
		t.Fatalf("checkDump of the dump as made: %v", err)
	}
	bad := good
	bad.Tables = map[string]int64{}
	for k, c := range good.Tables {
		bad.Tables[k] = c
	}
	bad.Tables["records"]++
	if err := checkDump(ctx, dump, &bad); err == nil || !strings.Contains(err.Error(), "records") {
		t.Fatalf("a row count the dump lacks: %v", err)
	}
	bad = good
	bad.AuditTables = good.AuditTables[1:] // one month's leaves left out
	if err := checkDump(ctx, dump, &bad); err == nil || !strings.Contains(err.Error(), "audit_entries") {
		t.Fatalf("the digest over all but one audit partition: %v", err)
	}
	bad = good
	bad.AuditDigest = strings.Repeat("0", 64)
	if err := checkDump(ctx, dump, &bad); err == nil || !strings.Contains(err.Error(), "audit_entries") {
		t.Fatalf("other audit events than the dump's: %v", err)
	}

	// An edited audit event in the store: no backup.
	conn, err := pgx.Connect(ctx, dsnJP)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE audit_entries SET leaf = replace(convert_from(leaf, 'UTF8'), '"allow"', '"deny"')::bytea WHERE idx = 1`); err != nil {
		t.Fatal(err)
	}
	root2 := newRootCmd()
	root2.SetOut(io.Discard)
	root2.SetErr(io.Discard)
	root2.SetArgs([]string{"backup", "--config", cfg, "--out", filepath.Join(root, "second.tar.gz")})
	if code, msg := exitStatus(root2.ExecuteContext(ctx)); code == 0 || !strings.Contains(msg, "jp store") || !strings.Contains(msg, "does not verify") {
		t.Fatalf("backup of a store with an edited event: exit %d: %s", code, msg)
	}
	if _, err := os.Stat(filepath.Join(root, "second.tar.gz")); err == nil {
		t.Fatal("a backup file was written for a store whose audit log does not verify")
	}
}
