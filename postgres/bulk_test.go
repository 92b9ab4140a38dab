package postgres_test

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/internal/pgtest"
	"github.com/sekisho/sekisho/postgres"
	"github.com/sekisho/sekisho/storetest"
)

// bulkIndexes are the indexes a first bulk load drops and EndBulk (or the
// next Open) builds.
var bulkIndexes = []string{"record_index_pkey", "record_index_by_record", "records_live_by_org"}

// missingIndexes returns those of bulkIndexes the database lacks.
func missingIndexes(t *testing.T, dsn string) []string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var missing []string
	for _, name := range bulkIndexes {
		var ok bool
		if err := conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = $1 AND relkind = 'i')`, name).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		if !ok {
			missing = append(missing, name)
		}
	}
	return missing
}

// hasPK reports whether record_index has its primary key.
func hasPK(t *testing.T, dsn string) bool {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var pk bool
	if err := conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'record_index_pkey')`).Scan(&pk); err != nil {
		t.Fatal(err)
	}
	return pk
}

// A first bulk load drops record_index's primary key, record_index_by_record
// and records_live_by_org, and EndBulk builds them. One that stops without
// EndBulk (the import was killed) leaves them missing; the next Open builds
// them before it returns, so a server started then has them and finds every
// record by its blind index. Control: before that Open they are missing (the
// test would prove nothing otherwise), and a load into a record_index that
// has entries keeps them throughout.
func TestOpenFinishesInterruptedBulk(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.DSN(t)
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.BeginBulk(ctx); err != nil {
		t.Fatal(err)
	}
	r := storetest.NewRecord("users", "r1", "acme", "jp")
	r.Index["phone"] = []byte("tok")
	if err := s.LoadRecords(ctx, []*sekisho.SealedRecord{r}, &sekisho.Object{Kind: "import-mark", ID: "j/0", Org: "acme", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	s.Close() // no EndBulk: killed
	if hasPK(t, dsn) {
		t.Fatal("record_index kept its primary key during a first bulk load")
	}
	if m := missingIndexes(t, dsn); !slices.Equal(m, bulkIndexes) {
		t.Fatalf("during a first bulk load, missing indexes %q; want %q", m, bulkIndexes)
	}

	s, err = postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !hasPK(t, dsn) {
		t.Fatal("Open did not build record_index's primary key after an interrupted bulk load")
	}
	if m := missingIndexes(t, dsn); len(m) > 0 {
		t.Fatalf("Open did not build %q after an interrupted bulk load", m)
	}
	got, err := s.Lookup(ctx, "users", "phone", []byte("tok"), 10)
	if err != nil || !slices.Equal(got, []string{"r1"}) {
		t.Fatalf("after reopening, Lookup = %q, %v; want [r1]", got, err)
	}

	// A second load, into a record_index with entries: the key stays.
	if err := s.BeginBulk(ctx); err != nil {
		t.Fatal(err)
	}
	if m := missingIndexes(t, dsn); len(m) > 0 {
		t.Fatalf("a bulk load into a non-empty record_index dropped %q", m)
	}
	r2 := storetest.NewRecord("users", "r2", "acme", "jp")
	r2.Index["phone"] = []byte("tok")
	if err := s.LoadRecords(ctx, []*sekisho.SealedRecord{r2}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.EndBulk(ctx); err != nil {
		t.Fatal(err)
	}
	got, err = s.Lookup(ctx, "users", "phone", []byte("tok"), 10)
	if err != nil || !slices.Equal(got, []string{"r1", "r2"}) {
		t.Fatalf("after the second load, Lookup = %q, %v; want [r1 r2]", got, err)
	}
}
