package postgres

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sekisho/sekisho/internal/pgtest"
)

// databaseAt returns a pool on the database at dsn with migrations 1 to
// version applied and recorded, as that version of the store left it.
func databaseAt(t *testing.T, dsn string, version int) *pgxpool.Pool {
	t.Helper()
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `CREATE TABLE schema_migrations (version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for v := 1; v <= version; v++ {
		if _, err := pool.Exec(ctx, migrations[v]); err != nil {
			t.Fatalf("migration %d: %v", v, err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v); err != nil {
			t.Fatal(err)
		}
	}
	return pool
}

// oldMap is how a record's maps were written before migration 3: a format
// byte 1 and the number of entries before the entries (spelled out here,
// as a fixture of the old databases).
func oldMap(m map[string][]byte, names []string) []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, k := range names {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(m[k])))
		b = append(b, m[k]...)
	}
	return b
}

// A database written before migration 3 (maps with the old header) reads
// the same maps after it: small maps, a map of 200 entries (a two-byte
// count), an empty map and an erased record (NULL maps).
func TestMigrateFieldEncoding(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	pool := databaseAt(t, dsn, 2)
	big := map[string][]byte{}
	var bigNames []string
	for i := range 200 {
		k := fmt.Sprintf("f%03d", i)
		big[k], bigNames = []byte{byte(i), 0xff}, append(bigNames, k)
	}
	cases := []struct {
		id            string
		fields, index map[string][]byte
		fn, in        []string
		erased        bool
	}{
		{id: "small", fields: map[string][]byte{"email": []byte("ct-e"), "name": {0, 1, 0x80}}, fn: []string{"email", "name"},
			index: map[string][]byte{"email": bytes.Repeat([]byte{9}, 200)}, in: []string{"email"}},
		{id: "big", fields: big, fn: bigNames, index: map[string][]byte{}},
		{id: "empty", fields: map[string][]byte{}, index: map[string][]byte{}},
		{id: "erased", erased: true},
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, c := range cases {
		var f, x []byte
		var erasedAt *time.Time
		if c.erased {
			erasedAt = &now
		} else {
			f, x = oldMap(c.fields, c.fn), oldMap(c.index, c.in)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO records (collection, id, org, region, kek_version, wrapped_dek, fields, index_tokens,
			honeytoken, version, created_at, updated_at, erased_at) VALUES ('users', $1, 'operator', 'jp', 1, $2, $3, $4, false, 1, $5, $5, $6)`,
			c.id, []byte("dek"), f, x, now, erasedAt); err != nil {
			t.Fatal(err)
		}
	}
	pool.Close()

	s, err := Open(ctx, dsn) // migrates to 3
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs, err := s.GetRecords(ctx, "users", []string{"small", "big", "empty", "erased"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(cases) {
		t.Fatalf("%d records read, want %d", len(recs), len(cases))
	}
	for i, c := range cases {
		r := recs[i]
		if c.erased {
			if len(r.Fields) != 0 || len(r.Index) != 0 {
				t.Errorf("erased record has maps %q %q", r.Fields, r.Index)
			}
			continue
		}
		if len(r.Fields) != len(c.fields) || !maps.EqualFunc(r.Fields, c.fields, bytes.Equal) {
			t.Errorf("%s: fields %q, want %q", c.id, r.Fields, c.fields)
		}
		if len(r.Index) != len(c.index) || !maps.EqualFunc(r.Index, c.index, bytes.Equal) {
			t.Errorf("%s: index %q, want %q", c.id, r.Index, c.index)
		}
	}
}
