package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	enc "encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/postgres"
)

// backupStore is one store of a backup: the default store or a region's.
type backupStore struct {
	// Log is the store's audit log name: default, or the region.
	Log  string `json:"log"`
	Kind string `json:"kind"` // sqlite or postgres
	File string `json:"file"` // its file in the backup
	// AuditSize and CheckpointSize as in backupManifest, for this store.
	AuditSize      uint64 `json:"audit_size"`
	CheckpointSize uint64 `json:"checkpoint_size"`
	// Tables (postgres) are the row counts of the snapshot pg_dump dumped;
	// the dump was checked to hold exactly these.
	Tables map[string]int64 `json:"tables,omitempty"`
	// AuditTables (postgres) are the tables of Tables that hold the audit
	// log's events: audit_entries' partitions, one a month.
	AuditTables []string `json:"audit_tables,omitempty"`
	// AuditDigest (postgres) sums, modulo 2^256, SHA-256(index || RFC 6962
	// leaf hash) over the audit log's events: the same for the snapshot and
	// the dump (whose rows come in the table's physical order, hence a sum).
	AuditDigest string `json:"audit_digest,omitempty"`
}

// dumpPostgres dumps the PostgreSQL store at dsn into file with pg_dump,
// from one exported snapshot, and checks the dump against that snapshot:
// the snapshot's audit log verifies (every stored checkpoint signed by
// verifier and consistent), and the dump holds every table with the
// snapshot's row count and the audit log leaf for leaf.
func dumpPostgres(ctx context.Context, dsn, file string, verifier note.Verifier) (*backupStore, error) {
	snap, err := postgres.OpenSnapshot(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer snap.Close(context.WithoutCancel(ctx))
	st := &backupStore{Kind: "postgres", File: filepath.Base(file)}
	rep, err := audit.Verify(ctx, snap.AuditStore(), verifier, nil)
	if err != nil {
		return nil, fmt.Errorf("verify the audit log: %w", err)
	}
	if !rep.OK {
		return nil, fmt.Errorf("the audit log does not verify: %d problems, the first: %s", len(rep.Problems)+rep.Omitted, firstProblem(rep))
	}
	st.AuditSize = rep.Size
	cps, err := snap.AuditStore().Checkpoints(ctx)
	if err != nil {
		return nil, err
	}
	if len(cps) > 0 {
		st.CheckpointSize = cps[len(cps)-1].Size
	}
	if st.Tables, err = snap.RowCounts(ctx); err != nil {
		return nil, err
	}
	if st.AuditTables, err = snap.AuditTables(ctx); err != nil {
		return nil, err
	}
	var events int64
	for _, t := range st.AuditTables {
		events += st.Tables[t]
	}
	if events != int64(st.AuditSize) {
		return nil, fmt.Errorf("the audit log has %d events but audit_entries %d rows", st.AuditSize, events)
	}
	d := newLeafDigest()
	for from := uint64(0); from < st.AuditSize; {
		es, err := snap.AuditStore().AuditLeaves(ctx, from, 1000)
		if err != nil {
			return nil, err
		}
		if len(es) == 0 {
			return nil, fmt.Errorf("audit log: no event at %d of %d", from, st.AuditSize)
		}
		for _, e := range es {
			d.add(e.Index, e.Leaf)
		}
		from = es[len(es)-1].Index + 1
	}
	st.AuditDigest = d.sum()

	conn, env := pgDumpTarget(dsn)
	cmd := exec.CommandContext(ctx, "pg_dump", "--snapshot="+snap.ID, "--format=custom", "--file="+file, "--dbname="+conn)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pg_dump: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if err := checkDump(ctx, file, st); err != nil {
		return nil, fmt.Errorf("the dump does not match the snapshot it was made from: %w", err)
	}
	return st, nil
}

// pgDumpTarget returns the connection string for pg_dump with the
// password taken out into PGPASSWORD, so that it is not in the process
// list.
func pgDumpTarget(dsn string) (string, []string) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.User == nil {
		return dsn, nil
	}
	pw, ok := u.User.Password()
	if !ok {
		return dsn, nil
	}
	u.User = url.User(u.User.Username())
	return u.String(), []string{"PGPASSWORD=" + pw}
}

