package audit

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/sqlite"
)

// sqliteLog builds a log of 300 events in a fresh SQLite file, with
// checkpoints at 100, 200 and 300, and returns the file, the verifier and
// the note of checkpoint 300 (as an auditor would keep it).
func sqliteLog(t *testing.T) (path string, l *Log, external []byte) {
	t.Helper()
	ctx := context.Background()
	path = filepath.Join(t.TempDir(), "sekisho.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	l = newTestLog(t, st, Options{})
	for n := 0; n < 300; n += 50 {
		evs := make([]sekisho.Event, 50)
		for i := range evs {
			evs[i] = event(n + i)
		}
		if _, err := l.AppendBatch(ctx, evs); err != nil {
			t.Fatal(err)
		}
		if (n+50)%100 == 0 {
			cp, err := l.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			external = cp.Note
		}
	}
	l.Close()
	st.Close()
	return path, l, external
}

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// rewriteNodes recomputes every stored node from the stored leaves, as an
// attacker who knows the scheme would after editing a leaf.
func rewriteNodes(t *testing.T, db *sql.DB) {
	rows, err := db.Query(`SELECT leaf FROM audit_events ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	rng := newRangeFactory().NewEmptyRange(0)
	type node struct {
		id   compact.NodeID
		hash []byte
	}
	var nodes []node
	for rows.Next() {
		var leaf []byte
		rows.Scan(&leaf)
		rng.Append(rfc6962.DefaultHasher.HashLeaf(leaf), func(id compact.NodeID, h []byte) { nodes = append(nodes, node{id, h}) })
	}
	rows.Close()
	for _, n := range nodes {
		// The SQLite store keeps levels 0-3 by the last leaf they cover.
		if n.id.Level < 4 {
			exec(t, db, `INSERT OR REPLACE INTO audit_nodes_low (end, level, hash) VALUES (?,?,?)`, ((n.id.Index+1)<<n.id.Level)-1, n.id.Level, n.hash)
			continue
		}
		exec(t, db, `INSERT OR REPLACE INTO audit_nodes (level, idx, hash) VALUES (?,?,?)`, n.id.Level, n.id.Index, n.hash)
	}
}

func otherLeaf(i int) []byte {
	e := event(i)
	e.Principal = "nobody" // hide who read what
	return sekisho.MarshalEvent(e)
}

func TestVerifySQLiteTampering(t *testing.T) {
	tests := []struct {
		name     string
		tamper   func(t *testing.T, db *sql.DB)
		external bool
		index    uint64
		kind     ProblemKind
	}{
		{name: "untouched", kind: ""},
		{
			name: "edited leaf",
			tamper: func(t *testing.T, db *sql.DB) {
				exec(t, db, `UPDATE audit_events SET leaf = ? WHERE idx = 123`, otherLeaf(123))
			},
			index: 123, kind: ProblemLeaf,
		},
		{
			name: "edited leaf after the last checkpoint",
			tamper: func(t *testing.T, db *sql.DB) {
				exec(t, db, `DELETE FROM audit_checkpoints WHERE size = 300`)
				exec(t, db, `UPDATE audit_events SET leaf = ? WHERE idx = 287`, otherLeaf(287))
			},
			index: 287, kind: ProblemLeaf,
		},
		{
			name: "edited leaf and its stored leaf hash",
			tamper: func(t *testing.T, db *sql.DB) {
				leaf := otherLeaf(123)
				exec(t, db, `UPDATE audit_events SET leaf = ? WHERE idx = 123`, leaf)
				exec(t, db, `UPDATE audit_nodes_low SET hash = ? WHERE level = 0 AND end = 123`, rfc6962.DefaultHasher.HashLeaf(leaf))
			},
			index: 122, kind: ProblemNode, // node 1/61 covers leaves 122 and 123
		},
		{
			name: "edited leaf and every stored node rewritten",
			tamper: func(t *testing.T, db *sql.DB) {
				exec(t, db, `UPDATE audit_events SET leaf = ? WHERE idx = 250`, otherLeaf(250))
				rewriteNodes(t, db)
			},
			index: 200, kind: ProblemCheckpoint, // between checkpoints 200 and 300
		},
		{
			name: "edited query column",
			tamper: func(t *testing.T, db *sql.DB) {
				exec(t, db, `UPDATE audit_events SET principal = 'nobody' WHERE idx = 77`)
			},
			index: 77, kind: ProblemColumns,
		},
		{
			name:   "deleted row",
			tamper: func(t *testing.T, db *sql.DB) { exec(t, db, `DELETE FROM audit_events WHERE idx = 50`) },
			index:  50, kind: ProblemMissing,
		},
		{
			name: "reordered rows",
			tamper: func(t *testing.T, db *sql.DB) {
				exec(t, db, `UPDATE audit_events SET idx = -1 WHERE idx = 10`)
				exec(t, db, `UPDATE audit_events SET idx = 10 WHERE idx = 11`)
				exec(t, db, `UPDATE audit_events SET idx = 11 WHERE idx = -1`)
			},
			index: 10, kind: ProblemLeaf,
		},
		{
			name: "inserted row",
			tamper: func(t *testing.T, db *sql.DB) {
				exec(t, db, `UPDATE audit_events SET idx = -(idx + 1) WHERE idx >= 200`)
				exec(t, db, `UPDATE audit_events SET idx = -idx WHERE idx < 0`)
				exec(t, db, `INSERT INTO audit_events (idx, leaf, time, request_id, org, principal, device, decision, records, record_orgs)
					SELECT 200, ?, time, 'forged', org, principal, device, decision, records, record_orgs FROM audit_events WHERE idx = 201`, otherLeaf(1000))
			},
			index: 200, kind: ProblemLeaf,
		},
		{
			name: "row appended outside the log",
			tamper: func(t *testing.T, db *sql.DB) {
				exec(t, db, `INSERT INTO audit_events (idx, leaf, time, request_id, org, principal, device, decision, records, record_orgs)
					SELECT 300, ?, time, 'forged', org, 'nobody', device, decision, records, record_orgs FROM audit_events WHERE idx = 299`, otherLeaf(1000))
			},
			index: 300, kind: ProblemUnrecorded,
		},
		{
			name:   "truncated log",
			tamper: func(t *testing.T, db *sql.DB) { exec(t, db, `DELETE FROM audit_events WHERE idx >= 250`) },
			index:  250, kind: ProblemTruncated,
		},
		{
			name: "truncated log and checkpoints, caught by the external checkpoint",
			tamper: func(t *testing.T, db *sql.DB) {
				exec(t, db, `DELETE FROM audit_events WHERE idx >= 250`)
				exec(t, db, `DELETE FROM audit_checkpoints WHERE size > 250`)
			},
			external: true,
			index:    250, kind: ProblemTruncated,
		},
		{
			name: "forged checkpoint",
			tamper: func(t *testing.T, db *sql.DB) {
				exec(t, db, `UPDATE audit_checkpoints SET note = replace(note, X'0A3230300A', X'0A3230310A') WHERE size = 200`)
			},
			index: 200, kind: ProblemSignature,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			path, l, external := sqliteLog(t)
			if tt.tamper != nil {
				tt.tamper(t, rawDB(t, path))
			}
			st, err := sqlite.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if !tt.external {
				external = nil
			}
			rep, err := Verify(ctx, st, l.opts.Verifier, external)
			if err != nil {
				t.Fatal(err)
			}
			// The store's AuditNodeRange (one query a level) and a reference
			// built on the interface's AuditNodes (one node at a time) must
			// find the same.
			slow, err := Verify(ctx, perNode{st}, l.opts.Verifier, external)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rep, slow) {
				t.Fatalf("fast path report %+v\ndiffers from %+v", rep, slow)
			}
			if tt.kind == "" {
				if !rep.OK || rep.Size != 300 || rep.Checkpoints != 3 {
					t.Fatalf("clean log: %+v", rep)
				}
				return
			}
			if rep.OK || len(rep.Problems) == 0 {
				t.Fatalf("tampering not detected: %+v", rep)
			}
			first := rep.Problems[0]
			if first.Index != tt.index || first.Kind != tt.kind {
				t.Fatalf("first problem %+v, want index %d kind %s; all: %+v", first, tt.index, tt.kind, rep.Problems)
			}
			t.Logf("%d problems; first: %s", len(rep.Problems), first.Message)
		})
	}
}

func TestVerifyDuplicateRow(t *testing.T) {
	ctx := context.Background()
	store := newFakeStore()
	l := newTestLog(t, store, Options{})
	appendN(t, l, 20, 1)
	dup := store.leaves[7]
	dup.Leaf = otherLeaf(7)
	store.leaves = append(store.leaves, dup)
	rep, err := Verify(ctx, store, l.opts.Verifier, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Problems[0].Kind != ProblemDuplicate || rep.Problems[0].Index != 7 {
		t.Fatalf("duplicate not reported: %+v", rep)
	}
}

func TestVerifyRefusesForeignExternalCheckpoint(t *testing.T) {
	ctx := context.Background()
	store := newFakeStore()
	l := newTestLog(t, store, Options{})
	appendN(t, l, 5, 1)
	cp, _ := l.Checkpoint(ctx)
	_, other := testKeys(t)
	if _, err := Verify(ctx, store, other, cp.Note); sekisho.Code(err) != sekisho.EInvalid {
		t.Fatalf("checkpoint of another key: %v", err)
	}
}

// perNode is an AuditStore whose AuditNodeRange asks AuditNodes one node at
// a time: the reference the store's range query is compared with.
type perNode struct{ sekisho.AuditStore }

func (p perNode) AuditNodeRange(ctx context.Context, level uint, from, to uint64) ([][]byte, error) {
	out := make([][]byte, to-from)
	for i := range out {
		h, err := p.AuditNodes(ctx, []sekisho.AuditNode{{Level: level, Index: from + uint64(i)}})
		switch {
		case err == nil && len(h) == 1:
			out[i] = h[0]
		case sekisho.Code(err) != sekisho.ENotFound:
			return nil, err
		}
	}
	return out, nil
}
