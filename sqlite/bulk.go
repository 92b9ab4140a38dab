package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/sekisho/sekisho"
)

var _ sekisho.BulkLoader = (*Store)(nil)

// A bulk load (sekisho import --data, which holds the data directory's
// lock) writes the records table as usual (record ids are time-ordered, so
// records_id, records_org and the table itself are appended to) and
// nothing else: a record's blind-index entries, whose keys are HMACs and so
// random, are in its tokens column already. BeginBulk notes, in the table
// bulk_load, the largest rowid before the load; EndBulk takes the entries of
// the records after it (kept in memory as their batches committed, or read
// back from the tokens column: after a crash, or past bulkPending entries),
// sorts them on all cores and inserts them into lookup_index in key order:
// one sorted pass instead of millions of random B-tree inserts, and no entry
// written twice. Only a read-back of more than one pass stages the entries
// (lookup_stage) for SQLite's external sorter. Open finishes a bulk load
// that was interrupted (bulk_load is still there), so a server never serves
// with entries missing from lookup_index.
//
// Durability: during the load the writer commits with synchronous=NORMAL:
// a commit is in the WAL, in order, but not yet synced. A crash of the
// process loses nothing; a crash of the machine may lose the last commits,
// never one without those before it, so a batch's audit event (committed
// before its records) survives whenever its records do, and its mark (in
// the records' transaction) is lost with them: the import run again writes
// that batch again, once. EndBulk's last commit is synchronous=FULL, which
// syncs the WAL and so every commit of the load; the checkpointer syncs what
// it copies into the database file before the WAL is reused.
const (
	createBulkLoad = `CREATE TABLE IF NOT EXISTS bulk_load (
	one        INTEGER PRIMARY KEY CHECK (one = 1),
	from_rowid INTEGER NOT NULL
)`
	// createStage holds index entries read back from the records of a
	// load too large for one pass, unsorted; finishStage moves them into
	// lookup_index through SQLite's sorter (an external merge sort: one
	// sorted pass over the index, whatever the size). Older versions staged
	// every load there; Open still finishes one.
	createStage = `CREATE TABLE IF NOT EXISTS lookup_stage (
	collection TEXT NOT NULL,
	field      TEXT NOT NULL,
	token      BLOB NOT NULL,
	id         TEXT NOT NULL
)`
	// bulkCache is the writer's page cache during a bulk load (KiB); after
	// it, the Store's own (Options.CacheMiB).
	bulkCache = 32 << 10
	// bulkPassRecords bounds the records whose entries one pass of the
	// index build holds in memory (~100 bytes an entry).
	bulkPassRecords = 1 << 20
	// bulkPending bounds the entries a Store keeps in memory during a bulk
	// load, for EndBulk (~100 bytes an entry); past it, EndBulk reads the
	// records' tokens back.
	bulkPending = 4 << 20
	// bulkTxEntries is the entries inserted per transaction of the build.
	bulkTxEntries = 1 << 18
)

