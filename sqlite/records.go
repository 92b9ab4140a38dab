package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho"
)

// CreateRecords implements sekisho.RecordStore.
func (s *Store) CreateRecords(ctx context.Context, recs []*sekisho.SealedRecord) error {
	return s.createRecords(ctx, recs, nil)
}

// Rows per multi-row INSERT of a batch (12 and 4 parameters a row, far
// below SQLite's 32766): one statement step per chunk instead of one
// database/sql call, cgo call and bind per row.
const (
	recordsPerInsert = 64
	entriesPerInsert = 256
)

const insertRecordQ = `INSERT INTO records
	(collection, id, org, region, kek_version, wrapped_dek, fields, tokens, honeytoken, version, created_at, updated_at)
	VALUES `

// sharedRecords is an INSERT of n records whose collection, org,
// honeytoken, version and times are one parameter each (?1-?6), bound once
// for the n rows, and whose other columns are six parameters a row: a
// third of the binds (each a cgo call) of multiRow's.
func sharedRecords(n int) string {
	var b strings.Builder
	b.WriteString(insertRecordQ)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		p := 7 + 6*i
		fmt.Fprintf(&b, "(?1,?%d,?2,?%d,?%d,?%d,?%d,?%d,?3,?4,?5,?6)", p, p+1, p+2, p+3, p+4, p+5)
	}
	return b.String()
}

// shareRecords reports whether rows have the columns of sharedRecords'
// first six parameters in common.
func shareRecords(rows []encodedRecord) bool {
	a := rows[0].r
	for _, e := range rows[1:] {
		r := e.r
		if r.Collection != a.Collection || r.Org != a.Org || r.Honeytoken != a.Honeytoken || r.Version != a.Version ||
			micros(r.CreatedAt) != micros(a.CreatedAt) || micros(r.UpdatedAt) != micros(a.UpdatedAt) {
			return false
		}
	}
	return true
}

// multiRow is an INSERT of n rows of cols parameters each.
func multiRow(prefix string, cols, n int) string {
	row := "(?" + strings.Repeat(",?", cols-1) + ")"
	return prefix + row + strings.Repeat(","+row, n-1)
}

// indexEntry is one blind-index entry of a record.
type indexEntry struct {
	collection, field, id string
	token                 []byte
}

// encodedRecord is a record's row, its field and token columns encoded.
type encodedRecord struct {
	r              *sekisho.SealedRecord
	fields, tokens []byte
}

