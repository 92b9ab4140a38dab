package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
)

// An append of n events and n nodes goes in as one INSERT per table when n
// fits one statement, else as full statements and one of the rest: every
// size around the statement's bound reads back whole, in order, nothing
// lost or doubled.
func TestAppendAuditRowCounts(t *testing.T) {
	ctx := context.Background()
	s, err := OpenWith(ctx, filepath.Join(t.TempDir(), "db"), Options{noAuditIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	var size uint64
	for _, n := range []int{1, 2, 7, auditMaxRows - 1, auditMaxRows, auditMaxRows + 1, 2 * auditMaxRows, 2*auditMaxRows + 5, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			es := make([]sekisho.AuditEntry, n)
			ns := make([]sekisho.AuditNode, n)
			for i := range es {
				idx := size + uint64(i)
				es[i] = sekisho.AuditEntry{Index: idx, Leaf: []byte(fmt.Sprint("leaf", idx)), Time: t0.Add(time.Duration(idx) * time.Second),
					RequestID: fmt.Sprint("r", idx), Org: "o", Principal: "p", Device: "d", Decision: "allow",
					Records: []string{fmt.Sprint("rec", idx)}, RecordOrgs: []string{"o"}}
				ns[i] = sekisho.AuditNode{Level: 3, Index: idx, Hash: []byte(fmt.Sprint("hash", idx))}
			}
			if err := s.AppendAudit(ctx, es, ns); err != nil {
				t.Fatal(err)
			}
			got, err := s.AuditLeaves(ctx, size, n+10)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n {
				t.Fatalf("%d leaves read back, want %d", len(got), n)
			}
			for i, e := range got {
				if e.Index != es[i].Index || !bytes.Equal(e.Leaf, es[i].Leaf) || e.RequestID != es[i].RequestID || e.Records[0] != es[i].Records[0] {
					t.Fatalf("leaf %d = %d %q %s %v, want %d %q %s %v", i, e.Index, e.Leaf, e.RequestID, e.Records, es[i].Index, es[i].Leaf, es[i].RequestID, es[i].Records)
				}
			}
			hs, err := s.AuditNodes(ctx, ns)
			if err != nil {
				t.Fatal(err)
			}
			for i, h := range hs {
				if !bytes.Equal(h, ns[i].Hash) {
					t.Fatalf("node %d = %q, want %q", i, h, ns[i].Hash)
				}
			}
			if sz, err := s.AuditSize(ctx); err != nil || sz != size+uint64(n) {
				t.Fatalf("AuditSize = %d, %v; want %d", sz, err, size+uint64(n))
			}
			size += uint64(n)
		})
	}
}
