package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/mattn/go-sqlite3"
	"github.com/sekisho/sekisho"
)

// OpenReadOnly opens an existing database at path for reading only, for the
// audit readers (sekisho audit verify, events, checkpoint) that must run
// beside a server holding the data directory. It takes no lock and writes
// nothing: the connections are opened with mode=ro, so any write fails, and
// WAL mode lets them read while the server commits. It refuses a database
// that does not exist or whose schema is not this binary's.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_busy_timeout", "10000")
	db := sql.OpenDB(connector{dsn: "file:" + path + "?" + q.Encode(), d: &sqlite3.SQLiteDriver{ConnectHook: attachIndex(auditIndexPath(path))}})
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: read schema version: %w", path, err)
	}
	if v != len(migrations) {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: database schema version %d, this binary reads %d (start sekisho serve once to migrate)", path, v, len(migrations))
	}
	// w and r are the same pool; Close closes it once (sql.DB.Close is
	// idempotent).
	return &Store{w: db, r: db}, nil
}

// AppendAudit implements sekisho.AuditStore. The check of the current size
// and the inserts run in one IMMEDIATE transaction, so two writers cannot
// both append at the same index. Rows go in with multi-row INSERTs
// (auditInsert): a group of hot-read events is a few statements, not one
// per event, each a call into SQLite with its own binding.
func (s *Store) AppendAudit(ctx context.Context, entries []sekisho.AuditEntry, nodes []sekisho.AuditNode) error {
	if len(entries) == 0 && len(nodes) == 0 {
		return nil
	}
	// The record ids and record orgs of an event go into the log row
	// (records, record_orgs); their indexes, audit_records and
	// audit_record_orgs, are kept by the audit indexer (auditindex.go).
	ev := make([]any, 0, 10*len(entries))
	for _, e := range entries {
		ev = append(ev, int64(e.Index), e.Leaf, micros(e.Time), e.RequestID, e.Org, e.Principal, e.Device, e.Decision, jsonList(e.Records), jsonList(e.RecordOrgs))
	}
	nd := make([]any, 0, 3*len(nodes))
	low := make([]any, 0, 3*len(nodes))
	for _, n := range nodes {
		if end, ok := auditLowNode(n.Level, n.Index); ok {
			low = append(low, end, n.Level, n.Hash)
			continue
		}
		nd = append(nd, n.Level, int64(n.Index), n.Hash)
	}
	// Prepared before the transaction: the writer pool has one connection,
	// which the transaction holds.
	ins := [...]*auditInsert{
		{q: &auditEventsInsert, args: ev, what: "append audit"},
		{q: &auditNodesInsert, args: nd, what: "append audit nodes"},
		{q: &auditLowNodesInsert, args: low, what: "append audit nodes"},
	}
	for _, in := range ins {
		if err := in.prepare(ctx, s); err != nil {
			return err
		}
	}
	sizeP, err := s.prep(ctx, s.w, `SELECT COALESCE(MAX(idx)+1, 0) FROM audit_events`)
	if err != nil {
		return err
	}
	return s.grouped(ctx, func(tx *sql.Tx) error {
		var size uint64
		if err := tx.StmtContext(ctx, sizeP).QueryRowContext(ctx).Scan(&size); err != nil {
			return fmt.Errorf("sqlite: audit size: %w", err)
		}
		for i, e := range entries {
			if e.Index != size+uint64(i) {
				return sekisho.Errorf(sekisho.EConflict, "audit append at index %d, but the log has %d entries", e.Index, size+uint64(i))
			}
		}
		for i, in := range ins {
			if err := in.exec(ctx, tx); err != nil {
				if i == 0 && isUnique(err) {
					return sekisho.Errorf(sekisho.EConflict, "audit index %d or after exists", entries[0].Index)
				}
				return err
			}
		}
		return nil
	})
}

// auditMaxRows is the most rows one INSERT of an append takes: n rows go
// in as one statement of exactly n rows when n <= auditMaxRows (a group of
// hot-read events and their tree nodes: one statement per table, not one per
// chunk), else as statements of auditMaxRows rows and one of the rest.
const auditMaxRows = 32

// auditInsertSQL holds an audit table's multi-row INSERTs, sql[k] the one
// of k rows, built once.
type auditInsertSQL struct {
	cols int
	sql  [auditMaxRows + 1]string
}