func (s *Store) createRecords(ctx context.Context, recs []*sekisho.SealedRecord, mark *sekisho.Object) error {
	if len(recs) == 0 && mark == nil {
		return nil
	}
	// Encode the rows before the transaction, on all cores: the writer's
	// transaction is the one serial part of an import.
	rows := make([]encodedRecord, len(recs))
	parallel(len(recs), func(i int) {
		r := recs[i]
		rows[i] = encodedRecord{r: r, fields: sekisho.EncodeFields(r.Fields), tokens: sekisho.EncodeFields(r.Index)}
	})
	// In a bulk load the index entries are built at EndBulk from the
	// records' tokens column (bulk.go).
	bulk := s.bulk.Load()
	var entries []indexEntry
	if !bulk {
		for _, r := range recs {
			for _, f := range sortedKeys(r.Index) {
				entries = append(entries, indexEntry{collection: r.Collection, field: f, id: r.ID, token: r.Index[f]})
			}
		}
	}
	// Prepared before the transaction: the writer pool has one connection,
	// which the transaction holds.
	ins1, err := s.prep(ctx, s.w, multiRow(insertRecordQ, 12, 1))
	if err != nil {
		return err
	}
	var insN, insShared *sql.Stmt
	if len(rows) >= recordsPerInsert {
		if insN, err = s.prep(ctx, s.w, multiRow(insertRecordQ, 12, recordsPerInsert)); err != nil {
			return err
		}
		if insShared, err = s.prep(ctx, s.w, sharedRecords(recordsPerInsert)); err != nil {
			return err
		}
	}
	idx, err := s.entryStmts(ctx, "INSERT INTO lookup_index", len(entries))
	if err != nil {
		return err
	}
	// The statements run without ctx's cancellation (go-sqlite3 watches a
	// cancellable context with a goroutine per statement); the transaction
	// keeps ctx, so a cancelled import still rolls back.
	ectx := context.WithoutCancel(ctx)
	err = s.tx(ctx, func(tx *sql.Tx) error {
		one := tx.StmtContext(ctx, ins1)
		insertOne := func(e encodedRecord) error {
			r := e.r
			_, err := one.ExecContext(ectx, r.Collection, r.ID, r.Org, r.Region, r.KEKVersion, r.WrappedDEK,
				e.fields, e.tokens, r.Honeytoken, r.Version, micros(r.CreatedAt), micros(r.UpdatedAt))
			if isUnique(err) {
				return sekisho.Errorf(sekisho.EConflict, "record %s/%s exists", r.Collection, r.ID)
			}
			if err != nil {
				return fmt.Errorf("sqlite: insert record: %w", err)
			}
			return nil
		}
		at := 0
		if insN != nil {
			many, shared := tx.StmtContext(ctx, insN), tx.StmtContext(ctx, insShared)
			args := make([]any, 0, 12*recordsPerInsert)
			for ; at+recordsPerInsert <= len(rows); at += recordsPerInsert {
				args = args[:0]
				chunk := rows[at : at+recordsPerInsert]
				st := many
				if shareRecords(chunk) {
					st = shared
					a := chunk[0].r
					args = append(args, a.Collection, a.Org, a.Honeytoken, a.Version, micros(a.CreatedAt), micros(a.UpdatedAt))
					for _, e := range chunk {
						r := e.r
						args = append(args, r.ID, r.Region, r.KEKVersion, r.WrappedDEK, e.fields, e.tokens)
					}
				} else {
					for _, e := range chunk {
						r := e.r
						args = append(args, r.Collection, r.ID, r.Org, r.Region, r.KEKVersion, r.WrappedDEK,
							e.fields, e.tokens, r.Honeytoken, r.Version, micros(r.CreatedAt), micros(r.UpdatedAt))
					}
				}
				_, err := st.ExecContext(ectx, args...)
				if isUnique(err) {
					// The failed statement left nothing behind: find the
					// record that exists, row by row.
					for _, e := range rows[at : at+recordsPerInsert] {
						if err := insertOne(e); err != nil {
							return err
						}
					}
					return fmt.Errorf("sqlite: insert records: %w", err)
				}
				if err != nil {
					return fmt.Errorf("sqlite: insert records: %w", err)
				}
			}
		}
		for _, e := range rows[at:] {
			if err := insertOne(e); err != nil {
				return err
			}
		}
		if err := idx.insert(ctx, tx, entries); err != nil {
			return err
		}
		if mark != nil {
			return putMark(ctx, tx, mark)
		}
		return nil
	})
	if err == nil && bulk {
		s.addPending(recs)
	}
	return err
}

// entryStmts are the prepared INSERTs of index entries: one row, and
// entriesPerInsert rows (nil for fewer entries).
type entryStmts struct{ one, many *sql.Stmt }

// entryStmts prepares verb's INSERTs (verb: "INSERT INTO lookup_index" or
// with OR IGNORE) for n entries, on the writer, before its transaction: the
// writer pool has one connection, which the transaction holds.
func (s *Store) entryStmts(ctx context.Context, verb string, n int) (entryStmts, error) {
	var st entryStmts
	if n == 0 {
		return st, nil
	}
	prefix := verb + " (collection, field, token, id) VALUES "
	var err error
	if st.one, err = s.prep(ctx, s.w, multiRow(prefix, 4, 1)); err != nil {
		return st, err
	}
	if n >= entriesPerInsert {
		if st.many, err = s.prep(ctx, s.w, multiRow(prefix, 4, entriesPerInsert)); err != nil {
			return st, err
		}
	}
	return st, nil
}

