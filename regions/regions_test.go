package regions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/internal/pgtest"
	"github.com/sekisho/sekisho/keys"
	"github.com/sekisho/sekisho/postgres"
	"github.com/sekisho/sekisho/regions"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
	"github.com/sekisho/sekisho/storetest"
	"github.com/sekisho/sekisho/vault"
)

type opener func(t *testing.T) sekisho.Store

func sqliteOpener(t *testing.T) sekisho.Store {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sekisho.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func postgresOpener(t *testing.T) sekisho.Store {
	s, err := postgres.Open(context.Background(), pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A jp record and the events that name it are in the jp database only; a
// th record and its events in the th database only; reads and lookups
// still find both through the router.
func TestResidency(t *testing.T) {
	for name, open := range map[string]opener{"sqlite": sqliteOpener, "postgres": postgresOpener} {
		t.Run(name, func(t *testing.T) { testResidency(t, open) })
	}
}

func testResidency(t *testing.T, open opener) {
	ctx := context.Background()
	def, jp, th := open(t), open(t), open(t)
	router := regions.NewRouter(def, map[string]sekisho.Store{"jp": jp, "th": th})
	dir := t.TempDir()
	signer, _, err := audit.LoadOrCreateKeys(dir, audit.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	logs := map[string]*audit.Log{}
	for reg, s := range map[string]sekisho.Store{"": def, "jp": jp, "th": th} {
		l, err := audit.New(ctx, s, signer, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		logs[reg] = l
	}
	master, _ := keys.NewKey()
	kr, err := keys.OpenLocal(dir, master)
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(router, kr, mustLogs(t, logs[""], map[string]*audit.Log{"jp": logs["jp"], "th": logs["th"]}), vault.Options{})
	defs, _ := schemas.Defaults()
	if err := v.EnsureSchemas(ctx, defs); err != nil {
		t.Fatal(err)
	}
	c := sekisho.Caller{Principal: "alice", Org: "operator", Device: "d1", Purpose: "support", RequestID: "req-1"}
	phone := func(p string) map[string]json.RawMessage {
		return map[string]json.RawMessage{"phone": json.RawMessage(`"` + p + `"`)}
	}
	a, err := v.Create(ctx, c, "users", &sekisho.RecordInput{Region: "jp", Fields: phone("+819012345678")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.Create(ctx, c, "users", &sekisho.RecordInput{Region: "th", Fields: phone("+66812345678")})
	if err != nil {
		t.Fatal(err)
	}
	c.RequestID = "req-batch"
	got, err := v.BatchGet(ctx, c, "users", []string{a.ID, b.ID}, []string{"phone"})
	if err != nil || len(got) != 2 {
		t.Fatalf("batch get across regions = %d records, %v", len(got), err)
	}
	c.RequestID = "req-lookup"
	if found, err := v.Lookup(ctx, c, "users", vault.LookupRequest{Field: "phone", Value: json.RawMessage(`"+66812345678"`)}); err != nil || len(found) != 1 || found[0].ID != b.ID {
		t.Fatalf("lookup across regions = %v, %v", found, err)
	}

	has := func(s sekisho.Store, id string) bool {
		recs, err := s.GetRecords(ctx, "users", []string{id})
		if err != nil {
			t.Fatal(err)
		}
		return len(recs) == 1
	}
	if !has(jp, a.ID) || has(th, a.ID) || has(def, a.ID) {
		t.Errorf("jp record: in jp %v, th %v, default %v; want jp only", has(jp, a.ID), has(th, a.ID), has(def, a.ID))
	}
	if !has(th, b.ID) || has(jp, b.ID) || has(def, b.ID) {
		t.Errorf("th record: in th %v, jp %v, default %v; want th only", has(th, b.ID), has(jp, b.ID), has(def, b.ID))
	}
	mentions := func(s sekisho.Store, id string) int {
		leaves, err := s.AuditLeaves(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range leaves {
			if bytes.Contains(e.Leaf, []byte(id)) {
				n++
			}
		}
		return n
	}
	// create, batch get (its jp part), and for th the lookup too.
	if n := mentions(jp, a.ID); n < 2 {
		t.Errorf("jp log names the jp record %d times, want its create and read", n)
	}
	if n := mentions(th, a.ID) + mentions(def, a.ID); n != 0 {
		t.Errorf("the jp record's id appears %d times in other regions' logs", n)
	}
	if n := mentions(th, b.ID); n < 3 {
		t.Errorf("th log names the th record %d times, want create, read and lookup", n)
	}
	if n := mentions(jp, b.ID) + mentions(def, b.ID); n != 0 {
		t.Errorf("the th record's id appears %d times in other regions' logs", n)
	}
	// The cross-region batch get was split: each part is in its region's log
	// under the same request id.
	for reg, s := range map[string]sekisho.Store{"jp": jp, "th": th} {
		if es, _ := s.QueryAudit(ctx, sekisho.AuditFilter{RequestID: "req-batch"}); len(es) != 1 || len(es[0].Records) != 1 {
			t.Errorf("%s log has %d events of the split batch get, want 1 with 1 record", reg, len(es))
		}
	}
	// Erase routes to the region that holds the record.
	if err := v.Erase(ctx, c, "users", a.ID); err != nil {
		t.Fatal(err)
	}
	if recs, _ := jp.GetRecords(ctx, "users", []string{a.ID}); len(recs) != 1 || !recs[0].Erased() {
		t.Fatal("erase did not reach the jp store")
	}
}

// The router passes the conformance suite when every region uses one store.
func TestRouterConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sekisho.Store {
		s := sqliteOpener(t)
		return regions.NewRouter(s, nil)
	})
}

func mustLogs(t *testing.T, def *audit.Log, by map[string]*audit.Log) *audit.Logs {
	t.Helper()
	ls, err := audit.NewLogs(def, by)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// storeOnly is a store that is no sekisho.RecordLocator.
type storeOnly struct{ sekisho.Store }

// TestRouterLocatesThroughRecords: LocateRecords over stores that cannot
// locate (read through their records) gives what it gives over stores that
// can, with records in both stores.
func TestRouterLocatesThroughRecords(t *testing.T) {
	ctx := t.Context()
	def, jp := sqliteOpener(t), sqliteOpener(t)
	routers := []*regions.Router{
		regions.NewRouter(def, map[string]sekisho.Store{"jp": jp}),
		regions.NewRouter(storeOnly{def}, map[string]sekisho.Store{"jp": storeOnly{jp}}),
	}
	recs := []*sekisho.SealedRecord{
		storetest.NewRecord("users", "a", "acme", "jp"),
		storetest.NewRecord("users", "b", "beta", "th"),
		storetest.NewRecord("users", "c", "acme", "jp"),
	}
	if err := routers[0].CreateRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := routers[0].EraseRecord(ctx, "users", "c", recs[2].UpdatedAt.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	want := []sekisho.RecordPlace{{ID: "c", Org: "acme", Region: "jp", Erased: true}, {ID: "b", Org: "beta", Region: "th"}, {ID: "a", Org: "acme", Region: "jp"}}
	for i, r := range routers {
		got, err := r.LocateRecords(ctx, "users", []string{"c", "nope", "b", "a", "b"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("router %d: LocateRecords = %+v, want %+v", i, got, want)
		}
	}
}
