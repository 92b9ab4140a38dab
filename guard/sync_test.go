package guard_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/guard"
	"github.com/sekisho/sekisho/sqlite"
)

// leafCounter is a real store that counts the events AuditLeaves returns.
type leafCounter struct {
	*sqlite.Store
	leaves int
}

func (c *leafCounter) AuditLeaves(ctx context.Context, from uint64, limit int) ([]sekisho.AuditEntry, error) {
	es, err := c.Store.AuditLeaves(ctx, from, limit)
	c.leaves += len(es)
	return es, err
}

// noRefs hides the store's AuditRefs (the fallback through the leaves).
type noRefs struct{ sekisho.AuditStore }

// A node's guard syncing the shared log reads the events decided elsewhere
// and not its own (counted when it decided them): with 100 of its reads,
// 30 of another node's, then 100 of its own, one Sync reads 30 events, a
// second none. Control: through a store without AuditRefs the same Sync
// reads all 230.
func TestSyncReadsOnlyTheEventsOfOtherNodes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hide   bool
		leaves int
	}{{"refs", false, 30}, {"no refs (control)", true, 230}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			store, err := sqlite.Open(ctx, t.TempDir()+"/sekisho.db")
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			counted := &leafCounter{Store: store}
			var logStore sekisho.AuditStore = counted
			if tc.hide {
				logStore = noRefs{counted}
			}
			here := guard.New(guard.Config{Store: store, Logs: []sekisho.LogStore{{Store: logStore}}})
			there := guard.New(guard.Config{Store: store})
			var idx uint64
			read := func(g *guard.Guard, node string, n int) {
				t.Helper()
				var entries []sekisho.AuditEntry
				for range n {
					c := sekisho.Caller{Principal: "svc-" + node, Org: "operator", Device: "dev-" + node, Roles: []string{"service"},
						Source: "10.0.0.1", Purpose: "ops", RequestID: fmt.Sprintf("%s-%d", node, idx)}
					entries = append(entries, chargedRead(t, g, c, fmt.Sprintf("r%06d", idx), idx))
					idx++
				}
				if err := store.AppendAudit(ctx, entries, nil); err != nil {
					t.Fatal(err)
				}
			}
			read(here, "a", 100)
			read(there, "b", 30)
			read(here, "a", 100)
			if err := here.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if counted.leaves != tc.leaves {
				t.Errorf("first sync read %d events, want %d", counted.leaves, tc.leaves)
			}
			counted.leaves = 0
			if err := here.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if counted.leaves != 0 {
				t.Errorf("second sync read %d events, want none", counted.leaves)
			}
		})
	}
}
