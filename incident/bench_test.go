package incident_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/incident"
	"github.com/sekisho/sekisho/internal/pgtest"
	"github.com/sekisho/sekisho/postgres"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
)

// The scope benchmarks load a synthetic log of SEKISHO_BENCH_SCOPE_N events
// (default 1,000,000) spread over a year, 10,000 principals, and 100,000
// user records in four regions, then time the scope of one principal over
// one week, in which it made a fifth of the events (bulk batch-gets of ten
// records). The events go straight to the store with AppendAudit in batches
// of 20,000, without Merkle node hashes (the scope never reads them).
//
// SEKISHO_BENCH_SCOPE_DB names a SQLite file to keep between runs (the load
// resumes up to N); SEKISHO_BENCH_SCOPE_PG a PostgreSQL DSN to keep (else a
// fresh database on SEKISHO_TEST_POSTGRES).
//
//	SEKISHO_BENCH_SCOPE_N=10000000 SEKISHO_BENCH_SCOPE_DB=/tmp/scope10m.db go test -run - -bench Scope -benchtime 5x ./incident/
//
// A resumed load spreads its new events over the year again, so a log
// loaded to 1M and then to 10M has ~42,000 events of the suspect in its week
// (97,801 subjects exposed). Measured so on 2 shared cores (AMD EPYC), 10M
// events: SQLite 1.37 s, PostgreSQL 15 1.15 s per scope. At 1M events (3,909
// events of the suspect, 29,346 subjects; before the slicing of the
// window): SQLite 0.47-0.63 s, PostgreSQL 0.57 s.

const (
	benchPrincipals = 10_000
	benchRecords    = 100_000
	benchSuspect    = "mallory"
)

var benchStart = time.Date(2023, 1, 2, 0, 0, 0, 0, time.UTC)

func benchN() uint64 {
	if s := os.Getenv("SEKISHO_BENCH_SCOPE_N"); s != "" {
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			return n
		}
	}
	return 1_000_000
}

// benchWeek is the suspect's week: the 30th of the year.
func benchWeek() (time.Time, time.Time) {
	s := benchStart.Add(29 * 7 * 24 * time.Hour)
	return s, s.Add(7 * 24 * time.Hour)
}