func newAuditInsertSQL(head string, cols int) auditInsertSQL {
	a := auditInsertSQL{cols: cols}
	row := "(" + placeholders(cols) + ")"
	for k := 1; k <= auditMaxRows; k++ {
		a.sql[k] = head + strings.TrimSuffix(strings.Repeat(row+",", k), ",")
	}
	return a
}

// The INSERTs of AppendAudit (read only after init).
var (
	auditEventsInsert   = newAuditInsertSQL(`INSERT INTO audit_events (idx, leaf, time, request_id, org, principal, device, decision, records, record_orgs) VALUES `, 10)
	auditNodesInsert    = newAuditInsertSQL(`INSERT OR REPLACE INTO audit_nodes (level, idx, hash) VALUES `, 3)
	auditLowNodesInsert = newAuditInsertSQL(`INSERT OR REPLACE INTO audit_nodes_low (end, level, hash) VALUES `, 3)
)

// auditLowLevels are the tree levels kept in audit_nodes_low, and
// auditLowMaxIndex bounds their indexes there (so that end fits an int64).
const (
	auditLowLevels   = 4
	auditLowMaxIndex = 1 << 58
)

// auditLowNode reports whether the node (level, idx) is kept in
// audit_nodes_low, and its key there: the last leaf it covers.
func auditLowNode(level uint, idx uint64) (int64, bool) {
	if level >= auditLowLevels || idx >= auditLowMaxIndex {
		return 0, false
	}
	return int64((idx+1)<<level) - 1, true
}

// auditInsert is one table's rows of an append: args the rows' values in
// order; full and rest the prepared statements of auditMaxRows rows and of
// the remainder.
type auditInsert struct {
	q          *auditInsertSQL
	args       []any
	what       string
	full, rest *sql.Stmt
}

func (in *auditInsert) prepare(ctx context.Context, s *Store) error {
	rows := len(in.args) / in.q.cols
	var err error
	if rows >= auditMaxRows {
		if in.full, err = s.prep(ctx, s.w, in.q.sql[auditMaxRows]); err != nil {
			return err
		}
	}
	if k := rows % auditMaxRows; k > 0 {
		if in.rest, err = s.prep(ctx, s.w, in.q.sql[k]); err != nil {
			return err
		}
	}
	return nil
}

func (in *auditInsert) exec(ctx context.Context, tx *sql.Tx) error {
	args := in.args
	n := auditMaxRows * in.q.cols
	for len(args) >= n {
		if _, err := tx.StmtContext(ctx, in.full).ExecContext(ctx, args[:n]...); err != nil {
			return fmt.Errorf("sqlite: %s: %w", in.what, err)
		}
		args = args[n:]
	}
	if len(args) > 0 {
		if _, err := tx.StmtContext(ctx, in.rest).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("sqlite: %s: %w", in.what, err)
		}
	}
	return nil
}

// AuditSize implements sekisho.AuditStore.
func (s *Store) AuditSize(ctx context.Context) (uint64, error) {
	var n uint64
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx)+1, 0) FROM audit_events`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: audit size: %w", err)
	}
	return n, nil
}

const auditCols = `e.idx, e.leaf, e.time, e.request_id, e.org, e.principal, e.device, e.decision, e.records, e.record_orgs`

// jsonList is the JSON array of s as encoding/json writes it ([] for nil).
// Record ids and org names are plain ASCII: those are written directly, the
// same bytes json.Marshal writes; anything else goes through json.Marshal.
func jsonList(s []string) string {
	n := 2
	for _, v := range s {
		if !plainJSON(v) {
			if s == nil {
				s = []string{}
			}
			b, _ := json.Marshal(s)
			return string(b)
		}
		n += len(v) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, v...)
		b = append(b, '"')
	}
	return string(append(b, ']'))
}

// plainJSON reports whether v is printable ASCII that json.Marshal writes
// as it is inside quotes (no quote, backslash or HTML character to escape).
func plainJSON(v string) bool {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// parseJSONList reads a JSON array of strings as jsonList writes it: the
// plain form ("[]", or quoted printable ASCII without escapes, separated by
// commas) directly, anything else with encoding/json.
func parseJSONList(s string) ([]string, error) {
	if body, ok := strings.CutPrefix(s, "["); ok {
		if body, ok = strings.CutSuffix(body, "]"); ok {
			if body == "" {
				return []string{}, nil
			}
			if out, ok := parsePlainList(body); ok {
				return out, nil
			}
		}
	}
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// parsePlainList splits "a","b" (the inside of a plain JSON array of
// strings); ok is false unless every element is a quoted plainJSON string.
func parsePlainList(body string) ([]string, bool) {
	out := make([]string, 0, strings.Count(body, ",")+1)
	for {
		rest, ok := strings.CutPrefix(body, `"`)
		if !ok {
			return nil, false
		}
		end := strings.IndexByte(rest, '"')
		if end < 0 || !plainJSON(rest[:end]) {
			return nil, false
		}
		out = append(out, rest[:end])
		body = rest[end+1:]
		if body == "" {
			return out, true
		}
		if body, ok = strings.CutPrefix(body, ","); !ok {
			return nil, false
		}
	}
}

