package postgres

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/internal/pgtest"
	"github.com/sekisho/sekisho/storetest"
)

// partitionsOf maps each audit index to the table that holds its row.
func partitionsOf(t *testing.T, pool *pgxpool.Pool) map[int64]string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT e.idx, c.relname::text FROM audit_entries e JOIN pg_class c ON c.oid = e.tableoid`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]string{}
	var idx int64
	var part string
	if _, err := pgx.ForEachRow(rows, []any{&idx, &part}, func() error { out[idx] = part; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func partitionNames(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'audit_entries'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func sameEntries(t *testing.T, what string, got, want []sekisho.AuditEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Index != w.Index || !bytes.Equal(g.Leaf, w.Leaf) || !g.Time.Equal(w.Time) || g.Principal != w.Principal ||
			g.Org != w.Org || !slices.Equal(g.Records, w.Records) || !slices.Equal(g.RecordOrgs, w.RecordOrgs) {
			t.Fatalf("%s: entry %d = %+v, want %+v", what, i, g, w)
		}
	}
}

// A log written before migration 4 (audit_entries a plain table) keeps
// every event, readable by index, principal, org and record; it becomes
// the partition audit_entries_before up to the month after its latest
// event, and later months get partitions of their own.
func TestMigratePartitionsAuditLog(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	// The database as version 3 left it, with 12 events: 0-5 in March
	// 2024, 6-11 in May, three principals.
	pool := databaseAt(t, dsn, 3)
	old := storetest.Entries(0, 12)
	may := time.Date(2024, 5, 20, 8, 0, 0, 0, time.UTC)
	for i := range old {
		old[i].Principal = []string{"alice", "bob", "carol"}[i%3]
		old[i].RecordOrgs = []string{"acme", "globex"}
		if i >= 6 {
			old[i].Time = may.Add(time.Duration(i) * time.Minute)
		}
		e := old[i]
		if _, err := pool.Exec(ctx, `INSERT INTO audit_entries (idx, leaf, event_time, request_id, org, principal, device, decision, record_orgs, records)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			int64(e.Index), e.Leaf, e.Time, e.RequestID, e.Org, e.Principal, e.Device, e.Decision, e.RecordOrgs, e.Records); err != nil {
			t.Fatal(err)
		}
		for _, o := range []string{"acme", "globex"} {
			if _, err := pool.Exec(ctx, `INSERT INTO audit_orgs (org, event_time, idx) VALUES ($1, $2, $3)`, o, e.Time, int64(e.Index)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := pool.Exec(ctx, `INSERT INTO audit_records (record, idx) VALUES ($1, $2)`, e.Records[0], int64(e.Index)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE audit_head SET size = 12`); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open (migration 4): %v", err)
	}
	defer s.Close()
	var kind string
	if err := pool.QueryRow(ctx, `SELECT relkind::text FROM pg_class WHERE relname = 'audit_entries'`).Scan(&kind); err != nil || kind != "p" {
		t.Fatalf("audit_entries relkind = %q (%v), want p (partitioned)", kind, err)
	}
	got, err := s.AuditLeaves(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, "AuditLeaves after the migration", got, old)
	byPrincipal, err := s.QueryAudit(ctx, sekisho.AuditFilter{Principal: "bob", Since: may, Until: may.AddDate(0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, "bob's events in May", byPrincipal, []sekisho.AuditEntry{old[7], old[10]})
	byOrg, err := s.QueryAudit(ctx, sekisho.AuditFilter{Org: "globex", From: 4, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, "globex's events from 4", byOrg, old[4:7])
	byRecord, err := s.QueryAudit(ctx, sekisho.AuditFilter{Record: old[9].Records[0]})
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, "the events of record r9", byRecord, old[9:10])

	// The last instant of May is in the old table; June has its own.
	june := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	more := storetest.Entries(12, 2)
	more[0].Time, more[1].Time = june.Add(-time.Microsecond), june
	if err := s.AppendAudit(ctx, more, nil); err != nil {
		t.Fatalf("append across the cutover: %v", err)
	}
	parts := partitionsOf(t, pool)
	for idx := int64(0); idx <= 12; idx++ {
		if parts[idx] != beforePartition {
			t.Errorf("event %d is in %q, want %s", idx, parts[idx], beforePartition)
		}
	}
	if parts[13] != "audit_entries_2024_06" {
		t.Errorf("event 13 (June 1st, 00:00 UTC) is in %q, want audit_entries_2024_06", parts[13])
	}
	// idx is no longer unique by a constraint of its own (the primary key
	// holds event_time): the head's compare-and-set still refuses an
	// append at an index the log has, in another month than the first.
	again := storetest.Entries(5, 1)
	again[0].Time = time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	if err := s.AppendAudit(ctx, again, nil); sekisho.Code(err) != sekisho.EConflict {
		t.Fatalf("append at index 5 again = %v, want EConflict", err)
	}
	if n := len(partitionsOf(t, pool)); n != 14 {
		t.Fatalf("the log holds %d rows after a refused append, want 14", n)
	}
}

// The usual case: a log in use is migrated, so audit_entries_before holds
// this month. Open (on every node, at every restart) leaves this month to
// it and makes the next; the bound is right whatever the session's
// DateStyle and TimeZone (a zone abbreviation such as IST reads back as
// another zone's offset).
func TestMigrateLiveLog(t *testing.T) {
	base := pgtest.DSN(t)
	dsn := base + "&TimeZone=Asia/Kolkata&DateStyle=SQL,DMY"
	ctx := t.Context()
	pool := databaseAt(t, dsn, 3)
	started := time.Now().UTC()
	this := monthStart(started)
	next := this.AddDate(0, 1, 0)
	e := storetest.NewEntry(0)
	e.Time = started.Truncate(time.Microsecond)
	if _, err := pool.Exec(ctx, `INSERT INTO audit_entries (idx, leaf, event_time, request_id, org, principal, device, decision, record_orgs, records)
		VALUES (0, $1, $2, 'r', 'acme', 'alice', 'd', 'allow', '{}', '{}')`, e.Leaf, e.Time); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE audit_head SET size = 1`); err != nil {
		t.Fatal(err)
	}
	for node := range 2 {
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatalf("node %d: Open of a log in use, migrated this month: %v", node, err)
		}
		s.Close()
	}
	s, err := Open(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !monthStart(time.Now()).Equal(this) {
		t.Skip("a month began during the test")
	}
	if names := partitionNames(t, s.pool); !slices.Equal(names, []string{partitionName(next), beforePartition}) {
		t.Fatalf("partitions = %v, want %s and %s", names, partitionName(next), beforePartition)
	}
	last, first := storetest.Entries(1, 2), next
	last[0].Time, last[1].Time = next.Add(-time.Microsecond), first
	if err := s.AppendAudit(ctx, last, nil); err != nil {
		t.Fatal(err)
	}
	parts := partitionsOf(t, s.pool)
	if want := map[int64]string{0: beforePartition, 1: beforePartition, 2: partitionName(next)}; !maps.Equal(parts, want) {
		t.Fatalf("events are in %v, want %v", parts, want)
	}
}

// A log made on version 4 has no audit_entries_before: every month has its
// own partition, this month's and the next made by Open, others by the
// first append into them.
func TestAuditMonthPartitions(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	before := monthStart(time.Now())
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := monthStart(time.Now())
	if !now.Equal(before) {
		t.Skip("a month began while the store opened")
	}
	names := partitionNames(t, s.pool)
	want := []string{partitionName(now), partitionName(now.AddDate(0, 1, 0))}
	if !slices.Equal(names, want) {
		t.Fatalf("partitions after Open = %v, want %v", names, want)
	}
	es := storetest.Entries(0, 5) // storetest.At: March 2024
	es[2].Time = time.Date(2019, 12, 31, 23, 59, 59, 999999000, time.UTC)
	es[3].Time = time.Date(0, 5, 17, 12, 0, 0, 0, time.UTC)   // 1 BC
	es[4].Time = time.Date(-44, 3, 15, 12, 0, 0, 0, time.UTC) // 45 BC
	if err := s.AppendAudit(ctx, es, nil); err != nil {
		t.Fatalf("append into months without partitions: %v", err)
	}
	parts := partitionsOf(t, s.pool)
	wantParts := map[int64]string{0: "audit_entries_2024_03", 1: "audit_entries_2024_03", 2: "audit_entries_2019_12", 3: "audit_entries_0000_05", 4: "audit_entries_-044_03"}
	if !maps.Equal(parts, wantParts) {
		t.Fatalf("events are in %v, want %v", parts, wantParts)
	}
	back, err := s.AuditLeaves(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, "events of years 2024, 2019, 0 and -44", back, es)

	// An append too large for one statement (a COPY in a transaction)
	// into three months without partitions is written once.
	big := storetest.Entries(5, 2100)
	for i := range big {
		big[i].Time = time.Date(2033, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
	}
	if err := s.AppendAudit(ctx, big, nil); err != nil {
		t.Fatalf("a COPY into months without partitions: %v", err)
	}
	var rows, orgRows int64
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM audit_entries WHERE idx >= 5), (SELECT count(*) FROM audit_orgs WHERE idx >= 5)`).Scan(&rows, &orgRows); err != nil {
		t.Fatal(err)
	}
	if rows != 2100 || orgRows != 2100 {
		t.Fatalf("after the COPY: %d rows and %d org rows, want 2100 each", rows, orgRows)
	}
	names = partitionNames(t, s.pool)
	for _, n := range []string{"audit_entries_2033_01", "audit_entries_2033_02", "audit_entries_2033_03"} {
		if !slices.Contains(names, n) {
			t.Errorf("no partition %s after the COPY: %v", n, names)
		}
	}
	if err := s.PrepareAuditMonths(ctx, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 12, 1, 0, 0, 0, 0, time.UTC)); sekisho.Code(err) != sekisho.EInvalid {
		t.Fatalf("PrepareAuditMonths with the end first = %v, want EInvalid", err)
	}
	if err := s.PrepareAuditMonths(ctx, time.Date(2024, 11, 30, 0, 0, 0, 0, time.UTC), time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	names = partitionNames(t, s.pool)
	for _, n := range []string{"audit_entries_2024_11", "audit_entries_2024_12", "audit_entries_2025_01", "audit_entries_2025_02"} {
		if !slices.Contains(names, n) {
			t.Errorf("after PrepareAuditMonths(2024-11-30, 2025-02-01) the partitions are %v: no %s", names, n)
		}
	}
}

// Two stores (two nodes) append into the same two months without
// partitions at once: both make the partitions, neither fails, and every
// event is in its month's partition.
func TestAuditAppendsIntoNewMonthsFromTwoNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	var nodes [2]*Store
	for i := range nodes {
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		nodes[i] = s
	}
	jan := time.Date(2031, 1, 31, 23, 59, 0, 0, time.UTC)
	const each = 15
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for n, s := range nodes {
		wg.Go(func() {
			for done := 0; done < each; {
				size, err := s.AuditSize(ctx)
				if err != nil {
					errs[n] = err
					return
				}
				e := storetest.NewEntry(size)
				e.Time = jan.Add(time.Duration(size) * 10 * time.Second) // crosses into February
				e.Principal = fmt.Sprintf("node-%d", n)
				switch err := s.AppendAudit(ctx, []sekisho.AuditEntry{e}, nil); {
				case sekisho.Code(err) == sekisho.EConflict:
				case err != nil:
					errs[n] = err
					return
				default:
					done++
				}
			}
		})
	}
	wg.Wait()
	for n, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", n, err)
		}
	}
	parts := partitionsOf(t, nodes[0].pool)
	if len(parts) != 2*each {
		t.Fatalf("%d events, want %d", len(parts), 2*each)
	}
	for idx, p := range parts {
		want := partitionName(monthStart(jan.Add(time.Duration(idx) * 10 * time.Second)))
		if p != want {
			t.Errorf("event %d is in %s, want %s", idx, p, want)
		}
	}
	if got := partitionNames(t, nodes[0].pool); !slices.Contains(got, "audit_entries_2031_01") || !slices.Contains(got, "audit_entries_2031_02") {
		t.Fatalf("partitions %v", got)
	}
}

// physicalPrincipals returns the principals of a partition's rows in the
// order they lie in its heap.
func physicalPrincipals(t *testing.T, pool *pgxpool.Pool, part string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT principal FROM `+pgx.Identifier{part}.Sanitize()+` ORDER BY ctid`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ClusterAuditMonth puts a closed month's rows in principal order and
// changes nothing else: the log verifies against its signed checkpoint,
// every leaf and every query answer is the same. An open month, a month
// that ended less than an hour ago and a month without a partition are
// refused.
func TestClusterAuditMonth(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	skey, vkey, err := audit.GenerateKey("cluster.test/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := noteKeys(t, skey, vkey)
	clock := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	log, err := audit.New(ctx, s, signer, audit.Options{Origin: "cluster.test/log", Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	var evs []sekisho.Event
	for i := range 600 {
		evs = append(evs, sekisho.Event{
			Time: clock.Add(time.Duration(i) * time.Hour), RequestID: fmt.Sprintf("req-%d", i), Org: "acme",
			Principal: fmt.Sprintf("p%d", i%7), Action: "read", Collection: "users",
			Records: []string{fmt.Sprintf("u%d", i)}, RecordOrgs: []string{"acme"}, Decision: "allow",
		})
	}
	for b := 0; b < len(evs); b += 100 {
		if _, err := log.AppendBatch(ctx, evs[b:b+100]); err != nil {
			t.Fatal(err)
		}
	}
	clock = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	if _, err := log.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	march := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	before := physicalPrincipals(t, s.pool, "audit_entries_2024_03")
	if len(before) != 600 || slices.IsSorted(before) {
		t.Fatalf("control: March's %d rows are in principal order before the clustering", len(before))
	}
	leaves, err := s.AuditLeaves(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	p3, err := s.QueryAudit(ctx, sekisho.AuditFilter{Principal: "p3", Since: march.AddDate(0, 0, 7), Until: march.AddDate(0, 0, 14)})
	if err != nil || len(p3) == 0 {
		t.Fatalf("p3's second week of March: %d events, %v", len(p3), err)
	}

	for _, c := range []struct {
		name       string
		month, now time.Time
		code       sekisho.ErrorCode
	}{
		{"this month", clock, clock.Add(24 * time.Hour), sekisho.EInvalid},
		{"ended 30 minutes ago", march, march.AddDate(0, 1, 0).Add(30 * time.Minute), sekisho.EInvalid},
		{"no partition", time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), time.Now(), sekisho.ENotFound},
	} {
		if _, err := s.ClusterAuditMonth(ctx, c.month, c.now); sekisho.Code(err) != c.code {
			t.Errorf("%s: ClusterAuditMonth = %v, want %s", c.name, err, c.code)
		}
	}
	if got := physicalPrincipals(t, s.pool, "audit_entries_2024_03"); !slices.Equal(got, before) {
		t.Fatal("a refused clustering moved rows")
	}

	res, err := s.ClusterAuditMonth(ctx, march.AddDate(0, 0, 12), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Partition != "audit_entries_2024_03" || res.Events != int64(len(before)) || res.Bytes <= 0 {
		t.Fatalf("ClusterAuditMonth = %+v, want audit_entries_2024_03 with %d events", res, len(before))
	}
	after := physicalPrincipals(t, s.pool, "audit_entries_2024_03")
	if !slices.IsSorted(after) || len(after) != len(before) {
		t.Fatalf("after the clustering March's rows are not in principal order: %v", after[:20])
	}
	rep, err := audit.Verify(ctx, s, mustVerifier(t, vkey), nil)
	if err != nil || !rep.OK || rep.Size != 600 {
		t.Fatalf("audit.Verify after the clustering: %+v, %v", rep, err)
	}
	leaves2, err := s.AuditLeaves(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, "AuditLeaves after the clustering", leaves2, leaves)
	p3again, err := s.QueryAudit(ctx, sekisho.AuditFilter{Principal: "p3", Since: march.AddDate(0, 0, 7), Until: march.AddDate(0, 0, 14)})
	if err != nil {
		t.Fatal(err)
	}
	sameEntries(t, "p3's week after the clustering", p3again, p3)
}

func noteKeys(t *testing.T, skey, vkey string) (note.Signer, note.Verifier) {
	t.Helper()
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return signer, mustVerifier(t, vkey)
}

func mustVerifier(t *testing.T, vkey string) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
