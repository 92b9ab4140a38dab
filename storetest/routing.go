package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/regions"
)

// RunRouted runs the routing cases: regions.Router over a default store and
// the stores of jp and th (three stores open returns), checked against the
// stores underneath. The cases share the three stores (each case its own
// collection), so that a backend whose databases are slow to create pays
// for three.
func RunRouted(t *testing.T, open func(t *testing.T) sekisho.Store) {
	r, rs := newRouted(t, open)
	t.Run("Placement", func(t *testing.T) { testPlacement(t, r, rs) })
	t.Run("CrossStoreID", func(t *testing.T) { testCrossStoreID(t, r, rs) })
	t.Run("PartialWrite", func(t *testing.T) { testPartialWrite(t, r, rs) })
	t.Run("AuditPerRegion", func(t *testing.T) { testAuditPerRegion(t, r, rs) })
	t.Run("RewrapPerRegion", func(t *testing.T) { testRewrapPerRegion(t, open) })
}

// testRewrapPerRegion: re-wraps of records of several regions, in one call
// through the router, each reach the store of their region (done in the
// order asked); a re-wrap that names the wrong region finds no record there
// and is not done.
func testRewrapPerRegion(t *testing.T, open func(t *testing.T) sekisho.Store) {
	ctx := t.Context()
	r, rs := newRouted(t, open)
	a, b, c := NewRecord("users", "r1", "acme", "th"), NewRecord("users", "r2", "acme", "jp"), NewRecord("users", "r3", "acme", "tw")
	must(t, "CreateRecords", r.CreateRecords(ctx, []*sekisho.SealedRecord{a, b, c}))
	at := a.UpdatedAt.Add(time.Hour)
	rw := func(rec *sekisho.SealedRecord, region string) sekisho.Rewrap {
		return sekisho.Rewrap{Collection: "users", ID: rec.ID, Region: region, Version: rec.Version, KEKVersion: 3, WrappedDEK: []byte("rw-" + rec.ID), UpdatedAt: at}
	}
	done, err := r.RewrapRecords(ctx, []sekisho.Rewrap{rw(a, "th"), rw(b, "th"), rw(b, "jp"), rw(c, "tw")})
	must(t, "RewrapRecords", err)
	if !slices.Equal(done, []bool{true, false, true, true}) {
		t.Fatalf("RewrapRecords done = %v, want [true false true true]", done)
	}
	for s, rec := range map[sekisho.Store]*sekisho.SealedRecord{rs.th: a, rs.jp: b, rs.def: c} {
		got := getOne(t, s, "users", rec.ID)
		if got == nil || got.KEKVersion != 3 || string(got.WrappedDEK) != "rw-"+rec.ID || got.Version != rec.Version+1 {
			t.Errorf("record %s in its region's store after the re-wrap: %+v", rec.ID, got)
		}
	}
}

// RunThroughRouter runs the conformance suite through a regions.Router
// over three stores: a router is a sekisho.Store like any other. It opens
// three stores per case: meant for backends whose stores are cheap to open.
func RunThroughRouter(t *testing.T, open func(t *testing.T) sekisho.Store) {
	Run(t, func(t *testing.T) sekisho.Store {
		r, _ := newRouted(t, open)
		return r
	})
}

// routed are the stores under a router: the default, jp and th.
type routed struct {
	def, jp, th sekisho.Store
}

func newRouted(t *testing.T, open func(t *testing.T) sekisho.Store) (*regions.Router, routed) {
	rs := routed{def: open(t), jp: open(t), th: open(t)}
	return regions.NewRouter(rs.def, map[string]sekisho.Store{"jp": rs.jp, "th": rs.th}), rs
}

// holds reports whether s has the record collection/id.
func holds(t *testing.T, s sekisho.Store, collection, id string) bool {
	t.Helper()
	return getOne(t, s, collection, id) != nil
}

