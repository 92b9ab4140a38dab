package sqlite_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/sqlite"
	"github.com/sekisho/sekisho/storetest"
)

// A bulk load that stops without EndBulk (the import was killed) leaves its
// index entries staged; the next Open moves them into the index before
// anything reads, so a server started then finds every record by its
// blind index. Control: before that Open, the staged record is not found.
func TestOpenFinishesInterruptedBulk(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	s, err := sqlite.Open(ctx, path)
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
	if got, err := s.Lookup(ctx, "users", "phone", []byte("tok"), 10); err != nil || len(got) != 0 {
		t.Fatalf("staged entry visible before the bulk load ended: %q, %v (the test would prove nothing)", got, err)
	}
	s.Close() // no EndBulk: killed

	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Lookup(ctx, "users", "phone", []byte("tok"), 10)
	if err != nil || !slices.Equal(got, []string{"r1"}) {
		t.Fatalf("after reopening, Lookup = %q, %v; want [r1]", got, err)
	}
}
