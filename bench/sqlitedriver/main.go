// Command sqlitedriver compares two SQLite drivers on sekisho's own store
// workload: github.com/mattn/go-sqlite3 (cgo; what package sqlite uses) and
// modernc.org/sqlite (pure Go, SQLite translated to Go).
//
// The workload is the embedded store's: the records and lookup_index
// tables of sqlite/sqlite.go (copied below, with the same indexes), with
// the same pragmas (WAL, synchronous=FULL, cache_size -65536 KiB,
// wal_autocheckpoint 16384 pages on the writer); batched inserts in one
// transaction per batch, as the import writes them, of sealed-record-sized
// rows (460-byte sealed fields, 128-byte tokens and a 60-byte wrapped
// data key: the averages of a users import) with a random 26-character id
// and three blind-index rows each; then point reads by id from two
// goroutines, as the hot path reads.
//
// It is a module of its own, so that the second driver stays out of
// sekisho's go.mod:
//
//	cd bench/sqlitedriver && go run . -n 200000
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"flag"
	"fmt"
	"log"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers "sqlite3"
	_ "modernc.org/sqlite"          // registers "sqlite"
)

// schema is the records part of sqlite/sqlite.go's first migration.
const schema = `
CREATE TABLE records (
	collection  TEXT NOT NULL,
	id          TEXT NOT NULL,
	org         TEXT NOT NULL,
	region      TEXT NOT NULL,
	kek_version INTEGER NOT NULL,
	wrapped_dek BLOB,
	fields      BLOB,
	tokens      BLOB,
	honeytoken  INTEGER NOT NULL DEFAULT 0,
	version     INTEGER NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	erased_at   INTEGER
);
CREATE UNIQUE INDEX records_id ON records (collection, id);
CREATE INDEX records_org ON records (collection, org, id);
CREATE TABLE lookup_index (
	collection TEXT NOT NULL,
	field      TEXT NOT NULL,
	token      BLOB NOT NULL,
	id         TEXT NOT NULL,
	PRIMARY KEY (collection, field, token, id)
) WITHOUT ROWID;
CREATE INDEX lookup_index_record ON lookup_index (collection, id);
`

// driver is one driver under test: its name in database/sql and how its
// DSN spells the pragmas.
type driver struct {
	label, name string
	dsn         func(path string, readOnly bool) string
}

var drivers = []driver{
	{"mattn/go-sqlite3 (cgo)", "sqlite3", func(path string, ro bool) string {
		q := "_journal_mode=WAL&_synchronous=FULL&_busy_timeout=10000&_cache_size=-65536"
		if ro {
			q += "&mode=ro"
		} else {
			q += "&_txlock=immediate"
		}
		return "file:" + path + "?" + q
	}},
	{"modernc.org/sqlite (pure Go)", "sqlite", func(path string, ro bool) string {
		q := "_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=cache_size(-65536)"
		if ro {
			q += "&mode=ro"
		} else {
			q += "&_txlock=immediate"
		}
		return "file:" + path + "?" + q
	}},
}

type result struct {
	label        string
	insertsPerS  float64
	readsPerS    float64
	pragmas      string
	readP50Micro float64
}

func main() {
	var (
		n         = flag.Int("n", 200_000, "records to insert")
		batch     = flag.Int("batch", 1000, "records per transaction (the import's default batch)")
		fieldsLen = flag.Int("fields-bytes", 460, "bytes of the sealed fields blob of a record")
		readers   = flag.Int("readers", 2, "goroutines reading by id")
		readFor   = flag.Duration("reads", 5*time.Second, "how long to read")
		dir       = flag.String("dir", "", "directory for the database files (default: a temporary one)")
	)
	flag.Parse()
	d := *dir
	if d == "" {
		var err error
		if d, err = os.MkdirTemp("", "sqlitedriver"); err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
	}
	fmt.Printf("%d records in batches of %d (%d-byte sealed fields, 3 blind-index rows each), then point reads by id from %d goroutines for %s; %s, %d cores\n\n",
		*n, *batch, *fieldsLen, *readers, *readFor, runtime.Version(), runtime.NumCPU())
	var res []result
	for _, dr := range drivers {
		path := filepath.Join(d, dr.name+".db")
		r, err := run(dr, path, *n, *batch, *fieldsLen, *readers, *readFor)
		if err != nil {
			log.Fatalf("%s: %v", dr.label, err)
		}
		res = append(res, r)
		os.Remove(path)
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
	}
	fmt.Println("| driver | inserts/s | reads/s | read p50 µs | pragmas (journal_mode, synchronous) |")
	fmt.Println("| --- | ---: | ---: | ---: | --- |")
	for _, r := range res {
		fmt.Printf("| %s | %.0f | %.0f | %.1f | %s |\n", r.label, r.insertsPerS, r.readsPerS, r.readP50Micro, r.pragmas)
	}
	fmt.Printf("| modernc / mattn | %.2f | %.2f | | |\n", res[1].insertsPerS/res[0].insertsPerS, res[1].readsPerS/res[0].readsPerS)
}

