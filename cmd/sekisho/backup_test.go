package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
)

// TestBackupRestore: a backup taken while records keep being written (the
// data directory held open, as by serve) restores into a new directory whose
// audit log verifies against a checkpoint kept from before the backup, where
// every record opens, the records from before it hold their values, and every
// record has its create event in the log. A damaged backup, and a restore
// over an existing directory, are refused.
func TestBackupRestore(t *testing.T) {
	setMasterKey(t)
	ctx := context.Background()
	root := t.TempDir()
	src := filepath.Join(root, "data")
	in, err := openInstance(ctx, instanceOptions{DataDir: src, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if in != nil {
			in.Close()
		}
	}()
	caller := sekisho.Caller{Principal: "alice", Org: "operator", Device: "d1", Roles: []string{"admin"}, Source: "127.0.0.1", Purpose: "support"}
	create := func(name string) (string, error) {
		rec, err := in.vault.Create(ctx, caller, "users", &sekisho.RecordInput{Region: "jp",
			Fields: map[string]json.RawMessage{"display_name": json.RawMessage(fmt.Sprintf("%q", name))}})
		if err != nil {
			return "", err
		}
		return rec.ID, nil
	}
	before := map[string]string{}
	for i := range 40 {
		name := fmt.Sprintf("before %d", i)
		id, err := create(name)
		if err != nil {
			t.Fatal(err)
		}
		before[id] = name
	}
	cp, err := in.log.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(root, "checkpoint-before")
	if err := os.WriteFile(kept, cp.Note, 0o600); err != nil {
		t.Fatal(err)
	}

	// Writes go on during the backup.
	var during atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := create(fmt.Sprintf("during %d", i)); err != nil {
				t.Errorf("create during the backup: %v", err)
				return
			}
			during.Add(1)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); during.Load() < 5 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	out := filepath.Join(root, "backup.tar.gz")
	m, err := runBackup(ctx, backupSource{data: src}, out)
	if err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if m.AuditSize < cp.Size {
		t.Fatalf("backup holds %d events, the checkpoint before it %d", m.AuditSize, cp.Size)
	}
	if _, err := runBackup(ctx, backupSource{data: src}, out); err == nil {
		t.Error("a backup overwrote an existing file")
	}

	// A damaged backup is refused, and nothing is left behind.
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(root, "damaged.tar.gz")
	b2 := append([]byte(nil), b...)
	b2[len(b2)/2] ^= 0x40
	if err := os.WriteFile(bad, b2, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runRestore(ctx, bad, filepath.Join(root, "from-damaged")); err == nil {
		t.Error("a damaged backup was restored")
	}
	if _, err := os.Stat(filepath.Join(root, "from-damaged")); err == nil {
		t.Error("a refused restore left a data directory")
	}
	// Not over an existing data directory.
	if _, _, err := runRestore(ctx, out, src); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("restore over the live directory: %v", err)
	}

	dst := filepath.Join(root, "restored")
	_, note, err := runRestore(ctx, out, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(note, "opens the keyring") {
		t.Errorf("master key not checked: %s", note)
	}
	in.Close()
	in = nil

	// The restored log verifies against the checkpoint kept from before.
	if outp, code := runCLI(t, "audit", "verify", "--data", dst, "--checkpoint", kept); code != 0 {
		t.Fatalf("audit verify of the restore: exit %d\n%s", code, outp)
	}
	r, err := openInstance(ctx, instanceOptions{DataDir: dst, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var ids []string
	for after := ""; ; {
		page, err := r.store.ListRecordIDs(ctx, "users", "", after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		ids = append(ids, page...)
		after = page[len(page)-1]
	}
	if n := int64(len(ids)); n < int64(len(before)) || n > int64(len(before))+during.Load() {
		t.Fatalf("restored %d records: %d before the backup, %d created during it", n, len(before), during.Load())
	}
	for _, id := range ids {
		rec, err := r.vault.Get(ctx, caller, "users", id, nil)
		if err != nil {
			t.Fatalf("record %s does not open: %v", id, err)
		}
		var name string
		json.Unmarshal(rec.Fields["display_name"], &name)
		if want, ok := before[id]; ok && name != want {
			t.Errorf("record %s: %q, want %q", id, name, want)
		}
		delete(before, id)
		evs, err := r.store.QueryAudit(ctx, sekisho.AuditFilter{Record: id, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			t.Errorf("record %s has no audit event in the restore", id)
		}
	}
	if len(before) > 0 {
		t.Errorf("%d records from before the backup are missing", len(before))
	}
	// The same through the CLI, from the restored directory while it is open.
	out2 := filepath.Join(root, "backup2.tar.gz")
	if o, code := runCLI(t, "backup", "--data", dst, "--out", out2); code != 0 || !strings.Contains(o, "audit events") {
		t.Fatalf("sekisho backup: exit %d: %s", code, o)
	}
	if o, code := runCLI(t, "restore", "--from", out2, "--data", filepath.Join(root, "restored2")); code != 0 || !strings.Contains(o, "verified") {
		t.Fatalf("sekisho restore: exit %d: %s", code, o)
	}
	t.Logf("backup: %d events (checkpoint at %d); %d records restored, %d were created during the backup",
		m.AuditSize, m.CheckpointSize, len(ids), during.Load())
}
