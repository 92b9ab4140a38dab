package postgres

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho"
)

var (
	entryColumns = []string{"idx", "leaf", "event_time", "request_id", "org", "principal", "device", "decision", "record_orgs", "records"}
	nodeColumns  = []string{"level", "idx", "hash"}
)

// AppendAudit implements sekisho.AuditStore. The batch is checked to be
// consecutive; then one UPDATE moves audit_head from the first index to the
// new size, which matches no row if another writer appended first (EConflict),
// and the rows are copied in within the same transaction.
func (s *Store) AppendAudit(ctx context.Context, entries []sekisho.AuditEntry, nodes []sekisho.AuditNode) error {
	if len(entries) == 0 && len(nodes) == 0 {
		return nil
	}
	for i, e := range entries {
		if e.Index != entries[0].Index+uint64(i) {
			return sekisho.Errorf(sekisho.EConflict, "audit batch is not consecutive: entry %d has index %d, want %d", i, e.Index, entries[0].Index+uint64(i))
		}
	}
	if len(entries) > 0 && entries[len(entries)-1].Index >= math.MaxInt64 {
		return sekisho.Errorf(sekisho.EInvalid, "audit index %d is out of range", entries[len(entries)-1].Index)
	}
	rows := make([][]any, len(entries))
	var orgRows, recordRows [][]any
	for i, e := range entries {
		idx, at := int64(e.Index), ts(e.Time)
		leaf := e.Leaf
		if leaf == nil {
			leaf = []byte{}
		}
		rows[i] = []any{idx, leaf, at, e.RequestID, e.Org, e.Principal, e.Device, e.Decision, nonNil(e.RecordOrgs), nonNil(e.Records)}
		// audit_orgs and audit_records hold each value once per entry.
		orgs := map[string]bool{}
		for _, o := range append([]string{e.Org}, e.RecordOrgs...) {
			if o != "" && !orgs[o] {
				orgs[o] = true
				orgRows = append(orgRows, []any{o, at, idx})
			}
		}
		recs := map[string]bool{}
		for _, r := range e.Records {
			if !recs[r] {
				recs[r] = true
				recordRows = append(recordRows, []any{r, idx})
			}
		}
	}
	nodeRows := make([][]any, len(nodes))
	for i, n := range nodes {
		nodeRows[i] = []any{int32(n.Level), int64(n.Index), n.Hash}
	}
	err := s.appendRows(ctx, entries, rows, orgRows, recordRows, nodes, nodeRows)
	if noPartition(err) {
		// An event in a month without its partition (the first append of a
		// month the store did not prepare): nothing was written.
		if err := s.prepareEntryMonths(ctx, entries); err != nil {
			return err
		}
		err = s.appendRows(ctx, entries, rows, orgRows, recordRows, nodes, nodeRows)
	}
	return err
}

func (s *Store) appendRows(ctx context.Context, entries []sekisho.AuditEntry, rows, orgRows, recordRows [][]any, nodes []sekisho.AuditNode, nodeRows [][]any) error {
	if len(entries) > 0 && len(rows)+len(orgRows)+len(recordRows)+len(nodeRows) <= maxOneStatement {
		return s.appendOne(ctx, entries, orgRows, recordRows, nodes)
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if len(entries) > 0 {
			first := int64(entries[0].Index)
			tag, err := tx.Exec(ctx, `UPDATE audit_head SET size = $1 WHERE one AND size = $2`, first+int64(len(entries)), first)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return sekisho.Errorf(sekisho.EConflict, "audit append at index %d, but the log has another size", first)
			}
		}
		for _, c := range []struct {
			table string
			cols  []string
			rows  [][]any
		}{
			{"audit_entries", entryColumns, rows},
			{"audit_orgs", []string{"org", "event_time", "idx"}, orgRows},
			{"audit_records", []string{"record", "idx"}, recordRows},
			{"audit_nodes", nodeColumns, nodeRows},
		} {
			if len(c.rows) == 0 {
				continue
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
				return fmt.Errorf("copy into %s: %w", c.table, err)
			}
		}
		return nil
	})
	return wrap(err, "audit entries or nodes exist already", "append audit")
}

// maxOneStatement is the most rows (entries, org and record rows, nodes) an
// append writes in one statement; larger appends (imports) COPY in a
// transaction.
const maxOneStatement = 2000