// checkDump reads the dump back with pg_restore: every table of st.Tables
// must hold its row count, and the leaves of st.AuditTables must give
// st.AuditDigest.
func checkDump(ctx context.Context, file string, st *backupStore) error {
	tables := make([]string, 0, len(st.Tables))
	for t := range st.Tables {
		tables = append(tables, t)
	}
	slices.Sort(tables)
	leaves := newLeafDigest()
	for _, t := range tables {
		cmd := exec.CommandContext(ctx, "pg_restore", "--data-only", "--table="+t, "--file=-", file)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("pg_restore: %w", err)
		}
		var d *leafDigest
		if slices.Contains(st.AuditTables, t) {
			d = leaves
		}
		rows, perr := countCopyRows(out, t, d)
		io.Copy(io.Discard, out)
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("pg_restore --table=%s: %w: %s", t, err, strings.TrimSpace(stderr.String()))
		}
		if perr != nil {
			return fmt.Errorf("table %s: %w", t, perr)
		}
		if rows != st.Tables[t] {
			return fmt.Errorf("table %s: %d rows in the dump, %d in the snapshot", t, rows, st.Tables[t])
		}
	}
	if leaves.sum() != st.AuditDigest {
		return errors.New("audit_entries: the dumped leaves differ from the snapshot's")
	}
	return nil
}

// countCopyRows counts the data rows of table in pg_restore's SQL output
// (the lines between "COPY <schema>.<table> (...) FROM stdin;" and "\.");
// with d, it adds each row's leaf column (bytea, "\\x<hex>") to d.
func countCopyRows(r io.Reader, table string, d *leafDigest) (int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<20)
	var rows int64
	in, leafCol, idxCol := false, -1, -1
	for sc.Scan() {
		l := sc.Text()
		if !in {
			if rest, ok := strings.CutPrefix(l, "COPY "); ok && strings.HasSuffix(l, " FROM stdin;") {
				name, cols, _ := strings.Cut(rest, " (")
				if name != table && !strings.HasSuffix(name, "."+table) {
					return 0, fmt.Errorf("pg_restore gave table %s", name)
				}
				cols = strings.TrimSuffix(cols, ") FROM stdin;")
				leafCol = slices.Index(strings.Split(cols, ", "), "leaf")
				idxCol = slices.Index(strings.Split(cols, ", "), "idx")
				in = true
			}
			continue
		}
		if l == `\.` {
			in = false
			continue
		}
		rows++
		if d != nil {
			fs := strings.Split(l, "\t")
			if leafCol < 0 || leafCol >= len(fs) || idxCol < 0 || idxCol >= len(fs) || !strings.HasPrefix(fs[leafCol], `\\x`) {
				return 0, errors.New("audit_entries: a row without its idx and bytea leaf")
			}
			b, err := hex.DecodeString(fs[leafCol][3:])
			if err != nil {
				return 0, fmt.Errorf("audit_entries: leaf: %w", err)
			}
			idx, err := strconv.ParseUint(fs[idxCol], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("audit_entries: idx: %w", err)
			}
			d.add(idx, b)
		}
	}
	return rows, sc.Err()
}

// leafDigest is an order-free digest of a set of (index, leaf): the sum
// modulo 2^256 of SHA-256(index || RFC 6962 leaf hash). It checks that a
// copy holds the same events (not a defence against a forger, which the
// signed checkpoints are).
type leafDigest struct{ sum256 *big.Int }

var two256 = new(big.Int).Lsh(big.NewInt(1), 256)

func newLeafDigest() *leafDigest { return &leafDigest{new(big.Int)} }

func (d *leafDigest) add(index uint64, leaf []byte) {
	h := sha256.New()
	enc.Write(h, enc.BigEndian, index)
	h.Write(rfc6962.DefaultHasher.HashLeaf(leaf))
	d.sum256.Add(d.sum256, new(big.Int).SetBytes(h.Sum(nil)))
	d.sum256.Mod(d.sum256, two256)
}

func (d *leafDigest) sum() string { return fmt.Sprintf("%064x", d.sum256) }