// insert inserts entries in tx. The statements run without ctx's
// cancellation (see createRecords); tx keeps it.
func (st entryStmts) insert(ctx context.Context, tx *sql.Tx, entries []indexEntry) error {
	if len(entries) == 0 {
		return nil
	}
	ectx := context.WithoutCancel(ctx)
	at := 0
	if st.many != nil {
		many := tx.StmtContext(ctx, st.many)
		args := make([]any, 0, 4*entriesPerInsert)
		for ; at+entriesPerInsert <= len(entries); at += entriesPerInsert {
			args = args[:0]
			for _, e := range entries[at : at+entriesPerInsert] {
				args = append(args, e.collection, e.field, e.token, e.id)
			}
			if _, err := many.ExecContext(ectx, args...); err != nil {
				return fmt.Errorf("sqlite: insert index: %w", err)
			}
		}
	}
	one := tx.StmtContext(ctx, st.one)
	for _, e := range entries[at:] {
		if _, err := one.ExecContext(ectx, e.collection, e.field, e.token, e.id); err != nil {
			return fmt.Errorf("sqlite: insert index: %w", err)
		}
	}
	return nil
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// parallel runs fn(0..n-1) on all cores (on one for small n).
func parallel(n int, fn func(int)) {
	workers := min(runtime.GOMAXPROCS(0), max(1, n/256))
	if workers == 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

const recordCols = `id, collection, org, region, kek_version, wrapped_dek, fields, tokens, honeytoken, version, created_at, updated_at, erased_at`

func scanRecord(sc interface{ Scan(...any) error }) (*sekisho.SealedRecord, error) {
	var (
		r                sekisho.SealedRecord
		fields, tokens   []byte
		created, updated int64
		erased           sql.NullInt64
	)
	if err := sc.Scan(&r.ID, &r.Collection, &r.Org, &r.Region, &r.KEKVersion, &r.WrappedDEK, &fields, &tokens,
		&r.Honeytoken, &r.Version, &created, &updated, &erased); err != nil {
		return nil, err
	}
	r.CreatedAt, r.UpdatedAt = fromMicros(created), fromMicros(updated)
	if erased.Valid {
		r.ErasedAt = fromMicros(erased.Int64)
	}
	if len(r.WrappedDEK) == 0 {
		r.WrappedDEK = nil
	}
	// database/sql scanned fields and tokens into copies of their own: the
	// values are slices of them.
	var err error
	if r.Fields, err = sekisho.DecodeFieldsOwned(fields); err != nil {
		return nil, err
	}
	if r.Index, err = sekisho.DecodeFieldsOwned(tokens); err != nil {
		return nil, err
	}
	return &r, nil
}

// GetRecords implements sekisho.RecordStore.
func (s *Store) GetRecords(ctx context.Context, collection string, ids []string) ([]*sekisho.SealedRecord, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	byID := make(map[string]*sekisho.SealedRecord, len(ids))
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(len(ids), start+500)]
		args := collectionIDs(collection, chunk)
		var rows *sql.Rows
		var err error
		if len(chunk) == 1 {
			// The hot path: one record by id, on a prepared statement.
			var st *sql.Stmt
			if st, err = s.prep(ctx, s.r, `SELECT `+recordCols+` FROM records WHERE collection = ? AND id = ?`); err != nil {
				return nil, err
			}
			rows, err = st.QueryContext(ctx, args...)
		} else {
			rows, err = s.r.QueryContext(ctx, `SELECT `+recordCols+` FROM records WHERE collection = ? AND id IN (`+placeholders(len(chunk))+`)`, args...)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: get records: %w", err)
		}
		for rows.Next() {
			r, err := scanRecord(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: scan record: %w", err)
			}
			byID[r.ID] = r
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, fmt.Errorf("sqlite: get records: %w", err)
		}
	}
	out := make([]*sekisho.SealedRecord, 0, len(byID))
	for _, id := range ids {
		if r, ok := byID[id]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}

var _ sekisho.RecordLocator = (*Store)(nil)

// collectionIDs are the arguments of "collection = ? AND id IN (...)".
func collectionIDs(collection string, ids []string) []any {
	args := make([]any, 0, len(ids)+1)
	args = append(args, collection)
	for _, id := range ids {
		args = append(args, id)
	}
	return args
}

// LocateRecords implements sekisho.RecordLocator: GetRecords's query
// without the ciphertexts.
func (s *Store) LocateRecords(ctx context.Context, collection string, ids []string) ([]sekisho.RecordPlace, error) {
	byID := make(map[string]sekisho.RecordPlace, len(ids))
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(len(ids), start+500)]
		args := collectionIDs(collection, chunk)
		rows, err := s.r.QueryContext(ctx, `SELECT id, org, region, coalesce(length(wrapped_dek), 0) = 0 FROM records WHERE collection = ? AND id IN (`+placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: locate records: %w", err)
		}
		for rows.Next() {
			var p sekisho.RecordPlace
			if err := rows.Scan(&p.ID, &p.Org, &p.Region, &p.Erased); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: locate records: %w", err)
			}
			byID[p.ID] = p
		}
		// A failed step ends the rows as if they were all read: only Err
		// tells.
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, fmt.Errorf("sqlite: locate records: %w", err)
		}
	}
	return sekisho.PlacesAsked(ids, byID), nil
}

