package sqlite

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
)

// benchRecords makes n sealed records shaped like an imported user: nine
// field ciphertexts (~1 KB), two blind-index tokens, time-ordered ids.
func benchRecords(n, from int) []*sekisho.SealedRecord {
	now := time.Now().UTC()
	recs := make([]*sekisho.SealedRecord, n)
	for i := range recs {
		var id [16]byte
		binary.BigEndian.PutUint64(id[:8], uint64(from+i))
		rand.Read(id[8:])
		r := &sekisho.SealedRecord{ID: hex.EncodeToString(id[:]), Collection: "users", Org: "acme", Region: "jp",
			KEKVersion: 1, WrappedDEK: make([]byte, 60), Fields: map[string][]byte{}, Index: map[string][]byte{},
			Version: 1, CreatedAt: now, UpdatedAt: now}
		rand.Read(r.WrappedDEK)
		for j, size := range []int{40, 30, 45, 60, 40, 45, 50, 48, 90} {
			ct := make([]byte, size+28)
			rand.Read(ct)
			r.Fields[fmt.Sprintf("field_%d", j)] = ct
		}
		for _, f := range []string{"phone", "email"} {
			tok := make([]byte, 32)
			rand.Read(tok)
			r.Index[f] = tok
		}
		recs[i] = r
	}
	return recs
}

// An import's store work per record: LoadRecords in batches of 1000 (with
// each batch's mark), then EndBulk building the lookup index.
func BenchmarkLoadRecords(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch = 5000 // sekisho import's default --batch
	var batches [][]*sekisho.SealedRecord
	for done := 0; done < b.N; done += batch {
		batches = append(batches, benchRecords(min(batch, b.N-done), done))
	}
	if err := s.BeginBulk(ctx); err != nil {
		b.Fatal(err)
	}
	defer cpuPerOp(b)()
	defer writtenPerOp(b)()
	b.ResetTimer()
	for i, recs := range batches {
		mark := &sekisho.Object{Kind: "import-mark", ID: fmt.Sprintf("job/%08d", i), Org: "acme", Body: []byte(`{}`), Updated: time.Now()}
		if err := s.LoadRecords(ctx, recs, mark); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.EndBulk(ctx); err != nil {
		b.Fatal(err)
	}
}

// writtenPerOp reports the bytes the process wrote to storage per op
// (write_bytes of /proc/self/io: WAL, database file and checkpoints) and
// its write system calls per op (syscw: every pwrite, to any file,
// temporary files included, which need not reach storage).
func writtenPerOp(b *testing.B) func() {
	start, ok := procIO()
	return func() {
		if end, ok2 := procIO(); ok && ok2 {
			b.ReportMetric(float64(end["write_bytes"]-start["write_bytes"])/float64(b.N), "wbytes/op")
			b.ReportMetric(float64(end["syscw"]-start["syscw"])/float64(b.N), "writes/op")
		}
	}
}

// procIO reads /proc/self/io's counters.
func procIO() (map[string]int64, bool) {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return nil, false
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, false
		}
		out[k] = n
	}
	return out, true
}

// EndBulk alone (the serial tail of an import): the deferred index entries
// of b.N records, two a record, kept in memory during the load, sorted and
// inserted into lookup_index. The load before it is not timed. "populated":
// lookup_index already holds the entries of 4 x b.N records of an earlier
// import (the usual case: a store's second collection, a later batch), so
// the sorted entries land among existing pages.
func BenchmarkEndBulk(b *testing.B) {
	for _, bc := range []struct {
		name  string
		prior int // records of an earlier import, per op
	}{{"empty", 0}, {"populated", 4}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, filepath.Join(b.TempDir(), "db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			load := func(n, from int) {
				if err := s.BeginBulk(ctx); err != nil {
					b.Fatal(err)
				}
				const batch = 5000 // sekisho import's default --batch
				for done := 0; done < n; done += batch {
					if err := s.LoadRecords(ctx, benchRecords(min(batch, n-done), from+done), nil); err != nil {
						b.Fatal(err)
					}
				}
			}
			if bc.prior > 0 {
				load(bc.prior*b.N, 0)
				if err := s.EndBulk(ctx); err != nil {
					b.Fatal(err)
				}
			}
			load(b.N, bc.prior*b.N)
			b.ResetTimer()
			defer cpuPerOp(b)()
			defer writtenPerOp(b)()
			if err := s.EndBulk(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