// appendAuditOne is an append in one statement, one round trip and one
// commit: the hot read's group commit. The head moves first (no row when
// another writer appended first: nothing else is written, EConflict), and
// each insert takes its rows only if it did.
const appendAuditOne = `WITH h AS (
	UPDATE audit_head SET size = $1 WHERE one AND size = $2 RETURNING size
), e AS (
	INSERT INTO audit_entries (idx, leaf, event_time, request_id, org, principal, device, decision, record_orgs, records)
	SELECT u.idx, u.leaf, u.t, u.rid, u.org, u.p, u.d, u.dec, u.ro::text[], u.rs::text[]
	FROM unnest($3::bigint[], $4::bytea[], $5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
		AS u(idx, leaf, t, rid, org, p, d, dec, ro, rs)
	WHERE EXISTS (SELECT 1 FROM h)
), o AS (
	INSERT INTO audit_orgs (org, event_time, idx)
	SELECT * FROM unnest($13::text[], $14::timestamptz[], $15::bigint[]) WHERE EXISTS (SELECT 1 FROM h)
), r AS (
	INSERT INTO audit_records (record, idx)
	SELECT * FROM unnest($16::text[], $17::bigint[]) WHERE EXISTS (SELECT 1 FROM h)
), n AS (
	INSERT INTO audit_nodes (level, idx, hash)
	SELECT * FROM unnest($18::int[], $19::bigint[], $20::bytea[]) WHERE EXISTS (SELECT 1 FROM h)
)
SELECT count(*) FROM h`

func (s *Store) appendOne(ctx context.Context, entries []sekisho.AuditEntry, orgRows, recordRows [][]any, nodes []sekisho.AuditNode) error {
	k := len(entries)
	idx, leaf, at := make([]int64, k), make([][]byte, k), make([]time.Time, k)
	rid, org, p, d, dec, ro, rs := make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k)
	for i, e := range entries {
		idx[i], leaf[i], at[i] = int64(e.Index), e.Leaf, ts(e.Time)
		if leaf[i] == nil {
			leaf[i] = []byte{}
		}
		rid[i], org[i], p[i], d[i], dec[i] = e.RequestID, e.Org, e.Principal, e.Device, e.Decision
		ro[i], rs[i] = arrayLiteral(e.RecordOrgs), arrayLiteral(e.Records)
	}
	oOrg, oAt, oIdx := make([]string, len(orgRows)), make([]time.Time, len(orgRows)), make([]int64, len(orgRows))
	for i, r := range orgRows {
		oOrg[i], oAt[i], oIdx[i] = r[0].(string), r[1].(time.Time), r[2].(int64)
	}
	rRec, rIdx := make([]string, len(recordRows)), make([]int64, len(recordRows))
	for i, r := range recordRows {
		rRec[i], rIdx[i] = r[0].(string), r[1].(int64)
	}
	nLevel, nIdx, nHash := make([]int32, len(nodes)), make([]int64, len(nodes)), make([][]byte, len(nodes))
	for i, n := range nodes {
		nLevel[i], nIdx[i], nHash[i] = int32(n.Level), int64(n.Index), n.Hash
	}
	first := int64(entries[0].Index)
	var moved int64
	err := s.pool.QueryRow(ctx, appendAuditOne, first+int64(k), first,
		idx, leaf, at, rid, org, p, d, dec, ro, rs, oOrg, oAt, oIdx, rRec, rIdx, nLevel, nIdx, nHash).Scan(&moved)
	if err != nil {
		return wrap(err, "audit entries or nodes exist already", "append audit")
	}
	if moved == 0 {
		return sekisho.Errorf(sekisho.EConflict, "audit append at index %d, but the log has another size", first)
	}
	return nil
}