// UpdateRecord implements sekisho.RecordStore.
func (s *Store) UpdateRecord(ctx context.Context, r *sekisho.SealedRecord) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var version int64
		var erased sql.NullInt64
		var oldTokens []byte
		err := tx.QueryRowContext(ctx, `SELECT version, erased_at, tokens FROM records WHERE collection = ? AND id = ?`, r.Collection, r.ID).Scan(&version, &erased, &oldTokens)
		if err == sql.ErrNoRows {
			return sekisho.Errorf(sekisho.ENotFound, "record %s/%s not found", r.Collection, r.ID)
		}
		if err != nil {
			return fmt.Errorf("sqlite: read record version: %w", err)
		}
		if erased.Valid {
			return sekisho.Errorf(sekisho.EGone, "record %s/%s was erased", r.Collection, r.ID)
		}
		if version != r.Version-1 {
			return sekisho.Errorf(sekisho.EConflict, "record %s/%s changed concurrently (version %d, not %d)", r.Collection, r.ID, version, r.Version-1)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE records SET fields = ?, tokens = ?, kek_version = ?, wrapped_dek = ?, version = ?, updated_at = ?
			WHERE collection = ? AND id = ?`, sekisho.EncodeFields(r.Fields), sekisho.EncodeFields(r.Index), r.KEKVersion, r.WrappedDEK, r.Version, micros(r.UpdatedAt), r.Collection, r.ID); err != nil {
			return fmt.Errorf("sqlite: update record: %w", err)
		}
		if err := deleteIndex(ctx, tx, r.Collection, r.ID, oldTokens); err != nil {
			return err
		}
		for f, tok := range r.Index {
			if _, err := tx.ExecContext(ctx, `INSERT INTO lookup_index (collection, field, token, id) VALUES (?,?,?,?)`, r.Collection, f, tok, r.ID); err != nil {
				return fmt.Errorf("sqlite: update index: %w", err)
			}
		}
		return nil
	})
}

// EraseRecord implements sekisho.RecordStore.
func (s *Store) EraseRecord(ctx context.Context, collection, id string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var oldTokens []byte
		if err := tx.QueryRowContext(ctx, `SELECT tokens FROM records WHERE collection = ? AND id = ?`, collection, id).Scan(&oldTokens); err != nil && err != sql.ErrNoRows {
			return fmt.Errorf("sqlite: erase record: %w", err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE records SET wrapped_dek = NULL, fields = NULL, tokens = NULL, erased_at = ?, updated_at = ?, version = version + 1
			WHERE collection = ? AND id = ? AND erased_at IS NULL`, micros(at), micros(at), collection, id)
		if err != nil {
			return fmt.Errorf("sqlite: erase record: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var one int
			if err := tx.QueryRowContext(ctx, `SELECT 1 FROM records WHERE collection = ? AND id = ?`, collection, id).Scan(&one); err == sql.ErrNoRows {
				return sekisho.Errorf(sekisho.ENotFound, "record %s/%s not found", collection, id)
			}
			return sekisho.Errorf(sekisho.EGone, "record %s/%s was already erased", collection, id)
		}
		return deleteIndex(ctx, tx, collection, id, oldTokens)
	})
}

