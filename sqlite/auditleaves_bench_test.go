package sqlite

import (
	"context"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
)

// BenchmarkAuditLeaves reads back 1,000 hot-read events, as the guard's
// sync of the node's own events does after every commit (one record id and
// one record org each).
func BenchmarkAuditLeaves(b *testing.B) {
	ctx := context.Background()
	s, err := OpenWith(ctx, filepath.Join(b.TempDir(), "db"), Options{noAuditIndexer: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t0 := time.Now()
	es := make([]sekisho.AuditEntry, 1000)
	for i := range es {
		id := hex.EncodeToString([]byte(fmt.Sprintf("%08d", i)))
		es[i] = sekisho.AuditEntry{Index: uint64(i), Leaf: make([]byte, 600), Time: t0, RequestID: "019ae8c0" + id,
			Org: "operator", Principal: fmt.Sprintf("bench-svc-mtls-%d", i%16), Device: fmt.Sprintf("dev-bench-svc-mtls-%d", i%16),
			Decision: "allow", Records: []string{"u" + id}, RecordOrgs: []string{"operator"}}
	}
	if err := s.AppendAudit(ctx, es, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		got, err := s.AuditLeaves(ctx, 0, 1000)
		if err != nil || len(got) != 1000 {
			b.Fatal(len(got), err)
		}
	}
}