// BeginBulk implements sekisho.BulkLoader.
func (s *Store) BeginBulk(ctx context.Context) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, createBulkLoad); err != nil {
			return err
		}
		// An earlier row (a load not finished) keeps its smaller rowid.
		_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO bulk_load (one, from_rowid) VALUES (1, (SELECT coalesce(max(rowid), 0) FROM records))`)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: begin bulk: %w", err)
	}
	// temp_store MEMORY: a multi-row INSERT in a transaction keeps a
	// statement journal (the pages it changed, so that a failed statement
	// leaves nothing behind), which past 64 KiB SQLite spills to a temporary
	// file: as many bytes again written as the load itself. In memory it is
	// one statement's pages at a time. EndBulk returns to the default before
	// anything that may sort through temporary files.
	for _, p := range []string{fmt.Sprintf("PRAGMA cache_size = -%d", bulkCache), "PRAGMA synchronous = NORMAL", "PRAGMA temp_store = MEMORY"} {
		if _, err := s.w.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("sqlite: begin bulk: %w", err)
		}
	}
	s.pendingMu.Lock()
	s.pending, s.overflow = nil, false
	s.pendingMu.Unlock()
	s.bulk.Store(true)
	return nil
}

// addPending keeps the index entries of records committed during a bulk
// load for EndBulk.
func (s *Store) addPending(recs []*sekisho.SealedRecord) {
	s.pendingMu.Lock()
	defer s.pendingMu.Unlock()
	if s.overflow {
		return
	}
	if s.pending == nil {
		s.pending = newEntrySet()
	}
	for _, r := range recs {
		for f, tok := range r.Index {
			s.pending.add(groupKey{r.Collection, f}, tok, r.ID)
		}
	}
	if s.pending.n > bulkPending {
		s.pending, s.overflow = nil, true
	}
}

// groupKey is a (collection, field) of lookup_index.
type groupKey struct{ collection, field string }

// entrySet holds index entries by (collection, field). A group's entries
// are packed into byte chunks, each entry its token and record id, each
// preceded by its length (uvarint): no pointers, so the garbage collector
// never scans them, adding never copies what is there, and an entry takes
// its bytes and two (~60 bytes for a 32-byte token and a 26-letter id,
// against ~110 as a struct of a slice and a string, each with its own
// allocation, which kept the heap and the process's memory twice as large).
type entrySet struct {
	groups map[groupKey]*entryGroup
	n      int
}

// entryGroup is one (collection, field)'s entries.
type entryGroup struct {
	chunks [][]byte
	n      int
}

// entryChunk is the size of a group's chunks of entries.
const entryChunk = 1 << 20

func newEntrySet() *entrySet { return &entrySet{groups: map[groupKey]*entryGroup{}} }

func (e *entrySet) add(k groupKey, token []byte, id string) {
	g := e.groups[k]
	if g == nil {
		g = &entryGroup{}
		e.groups[k] = g
	}
	g.add(token, id)
	e.n++
}

func (g *entryGroup) add(token []byte, id string) {
	need := len(token) + len(id) + 2*binary.MaxVarintLen32
	if len(g.chunks) == 0 || cap(g.chunks[len(g.chunks)-1])-len(g.chunks[len(g.chunks)-1]) < need {
		size := 4 << 10 // a small import's group stays small
		if len(g.chunks) > 0 {
			size = min(entryChunk, 2*cap(g.chunks[len(g.chunks)-1]))
		}
		g.chunks = append(g.chunks, make([]byte, 0, max(size, need)))
	}
	c := g.chunks[len(g.chunks)-1]
	c = binary.AppendUvarint(c, uint64(len(token)))
	c = append(c, token...)
	c = binary.AppendUvarint(c, uint64(len(id)))
	c = append(c, id...)
	g.chunks[len(g.chunks)-1] = c
	g.n++
}

// entryRef is where an entry is in its group (chunk<<32 | offset), with
// the first 8 bytes of its token (big-endian, zero-padded) as the sort
// key: most comparisons are of two integers.
type entryRef struct {
	key uint64
	at  uint64
}

// entry returns the token and id of the entry at ref (the token's bytes
// are the chunk's).
func (g *entryGroup) entry(ref entryRef) (token, id []byte) {
	c := g.chunks[ref.at>>32][uint32(ref.at):]
	n, k := binary.Uvarint(c)
	token, c = c[k:k+int(n)], c[k+int(n):]
	n, k = binary.Uvarint(c)
	return token, c[k : k+int(n)]
}

func prefixKey(token []byte) uint64 {
	var b [8]byte
	copy(b[:], token)
	return binary.BigEndian.Uint64(b[:])
}

// refs returns the group's entries, unsorted.
func (g *entryGroup) refs() []entryRef {
	out := make([]entryRef, 0, g.n)
	for ci, c := range g.chunks {
		for off := 0; off < len(c); {
			n, k := binary.Uvarint(c[off:])
			tok := c[off+k : off+k+int(n)]
			out = append(out, entryRef{key: prefixKey(tok), at: uint64(ci)<<32 | uint64(off)})
			off += k + int(n)
			n, k = binary.Uvarint(c[off:])
			off += k + int(n)
		}
	}
	return out
}

// sortedRefs returns the group's entries in lookup_index's key order
// (token, id), sorted on all cores.
func (g *entryGroup) sortedRefs() []entryRef {
	refs := g.refs()
	sortParallel(refs, func(a, b entryRef) int {
		if a.key != b.key {
			return cmp.Compare(a.key, b.key)
		}
		at, ai := g.entry(a)
		bt, bi := g.entry(b)
		return cmp.Or(bytes.Compare(at, bt), bytes.Compare(ai, bi))
	})
	return refs
}

// sortedKeys returns the set's groups in key order (collection, field).
func (e *entrySet) sortedKeys() []groupKey {
	keys := make([]groupKey, 0, len(e.groups))
	for k := range e.groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b groupKey) int {
		return cmp.Or(strings.Compare(a.collection, b.collection), strings.Compare(a.field, b.field))
	})
	return keys
}

// EndBulk implements sekisho.BulkLoader: it builds the deferred index
// entries and returns once the whole load is durable.
func (s *Store) EndBulk(ctx context.Context) error {
	s.bulk.Store(false)
	s.pendingMu.Lock()
	pending, known := s.pending, !s.overflow
	s.pending, s.overflow = nil, false
	s.pendingMu.Unlock()
	var err error
	if known {
		if pending == nil {
			pending = newEntrySet()
		}
		err = s.finishBulkWith(ctx, pending)
	} else {
		err = s.finishBulk(ctx)
	}
	for _, p := range []string{fmt.Sprintf("PRAGMA cache_size = -%d", s.cacheKiB), "PRAGMA synchronous = FULL", "PRAGMA temp_store = DEFAULT"} {
		if _, e := s.w.ExecContext(context.WithoutCancel(ctx), p); err == nil && e != nil {
			err = fmt.Errorf("sqlite: end bulk: %w", e)
		}
	}
	return err
}

// finishBulk builds the index entries of a bulk load (the records after
// bulk_load's rowid, their tokens read back) and drops bulk_load; it also
// finishes a staged load of an earlier version (lookup_stage). Its last
// commit is synchronous=FULL.
func (s *Store) finishBulk(ctx context.Context) error {
	return s.finishBulkWith(ctx, nil)
}

// finishBulkWith is finishBulk; known, when not nil, are the entries of
// every record after bulk_load's rowid (this Store loaded them all), so
// they need not be read back.
func (s *Store) finishBulkWith(ctx context.Context, known *entrySet) error {
	var stage, load int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE name = 'lookup_stage'), count(*) FILTER (WHERE name = 'bulk_load')
		FROM sqlite_master WHERE type = 'table'`).Scan(&stage, &load); err != nil {
		return fmt.Errorf("sqlite: finish bulk: %w", err)
	}
	if stage > 0 {
		if err := s.finishStage(ctx); err != nil {
			return err
		}
	}
	if load == 0 {
		return nil
	}
	var from int64
	if err := s.w.QueryRowContext(ctx, `SELECT from_rowid FROM bulk_load`).Scan(&from); err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("sqlite: finish bulk: %w", err)
	}
	// Read back in more than one pass, the entries go through the stage
	// (each pass inserted into the index would rewrite most of its pages).
	staged := false
	if known == nil {
		var max int64
		if err := s.w.QueryRowContext(ctx, `SELECT coalesce(max(rowid), 0) FROM records`).Scan(&max); err != nil {
			return fmt.Errorf("sqlite: finish bulk: %w", err)
		}
		if staged = max-from > int64(s.passRecords()); staged {
			if _, err := s.w.ExecContext(ctx, createStage); err != nil {
				return fmt.Errorf("sqlite: finish bulk: %w", err)
			}
		}
	}
	table := "lookup_index"
	if staged {
		table = "lookup_stage"
	}
	for {
		var set *entrySet
		var last int64
		var err error
		if known != nil {
			if err := s.w.QueryRowContext(ctx, `SELECT coalesce(max(rowid), 0) FROM records`).Scan(&last); err != nil {
				return fmt.Errorf("sqlite: finish bulk: %w", err)
			}
			set, known = known, nil
		} else if set, last, err = s.bulkEntries(ctx, from, s.passRecords()); err != nil {
			return err
		}
		if last <= from {
			break
		}
		keys := set.sortedKeys()
		st, err := s.groupStmts(ctx, table, set.n)
		if err != nil {
			return err
		}
		// Group g+1 is sorted (on all cores) while group g is inserted (on
		// the writer): the writer waits only for the first sort.
		sorted := make([]chan []entryRef, len(keys))
		sortGroup := func(g int) {
			sorted[g] = make(chan []entryRef, 1)
			grp := set.groups[keys[g]]
			go func() { sorted[g] <- grp.sortedRefs() }()
		}
		if len(keys) > 0 {
			sortGroup(0)
		}
		// The pass's entries in transactions of bulkTxEntries; the last
		// one moves bulk_load past the pass. A crash in between repeats
		// the pass, whose entries already inserted are ignored.
		for g, k := range keys {
			entries := <-sorted[g]
			if g+1 < len(keys) {
				sortGroup(g + 1)
			}
			grp := set.groups[k]
			for len(entries) > 0 {
				n := min(len(entries), bulkTxEntries)
				chunk := entries[:n]
				entries = entries[n:]
				lastTx := len(entries) == 0 && g == len(keys)-1
				err := s.tx(ctx, func(tx *sql.Tx) error {
					if err := st.insert(ctx, tx, k, grp, chunk); err != nil {
						return err
					}
					if lastTx {
						_, err := tx.ExecContext(ctx, `UPDATE bulk_load SET from_rowid = ?`, last)
						return err
					}
					return nil
				})
				if err != nil {
					return fmt.Errorf("sqlite: build lookup index: %w", err)
				}
			}
		}
		from = last
	}
	if staged {
		if err := s.finishStage(ctx); err != nil {
			return err
		}
	}
	// The last commit syncs the WAL, and with it every commit of the load.
	if _, err := s.w.ExecContext(ctx, "PRAGMA synchronous = FULL"); err != nil {
		return fmt.Errorf("sqlite: finish bulk: %w", err)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DROP TABLE bulk_load`); err != nil {
			return fmt.Errorf("sqlite: drop bulk_load: %w", err)
		}
		return nil
	})
}

// passRecords is bulkPassRecords, or a test's smaller pass.
func (s *Store) passRecords() int {
	if s.testPass > 0 {
		return s.testPass
	}
	return bulkPassRecords
}

// bulkEntries reads the index entries of at most n records after rowid
// from (in rowid order) and returns them with the last rowid read (from if
// none).
func (s *Store) bulkEntries(ctx context.Context, from int64, n int) (*entrySet, int64, error) {
	rows, err := s.w.QueryContext(ctx, `SELECT rowid, collection, id, tokens FROM records WHERE rowid > ? ORDER BY rowid LIMIT ?`, from, n)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: read bulk-loaded tokens: %w", err)
	}
	defer rows.Close()
	out := newEntrySet()
	last := from
	fields := map[string]string{} // interned field and collection names
	intern := func(b []byte) string {
		if s, ok := fields[string(b)]; ok {
			return s
		}
		s := string(b)
		fields[s] = s
		return s
	}
	var collection, tokens []byte
	var id string
	for rows.Next() {
		if err := rows.Scan(&last, &collection, &id, &tokens); err != nil {
			return nil, 0, fmt.Errorf("sqlite: read bulk-loaded tokens: %w", err)
		}
		c := intern(collection)
		// tokens is sekisho.EncodeFields of the record's index: (uvarint
		// length, name, uvarint length, token)*. The slices Scan gives are
		// copies, so the entries may keep pointing into them.
		for b := tokens; len(b) > 0; {
			name, rest, ok := uvarintBytes(b)
			if !ok {
				return nil, 0, fmt.Errorf("sqlite: index tokens of %s/%s are corrupt", c, id)
			}
			tok, rest, ok := uvarintBytes(rest)
			if !ok {
				return nil, 0, fmt.Errorf("sqlite: index tokens of %s/%s are corrupt", c, id)
			}
			out.add(groupKey{c, intern(name)}, tok, id)
			b = rest
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: read bulk-loaded tokens: %w", err)
	}
	return out, last, nil
}

// uvarintBytes splits a uvarint-length-prefixed byte string off b.
func uvarintBytes(b []byte) (v, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

// sortParallel sorts s by cmp on all cores: each core sorts a part, then
// the parts are merged.
func sortParallel[T any](s []T, cmp func(a, b T) int) {
	parts := min(runtime.GOMAXPROCS(0), max(1, len(s)/4096))
	if parts == 1 {
		slices.SortFunc(s, cmp)
		return
	}
	bounds := make([]int, parts+1)
	for i := range bounds {
		bounds[i] = len(s) * i / parts
	}
	var wg sync.WaitGroup
	for i := range parts {
		wg.Go(func() { slices.SortFunc(s[bounds[i]:bounds[i+1]], cmp) })
	}
	wg.Wait()
	// Merge the sorted parts, two at a time.
	buf := make([]T, len(s))
	for width := 1; width < parts; width *= 2 {
		for i := 0; i < parts; i += 2 * width {
			lo, mid, hi := bounds[i], bounds[min(i+width, parts)], bounds[min(i+2*width, parts)]
			merge(buf[lo:hi], s[lo:mid], s[mid:hi], cmp)
			copy(s[lo:hi], buf[lo:hi])
		}
	}
}

func merge[T any](dst, a, b []T, cmp func(a, b T) int) {
	i, j, k := 0, 0, 0
	for i < len(a) && j < len(b) {
		if cmp(b[j], a[i]) < 0 {
			dst[k] = b[j]
			j++
		} else {
			dst[k] = a[i]
			i++
		}
		k++
	}
	k += copy(dst[k:], a[i:])
	copy(dst[k:], b[j:])
}

// groupStmts are the INSERT OR IGNOREs of one (collection, field)'s
// entries: collection and field are ?1 and ?2, bound once a statement, and
// each entry's token and id two parameters (half the binds of four).
type groupStmts struct{ one, many *sql.Stmt }

// groupedEntries is the rows per statement of groupStmts.many.
const groupedEntries = 512

func groupedInsert(table string, n int) string {
	var b strings.Builder
	b.WriteString("INSERT OR IGNORE INTO " + table + " (collection, field, token, id) VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "(?1,?2,?%d,?%d)", 3+2*i, 4+2*i)
	}
	return b.String()
}

// groupStmts prepares them (into table: lookup_index or lookup_stage) on
// the writer, before its transaction (the
// writer pool has one connection, which the transaction holds).
func (s *Store) groupStmts(ctx context.Context, table string, n int) (groupStmts, error) {
	var st groupStmts
	var err error
	if st.one, err = s.prep(ctx, s.w, groupedInsert(table, 1)); err != nil {
		return st, err
	}
	if n >= groupedEntries {
		if st.many, err = s.prep(ctx, s.w, groupedInsert(table, groupedEntries)); err != nil {
			return st, err
		}
	}
	return st, nil
}

// insert inserts k's entries, refs into g, in tx (without ctx's
// cancellation, as createRecords; tx keeps it).
func (st groupStmts) insert(ctx context.Context, tx *sql.Tx, k groupKey, g *entryGroup, refs []entryRef) error {
	ectx := context.WithoutCancel(ctx)
	at := 0
	if st.many != nil {
		many := tx.StmtContext(ctx, st.many)
		args := make([]any, 0, 2+2*groupedEntries)
		for ; at+groupedEntries <= len(refs); at += groupedEntries {
			args = append(args[:0], k.collection, k.field)
			for _, r := range refs[at : at+groupedEntries] {
				tok, id := g.entry(r)
				args = append(args, tok, string(id))
			}
			if _, err := many.ExecContext(ectx, args...); err != nil {
				return fmt.Errorf("sqlite: insert index: %w", err)
			}
		}
	}
	one := tx.StmtContext(ctx, st.one)
	for _, r := range refs[at:] {
		tok, id := g.entry(r)
		if _, err := one.ExecContext(ectx, k.collection, k.field, tok, string(id)); err != nil {
			return fmt.Errorf("sqlite: insert index: %w", err)
		}
	}
	return nil
}

// finishStage moves the entries of an earlier version's staged bulk load
// into lookup_index, sorted, and drops the stage, in one transaction.
func (s *Store) finishStage(ctx context.Context) error {
	// Let SQLite's sorter use every core for the ORDER BY (worker threads
	// of the one writing connection), then return to the default.
	// The sort spills to temporary files, not to memory (a bulk load keeps
	// its statement journals in memory: temp_store MEMORY, BeginBulk).
	if _, err := s.w.ExecContext(ctx, "PRAGMA temp_store = DEFAULT"); err != nil {
		return fmt.Errorf("sqlite: finish bulk: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA threads = %d", runtime.GOMAXPROCS(0))); err != nil {
		return fmt.Errorf("sqlite: finish bulk: %w", err)
	}
	defer s.w.ExecContext(context.WithoutCancel(ctx), "PRAGMA threads = 0")
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO lookup_index (collection, field, token, id)
			SELECT collection, field, token, id FROM lookup_stage ORDER BY collection, field, token, id`); err != nil {
			return fmt.Errorf("sqlite: build lookup index: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DROP TABLE lookup_stage`); err != nil {
			return fmt.Errorf("sqlite: drop lookup stage: %w", err)
		}
		return nil
	})
}

// LoadParallel implements sekisho.BulkLoader: SQLite has one writer.
func (s *Store) LoadParallel() int { return 1 }

// LoadRecords implements sekisho.BulkLoader.
func (s *Store) LoadRecords(ctx context.Context, recs []*sekisho.SealedRecord, mark *sekisho.Object) error {
	return s.createRecords(ctx, recs, mark)
}

// putMark stores an import's batch mark, replacing any stored version.
func putMark(ctx context.Context, tx *sql.Tx, o *sekisho.Object) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO objects (kind, id, org, version, body, updated) VALUES (?,?,?,1,?,?)
		ON CONFLICT (kind, id) DO UPDATE SET org = excluded.org, version = objects.version + 1, body = excluded.body, updated = excluded.updated`,
		o.Kind, o.ID, o.Org, o.Body, micros(o.Updated))
	if err != nil {
		return fmt.Errorf("sqlite: put import mark: %w", err)
	}
	return nil
}