// deleteIndex removes a record's blind-index entries: those its tokens
// column names (written with them in one transaction), each by its key, so
// that lookup_index needs no second index by record id.
func deleteIndex(ctx context.Context, tx *sql.Tx, collection, id string, tokens []byte) error {
	toks, err := sekisho.DecodeFields(tokens, nil)
	if err != nil {
		return fmt.Errorf("sqlite: read index tokens of %s/%s: %w", collection, id, err)
	}
	for f, tok := range toks {
		if _, err := tx.ExecContext(ctx, `DELETE FROM lookup_index WHERE collection = ? AND field = ? AND token = ? AND id = ?`, collection, f, tok, id); err != nil {
			return fmt.Errorf("sqlite: delete index: %w", err)
		}
	}
	return nil
}

// Lookup implements sekisho.RecordStore.
func (s *Store) Lookup(ctx context.Context, collection, field string, token []byte, limit int) ([]string, error) {
	st, err := s.prep(ctx, s.r, `SELECT id FROM lookup_index WHERE collection = ? AND field = ? AND token = ? ORDER BY id LIMIT ?`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, collection, field, token, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lookup: %w", err)
	}
	return scanStrings(rows)
}

// CountRecords implements sekisho.RecordStore.
func (s *Store) CountRecords(ctx context.Context, collection, org string) (int64, error) {
	var n int64
	var err error
	if org == "" {
		err = s.r.QueryRowContext(ctx, `SELECT count(*) FROM records WHERE collection = ? AND erased_at IS NULL`, collection).Scan(&n)
	} else {
		err = s.r.QueryRowContext(ctx, `SELECT count(*) FROM records WHERE collection = ? AND org = ? AND erased_at IS NULL`, collection, org).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: count records: %w", err)
	}
	return n, nil
}

// CountRecordsByPlace implements sekisho.RecordStore.
func (s *Store) CountRecordsByPlace(ctx context.Context, collection string, createdBefore time.Time) ([]sekisho.PlaceCount, error) {
	before := int64(math.MaxInt64)
	if !createdBefore.IsZero() {
		before = micros(createdBefore)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT org, region, count(*) FROM records
		WHERE collection = ? AND erased_at IS NULL AND created_at < ? GROUP BY org, region ORDER BY org, region`, collection, before)
	if err != nil {
		return nil, fmt.Errorf("sqlite: count records by place: %w", err)
	}
	defer rows.Close()
	out := []sekisho.PlaceCount{}
	for rows.Next() {
		var c sekisho.PlaceCount
		if err := rows.Scan(&c.Org, &c.Region, &c.Records); err != nil {
			return nil, fmt.Errorf("sqlite: count records by place: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: count records by place: %w", err)
	}
	return out, nil
}

// ListRecordIDs implements sekisho.RecordStore.
func (s *Store) ListRecordIDs(ctx context.Context, collection, org, after string, limit int) ([]string, error) {
	var rows *sql.Rows
	var err error
	if org == "" {
		rows, err = s.r.QueryContext(ctx, `SELECT id FROM records WHERE collection = ? AND id > ? AND erased_at IS NULL ORDER BY id LIMIT ?`, collection, after, limit)
	} else {
		rows, err = s.r.QueryContext(ctx, `SELECT id FROM records WHERE collection = ? AND org = ? AND id > ? AND erased_at IS NULL ORDER BY id LIMIT ?`, collection, org, after, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: list record ids: %w", err)
	}
	return scanStrings(rows)
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("sqlite: scan: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// RewrapRecords implements sekisho.RecordStore: one transaction, each record
// changed only if its version is still the one read and it is not erased.
func (s *Store) RewrapRecords(ctx context.Context, rs []sekisho.Rewrap) ([]bool, error) {
	done := make([]bool, len(rs))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `UPDATE records SET kek_version = ?, wrapped_dek = ?, version = version + 1, updated_at = ?
			WHERE collection = ? AND id = ? AND version = ? AND erased_at IS NULL`)
		if err != nil {
			return fmt.Errorf("sqlite: re-wrap: %w", err)
		}
		defer st.Close()
		for i, r := range rs {
			res, err := st.ExecContext(ctx, r.KEKVersion, r.WrappedDEK, micros(r.UpdatedAt), r.Collection, r.ID, r.Version)
			if err != nil {
				return fmt.Errorf("sqlite: re-wrap record: %w", err)
			}
			n, _ := res.RowsAffected()
			done[i] = n == 1
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return done, nil
}