func scanAudit(rows *sql.Rows) ([]sekisho.AuditEntry, error) {
	defer rows.Close()
	var out []sekisho.AuditEntry
	for rows.Next() {
		var e sekisho.AuditEntry
		var idx, t int64
		var recs, orgs string
		if err := rows.Scan(&idx, &e.Leaf, &t, &e.RequestID, &e.Org, &e.Principal, &e.Device, &e.Decision, &recs, &orgs); err != nil {
			return nil, fmt.Errorf("sqlite: scan audit: %w", err)
		}
		var err error
		if e.Records, err = parseJSONList(recs); err != nil {
			return nil, fmt.Errorf("sqlite: audit %d records: %w", idx, err)
		}
		if e.RecordOrgs, err = parseJSONList(orgs); err != nil {
			return nil, fmt.Errorf("sqlite: audit %d record orgs: %w", idx, err)
		}
		e.Index, e.Time = uint64(idx), fromMicros(t)
		out = append(out, e)
	}
	return out, rows.Err()
}

// AuditLeaves implements sekisho.AuditStore.
func (s *Store) AuditLeaves(ctx context.Context, from uint64, limit int) ([]sekisho.AuditEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+auditCols+` FROM audit_events e WHERE e.idx >= ? ORDER BY e.idx LIMIT ?`, int64(from), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit leaves: %w", err)
	}
	return scanAudit(rows)
}