func BenchmarkScopeSQLite(b *testing.B) {
	path := os.Getenv("SEKISHO_BENCH_SCOPE_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "scope.db")
	}
	st, err := sqlite.Open(b.Context(), path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	benchScope(b, st, func(ctx context.Context, n uint64) error { return benchLoad(ctx, st, n) })
}

func BenchmarkScopePostgres(b *testing.B) {
	dsn := os.Getenv("SEKISHO_BENCH_SCOPE_PG")
	if dsn == "" {
		dsn = pgtest.DSN(b)
	}
	st, err := postgres.Open(b.Context(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	load := func(ctx context.Context, n uint64) error { return benchLoad(ctx, st, n) }
	if os.Getenv("SEKISHO_BENCH_SCOPE_COPY") == "1" {
		load = func(ctx context.Context, n uint64) error { return benchCopyLoad(ctx, st, dsn, n) }
	}
	benchScope(b, st, load)
	pool, err := pgxpool.New(b.Context(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	var dbBytes, entriesBytes int64
	if err := pool.QueryRow(b.Context(), `SELECT pg_database_size(current_database()),
		(SELECT COALESCE(sum(pg_total_relation_size(relid)), 0)::bigint FROM pg_partition_tree('audit_entries'))`).Scan(&dbBytes, &entriesBytes); err != nil {
		b.Fatal(err)
	}
	b.Logf("database %.2f GB (audit_entries with its indexes %.2f GB)", float64(dbBytes)/1e9, float64(entriesBytes)/1e9)
}

func benchScope(b *testing.B, st sekisho.Store, load func(context.Context, uint64) error) {
	ctx := b.Context()
	n := benchN()
	t0 := time.Now()
	if err := load(ctx, n); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded in %s", time.Since(t0).Round(time.Second))
	since, until := benchWeek()
	in := &incident.Incident{ID: "inc-bench", Principals: []string{benchSuspect}, Since: since, Until: until}
	if err := in.Validate(); err != nil {
		b.Fatal(err)
	}
	var sc *incident.Scope
	b.ResetTimer()
	for b.Loop() {
		var err error
		if sc, err = incident.Compute(ctx, st, access.NewDirectory(st), []sekisho.LogStore{{Store: st}}, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/scope")
	b.ReportMetric(float64(sc.Events), "events/scope")
	b.ReportMetric(float64(sc.SubjectsExposed), "subjects")
	b.Logf("log %d events; suspect's week: %d events, %d subjects exposed, %d possible, %d denied, worst case %d",
		sc.LogSize, sc.Events, sc.SubjectsExposed, sc.SubjectsPossible, sc.DeniedAttempts, sc.WorstCaseSubjects)
}

// benchGen makes the synthetic events: event idx of a log of n is at
// benchStart + idx * (a year / n), of one of benchPrincipals reading one of
// benchRecords; in the suspect's week (benchWeek) an event is the suspect's
// with probability p (a fifth, or SEKISHO_BENCH_SCOPE_SUSPECT events in the
// week on average).
type benchGen struct {
	rng          *rand.Rand
	step         time.Duration
	since, until time.Time
	p            float64
}

func newBenchGen(n, size uint64) *benchGen {
	g := &benchGen{rng: rand.New(rand.NewPCG(size, 99)), step: 365 * 24 * time.Hour / time.Duration(n), p: 0.2}
	g.since, g.until = benchWeek()
	if s := os.Getenv("SEKISHO_BENCH_SCOPE_SUSPECT"); s != "" {
		if k, err := strconv.ParseFloat(s, 64); err == nil {
			g.p = min(1, k/float64(g.until.Sub(g.since)/g.step))
		}
	}
	return g
}

func (g *benchGen) event(idx uint64) sekisho.Event {
	rng := g.rng
	tm := benchStart.Add(time.Duration(idx) * g.step)
	p := fmt.Sprintf("p%05d", rng.IntN(benchPrincipals))
	ev := sekisho.Event{Time: tm, RequestID: fmt.Sprintf("%016x", idx), Org: "operator", Principal: p, Device: p + "-laptop",
		Purpose: "support", Action: "read", Collection: "users", Records: []string{fmt.Sprintf("u%07d", rng.IntN(benchRecords))},
		Fields: []string{"display_name"}, Decision: sekisho.Allow, Policy: "role-member", RecordOrgs: []string{"operator"}}
	if !tm.Before(g.since) && tm.Before(g.until) && rng.Float64() < g.p {
		ev.Org, ev.Principal, ev.Device = "sub", benchSuspect, "dev-m1"
		switch rng.IntN(20) {
		case 0:
			ev.Decision, ev.Fields, ev.Reason = sekisho.Deny, nil, "budget exceeded"
		case 1:
			ev.Action, ev.Fields = "lookup", nil
		default:
			ev.Action, ev.Records, ev.Fields = "batch-get", nil, []string{"display_name", "email", "phone"}
			for range 10 {
				ev.Records = append(ev.Records, fmt.Sprintf("u%07d", rng.IntN(benchRecords)))
			}
		}
	}
	return ev
}

func (g *benchGen) entry(idx uint64) sekisho.AuditEntry {
	ev := g.event(idx)
	e := audit.Entry(ev, sekisho.MarshalEvent(ev))
	e.Index = idx
	return e
}

// benchSeed puts the schemas and benchRecords user records into an empty store.
func benchSeed(ctx context.Context, st sekisho.Store) error {
	ss, err := schemas.Defaults()
	if err != nil {
		return err
	}
	for _, s := range ss {
		s.Version = 1
		if err := st.PutSchema(ctx, s); err != nil {
			return err
		}
	}
	for start := 0; start < benchRecords; start += 1000 {
		recs := make([]*sekisho.SealedRecord, 0, 1000)
		for i := start; i < start+1000; i++ {
			recs = append(recs, &sekisho.SealedRecord{ID: fmt.Sprintf("u%07d", i), Collection: "users", Org: "operator",
				Region: regions[i%4], KEKVersion: 1, WrappedDEK: []byte("dek"), Fields: map[string][]byte{"phone": []byte("sealed")},
				Index: map[string][]byte{}, Version: 1, CreatedAt: benchStart, UpdatedAt: benchStart})
		}
		if err := st.CreateRecords(ctx, recs); err != nil {
			return err
		}
	}
	return nil
}

// benchLoad fills the store up to n events (and the records and schemas once).
func benchLoad(ctx context.Context, st sekisho.Store, n uint64) error {
	size, err := st.AuditSize(ctx)
	if err != nil {
		return err
	}
	if size == 0 {
		if err := benchSeed(ctx, st); err != nil {
			return err
		}
	}
	gen := newBenchGen(n, size)
	const batch = 20_000
	t0, from := time.Now(), size
	for size < n {
		k := min(batch, n-size)
		entries := make([]sekisho.AuditEntry, 0, k)
		for i := range k {
			entries = append(entries, gen.entry(size+i))
		}
		if err := st.AppendAudit(ctx, entries, nil); err != nil {
			return err
		}
		size += k
		if size%1_000_000 == 0 || size == n {
			fmt.Fprintf(os.Stderr, "loaded %d events (%.0f events/s)\n", size, float64(size-from)/time.Since(t0).Seconds())
		}
	}
	return nil
}
