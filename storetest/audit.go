package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/sekisho/sekisho"
)

// NewEntry returns an audit entry at index i with a leaf that depends on i
// and holds every byte value, so that a store that mangles bytes is caught.
func NewEntry(i uint64) sekisho.AuditEntry {
	leaf := fmt.Appendf(nil, "leaf %d:", i)
	for b := range 256 {
		leaf = append(leaf, byte(b))
	}
	return sekisho.AuditEntry{
		Index:      i,
		Leaf:       leaf,
		Time:       At(int(i)),
		RequestID:  fmt.Sprintf("req-%d", i),
		Org:        "acme",
		Principal:  "alice",
		Device:     "dev-1",
		Decision:   "allow",
		RecordOrgs: []string{"acme"},
		Records:    []string{fmt.Sprintf("r%d", i)},
	}
}

// Entries returns NewEntry(from), ..., NewEntry(from+n-1).
func Entries(from uint64, n int) []sekisho.AuditEntry {
	out := make([]sekisho.AuditEntry, n)
	for i := range out {
		out[i] = NewEntry(from + uint64(i))
	}
	return out
}

// Node returns a node with a hash that depends on its position.
func Node(level uint, index uint64) sekisho.AuditNode {
	h := bytes.Repeat([]byte{byte(level), byte(index)}, 16)
	h[31] = 0xff
	return sekisho.AuditNode{Level: level, Index: index, Hash: h}
}

