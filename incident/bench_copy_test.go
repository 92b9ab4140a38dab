package incident_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sekisho/sekisho"
)

// benchCopyLoad fills a PostgreSQL store up to n events the way a log of
// that size would be restored in bulk (SEKISHO_BENCH_SCOPE_COPY=1): the
// same rows AppendAudit writes (audit_entries, audit_orgs, audit_records;
// no Merkle nodes, which the scope never reads), COPYed in chunks with the
// secondary indexes dropped, then every dropped index built again from its
// saved definition, and VACUUM ANALYZE. An interrupted load resumes: the
// definitions are kept in bench_dropped_indexes until they are rebuilt, and
// rows past audit_head are deleted first. At the end the tables have
// exactly the indexes the store's migrations made.
//
// SEKISHO_BENCH_SCOPE_LEAN=1 keeps the largest log on a given disk: only
// audit_entries is filled (audit_orgs and audit_records, which an org's or a
// record's query reads and a principal's scope does not, stay as the seed
// left them) and only the indexes a principal's scope reads are built again
// (audit_entries' primary key and audit_by_principal); the others stay in
// bench_dropped_indexes, so the log answers a principal's scope exactly as
// a full one and nothing else as fast.
func benchCopyLoad(ctx context.Context, st sekisho.Store, dsn string, n uint64) error {
	lean := os.Getenv("SEKISHO_BENCH_SCOPE_LEAN") == "1"
	size, err := st.AuditSize(ctx)
	if err != nil {
		return err
	}
	if size == 0 {
		if err := benchSeed(ctx, st); err != nil {
			return err
		}
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS bench_dropped_indexes (name TEXT PRIMARY KEY, tbl TEXT NOT NULL, def TEXT NOT NULL, pkey BOOL NOT NULL)`,
		`SET maintenance_work_mem = '1GB'`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			return err
		}
	}
	if size < n {
		// Save and drop every index of the three tables but audit_entries'
		// primary key (idx grows, so its inserts append).
		// A partitioned table's index is listed "ON ONLY" the table; it is
		// built again on the table and all its partitions.
		if _, err := pool.Exec(ctx, `INSERT INTO bench_dropped_indexes (name, tbl, def, pkey)
			SELECT i.indexname, i.tablename, replace(i.indexdef, ' ON ONLY ', ' ON '), c.conname IS NOT NULL FROM pg_indexes i
			LEFT JOIN pg_constraint c ON c.conname = i.indexname AND c.contype = 'p'
			WHERE i.tablename IN ('audit_entries', 'audit_orgs', 'audit_records') AND i.indexname <> 'audit_entries_pkey'
			ON CONFLICT DO NOTHING`); err != nil {
			return err
		}
		rows, err := pool.Query(ctx, `SELECT name, tbl, pkey FROM bench_dropped_indexes`)
		if err != nil {
			return err
		}
		type ix struct {
			name, tbl string
			pkey      bool
		}
		ixs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ix, error) {
			var x ix
			return x, r.Scan(&x.name, &x.tbl, &x.pkey)
		})
		if err != nil {
			return err
		}
		for _, x := range ixs {
			q := `DROP INDEX IF EXISTS ` + pgx.Identifier{x.name}.Sanitize()
			if x.pkey {
				q = `ALTER TABLE ` + pgx.Identifier{x.tbl}.Sanitize() + ` DROP CONSTRAINT IF EXISTS ` + pgx.Identifier{x.name}.Sanitize()
			}
			if _, err := pool.Exec(ctx, q); err != nil {
				return err
			}
		}
		for _, t := range []string{"audit_entries", "audit_orgs", "audit_records"} {
			if _, err := pool.Exec(ctx, `DELETE FROM `+t+` WHERE idx >= $1`, int64(size)); err != nil {
				return err
			}
		}
	}

	// Chunks are generated on one core while the previous one is copied.
	const chunk = 250_000
	type rowsets struct {
		from, to           uint64
		entries, orgs, rec [][]any
	}
	gen := newBenchGen(n, size)
	// audit_entries is partitioned by month: COPY needs the months made.
	if p, ok := st.(interface {
		PrepareAuditMonths(ctx context.Context, since, until time.Time) error
	}); ok && size < n {
		at := func(idx uint64) time.Time { return benchStart.Add(time.Duration(idx) * gen.step) }
		if err := p.PrepareAuditMonths(ctx, at(size), at(n-1)); err != nil {
			return err
		}
	}
	next := make(chan rowsets, 1)
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(next)
		for from := size; from < n; from += chunk {
			rs := rowsets{from: from, to: min(from+chunk, n)}
			for idx := rs.from; idx < rs.to; idx++ {
				e := gen.entry(idx)
				at := e.Time.Truncate(time.Microsecond).UTC()
				rs.entries = append(rs.entries, []any{int64(idx), e.Leaf, at, e.RequestID, e.Org, e.Principal, e.Device, e.Decision, nonNilS(e.RecordOrgs), nonNilS(e.Records)})
				if lean {
					continue
				}
				// audit_orgs and audit_records hold each value once per
				// entry, as AppendAudit writes them.
				orgs := map[string]bool{}
				for _, o := range append([]string{e.Org}, e.RecordOrgs...) {
					if o != "" && !orgs[o] {
						orgs[o] = true
						rs.orgs = append(rs.orgs, []any{o, at, int64(idx)})
					}
				}
				recs := map[string]bool{}
				for _, r := range e.Records {
					if !recs[r] {
						recs[r] = true
						rs.rec = append(rs.rec, []any{r, int64(idx)})
					}
				}
			}
			select {
			case next <- rs:
			case <-gctx.Done():
				return
			}
		}
	}()
	t0, start := time.Now(), size
	for rs := range next {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			for _, c := range []struct {
				table string
				cols  []string
				rows  [][]any
			}{
				{"audit_entries", []string{"idx", "leaf", "event_time", "request_id", "org", "principal", "device", "decision", "record_orgs", "records"}, rs.entries},
				{"audit_orgs", []string{"org", "event_time", "idx"}, rs.orgs},
				{"audit_records", []string{"record", "idx"}, rs.rec},
			} {
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
					return fmt.Errorf("copy into %s: %w", c.table, err)
				}
			}
			tag, err := tx.Exec(ctx, `UPDATE audit_head SET size = $1 WHERE one AND size = $2`, int64(rs.to), int64(rs.from))
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("audit_head is not at %d", rs.from)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if rs.to%5_000_000 == 0 || rs.to == n {
			fmt.Fprintf(os.Stderr, "%s copied %d events (%.0f events/s)\n", time.Now().UTC().Format(time.TimeOnly), rs.to, float64(rs.to-start)/time.Since(t0).Seconds())
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	// Build the dropped indexes again, primary keys as constraints.
	q := `SELECT name, tbl, def, pkey FROM bench_dropped_indexes ORDER BY name`
	if lean {
		q = `SELECT name, tbl, def, pkey FROM bench_dropped_indexes WHERE name = 'audit_by_principal'`
	}
	rows, err := pool.Query(ctx, q)
	if err != nil {
		return err
	}
	type ixdef struct {
		name, tbl, def string
		pkey           bool
	}
	defs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ixdef, error) {
		var x ixdef
		return x, r.Scan(&x.name, &x.tbl, &x.def, &x.pkey)
	})
	if err != nil {
		return err
	}
	for _, x := range defs {
		t1 := time.Now()
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		err = func() error {
			defer conn.Release()
			if _, err := conn.Exec(ctx, `SET maintenance_work_mem = '1GB'`); err != nil {
				return err
			}
			var exists bool
			if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = $1)`, x.name).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				if _, err := conn.Exec(ctx, x.def); err != nil {
					return fmt.Errorf("%s: %w", x.def, err)
				}
			}
			if x.pkey {
				if _, err := conn.Exec(ctx, `ALTER TABLE `+pgx.Identifier{x.tbl}.Sanitize()+` ADD CONSTRAINT `+pgx.Identifier{x.name}.Sanitize()+` PRIMARY KEY USING INDEX `+pgx.Identifier{x.name}.Sanitize()); err != nil {
					return err
				}
			}
			_, err := conn.Exec(ctx, `DELETE FROM bench_dropped_indexes WHERE name = $1`, x.name)
			return err
		}()
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s built %s in %s\n", time.Now().UTC().Format(time.TimeOnly), x.name, time.Since(t1).Round(time.Second))
	}
	if len(defs) > 0 || size < n {
		t1 := time.Now()
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE audit_entries, audit_orgs, audit_records`); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s vacuum analyze in %s\n", time.Now().UTC().Format(time.TimeOnly), time.Since(t1).Round(time.Second))
	}
	return nil
}

func nonNilS(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
