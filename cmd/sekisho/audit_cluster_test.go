package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/internal/pgtest"
	"github.com/sekisho/sekisho/postgres"
)

// sekisho audit cluster rewrites a closed month of a PostgreSQL log in
// principal order; audit verify passes after it, against the checkpoint
// signed before. Bad months and a SQLite log are refused with the reason.
func TestAuditClusterCommand(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	skey, vkey, err := audit.GenerateKey("cli.test/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "verifier")
	if err := os.WriteFile(keyFile, []byte(vkey), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	log, err := audit.New(ctx, st, signer, audit.Options{Origin: "cli.test/log", Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	var evs []sekisho.Event
	for i := range 300 {
		evs = append(evs, sekisho.Event{Time: clock.Add(time.Duration(i) * time.Hour), RequestID: fmt.Sprintf("r%d", i), Org: "acme",
			Principal: fmt.Sprintf("p%d", i%5), Action: "read", Decision: "allow", Records: []string{fmt.Sprintf("u%d", i)}, RecordOrgs: []string{"acme"}})
	}
	if _, err := log.AppendBatch(ctx, evs); err != nil {
		t.Fatal(err)
	}
	clock = time.Date(2025, 3, 20, 0, 0, 0, 0, time.UTC)
	if _, err := log.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	log.Close()
	dataDir, _ := auditDataDir(t)

	for _, c := range []struct {
		name string
		args []string
		msg  string
	}{
		{"no month", []string{"--store", dsn}, "--month"},
		{"not a month", []string{"--store", dsn, "--month", "2025-13"}, "want YYYY-MM"},
		{"a day", []string{"--store", dsn, "--month", "2025-02-03"}, "want YYYY-MM"},
		{"not ended", []string{"--store", dsn, "--month", time.Now().UTC().Format("2006-01")}, "has not ended"},
		{"no partition", []string{"--store", dsn, "--month", "2019-01"}, "no partition of its own"},
		{"sqlite", []string{"--data", dataDir, "--month", "2025-02"}, "SQLite"},
	} {
		if _, code, msg, _ := runCLIMsg(t, append([]string{"audit", "cluster"}, c.args...)...); code == 0 || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: exit %d: %q, want an error with %q", c.name, code, msg, c.msg)
		}
	}

	out, code, msg, _ := runCLIMsg(t, "audit", "cluster", "--store", dsn, "--month", "2025-02", "--format", "json")
	if code != 0 {
		t.Fatalf("audit cluster: exit %d: %s", code, msg)
	}
	var res []clusteredLog
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(res) != 1 || res[0].Log != "default" || res[0].Partition != "audit_entries_2025_02" || res[0].Events != 300 {
		t.Fatalf("audit cluster --format json: %s", out)
	}
	rows, err := st.QueryAudit(ctx, sekisho.AuditFilter{Since: clock.AddDate(0, -2, 0)})
	if err != nil || len(rows) != 300 {
		t.Fatalf("the log after clustering: %d events, %v", len(rows), err)
	}
	for i, e := range rows {
		if e.Index != uint64(i) {
			t.Fatalf("event %d has index %d after clustering", i, e.Index)
		}
	}
	if _, code := runCLI(t, "audit", "verify", "--store", dsn, "--key", keyFile); code != 0 {
		t.Fatalf("audit verify after clustering: exit %d", code)
	}
	tbl, code := runCLI(t, "audit", "cluster", "--store", dsn, "--month", "2025-02")
	if code != 0 || !slices.ContainsFunc(strings.Split(tbl, "\n"), func(l string) bool {
		return strings.HasPrefix(l, "default") && strings.Contains(l, "audit_entries_2025_02") && strings.Contains(l, " 300 ")
	}) {
		t.Fatalf("audit cluster again (table): exit %d\n%s", code, tbl)
	}
}