// arrayLiteral writes ss as a PostgreSQL array literal ({"a","b"}), each
// element quoted, so that unnest of a text[] of literals can be cast back
// to one text[] per row.
func arrayLiteral(ss []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for _, c := range []byte(s) {
			if c == '"' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// querier is what the audit reads need: the pool, or the transaction of a
// Snapshot.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// AuditSize implements sekisho.AuditStore.
func (s *Store) AuditSize(ctx context.Context) (uint64, error) { return auditSize(ctx, s.pool) }

func auditSize(ctx context.Context, q querier) (uint64, error) {
	var n int64
	if err := q.QueryRow(ctx, `SELECT size FROM audit_head WHERE one`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: audit size: %w", err)
	}
	return uint64(n), nil
}

const entrySelect = `SELECT e.idx, e.leaf, e.event_time, e.request_id, e.org, e.principal, e.device, e.decision, e.record_orgs, e.records FROM audit_entries e`

func scanEntry(row pgx.CollectableRow) (sekisho.AuditEntry, error) {
	var e sekisho.AuditEntry
	var idx int64
	var at time.Time
	err := row.Scan(&idx, &e.Leaf, &at, &e.RequestID, &e.Org, &e.Principal, &e.Device, &e.Decision, &e.RecordOrgs, &e.Records)
	e.Index, e.Time = uint64(idx), at.UTC()
	return e, err
}

func (s *Store) entries(ctx context.Context, query string, args ...any) ([]sekisho.AuditEntry, error) {
	return entries(ctx, s.pool, query, args...)
}

func entries(ctx context.Context, q querier, query string, args ...any) ([]sekisho.AuditEntry, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: read audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanEntry)
	if err != nil {
		return nil, fmt.Errorf("postgres: read audit: %w", err)
	}
	return out, nil
}

// clampIndex converts an index for a BIGINT comparison.
func clampIndex(i uint64) int64 {
	if i > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(i)
}

// AuditLeaves implements sekisho.AuditStore.
func (s *Store) AuditLeaves(ctx context.Context, from uint64, limit int) ([]sekisho.AuditEntry, error) {
	return auditLeaves(ctx, s.pool, from, limit)
}

func auditLeaves(ctx context.Context, q querier, from uint64, limit int) ([]sekisho.AuditEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	return entries(ctx, q, entrySelect+` WHERE e.idx >= $1 ORDER BY e.idx LIMIT $2`, clampIndex(from), limit)
}

// AuditRefs implements sekisho.AuditRefLister.
func (s *Store) AuditRefs(ctx context.Context, from uint64, limit int) ([]sekisho.AuditRef, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT idx, request_id FROM audit_entries WHERE idx >= $1 ORDER BY idx LIMIT $2`, clampIndex(from), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: audit refs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sekisho.AuditRef, error) {
		var idx int64
		var r sekisho.AuditRef
		err := row.Scan(&idx, &r.RequestID)
		r.Index = uint64(idx)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: audit refs: %w", err)
	}
	return out, nil
}

// QueryAudit implements sekisho.AuditStore. Filters combine with AND; the
// time range is Since <= Time < Until; Limit 0 is no limit; results are in
// index order. Org and Record go through audit_orgs and audit_records, so
// they use an index whatever else is asked.
func (s *Store) QueryAudit(ctx context.Context, f sekisho.AuditFilter) ([]sekisho.AuditEntry, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var since, until time.Time
	if !f.Since.IsZero() {
		since = ts(f.Since)
		where = append(where, "e.event_time >= "+arg(since))
	}
	if !f.Until.IsZero() {
		until = ts(f.Until)
		where = append(where, "e.event_time < "+arg(until))
	}
	if f.From > 0 {
		where = append(where, "e.idx >= "+arg(clampIndex(f.From)))
	}
	for _, c := range []struct{ col, v string }{
		{"e.principal", f.Principal},
		{"e.device", f.Device},
		{"e.request_id", f.RequestID},
		{"e.decision", f.Decision},
	} {
		if c.v != "" {
			where = append(where, c.col+" = "+arg(c.v))
		}
	}
	if f.Org != "" {
		// With the event's time, each idx is looked up in the partition of
		// its month only.
		sub := "SELECT o.idx, o.event_time FROM audit_orgs o WHERE o.org = " + arg(f.Org)
		if !since.IsZero() {
			sub += " AND o.event_time >= " + arg(since)
		}
		if !until.IsZero() {
			sub += " AND o.event_time < " + arg(until)
		}
		if f.From > 0 {
			sub += " AND o.idx >= " + arg(clampIndex(f.From))
		}
		where = append(where, "(e.idx, e.event_time) IN ("+sub+")")
	}
	if f.Record != "" {
		sub := "SELECT r.idx FROM audit_records r WHERE r.record = " + arg(f.Record)
		if f.From > 0 {
			sub += " AND r.idx >= " + arg(clampIndex(f.From))
		}
		where = append(where, "e.idx IN ("+sub+")")
	}
	q := entrySelect
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY e.idx"
	if f.Limit > 0 {
		q += " LIMIT " + arg(f.Limit)
	}
	return s.entries(ctx, q, args...)
}

// AuditNodeRange implements sekisho.AuditStore: the hashes of one level's
// nodes from <= idx < to in one query (nil where none is stored).
func (s *Store) AuditNodeRange(ctx context.Context, level uint, from, to uint64) ([][]byte, error) {
	return auditNodeRange(ctx, s.pool, level, from, to)
}

func auditNodeRange(ctx context.Context, q querier, level uint, from, to uint64) ([][]byte, error) {
	if to < from {
		return nil, sekisho.Errorf(sekisho.EInvalid, "audit node range %d to %d", from, to)
	}
	out := make([][]byte, to-from)
	rows, err := q.Query(ctx, `SELECT idx, hash FROM audit_nodes WHERE level = $1 AND idx >= $2 AND idx < $3`,
		int32(level), clampIndex(from), clampIndex(to))
	if err != nil {
		return nil, fmt.Errorf("postgres: audit nodes: %w", err)
	}
	var idx int64
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&idx, &h}, func() error {
		out[uint64(idx)-from] = h
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: audit nodes: %w", err)
	}
	return out, nil
}

// AuditNodes implements sekisho.AuditStore: the hashes in the order asked,
// ENotFound if one is missing.
func (s *Store) AuditNodes(ctx context.Context, ids []sekisho.AuditNode) ([][]byte, error) {
	return auditNodes(ctx, s.pool, ids)
}

func auditNodes(ctx context.Context, q querier, ids []sekisho.AuditNode) ([][]byte, error) {
	if len(ids) == 0 {
		return [][]byte{}, nil
	}
	levels := make([]int32, len(ids))
	idxs := make([]int64, len(ids))
	for i, n := range ids {
		levels[i], idxs[i] = int32(n.Level), clampIndex(n.Index)
	}
	rows, err := q.Query(ctx, `SELECT n.level, n.idx, n.hash FROM audit_nodes n
		JOIN unnest($1::INT[], $2::BIGINT[]) AS want (level, idx) ON n.level = want.level AND n.idx = want.idx`, levels, idxs)
	if err != nil {
		return nil, fmt.Errorf("postgres: audit nodes: %w", err)
	}
	type key struct {
		level int32
		idx   int64
	}
	found := map[key][]byte{}
	var k key
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&k.level, &k.idx, &h}, func() error {
		found[k] = h
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: audit nodes: %w", err)
	}
	out := make([][]byte, len(ids))
	for i := range ids {
		h, ok := found[key{levels[i], idxs[i]}]
		if !ok {
			return nil, sekisho.Errorf(sekisho.ENotFound, "audit node at level %d index %d is not stored", ids[i].Level, ids[i].Index)
		}
		out[i] = h
	}
	return out, nil
}

// PutCheckpoint implements sekisho.AuditStore; a second checkpoint of the
// same size is EConflict.
func (s *Store) PutCheckpoint(ctx context.Context, c sekisho.Checkpoint) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO audit_checkpoints (size, note, signed_at) VALUES ($1, $2, $3)`, clampIndex(c.Size), c.Note, ts(c.Time))
	return wrap(err, fmt.Sprintf("a checkpoint of size %d exists", c.Size), "put checkpoint")
}

// Checkpoints implements sekisho.AuditStore.
func (s *Store) Checkpoints(ctx context.Context) ([]sekisho.Checkpoint, error) {
	return checkpoints(ctx, s.pool)
}

func checkpoints(ctx context.Context, q querier) ([]sekisho.Checkpoint, error) {
	rows, err := q.Query(ctx, `SELECT size, note, signed_at FROM audit_checkpoints ORDER BY size`)
	if err != nil {
		return nil, fmt.Errorf("postgres: checkpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sekisho.Checkpoint, error) {
		var c sekisho.Checkpoint
		var size int64
		var at time.Time
		err := row.Scan(&size, &c.Note, &at)
		c.Size, c.Time = uint64(size), at.UTC()
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: checkpoints: %w", err)
	}
	return out, nil
}