func testPlacement(t *testing.T, r *regions.Router, rs routed) {
	ctx := t.Context()
	// Ids interleave across regions, so that a merge that concatenates
	// instead of sorting is caught.
	recs := []*sekisho.SealedRecord{
		NewRecord("users", "a1", "acme", "jp"),
		NewRecord("users", "a2", "acme", "th"),
		NewRecord("users", "a3", "acme", "tw"), // no store of its own: the default
		NewRecord("users", "a4", "acme", "jp"),
		NewRecord("users", "a5", "beta", "th"),
		NewRecord("users", "a6", "acme", "th"),
	}
	// The same blind index token in every region: a lookup must merge.
	for _, rec := range recs {
		rec.Index["phone"] = []byte("same-phone")
	}
	must(t, "CreateRecords across regions", r.CreateRecords(ctx, recs))
	where := map[string]sekisho.Store{"a1": rs.jp, "a2": rs.th, "a3": rs.def, "a4": rs.jp, "a5": rs.th, "a6": rs.th}
	for id, home := range where {
		for name, s := range map[string]sekisho.Store{"default": rs.def, "jp": rs.jp, "th": rs.th} {
			if got := holds(t, s, "users", id); got != (s == home) {
				t.Errorf("record %s in the %s store: %v, want %v", id, name, got, s == home)
			}
		}
	}
	// GetRecords keeps the order asked across stores, skipping missing ids.
	got, err := r.GetRecords(ctx, "users", []string{"a6", "missing", "a1", "a3", "a2"})
	must(t, "GetRecords", err)
	if !equalStrings(ids(got), []string{"a6", "a1", "a3", "a2"}) {
		t.Errorf("GetRecords through the router = %q, want a6 a1 a3 a2", ids(got))
	}
	for _, g := range got {
		var want *sekisho.SealedRecord
		for _, rec := range recs {
			if rec.ID == g.ID {
				want = rec
			}
		}
		if d := DiffRecord(want, g); d != "" {
			t.Errorf("record %s through the router: %s", g.ID, d)
		}
	}
	// Lookup merges in id order and honours the limit over all stores.
	found, err := r.Lookup(ctx, "users", "phone", []byte("same-phone"), 100)
	must(t, "Lookup", err)
	if !equalStrings(found, []string{"a1", "a2", "a3", "a4", "a5", "a6"}) {
		t.Errorf("Lookup across regions = %q, want a1..a6", found)
	}
	found, err = r.Lookup(ctx, "users", "phone", []byte("same-phone"), 3)
	must(t, "Lookup limit", err)
	if !equalStrings(found, []string{"a1", "a2", "a3"}) {
		t.Errorf("Lookup limit 3 across regions = %q, want a1 a2 a3", found)
	}
	// Counting sums the stores; listing merges, pages by after and limit.
	n, err := r.CountRecords(ctx, "users", "")
	must(t, "CountRecords", err)
	if n != 6 {
		t.Errorf("CountRecords across regions = %d, want 6", n)
	}
	n, err = r.CountRecords(ctx, "users", "acme")
	must(t, "CountRecords acme", err)
	if n != 5 {
		t.Errorf("CountRecords(acme) across regions = %d, want 5", n)
	}
	var pages [][]string
	after := ""
	for {
		page, err := r.ListRecordIDs(ctx, "users", "", after, 4)
		must(t, "ListRecordIDs", err)
		if len(page) == 0 {
			break
		}
		pages = append(pages, page)
		after = page[len(page)-1]
	}
	if len(pages) != 2 || !equalStrings(pages[0], []string{"a1", "a2", "a3", "a4"}) || !equalStrings(pages[1], []string{"a5", "a6"}) {
		t.Errorf("ListRecordIDs pages of 4 across regions = %q, want [a1 a2 a3 a4] [a5 a6]", pages)
	}
	acme, err := r.ListRecordIDs(ctx, "users", "acme", "a1", 100)
	must(t, "ListRecordIDs acme", err)
	if !equalStrings(acme, []string{"a2", "a3", "a4", "a6"}) {
		t.Errorf("ListRecordIDs(acme, after a1) = %q, want a2 a3 a4 a6", acme)
	}
	// Update and erase reach the record's own store.
	up := NewRecord("users", "a2", "acme", "th")
	up.Version = 2
	up.Fields["name"] = []byte("changed")
	up.UpdatedAt = At(9)
	must(t, "UpdateRecord", r.UpdateRecord(ctx, up))
	wantRecord(t, rs.th, up)
	must(t, "EraseRecord", r.EraseRecord(ctx, "users", "a4", At(10)))
	if e := getOne(t, rs.jp, "users", "a4"); e == nil || !e.Erased() {
		t.Errorf("erase through the router did not reach the jp store: %+v", e)
	}
	wantCode(t, "EraseRecord of a missing record", r.EraseRecord(ctx, "users", "nope", At(10)), sekisho.ENotFound)
	n, err = r.CountRecords(ctx, "users", "")
	must(t, "CountRecords after erase", err)
	if n != 5 {
		t.Errorf("CountRecords after erasing one = %d, want 5", n)
	}
	// Schemas and objects are in the default store.
	must(t, "PutObject", r.PutObject(ctx, &sekisho.Object{Kind: "org", ID: "acme", Version: 1, Body: []byte(`{}`), Updated: At(0)}))
	if _, err := rs.def.GetObject(ctx, "org", "acme"); err != nil {
		t.Errorf("an object written through the router is not in the default store: %v", err)
	}
	must(t, "Ping", r.Ping(ctx))
}

