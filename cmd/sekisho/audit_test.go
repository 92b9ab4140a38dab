package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/keys"
)

// runCLI runs the sekisho command in-process with args and returns its
// stdout and exit status (0, or the status main would exit with).
func runCLI(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, code, msg, _ := runCLIMsg(t, args...)
	if code != 0 {
		t.Logf("sekisho %s: exit %d: %s", strings.Join(args, " "), code, msg)
	}
	return out, code
}

// runCLIErr runs the CLI in-process and returns its stdout, stderr and
// error.
func runCLIErr(t *testing.T, args ...string) (out, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var o, e bytes.Buffer
	root.SetOut(&o)
	root.SetErr(&e)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return o.String(), e.String(), err
}

// runCLIMsg runs the CLI in-process and returns its output, exit status,
// error message and what it wrote to stderr.
func runCLIMsg(t *testing.T, args ...string) (out string, code int, msg, stderr string) {
	t.Helper()
	out, stderr, err := runCLIErr(t, args...)
	code, msg = exitStatus(err)
	return out, code, msg, stderr
}

func setMasterKey(t *testing.T) {
	t.Helper()
	k, err := keys.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(keys.EnvMasterKey, base64.StdEncoding.EncodeToString(k))
}

// testEvent is the i-th synthetic event: five principals, one a day apart
// in groups of 100.
func testEvent(base time.Time, i int) sekisho.Event {
	return sekisho.Event{Time: base.Add(time.Duration(i) * 15 * time.Minute), RequestID: fmt.Sprintf("req-%04d", i),
		Org: "operator", Principal: fmt.Sprintf("p%d", i%5), Device: "dev-" + fmt.Sprint(i%3), Source: "10.0.0.1",
		Purpose: "support", Action: "read", Collection: "users", Records: []string{fmt.Sprintf("r%d", i)},
		Fields: []string{"phone"}, Decision: []string{sekisho.Allow, sekisho.Deny}[i%7/6], Policy: "own-org", Reason: "test",
		RecordOrgs: []string{"operator"}}
}