var enc = base32.StdEncoding.WithPadding(base32.NoPadding)

// newID is vault.NewID: 128 random bits, base32, lower case, 26 characters.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.ToLower(enc.EncodeToString(b[:]))
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func run(dr driver, path string, n, batch, fieldsLen, readers int, readFor time.Duration) (result, error) {
	ctx := context.Background()
	r := result{label: dr.label}
	w, err := sql.Open(dr.name, dr.dsn(path, false))
	if err != nil {
		return r, err
	}
	defer w.Close()
	w.SetMaxOpenConns(1) // one writer, as the store has
	if _, err := w.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 16384"); err != nil {
		return r, err
	}
	if _, err := w.ExecContext(ctx, schema); err != nil {
		return r, fmt.Errorf("schema: %w", err)
	}
	var jm, syncMode string
	w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&jm)
	w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode)
	r.pragmas = jm + ", " + map[string]string{"0": "OFF", "1": "NORMAL", "2": "FULL", "3": "EXTRA"}[syncMode]

	// Rows are made before the clock starts: the drivers are measured, not
	// crypto/rand.
	type row struct {
		id     string
		region string
		dek    []byte
		fields []byte
		tokens []byte
		idx    [3][]byte
	}
	regions := []string{"jp", "th", "tw", "id"}
	ids := make([]string, 0, n)
	var inserted time.Duration
	for done := 0; done < n; {
		k := min(batch, n-done)
		rows := make([]row, k)
		for i := range rows {
			rows[i] = row{id: newID(), region: regions[i%4], dek: random(60), fields: random(fieldsLen), tokens: random(128),
				idx: [3][]byte{random(32), random(32), random(32)}}
		}
		t := time.Now()
		tx, err := w.BeginTx(ctx, nil)
		if err != nil {
			return r, err
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO records
			(collection, id, org, region, kek_version, wrapped_dek, fields, tokens, honeytoken, version, created_at, updated_at)
			VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`)
		if err != nil {
			return r, err
		}
		idx, err := tx.PrepareContext(ctx, `INSERT INTO lookup_index (collection, field, token, id) VALUES (?,?,?,?)`)
		if err != nil {
			return r, err
		}
		now := time.Now().UnixMicro()
		for _, rw := range rows {
			if _, err := ins.ExecContext(ctx, "users", rw.id, "operator", rw.region, 1, rw.dek, rw.fields, rw.tokens, 0, 1, now, now); err != nil {
				return r, fmt.Errorf("insert: %w", err)
			}
			for j, f := range []string{"phone", "email", "internal_user_id"} {
				if _, err := idx.ExecContext(ctx, "users", f, rw.idx[j], rw.id); err != nil {
					return r, fmt.Errorf("insert index: %w", err)
				}
			}
		}
		ins.Close()
		idx.Close()
		if err := tx.Commit(); err != nil {
			return r, err
		}
		inserted += time.Since(t)
		for _, rw := range rows {
			ids = append(ids, rw.id)
		}
		done += k
	}
	r.insertsPerS = float64(n) / inserted.Seconds()

	rd, err := sql.Open(dr.name, dr.dsn(path, true))
	if err != nil {
		return r, err
	}
	defer rd.Close()
	rd.SetMaxOpenConns(readers)
	rd.SetMaxIdleConns(readers)
	var reads atomic.Int64
	lat := make([][]time.Duration, readers)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	end := time.Now().Add(readFor)
	start := time.Now()
	for g := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(g), 1))
			stmt, err := rd.PrepareContext(ctx, `SELECT id, collection, org, region, kek_version, wrapped_dek, fields, tokens, honeytoken, version, created_at, updated_at, erased_at
				FROM records WHERE collection = ? AND id = ?`)
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			defer stmt.Close()
			for time.Now().Before(end) {
				var (
					id, coll, org, region  string
					kv, hon, ver, cre, upd int64
					dek, fields, tokens    []byte
					erased                 sql.NullInt64
				)
				t := time.Now()
				err := stmt.QueryRowContext(ctx, "users", ids[rng.IntN(len(ids))]).Scan(&id, &coll, &org, &region, &kv, &dek, &fields, &tokens, &hon, &ver, &cre, &upd, &erased)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[g] = append(lat[g], time.Since(t))
				reads.Add(1)
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return r, fmt.Errorf("read: %v", e)
	}
	r.readsPerS = float64(reads.Load()) / time.Since(start).Seconds()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) > 0 {
		slices.Sort(all)
		r.readP50Micro = float64(all[len(all)/2]) / 1e3
	}
	fmt.Printf("%-30s %8.0f inserts/s  %8.0f reads/s  (%s)\n", dr.label, r.insertsPerS, r.readsPerS, r.pragmas)
	return r, nil
}