// A record id is unique in a collection across regions: the router refuses
// an id another region holds, and writes nothing of the batch.
func testCrossStoreID(t *testing.T, r *regions.Router, rs routed) {
	ctx := t.Context()
	must(t, "CreateRecords", r.CreateRecords(ctx, []*sekisho.SealedRecord{NewRecord("cross", "x", "acme", "jp")}))
	err := r.CreateRecords(ctx, []*sekisho.SealedRecord{NewRecord("cross", "y", "acme", "th"), NewRecord("cross", "x", "acme", "th")})
	wantCode(t, "CreateRecords of an id held by another region", err, sekisho.EConflict)
	if holds(t, rs.th, "cross", "x") || holds(t, rs.th, "cross", "y") {
		t.Error("a refused batch wrote records to th")
	}
	// Positive control: the same batch without the taken id is written.
	must(t, "CreateRecords without the taken id", r.CreateRecords(ctx, []*sekisho.SealedRecord{NewRecord("cross", "y", "acme", "th")}))
	if !holds(t, rs.th, "cross", "y") {
		t.Error("record y is not in th")
	}
	// Another collection may reuse the id.
	must(t, "CreateRecords other collection", r.CreateRecords(ctx, []*sekisho.SealedRecord{NewRecord("cross-other", "x", "acme", "th")}))
}

// A write whose second region fails after the first committed says, per
// record, which region committed.
func testPartialWrite(t *testing.T, r *regions.Router, rs routed) {
	ctx := t.Context()
	// th already holds t1: the th part of the next batch conflicts in th's
	// own transaction, after jp (earlier in store order) committed.
	must(t, "CreateRecords", r.CreateRecords(ctx, []*sekisho.SealedRecord{NewRecord("partial", "t1", "acme", "th")}))
	batch := []*sekisho.SealedRecord{
		NewRecord("partial", "j1", "acme", "jp"),
		NewRecord("partial", "t2", "acme", "th"),
		NewRecord("partial", "t1", "acme", "th"),
		NewRecord("partial", "j2", "acme", "jp"),
	}
	err := r.CreateRecords(ctx, batch)
	wantCode(t, "CreateRecords with a conflict in th", err, sekisho.EConflict)
	var pe *regions.PartialWriteError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *regions.PartialWriteError", err)
	}
	if pe.FailedRegion != "th" || !slices.Equal(pe.Committed["jp"], []string{"j1", "j2"}) || !slices.Equal(pe.Failed["th"], []string{"t2", "t1"}) {
		t.Errorf("partial write: failed %q, committed %v, failed ids %v; want th, jp [j1 j2], th [t2 t1]", pe.FailedRegion, pe.Committed, pe.Failed)
	}
	for _, tc := range []struct {
		id        string
		region    string
		committed bool
	}{{"j1", "jp", true}, {"j2", "jp", true}, {"t2", "th", false}} {
		reg, ok, known := pe.Outcome(tc.id)
		if !known || reg != tc.region || ok != tc.committed {
			t.Errorf("Outcome(%s) = %q, %v, %v; want %q, %v, true", tc.id, reg, ok, known, tc.region, tc.committed)
		}
		home := map[string]sekisho.Store{"jp": rs.jp, "th": rs.th}[tc.region]
		if holds(t, home, "partial", tc.id) != tc.committed {
			t.Errorf("record %s in %s: %v, the error says committed %v", tc.id, tc.region, !tc.committed, tc.committed)
		}
	}
	// A batch that fails in its first store wrote nothing: a plain error.
	err = r.CreateRecords(ctx, []*sekisho.SealedRecord{NewRecord("partial", "t1", "acme", "th")})
	wantCode(t, "CreateRecords of an existing th id", err, sekisho.EConflict)
	if errors.As(err, &pe) && len(pe.Committed) > 0 {
		t.Errorf("a write that committed nothing reports committed records: %v", pe.Committed)
	}
}