// auditDataDir makes a real data directory (store, keyring, audit keys) with
// a few events recorded by the vault and 300 more appended to the log, with
// checkpoints at 100, 200 and 300. It returns the directory and the path of
// a file holding checkpoint 300, as an auditor would keep it.
func auditDataDir(t *testing.T) (dir, checkpoint300 string) {
	t.Helper()
	setMasterKey(t)
	ctx := context.Background()
	dir = filepath.Join(t.TempDir(), "data")
	in, err := openInstance(ctx, instanceOptions{DataDir: dir, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	caller := sekisho.Caller{Principal: "alice", Org: "operator", Device: "d1", Roles: []string{"admin"}, Source: "127.0.0.1",
		Purpose: "support", RequestID: "vault-req"}
	rec, err := in.vault.Create(ctx, caller, "users", &sekisho.RecordInput{Region: "jp",
		Fields: map[string]json.RawMessage{"display_name": json.RawMessage(`"Sakura Tanaka"`)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.vault.Get(ctx, caller, "users", rec.ID, nil); err != nil {
		t.Fatal(err)
	}
	size, err := in.store.AuditSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for n := int(size); n < 300; {
		k := min(50, 300-n)
		evs := make([]sekisho.Event, k)
		for i := range evs {
			evs[i] = testEvent(base, n+i)
		}
		if _, err := in.log.AppendBatch(ctx, evs); err != nil {
			t.Fatal(err)
		}
		n += k
		if n%100 == 0 {
			cp, err := in.log.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 300 {
				checkpoint300 = filepath.Join(t.TempDir(), "checkpoint-300")
				if err := os.WriteFile(checkpoint300, cp.Note, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return dir, checkpoint300
}

func openRaw(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func sqlExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// forgedLeaf is event i rewritten to hide who read the record.
func forgedLeaf(i int) []byte {
	e := testEvent(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), i)
	e.Principal = "nobody"
	return sekisho.MarshalEvent(e)
}

// TestAuditVerifyDetectsTampering edits the SQLite file of a real data
// directory as an attacker with database access would, and checks that the
// audit verify command exits 2 and names the first index touched.
func TestAuditVerifyDetectsTampering(t *testing.T) {
	tests := []struct {
		name       string
		tamper     func(t *testing.T, db *sql.DB)
		checkpoint bool // pass the kept checkpoint 300 with --checkpoint
		index      uint64
		kind       audit.ProblemKind
	}{
		{name: "untouched"},
		{name: "untouched, against the kept checkpoint", checkpoint: true},
		{
			name: "changed event",
			tamper: func(t *testing.T, db *sql.DB) {
				sqlExec(t, db, `UPDATE audit_events SET leaf = ? WHERE idx = 123`, forgedLeaf(123))
			},
			index: 123, kind: audit.ProblemLeaf,
		},
		{
			name: "changed event with its query column",
			tamper: func(t *testing.T, db *sql.DB) {
				sqlExec(t, db, `UPDATE audit_events SET leaf = ?, principal = 'nobody' WHERE idx = 42`, forgedLeaf(42))
			},
			index: 42, kind: audit.ProblemLeaf,
		},
		{
			name:   "deleted event",
			tamper: func(t *testing.T, db *sql.DB) { sqlExec(t, db, `DELETE FROM audit_events WHERE idx = 77`) },
			index:  77, kind: audit.ProblemMissing,
		},
		{
			name: "reordered events",
			tamper: func(t *testing.T, db *sql.DB) {
				sqlExec(t, db, `UPDATE audit_events SET idx = -1 WHERE idx = 150`)
				sqlExec(t, db, `UPDATE audit_events SET idx = 150 WHERE idx = 151`)
				sqlExec(t, db, `UPDATE audit_events SET idx = 151 WHERE idx = -1`)
			},
			index: 150, kind: audit.ProblemLeaf,
		},
		{
			name: "inserted event",
			tamper: func(t *testing.T, db *sql.DB) {
				// Renumber the rows from 200 on up by one and put a forged
				// event in the gap.
				sqlExec(t, db, `UPDATE audit_events SET idx = -(idx + 1) WHERE idx >= 200`)
				sqlExec(t, db, `UPDATE audit_events SET idx = -idx WHERE idx < 0`)
				sqlExec(t, db, `INSERT INTO audit_events (idx, leaf, time, request_id, org, principal, device, decision, records, record_orgs)
					SELECT 200, ?, time, 'forged', org, 'nobody', device, decision, records, record_orgs FROM audit_events WHERE idx = 201`, forgedLeaf(999))
			},
			index: 200, kind: audit.ProblemLeaf,
		},
		{
			name: "event appended outside the log",
			tamper: func(t *testing.T, db *sql.DB) {
				sqlExec(t, db, `INSERT INTO audit_events (idx, leaf, time, request_id, org, principal, device, decision, records, record_orgs)
					SELECT 300, ?, time, 'forged', org, 'nobody', device, decision, records, record_orgs FROM audit_events WHERE idx = 299`, forgedLeaf(999))
			},
			index: 300, kind: audit.ProblemUnrecorded,
		},
		{
			name:   "truncated log",
			tamper: func(t *testing.T, db *sql.DB) { sqlExec(t, db, `DELETE FROM audit_events WHERE idx >= 250`) },
			index:  250, kind: audit.ProblemTruncated,
		},
		{
			name: "truncated log and stored checkpoints, caught by the kept checkpoint",
			tamper: func(t *testing.T, db *sql.DB) {
				sqlExec(t, db, `DELETE FROM audit_events WHERE idx >= 250`)
				sqlExec(t, db, `DELETE FROM audit_nodes WHERE (idx + 1) * (1 << level) > 250`)
				sqlExec(t, db, `DELETE FROM audit_nodes_low WHERE end + 1 > 250`)
				sqlExec(t, db, `DELETE FROM audit_checkpoints WHERE size > 250`)
			},
			checkpoint: true,
			index:      250, kind: audit.ProblemTruncated,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, cp300 := auditDataDir(t)
			if tt.tamper != nil {
				tt.tamper(t, openRaw(t, dir))
			}
			args := []string{"audit", "verify", "--data", dir}
			if tt.checkpoint {
				args = append(args, "--checkpoint", cp300)
			}
			out, code := runCLI(t, append(args, "--format", "json")...)
			var rep audit.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("output is not a report: %v\n%s", err, out)
			}
			if tt.kind == "" {
				if code != 0 || !rep.OK || rep.Size != 300 {
					t.Fatalf("clean log: exit %d, %+v", code, rep)
				}
				return
			}
			if code != exitTampered || rep.OK || len(rep.Problems) == 0 {
				t.Fatalf("tampering not detected: exit %d, %+v", code, rep)
			}
			if p := rep.Problems[0]; p.Index != tt.index || p.Kind != tt.kind {
				t.Fatalf("first problem %+v, want index %d kind %s; all: %+v", p, tt.index, tt.kind, rep.Problems)
			}
			t.Logf("%d problems; first: %s", len(rep.Problems), rep.Problems[0].Message)

			// The table names the index too.
			table, code := runCLI(t, args...)
			if code != exitTampered || !strings.Contains(table, fmt.Sprintf("\n%d ", tt.index)) {
				t.Fatalf("table output (exit %d) does not name index %d:\n%s", code, tt.index, table)
			}
		})
	}
}

// TestAuditVerifyTruncationNeedsTheKeptCheckpoint shows why an auditor keeps
// checkpoints: a log truncated together with its stored checkpoints and
// hashes looks whole from inside the store.
func TestAuditVerifyTruncationNeedsTheKeptCheckpoint(t *testing.T) {
	dir, cp300 := auditDataDir(t)
	db := openRaw(t, dir)
	sqlExec(t, db, `DELETE FROM audit_events WHERE idx >= 250`)
	sqlExec(t, db, `DELETE FROM audit_nodes WHERE (idx + 1) * (1 << level) > 250`)
	sqlExec(t, db, `DELETE FROM audit_nodes_low WHERE end + 1 > 250`)
	sqlExec(t, db, `DELETE FROM audit_checkpoints WHERE size > 250`)
	if _, code := runCLI(t, "audit", "verify", "--data", dir); code != 0 {
		t.Fatalf("without the kept checkpoint: exit %d (the store alone cannot tell)", code)
	}
	if _, code := runCLI(t, "audit", "verify", "--data", dir, "--checkpoint", cp300); code != exitTampered {
		t.Fatalf("with the kept checkpoint: exit %d, want %d", code, exitTampered)
	}
}

func TestAuditVerifyRefusesCheckpointOfAnotherKey(t *testing.T) {
	dir, cp300 := auditDataDir(t)
	other := filepath.Join(t.TempDir(), "other-key")
	_, vkey, err := audit.GenerateKey(audit.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(other, []byte(vkey+"\n"), 0o644)
	if _, code := runCLI(t, "audit", "verify", "--data", dir, "--key", other); code != exitTampered {
		t.Fatalf("checkpoints signed by another key: exit %d, want %d", code, exitTampered)
	}
	if _, code := runCLI(t, "audit", "verify", "--data", dir, "--key", other, "--checkpoint", cp300); code != 1 {
		t.Fatalf("external checkpoint of another key: exit %d, want 1", code)
	}
}

func decodeNDJSON(t *testing.T, out string) []sekisho.Event {
	t.Helper()
	var evs []sekisho.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		ev, err := sekisho.UnmarshalEvent(sc.Bytes())
		if err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if !bytes.Equal(sekisho.MarshalEvent(ev), sc.Bytes()) {
			t.Fatalf("line is not the canonical event JSON: %s", sc.Text())
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestAuditEvents(t *testing.T) {
	dir, _ := auditDataDir(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t.Run("all", func(t *testing.T) {
		out, code := runCLI(t, "audit", "events", "--data", dir)
		if evs := decodeNDJSON(t, out); code != 0 || len(evs) != 300 {
			t.Fatalf("exit %d, %d events", code, len(evs))
		}
	})
	t.Run("request id", func(t *testing.T) {
		out, code := runCLI(t, "audit", "events", "--data", dir, "--request-id", "req-0123")
		evs := decodeNDJSON(t, out)
		if code != 0 || len(evs) != 1 || evs[0].RequestID != "req-0123" || evs[0].Principal != "p3" {
			t.Fatalf("exit %d, %+v", code, evs)
		}
	})
	t.Run("principal and time range", func(t *testing.T) {
		// Events 8..87 lie in [base+2h, base+22h); p3's are 8, 13, ..., 83.
		out, code := runCLI(t, "audit", "events", "--data", dir, "--principal", "p3",
			"--since", base.Add(2*time.Hour).Format(time.RFC3339), "--until", base.Add(22*time.Hour).Format(time.RFC3339))
		evs := decodeNDJSON(t, out)
		if code != 0 || len(evs) != 16 {
			t.Fatalf("exit %d, %d events", code, len(evs))
		}
		for _, ev := range evs {
			if ev.Principal != "p3" || ev.Time.Before(base.Add(2*time.Hour)) || !ev.Time.Before(base.Add(22*time.Hour)) {
				t.Fatalf("event outside the filter: %+v", ev)
			}
		}
	})
	t.Run("decision, device, record and org", func(t *testing.T) {
		out, _ := runCLI(t, "audit", "events", "--data", dir, "--decision", "deny", "--device", "dev-0")
		for _, ev := range decodeNDJSON(t, out) {
			if ev.Decision != sekisho.Deny || ev.Device != "dev-0" {
				t.Fatalf("event outside the filter: %+v", ev)
			}
		}
		out, _ = runCLI(t, "audit", "events", "--data", dir, "--record", "r42", "--org", "operator")
		if evs := decodeNDJSON(t, out); len(evs) != 1 || evs[0].RequestID != "req-0042" {
			t.Fatalf("record filter: %+v", evs)
		}
	})
	t.Run("paging flags", func(t *testing.T) {
		out, _ := runCLI(t, "audit", "events", "--data", dir, "--from", "290", "--limit", "5")
		evs := decodeNDJSON(t, out)
		if len(evs) != 5 || evs[0].RequestID != "req-0290" {
			t.Fatalf("from/limit: %+v", evs)
		}
	})
	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{{"--decision", "maybe"}, {"--since", "yesterday"}, {"--limit", "-1"}} {
			if _, code := runCLI(t, append([]string{"audit", "events", "--data", dir}, args...)...); code != 1 {
				t.Fatalf("%v: exit %d", args, code)
			}
		}
		if _, code := runCLI(t, "audit", "events", "--data", filepath.Join(dir, "nope")); code != 1 {
			t.Fatalf("missing data directory: exit %d", code)
		}
	})
}

// TestAuditReadersRunBesideTheServer: the readers take no lock, so they work
// while the data directory is held (by a server) and see its new events.
func TestAuditReadersRunBesideTheServer(t *testing.T) {
	dir, _ := auditDataDir(t)
	ctx := context.Background()
	in, err := openInstance(ctx, instanceOptions{DataDir: dir, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var id [8]byte
	rand.Read(id[:])
	ev := testEvent(time.Now(), 1)
	ev.RequestID = fmt.Sprintf("live-%x", id)
	if _, err := in.log.Append(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if _, err := in.log.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	out, code := runCLI(t, "audit", "events", "--data", dir, "--request-id", ev.RequestID)
	if evs := decodeNDJSON(t, out); code != 0 || len(evs) != 1 {
		t.Fatalf("events beside a holder of the lock: exit %d, %d events", code, len(evs))
	}
	if out, code := runCLI(t, "audit", "verify", "--data", dir); code != 0 || !strings.HasPrefix(out, "OK: 301 events") {
		t.Fatalf("verify beside a holder of the lock: exit %d: %s", code, out)
	}
	out, code = runCLI(t, "audit", "checkpoint", "--data", dir)
	if code != 0 || !strings.HasPrefix(out, in.origin+"\n301\n") || !strings.HasPrefix(in.origin, "sekisho.local/") {
		t.Fatalf("checkpoint: exit %d: %q", code, out)
	}
}

// A checkpoint moved from one region's log into another's is reported by
// audit verify --config as an origin problem of the log it was put in.
func TestAuditVerifyConfigOrigins(t *testing.T) {
	setMasterKey(t)
	ctx := context.Background()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "sekisho.yaml")
	if err := os.WriteFile(cfg, []byte("data: "+data+"\nregions:\n  jp: sqlite:jp.db\n  th: sqlite:th.db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in, err := openInstance(ctx, instanceOptions{DataDir: data, Regions: map[string]string{"jp": "sqlite:jp.db", "th": "sqlite:th.db"}, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := in.logs.For("jp").Append(ctx, testEvent(time.Now(), i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.logs.For("th").Append(ctx, testEvent(time.Now(), 9)); err != nil {
		t.Fatal(err)
	}
	cps, err := in.logs.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.SplitN(string(cps["jp"].Note), "\n", 2)[0], "/jp") {
		t.Fatalf("jp checkpoint origin: %q", cps["jp"].Note)
	}
	if out, code := runCLI(t, "audit", "verify", "--config", cfg); code != 0 {
		t.Fatalf("verify before the move: exit %d\n%s", code, out)
	}
	if err := in.logs.For("th").Store().PutCheckpoint(ctx, sekisho.Checkpoint{Size: 3, Note: cps["jp"].Note, Time: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	in.Close()
	out, code := runCLI(t, "audit", "verify", "--config", cfg)
	if code != exitTampered || !regexp.MustCompile(`(?m)^th\s+3\s+origin\s`).MatchString(out) {
		t.Fatalf("verify after moving jp's checkpoint into th: exit %d, want %d and an origin problem of th at 3:\n%s", code, exitTampered, out)
	}
	if !regexp.MustCompile(`(?m)^jp\s+OK\s`).MatchString(out) {
		t.Errorf("jp should still verify:\n%s", out)
	}
}
