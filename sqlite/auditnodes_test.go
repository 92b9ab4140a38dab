package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/sekisho/sekisho"
)

// The tree's levels 0-3 are kept by the last leaf they cover
// (audit_nodes_low), the others by (level, idx): every node reads back by
// AuditNodes and by AuditNodeRange whichever table holds it, ranges that
// straddle nothing or run past the stored nodes included; and a schema-6
// database, whose nodes are all in audit_nodes, reads the same after the
// migration moves its low levels.
func TestAuditNodesLowLevels(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	s, err := OpenWith(ctx, path, Options{noAuditIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	hash := func(level uint, idx uint64) []byte { return []byte(fmt.Sprintf("h%d/%d", level, idx)) }
	var nodes []sekisho.AuditNode
	for level := uint(0); level < 8; level++ {
		for idx := uint64(0); idx < 40>>level+1; idx++ {
			nodes = append(nodes, sekisho.AuditNode{Level: level, Index: idx, Hash: hash(level, idx)})
		}
	}
	// Far indexes: a low level beyond auditLowMaxIndex stays in audit_nodes.
	nodes = append(nodes, sekisho.AuditNode{Level: 2, Index: auditLowMaxIndex + 5, Hash: hash(2, auditLowMaxIndex+5)},
		sekisho.AuditNode{Level: 0, Index: 1 << 62, Hash: hash(0, 1<<62)})
	if err := s.AppendAudit(ctx, nil, nodes); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store, when string) {
		t.Helper()
		got, err := s.AuditNodes(ctx, nodes)
		if err != nil {
			t.Fatalf("%s: AuditNodes: %v", when, err)
		}
		for i, n := range nodes {
			if !bytes.Equal(got[i], n.Hash) {
				t.Fatalf("%s: node %d/%d = %q, want %q", when, n.Level, n.Index, got[i], n.Hash)
			}
		}
		for level := uint(0); level < 8; level++ {
			for _, r := range [][2]uint64{{0, 0}, {0, 1}, {3, 9}, {0, 60}, {5, 6}} {
				got, err := s.AuditNodeRange(ctx, level, r[0], r[1])
				if err != nil {
					t.Fatalf("%s: AuditNodeRange(%d, %d, %d): %v", when, level, r[0], r[1], err)
				}
				for i, h := range got {
					idx := r[0] + uint64(i)
					var want []byte
					if idx < 40>>level+1 {
						want = hash(level, idx)
					}
					if !bytes.Equal(h, want) {
						t.Fatalf("%s: AuditNodeRange(%d, %d, %d)[%d] = %q, want %q", when, level, r[0], r[1], i, h, want)
					}
				}
			}
		}
		got, err = s.AuditNodeRange(ctx, 2, auditLowMaxIndex+4, auditLowMaxIndex+6)
		if err != nil || got[0] != nil || !bytes.Equal(got[1], hash(2, auditLowMaxIndex+5)) {
			t.Fatalf("%s: far range = %q, %v", when, got, err)
		}
		if _, err := s.AuditNodes(ctx, []sekisho.AuditNode{{Level: 1, Index: 1000}}); sekisho.Code(err) != sekisho.ENotFound {
			t.Fatalf("%s: a missing node: %v, want not found", when, err)
		}
	}
	check(s, "new")
	var low int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_nodes_low`).Scan(&low); err != nil || low == 0 {
		t.Fatalf("audit_nodes_low holds %d rows (%v)", low, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A schema-6 database (every node in audit_nodes) with the same nodes.
	path = filepath.Join(t.TempDir(), "db6")
	db := dbAtSchema(t, path, 6)
	for _, n := range nodes {
		if _, err := db.Exec(`INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)`, n.Level, int64(n.Index), n.Hash); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`PRAGMA user_version = 6`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = OpenWith(ctx, path, Options{noAuditIndexer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s, "migrated")
	var high int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_nodes WHERE level < 4 AND idx < ?`, int64(auditLowMaxIndex)).Scan(&high); err != nil || high != 0 {
		t.Fatalf("after the migration audit_nodes holds %d low nodes (%v)", high, err)
	}
}
