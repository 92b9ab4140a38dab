package vault_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/gen"
	"github.com/sekisho/sekisho/internal/benchcpu"
)

// The CPU work of an import batch per record (PrepareBatch: validate,
// normalise, authorise, derive the id, seal, index), 1000 generated users
// a batch, as importer.VaultSink runs it while the batch before commits.
func BenchmarkPrepareImportBatch(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	g := gen.New(1)
	in := make([]*sekisho.RecordInput, 1000)
	for i := range in {
		u := g.User()
		raw, _ := json.Marshal(u)
		var err error
		if in[i], err = sekisho.DecodeRecordInput(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	defer benchcpu.PerOp(b)()
	n := 0
	for b.Loop() {
		p, err := e.v.PrepareBatch(ctx, operator, "users", in)
		if err != nil {
			b.Fatal(err)
		}
		for _, it := range p.Items {
			if it.Err != nil {
				b.Fatal(it.Err)
			}
		}
		n++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*len(in)), "ns/record")
}