// Audit events written through the set of logs over the router's stores are
// in the right region's log: QueryAudit, sizes and leaves per region.
func testAuditPerRegion(t *testing.T, r *regions.Router, rs routed) {
	ctx := t.Context()
	newLog := func(s sekisho.AuditStore) *audit.Log {
		l, err := audit.New(ctx, s, nil, audit.Options{})
		must(t, "audit.New", err)
		t.Cleanup(func() { l.Close() })
		return l
	}
	stores := r.AuditStores()
	if len(stores) != 3 || stores[0].Region != "" || stores[0].Store != rs.def || stores[1].Region != "jp" || stores[1].Store != rs.jp ||
		stores[2].Region != "th" || stores[2].Store != rs.th {
		t.Fatalf("AuditStores = %+v, want default, jp, th with their stores", stores)
	}
	logs, err := audit.NewLogs(newLog(rs.def), map[string]*audit.Log{"jp": newLog(rs.jp), "th": newLog(rs.th)})
	must(t, "NewLogs", err)
	regionOf := map[string]string{"j1": "jp", "j2": "jp", "t1": "th", "w1": "tw"}
	ev := func(req string, recs ...string) sekisho.Event {
		return sekisho.Event{Time: At(1), RequestID: req, Org: "acme", Principal: "alice", Device: "d1", Action: "read",
			Collection: "users", Records: recs, RecordOrgs: []string{"acme"}, Decision: sekisho.Allow}
	}
	must(t, "AppendRegional jp", logs.AppendRegional(ctx, ev("r1", "j1"), regionOf))
	must(t, "AppendRegional split", logs.AppendRegional(ctx, ev("r2", "j2", "t1", "w1"), regionOf))
	must(t, "AppendRegional none", logs.AppendRegional(ctx, ev("r3"), regionOf))
	want := map[string]struct {
		s       sekisho.Store
		size    uint64
		records [][]string
	}{
		"default": {rs.def, 2, [][]string{{"w1"}, nil}},
		"jp":      {rs.jp, 2, [][]string{{"j1"}, {"j2"}}},
		"th":      {rs.th, 1, [][]string{{"t1"}}},
	}
	for name, w := range want {
		size, err := w.s.AuditSize(ctx)
		must(t, "AuditSize", err)
		if size != w.size {
			t.Errorf("%s log size = %d, want %d", name, size, w.size)
		}
		leaves, err := w.s.AuditLeaves(ctx, 0, 10)
		must(t, "AuditLeaves", err)
		var got [][]string
		for _, e := range leaves {
			got = append(got, e.Records)
		}
		if !slices.EqualFunc(got, w.records, func(a, b []string) bool { return slices.Equal(a, b) }) {
			t.Errorf("%s log records = %q, want %q", name, got, w.records)
		}
		q, err := w.s.QueryAudit(ctx, sekisho.AuditFilter{RequestID: "r2"})
		must(t, "QueryAudit", err)
		if wantN := map[string]int{"default": 1, "jp": 1, "th": 1}[name]; len(q) != wantN {
			t.Errorf("%s log has %d events of the split request, want %d", name, len(q), wantN)
		}
		if l, ok := logs.Lookup(name); !ok || l.Store() != w.s {
			t.Errorf("Logs.Lookup(%s) is not the %s store's log", name, name)
		}
	}
	// For: a region without a store of its own uses the default log.
	if logs.For("tw").Store() != rs.def || logs.For("jp").Store() != rs.jp {
		t.Error("Logs.For routes tw or jp to the wrong log")
	}
	if _, ok := logs.Lookup("tw"); ok {
		t.Error("Logs.Lookup(tw) found a log for a region without one")
	}
	// The router's own audit methods are the default log's, not a merge.
	size, err := r.AuditSize(ctx)
	must(t, "router AuditSize", err)
	if size != 2 {
		t.Errorf("router AuditSize = %d, want the default log's 2", size)
	}
	if got := logs.Names(); !slices.Equal(got, []string{"default", "jp", "th"}) {
		t.Errorf("Logs.Names = %q", got)
	}
}
