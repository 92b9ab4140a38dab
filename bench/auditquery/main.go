// Command auditquery measures the audit queries of the embedded SQLite store
// at scale: it bulk-loads synthetic audit events straight through the store
// (sekisho.AuditStore.AppendAudit, in batches, with the Merkle tree's node
// hashes, so the log is a valid one), then times QueryAudit by principal and
// a one-week time range, and optionally audit.Verify over the whole log.
//
// The load resumes: run it with -n 1000000, then -n 10000000 on the same
// file, to measure at both sizes.
//
//	go run ./bench/auditquery -db /tmp/audit-bench.db -n 1000000
//	go run ./bench/auditquery -db /tmp/audit-bench.db -n 10000000 -verify=false
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/sqlite"
)

func main() {
	var (
		path       = flag.String("db", "audit-bench.db", "SQLite file (created, or extended up to -n events)")
		n          = flag.Uint64("n", 1_000_000, "events in the log")
		batch      = flag.Int("batch", 10_000, "events per AppendAudit call")
		principals = flag.Int("principals", 10_000, "distinct principals; one more, \"svc-batch\", makes 1% of the events")
		days       = flag.Int("days", 365, "the events span this many days, in log order")
		queries    = flag.Int("queries", 200, "principal+week queries to time")
		verify     = flag.Bool("verify", false, "also time audit.Verify over the whole log")
		doLoad     = flag.Bool("load", true, "load up to -n events first; false measures the file as it is")
	)
	flag.Parse()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, *path)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	step := time.Duration(*days) * 24 * time.Hour / time.Duration(*n)
	if *doLoad {
		if err := load(ctx, st, *n, *batch, *principals, start, step); err != nil {
			log.Fatal(err)
		}
	}
	size, err := st.AuditSize(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if fi, err := os.Stat(*path); err == nil {
		fmt.Printf("database: %.2f GB\n", float64(fi.Size())/1e9)
	}

	// Events are stamped by index with the step of -n: the loaded ones span
	// up to end.
	end := start.Add(time.Duration(size) * step)
	rng := rand.New(rand.NewPCG(1, 2))
	week := 7 * 24 * time.Hour
	query := func(principal string) (time.Duration, int) {
		since := start.Add(time.Duration(rng.Int64N(int64(end.Sub(start) - week))))
		f := sekisho.AuditFilter{Principal: principal, Since: since, Until: since.Add(week), Limit: 1000}
		t0 := time.Now()
		total := 0
		for {
			es, err := st.QueryAudit(ctx, f)
			if err != nil {
				log.Fatal(err)
			}
			total += len(es)
			if len(es) < f.Limit {
				break
			}
			f.From = es[len(es)-1].Index + 1
		}
		return time.Since(t0), total
	}
	report := func(name string, pick func() string) {
		var ds []time.Duration
		rows := 0
		for i := 0; i < *queries; i++ {
			d, k := query(pick())
			ds = append(ds, d)
			rows += k
		}
		slices.Sort(ds)
		fmt.Printf("%-44s %d queries, %.0f events each: p50 %v  p99 %v  max %v\n", name, len(ds), float64(rows)/float64(len(ds)),
			ds[len(ds)/2].Round(time.Microsecond), ds[len(ds)*99/100].Round(time.Microsecond), ds[len(ds)-1].Round(time.Microsecond))
	}
	fmt.Printf("at %d events (%d principals, %v apart):\n", size, *principals, step)
	report("principal + one week (every page):", func() string { return fmt.Sprintf("p%05d", rng.IntN(*principals)) })
	report("busy principal (1% of events) + one week:", func() string { return "svc-batch" })

	if *verify {
		t0 := time.Now()
		rep, err := audit.Verify(ctx, st, nil, nil)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("audit.Verify: %d events in %v (%.0f events/s), ok=%v problems=%d\n", rep.Size, time.Since(t0).Round(time.Millisecond),
			float64(rep.Size)/time.Since(t0).Seconds(), rep.OK, len(rep.Problems))
	}
}

// load appends events from the store's current size up to n, in batches,
// with the perfect subtree hashes each batch completes, as audit.Log does.
func load(ctx context.Context, st *sqlite.Store, n uint64, batch, principals int, start time.Time, step time.Duration) error {
	size, err := st.AuditSize(ctx)
	if err != nil {
		return err
	}
	if size >= n {
		return nil
	}
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	rng := rf.NewEmptyRange(0)
	if size > 0 {
		ids := compact.RangeNodes(0, size, nil)
		q := make([]sekisho.AuditNode, len(ids))
		for i, id := range ids {
			q[i] = sekisho.AuditNode{Level: id.Level, Index: id.Index}
		}
		hashes, err := st.AuditNodes(ctx, q)
		if err != nil {
			return err
		}
		if rng, err = rf.NewRange(0, size, hashes); err != nil {
			return err
		}
	}
	r := rand.New(rand.NewPCG(size, 7))
	t0, from := time.Now(), size
	for size < n {
		k := min(uint64(batch), n-size)
		entries := make([]sekisho.AuditEntry, 0, k)
		var nodes []sekisho.AuditNode
		for i := uint64(0); i < k; i++ {
			idx := size + i
			ev := event(r, idx, principals, start.Add(time.Duration(idx)*step))
			leaf := sekisho.MarshalEvent(ev)
			e := audit.Entry(ev, leaf)
			e.Index = idx
			entries = append(entries, e)
			if err := rng.Append(rfc6962.DefaultHasher.HashLeaf(leaf), func(id compact.NodeID, h []byte) {
				nodes = append(nodes, sekisho.AuditNode{Level: id.Level, Index: id.Index, Hash: h})
			}); err != nil {
				return err
			}
		}
		if err := st.AppendAudit(ctx, entries, nodes); err != nil {
			return err
		}
		size += k
		if size%(uint64(batch)*50) == 0 || size == n {
			el := time.Since(t0)
			fmt.Fprintf(os.Stderr, "loaded %d events (%.0f events/s)\n", size, float64(size-from)/el.Seconds())
		}
	}
	return nil
}

var actions = []string{"read", "read", "read", "lookup", "create", "update"}

func event(r *rand.Rand, idx uint64, principals int, t time.Time) sekisho.Event {
	p := fmt.Sprintf("p%05d", r.IntN(principals))
	if r.IntN(100) == 0 {
		p = "svc-batch"
	}
	org := []string{"operator", "affiliate", "subcontractor"}[r.IntN(3)]
	dec := sekisho.Allow
	if r.IntN(50) == 0 {
		dec = sekisho.Deny
	}
	return sekisho.Event{Time: t, RequestID: fmt.Sprintf("%016x%016x", idx, r.Uint64()), Org: org, Principal: p,
		Device: p + "-laptop", Source: fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(256)),
		Purpose: "support", Action: actions[r.IntN(len(actions))], Collection: "users",
		Records: []string{fmt.Sprintf("u%08d", r.IntN(50_000_000))}, Fields: []string{"display_name", "phone"},
		Masked: r.IntN(2) == 0, Decision: dec, Policy: "own-org", Reason: "records of the caller's own org",
		RecordOrgs: []string{org}}
}