func diffEntry(want, got sekisho.AuditEntry) string {
	var d []string
	add := func(format string, args ...any) { d = append(d, fmt.Sprintf(format, args...)) }
	if got.Index != want.Index {
		add("Index = %d, want %d", got.Index, want.Index)
	}
	if !bytes.Equal(got.Leaf, want.Leaf) {
		add("Leaf = %q, want %q", got.Leaf, want.Leaf)
	}
	if err := checkTime("Time", want.Time, got.Time); err != nil {
		add("%v", err)
	}
	if got.RequestID != want.RequestID || got.Org != want.Org || got.Principal != want.Principal ||
		got.Device != want.Device || got.Decision != want.Decision {
		add("request, org, principal, device, decision = %q %q %q %q %q, want %q %q %q %q %q",
			got.RequestID, got.Org, got.Principal, got.Device, got.Decision,
			want.RequestID, want.Org, want.Principal, want.Device, want.Decision)
	}
	// Both lists round-trip in the order written.
	if !equalStrings(got.RecordOrgs, want.RecordOrgs) {
		add("RecordOrgs = %q, want %q", got.RecordOrgs, want.RecordOrgs)
	}
	if !equalStrings(got.Records, want.Records) {
		add("Records = %q, want %q", got.Records, want.Records)
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

func wantEntries(t *testing.T, what string, want, got []sekisho.AuditEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries (indexes %v), want %d (indexes %v)", what, len(got), indexes(got), len(want), indexes(want))
	}
	for i := range want {
		if d := diffEntry(want[i], got[i]); d != "" {
			t.Fatalf("%s: entry %d: %s", what, i, d)
		}
	}
}

func indexes(es []sekisho.AuditEntry) []uint64 {
	out := make([]uint64, len(es))
	for i, e := range es {
		out[i] = e.Index
	}
	return out
}

func wantSize(t *testing.T, s sekisho.Store, want uint64) {
	t.Helper()
	n, err := s.AuditSize(t.Context())
	must(t, "AuditSize", err)
	if n != want {
		t.Fatalf("AuditSize = %d, want %d", n, want)
	}
}

func testAudit(t *testing.T, open func(t *testing.T) sekisho.Store) {
	t.Run("Empty", func(t *testing.T) { testAuditEmpty(t, open(t)) })
	t.Run("AppendAndRead", func(t *testing.T) { testAuditAppend(t, open(t)) })
	t.Run("AppendRefused", func(t *testing.T) { testAuditRefused(t, open) })
	t.Run("ManyLeaves", func(t *testing.T) { testAuditMany(t, open(t)) })
	t.Run("Query", func(t *testing.T) { testAuditQuery(t, open(t)) })
	t.Run("Checkpoints", func(t *testing.T) { testCheckpoints(t, open(t)) })
}

func testAuditEmpty(t *testing.T, s sekisho.Store) {
	ctx := t.Context()
	wantSize(t, s, 0)
	leaves, err := s.AuditLeaves(ctx, 0, 10)
	must(t, "AuditLeaves", err)
	wantEntries(t, "AuditLeaves", nil, leaves)
	q, err := s.QueryAudit(ctx, sekisho.AuditFilter{})
	must(t, "QueryAudit", err)
	wantEntries(t, "QueryAudit", nil, q)
	cps, err := s.Checkpoints(ctx)
	must(t, "Checkpoints", err)
	if len(cps) != 0 {
		t.Fatalf("Checkpoints = %d, want none", len(cps))
	}
	// Decided: a missing node is ENotFound.
	_, err = s.AuditNodes(ctx, []sekisho.AuditNode{{Level: 0, Index: 0}})
	wantCode(t, "AuditNodes on an empty log", err, sekisho.ENotFound)
	must(t, "AppendAudit nothing", s.AppendAudit(ctx, nil, nil))
	wantSize(t, s, 0)
}

func testAuditAppend(t *testing.T, s sekisho.Store) {
	ctx := t.Context()
	first := Entries(0, 3)
	// Empty columns and lists round-trip as empty, times come back in UTC.
	first[1].Org, first[1].Principal, first[1].Device, first[1].RequestID = "", "", "", ""
	first[1].RecordOrgs, first[1].Records = nil, nil
	first[1].Time = first[1].Time.In(jst)
	first[2].RecordOrgs = []string{"zeta", "acme", "beta"}
	first[2].Records = []string{"r9", "r1", "r5"}
	first[2].Leaf = []byte{}
	must(t, "AppendAudit 0..2", s.AppendAudit(ctx, first, []sekisho.AuditNode{Node(0, 0), Node(0, 1), Node(1, 0), Node(0, 2)}))
	wantSize(t, s, 3)
	second := Entries(3, 2)
	must(t, "AppendAudit 3..4", s.AppendAudit(ctx, second, []sekisho.AuditNode{Node(0, 3), Node(1, 1), Node(2, 0), Node(0, 4)}))
	wantSize(t, s, 5)
	// Entries without nodes are fine too.
	must(t, "AppendAudit 5", s.AppendAudit(ctx, Entries(5, 1), nil))
	wantSize(t, s, 6)
	all := slices.Concat(first, second, Entries(5, 1))

	for _, tc := range []struct {
		name  string
		from  uint64
		limit int
		want  []sekisho.AuditEntry
	}{
		{"All", 0, 100, all},
		{"Exact", 0, 6, all},
		{"Page", 1, 2, all[1:3]},
		{"One", 4, 1, all[4:5]},
		{"Tail", 4, 100, all[4:]},
		{"AtSize", 6, 10, nil},
		{"PastSize", 60, 10, nil},
	} {
		t.Run("Leaves"+tc.name, func(t *testing.T) {
			got, err := s.AuditLeaves(ctx, tc.from, tc.limit)
			must(t, "AuditLeaves", err)
			wantEntries(t, fmt.Sprintf("AuditLeaves(%d, %d)", tc.from, tc.limit), tc.want, got)
		})
		// A store that lists refs lists those of the same entries.
		if l, ok := s.(sekisho.AuditRefLister); ok {
			t.Run("Refs"+tc.name, func(t *testing.T) {
				got, err := l.AuditRefs(ctx, tc.from, tc.limit)
				must(t, "AuditRefs", err)
				if len(got) != len(tc.want) {
					t.Fatalf("AuditRefs(%d, %d): %d refs, want %d", tc.from, tc.limit, len(got), len(tc.want))
				}
				for i, e := range tc.want {
					if got[i].Index != e.Index || got[i].RequestID != e.RequestID {
						t.Errorf("AuditRefs(%d, %d)[%d] = %+v, want index %d request %q", tc.from, tc.limit, i, got[i], e.Index, e.RequestID)
					}
				}
			})
		}
	}

	for _, tc := range []struct {
		name string
		ids  []sekisho.AuditNode
		ok   bool
	}{
		{"InOrderAsked", []sekisho.AuditNode{Node(2, 0), Node(0, 0), Node(1, 1), Node(0, 4)}, true},
		{"One", []sekisho.AuditNode{Node(0, 2)}, true},
		{"None", nil, true},
		{"OneMissing", []sekisho.AuditNode{Node(0, 0), Node(3, 0), Node(1, 0)}, false},
		{"LevelMatters", []sekisho.AuditNode{Node(1, 2)}, false},
	} {
		t.Run("Nodes"+tc.name, func(t *testing.T) {
			ids := make([]sekisho.AuditNode, len(tc.ids))
			for i, n := range tc.ids {
				ids[i] = sekisho.AuditNode{Level: n.Level, Index: n.Index} // ask without the hash
			}
			got, err := s.AuditNodes(ctx, ids)
			if !tc.ok {
				wantCode(t, "AuditNodes", err, sekisho.ENotFound)
				return
			}
			must(t, "AuditNodes", err)
			if len(got) != len(tc.ids) {
				t.Fatalf("AuditNodes returned %d hashes, want %d", len(got), len(tc.ids))
			}
			for i, n := range tc.ids {
				if !bytes.Equal(got[i], n.Hash) {
					t.Errorf("AuditNodes[%d] (level %d index %d) = %x, want %x", i, n.Level, n.Index, got[i], n.Hash)
				}
			}
		})
	}
	// AuditNodeRange: a level's stored hashes in index order, nil where
	// none is stored, the same hashes as AuditNodes.
	stored := map[[2]uint64][]byte{}
	for _, n := range []sekisho.AuditNode{Node(0, 0), Node(0, 1), Node(1, 0), Node(0, 2), Node(0, 3), Node(1, 1), Node(2, 0), Node(0, 4)} {
		stored[[2]uint64{uint64(n.Level), n.Index}] = n.Hash
	}
	for _, tc := range []struct {
		name     string
		level    uint
		from, to uint64
	}{
		{"Leaves", 0, 0, 5},
		{"Middle", 0, 1, 3},
		{"Level1", 1, 0, 2},
		{"Level2", 2, 0, 1},
		{"PastTheEnd", 0, 3, 8},
		{"NoneStored", 3, 0, 2},
		{"Empty", 0, 2, 2},
	} {
		t.Run("NodeRange"+tc.name, func(t *testing.T) {
			got, err := s.AuditNodeRange(ctx, tc.level, tc.from, tc.to)
			must(t, "AuditNodeRange", err)
			if uint64(len(got)) != tc.to-tc.from {
				t.Fatalf("AuditNodeRange(%d, %d, %d) returned %d hashes, want %d", tc.level, tc.from, tc.to, len(got), tc.to-tc.from)
			}
			for i, h := range got {
				want := stored[[2]uint64{uint64(tc.level), tc.from + uint64(i)}]
				if !bytes.Equal(h, want) || (want == nil) != (h == nil) {
					t.Errorf("AuditNodeRange[%d] (level %d index %d) = %x, want %x", i, tc.level, tc.from+uint64(i), h, want)
				}
			}
		})
	}
	t.Run("NodeRangeBackwards", func(t *testing.T) {
		_, err := s.AuditNodeRange(ctx, 0, 3, 1)
		wantCode(t, "AuditNodeRange(0, 3, 1)", err, sekisho.EInvalid)
	})
}

func testAuditRefused(t *testing.T, open func(t *testing.T) sekisho.Store) {
	for _, tc := range []struct {
		name    string
		indexes []uint64 // the log holds 0..2
	}{
		{"Rewrite0", []uint64{0}},
		{"Overlap", []uint64{2, 3}},
		{"Gap", []uint64{4}},
		{"GapInBatch", []uint64{3, 5}},
		{"RepeatInBatch", []uint64{3, 3}},
		{"Backwards", []uint64{4, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			ctx := t.Context()
			have := Entries(0, 3)
			must(t, "AppendAudit", s.AppendAudit(ctx, have, []sekisho.AuditNode{Node(0, 0), Node(0, 1), Node(1, 0)}))
			var batch []sekisho.AuditEntry
			for _, i := range tc.indexes {
				e := NewEntry(i)
				e.RequestID = "refused"
				e.Leaf = []byte("refused")
				batch = append(batch, e)
			}
			refusedNode := sekisho.AuditNode{Level: 0, Index: 3, Hash: []byte("refused")}
			err := s.AppendAudit(ctx, batch, []sekisho.AuditNode{refusedNode})
			wantCode(t, "AppendAudit", err, sekisho.EConflict)
			wantSize(t, s, 3)
			got, err := s.AuditLeaves(ctx, 0, 10)
			must(t, "AuditLeaves", err)
			wantEntries(t, "AuditLeaves after a refused append", have, got)
			q, err := s.QueryAudit(ctx, sekisho.AuditFilter{RequestID: "refused"})
			must(t, "QueryAudit", err)
			wantEntries(t, "QueryAudit after a refused append", nil, q)
			_, err = s.AuditNodes(ctx, []sekisho.AuditNode{{Level: 0, Index: 3}})
			wantCode(t, "AuditNodes of a refused append", err, sekisho.ENotFound)
			// The log still takes the right next batch.
			must(t, "AppendAudit 3", s.AppendAudit(ctx, Entries(3, 1), []sekisho.AuditNode{Node(0, 3)}))
			wantSize(t, s, 4)
		})
	}
}

// testAuditMany appends large batches, as a busy vault does, and pages
// through them.
func testAuditMany(t *testing.T, s sekisho.Store) {
	ctx := t.Context()
	const batch = 250
	all := Entries(0, 2*batch)
	for i := range all {
		all[i].Records = []string{"a", "b", fmt.Sprint(i)}
		all[i].RecordOrgs = []string{"acme", "beta"}
	}
	must(t, "AppendAudit first batch", s.AppendAudit(ctx, all[:batch], nil))
	must(t, "AppendAudit second batch", s.AppendAudit(ctx, all[batch:], nil))
	wantSize(t, s, 2*batch)
	var got []sekisho.AuditEntry
	for from := uint64(0); ; {
		page, err := s.AuditLeaves(ctx, from, 100)
		must(t, "AuditLeaves", err)
		if len(page) == 0 {
			break
		}
		if len(page) > 100 {
			t.Fatalf("AuditLeaves(%d, 100) returned %d entries", from, len(page))
		}
		got = append(got, page...)
		from += uint64(len(page))
	}
	wantEntries(t, "paged AuditLeaves", all, got)
	q, err := s.QueryAudit(ctx, sekisho.AuditFilter{Record: "b", From: 100, Limit: 3})
	must(t, "QueryAudit", err)
	wantEntries(t, "QueryAudit", all[100:103], q)
}

// queryFixture is the log that the QueryAudit cases search.
func queryFixture() []sekisho.AuditEntry {
	type row struct {
		at                  int
		principal, device   string
		org                 string
		recordOrgs, records []string
		request, decision   string
	}
	rows := []row{
		0: {0, "alice", "d1", "acme", []string{"acme"}, []string{"r1"}, "req-1", "allow"},
		1: {10, "bob", "d2", "beta", []string{"acme"}, []string{"r1", "r2"}, "req-2", "deny"},
		2: {20, "alice", "d3", "acme", nil, nil, "req-3", "allow"},
		3: {30, "carol", "d4", "gamma", []string{"beta", "acme"}, []string{"r3", "r2"}, "req-3", "allow"},
		4: {40, "alice", "d1", "acme", []string{"acme"}, []string{"r2"}, "req-4", "deny"},
		5: {50, "bob", "d2", "beta", []string{"beta"}, []string{"r4"}, "req-5", "allow"},
		6: {50, "dave", "d5", "delta", []string{"delta", "delta"}, []string{"r5", "r5"}, "req-6", "allow"},
		7: {60, "alice", "d1", "acme", []string{"acme"}, []string{"r1"}, "req-7", "allow"},
	}
	out := make([]sekisho.AuditEntry, len(rows))
	for i, r := range rows {
		out[i] = sekisho.AuditEntry{
			Index: uint64(i), Leaf: fmt.Appendf(nil, "event %d", i), Time: At(r.at),
			RequestID: r.request, Org: r.org, Principal: r.principal, Device: r.device,
			Decision: r.decision, RecordOrgs: r.recordOrgs, Records: r.records,
		}
	}
	return out
}

func testAuditQuery(t *testing.T, s sekisho.Store) {
	ctx := t.Context()
	log := queryFixture()
	must(t, "AppendAudit", s.AppendAudit(ctx, log[:5], nil))
	must(t, "AppendAudit", s.AppendAudit(ctx, log[5:], nil))
	for _, tc := range []struct {
		name string
		f    sekisho.AuditFilter
		want []uint64
	}{
		{"NoFilter", sekisho.AuditFilter{}, []uint64{0, 1, 2, 3, 4, 5, 6, 7}},
		{"Principal", sekisho.AuditFilter{Principal: "alice"}, []uint64{0, 2, 4, 7}},
		{"Device", sekisho.AuditFilter{Device: "d2"}, []uint64{1, 5}},
		// Org matches the principal's org or any of the records' orgs, and an
		// entry that matches both ways, or twice, comes back once.
		{"OrgEitherWay", sekisho.AuditFilter{Org: "acme"}, []uint64{0, 1, 2, 3, 4, 7}},
		{"OrgOfRecordsOnly", sekisho.AuditFilter{Org: "beta"}, []uint64{1, 3, 5}},
		{"OrgOfPrincipalOnly", sekisho.AuditFilter{Org: "gamma"}, []uint64{3}},
		{"OrgRepeated", sekisho.AuditFilter{Org: "delta"}, []uint64{6}},
		{"Record", sekisho.AuditFilter{Record: "r2"}, []uint64{1, 3, 4}},
		{"RecordRepeated", sekisho.AuditFilter{Record: "r5"}, []uint64{6}},
		{"RequestID", sekisho.AuditFilter{RequestID: "req-3"}, []uint64{2, 3}},
		{"Decision", sekisho.AuditFilter{Decision: "deny"}, []uint64{1, 4}},
		// Decided: Since is inclusive, Until exclusive.
		{"Since", sekisho.AuditFilter{Since: At(20)}, []uint64{2, 3, 4, 5, 6, 7}},
		{"SinceOtherZone", sekisho.AuditFilter{Since: At(20).In(jst)}, []uint64{2, 3, 4, 5, 6, 7}},
		{"SinceOneMicroLater", sekisho.AuditFilter{Since: At(20).Add(1000)}, []uint64{3, 4, 5, 6, 7}},
		{"Until", sekisho.AuditFilter{Until: At(20)}, []uint64{0, 1}},
		{"UntilSameTime", sekisho.AuditFilter{Until: At(50)}, []uint64{0, 1, 2, 3, 4}},
		{"Window", sekisho.AuditFilter{Since: At(10), Until: At(40)}, []uint64{1, 2, 3}},
		{"EmptyWindow", sekisho.AuditFilter{Since: At(40), Until: At(40)}, nil},
		{"From", sekisho.AuditFilter{From: 3}, []uint64{3, 4, 5, 6, 7}},
		{"FromPastEnd", sekisho.AuditFilter{From: 8}, nil},
		{"Limit", sekisho.AuditFilter{Limit: 2}, []uint64{0, 1}},
		{"FromLimit", sekisho.AuditFilter{From: 2, Limit: 3}, []uint64{2, 3, 4}},
		{"PrincipalSince", sekisho.AuditFilter{Principal: "alice", Since: At(10)}, []uint64{2, 4, 7}},
		{"PrincipalDevice", sekisho.AuditFilter{Principal: "alice", Device: "d1"}, []uint64{0, 4, 7}},
		{"OrgDecision", sekisho.AuditFilter{Org: "acme", Decision: "deny"}, []uint64{1, 4}},
		{"OrgFromLimit", sekisho.AuditFilter{Org: "acme", From: 1, Limit: 2}, []uint64{1, 2}},
		{"OrgWindow", sekisho.AuditFilter{Org: "acme", Since: At(30), Until: At(60)}, []uint64{3, 4}},
		{"RecordOrg", sekisho.AuditFilter{Record: "r1", Org: "beta"}, []uint64{1}},
		{"DeviceWindowLimit", sekisho.AuditFilter{Device: "d1", Since: At(1), Limit: 1}, []uint64{4}},
		{"AllFields", sekisho.AuditFilter{Principal: "bob", Device: "d2", Org: "acme", Record: "r2", RequestID: "req-2", Decision: "deny", Since: At(10), Until: At(11), From: 1, Limit: 1}, []uint64{1}},
		{"NoMatch", sekisho.AuditFilter{Principal: "alice", Device: "d2"}, nil},
		{"UnknownRecord", sekisho.AuditFilter{Record: "r9"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.QueryAudit(ctx, tc.f)
			must(t, "QueryAudit", err)
			var want []sekisho.AuditEntry
			for _, i := range tc.want {
				want = append(want, log[i])
			}
			wantEntries(t, fmt.Sprintf("QueryAudit(%+v)", tc.f), want, got)
		})
	}
}

func testCheckpoints(t *testing.T, s sekisho.Store) {
	ctx := t.Context()
	cps := []sekisho.Checkpoint{
		{Size: 30, Note: []byte("example.com/log\n30\nHASH30=\n\n— sig\n"), Time: At(30)},
		{Size: 1, Note: []byte("note 1\x00\xff"), Time: At(1).In(jst)},
		{Size: 7, Note: []byte("note 7"), Time: At(7)},
	}
	for _, c := range cps {
		must(t, "PutCheckpoint", s.PutCheckpoint(ctx, c))
	}
	got, err := s.Checkpoints(ctx)
	must(t, "Checkpoints", err)
	want := []sekisho.Checkpoint{cps[1], cps[2], cps[0]}
	if len(got) != len(want) {
		t.Fatalf("Checkpoints = %d, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Size != want[i].Size || !bytes.Equal(got[i].Note, want[i].Note) {
			t.Errorf("Checkpoints[%d] = size %d note %q, want size %d note %q", i, got[i].Size, got[i].Note, want[i].Size, want[i].Note)
		}
		if err := checkTime("Time", want[i].Time, got[i].Time); err != nil {
			t.Errorf("Checkpoints[%d]: %v", i, err)
		}
	}
}