// AuditRefs implements sekisho.AuditRefLister.
func (s *Store) AuditRefs(ctx context.Context, from uint64, limit int) ([]sekisho.AuditRef, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT idx, request_id FROM audit_events WHERE idx >= ? ORDER BY idx LIMIT ?`, int64(from), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit refs: %w", err)
	}
	defer rows.Close()
	var out []sekisho.AuditRef
	for rows.Next() {
		var idx int64
		var r sekisho.AuditRef
		if err := rows.Scan(&idx, &r.RequestID); err != nil {
			return nil, fmt.Errorf("sqlite: audit refs: %w", err)
		}
		r.Index = uint64(idx)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: audit refs: %w", err)
	}
	return out, nil
}

// QueryAudit implements sekisho.AuditStore.
func (s *Store) QueryAudit(ctx context.Context, f sekisho.AuditFilter) ([]sekisho.AuditEntry, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	add("e.idx >= ?", int64(f.From))
	if f.Principal != "" {
		c, a := auditKeyed("ix.audit_by_principal", "principal", f.Principal, f.From, f.Since, f.Until)
		add(c, a...)
	}
	if f.Device != "" {
		c, a := auditKeyed("ix.audit_by_device", "device", f.Device, f.From, f.Since, f.Until)
		add(c, a...)
	}
	if f.Org != "" {
		c, a := auditListed("ix.audit_record_orgs", "org", "record_orgs", f.Org, f.From)
		add("(e.org = ? OR "+c+")", append([]any{f.Org}, a...)...)
	}
	if f.Record != "" {
		c, a := auditListed("ix.audit_records", "record", "records", f.Record, f.From)
		add(c, a...)
	}
	if f.RequestID != "" {
		add("e.request_id = ?", f.RequestID)
	}
	if f.Decision != "" {
		add("e.decision = ?", f.Decision)
	}
	if !f.Since.IsZero() {
		add("e.time >= ?", micros(f.Since))
	}
	if !f.Until.IsZero() {
		add("e.time < ?", micros(f.Until))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = -1 // no limit
	}
	q := `SELECT ` + auditCols + ` FROM audit_events e WHERE ` + strings.Join(where, " AND ") + ` ORDER BY e.idx LIMIT ?`
	rows, err := s.r.QueryContext(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: query audit: %w", err)
	}
	return scanAudit(rows)
}

// AuditNodes implements sekisho.AuditStore.
func (s *Store) AuditNodes(ctx context.Context, ids []sekisho.AuditNode) ([][]byte, error) {
	out := make([][]byte, len(ids))
	var high, low *sql.Stmt
	defer func() {
		for _, st := range []*sql.Stmt{high, low} {
			if st != nil {
				st.Close()
			}
		}
	}()
	for i, id := range ids {
		var err error
		if end, ok := auditLowNode(id.Level, id.Index); ok {
			if low == nil {
				if low, err = s.r.PrepareContext(ctx, `SELECT hash FROM audit_nodes_low WHERE end = ? AND level = ?`); err != nil {
					return nil, fmt.Errorf("sqlite: audit nodes: %w", err)
				}
			}
			err = low.QueryRowContext(ctx, end, id.Level).Scan(&out[i])
		} else {
			if high == nil {
				if high, err = s.r.PrepareContext(ctx, `SELECT hash FROM audit_nodes WHERE level = ? AND idx = ?`); err != nil {
					return nil, fmt.Errorf("sqlite: audit nodes: %w", err)
				}
			}
			err = high.QueryRowContext(ctx, id.Level, int64(id.Index)).Scan(&out[i])
		}
		if err == sql.ErrNoRows {
			return nil, sekisho.Errorf(sekisho.ENotFound, "audit node level %d index %d not found", id.Level, id.Index)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: audit nodes: %w", err)
		}
	}
	return out, nil
}

// AuditNodeRange implements sekisho.AuditStore: the hashes of one level's
// nodes from <= idx < to in one query per table (nil where none is stored).
func (s *Store) AuditNodeRange(ctx context.Context, level uint, from, to uint64) ([][]byte, error) {
	if to < from {
		return nil, sekisho.Errorf(sekisho.EInvalid, "audit node range %d to %d", from, to)
	}
	out := make([][]byte, to-from)
	if to == from {
		return out, nil
	}
	// read stores the hashes a query's (key, hash) rows give, idx(key)
	// being the node's index.
	read := func(idx func(int64) uint64, q string, args ...any) error {
		rows, err := s.r.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("sqlite: audit nodes: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var key int64
			var h []byte
			if err := rows.Scan(&key, &h); err != nil {
				return fmt.Errorf("sqlite: audit nodes: %w", err)
			}
			if i := idx(key); i >= from && i < to {
				out[i-from] = h
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: audit nodes: %w", err)
		}
		return nil
	}
	highFrom := from
	if level < auditLowLevels && from < auditLowMaxIndex {
		// The low table by the last leaf each node covers: its rows of
		// this level from the end of node from to the end of node last.
		last := min(to, auditLowMaxIndex) - 1
		if last >= from {
			lo, _ := auditLowNode(level, from)
			hi, _ := auditLowNode(level, last)
			endIdx := func(end int64) uint64 { return (uint64(end)+1)>>level - 1 }
			if err := read(endIdx, `SELECT end, hash FROM audit_nodes_low WHERE end >= ? AND end <= ? AND level = ?`, lo, hi, level); err != nil {
				return nil, err
			}
		}
		highFrom = max(from, auditLowMaxIndex)
	}
	if highFrom < to {
		if err := read(func(idx int64) uint64 { return uint64(idx) }, `SELECT idx, hash FROM audit_nodes WHERE level = ? AND idx >= ? AND idx < ?`, level, int64(highFrom), int64(to)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PutCheckpoint implements sekisho.AuditStore.
func (s *Store) PutCheckpoint(ctx context.Context, c sekisho.Checkpoint) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO audit_checkpoints (size, note, time) VALUES (?,?,?)
		ON CONFLICT (size) DO NOTHING`, int64(c.Size), c.Note, micros(c.Time))
	if err != nil {
		return full(fmt.Errorf("sqlite: put checkpoint: %w", err))
	}
	return nil
}

// Checkpoints implements sekisho.AuditStore.
func (s *Store) Checkpoints(ctx context.Context) ([]sekisho.Checkpoint, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT size, note, time FROM audit_checkpoints ORDER BY size`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: checkpoints: %w", err)
	}
	defer rows.Close()
	var out []sekisho.Checkpoint
	for rows.Next() {
		var c sekisho.Checkpoint
		var size, t int64
		if err := rows.Scan(&size, &c.Note, &t); err != nil {
			return nil, fmt.Errorf("sqlite: checkpoints: %w", err)
		}
		c.Size, c.Time = uint64(size), fromMicros(t)
		out = append(out, c)
	}
	return out, rows.Err()
}
