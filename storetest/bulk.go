package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/sekisho/sekisho"
)

// testBulk: a store that is a sekisho.BulkLoader loads records between
// BeginBulk and EndBulk with their marks in the same transaction; after
// EndBulk every record is found by its blind index, and an update or erase
// of a bulk-loaded record removes its old index entries. A batch refused
// (a repeated id) writes neither its records nor its mark.
func testBulk(t *testing.T, open func(t *testing.T) sekisho.Store) {
	s := open(t)
	l, ok := s.(sekisho.BulkLoader)
	if !ok {
		t.Skip("not a bulk loader")
	}
	ctx := t.Context()
	if l.LoadParallel() < 1 {
		t.Fatalf("LoadParallel = %d", l.LoadParallel())
	}
	must(t, "CreateRecords before", s.CreateRecords(ctx, []*sekisho.SealedRecord{NewRecord("users", "before", "acme", "jp")}))
	must(t, "BeginBulk", l.BeginBulk(ctx))
	var all []string
	for b := range 3 {
		var recs []*sekisho.SealedRecord
		for i := range 50 {
			id := fmt.Sprintf("b%d-%02d", b, i)
			r := NewRecord("users", id, "acme", "jp")
			r.Index["phone"] = []byte("phone-" + id)
			recs = append(recs, r)
			all = append(all, id)
		}
		mark := &sekisho.Object{Kind: "import-mark", ID: fmt.Sprintf("job/%d", b), Org: "acme", Body: []byte(fmt.Sprintf(`{"n":%d}`, b)), Updated: At(b)}
		must(t, "LoadRecords", l.LoadRecords(ctx, recs, mark))
	}
	// A mark alone (a batch of bad rows only) and a mark written again.
	must(t, "LoadRecords mark only", l.LoadRecords(ctx, nil, &sekisho.Object{Kind: "import-mark", ID: "job/3", Org: "acme", Body: []byte(`{}`), Updated: At(3)}))
	must(t, "LoadRecords mark again", l.LoadRecords(ctx, nil, &sekisho.Object{Kind: "import-mark", ID: "job/3", Org: "acme", Body: []byte(`{"again":1}`), Updated: At(4)}))
	// A refused batch: its mark is not written.
	dup := []*sekisho.SealedRecord{NewRecord("users", "dup", "acme", "jp"), NewRecord("users", "b0-00", "acme", "jp")}
	if err := l.LoadRecords(ctx, dup, &sekisho.Object{Kind: "import-mark", ID: "job/bad", Org: "acme", Body: []byte(`{}`), Updated: At(5)}); sekisho.Code(err) != sekisho.EConflict {
		t.Fatalf("LoadRecords with an existing id: %v, want EConflict", err)
	}
	must(t, "EndBulk", l.EndBulk(ctx))

	marks, err := s.ListObjects(ctx, "import-mark", "acme")
	must(t, "ListObjects", err)
	var got []string
	for _, m := range marks {
		got = append(got, m.ID+"="+string(m.Body))
	}
	want := []string{`job/0={"n":0}`, `job/1={"n":1}`, `job/2={"n":2}`, `job/3={"again":1}`}
	if !slices.Equal(got, want) {
		t.Fatalf("marks %q, want %q", got, want)
	}
	if r, _ := s.GetRecords(ctx, "users", []string{"dup"}); len(r) != 0 {
		t.Fatal("a record of the refused batch was written")
	}
	if n, err := s.CountRecords(ctx, "users", ""); err != nil || n != int64(len(all))+1 {
		t.Fatalf("CountRecords = %d, %v; want %d", n, err, len(all)+1)
	}
	for _, id := range all {
		got, err := s.Lookup(ctx, "users", "phone", []byte("phone-"+id), 10)
		must(t, "Lookup", err)
		if !slices.Equal(got, []string{id}) {
			t.Fatalf("Lookup of %s's token after the bulk load = %q", id, got)
		}
	}
	// Update and erase drop the old entries of a bulk-loaded record.
	r := getOne(t, s, "users", "b1-07")
	r2 := updated(r, "x")
	r2.Index = map[string][]byte{"phone": []byte("phone-new")}
	must(t, "UpdateRecord", s.UpdateRecord(ctx, r2))
	must(t, "EraseRecord", s.EraseRecord(ctx, "users", "b2-09", At(9)))
	for _, tc := range []struct {
		token string
		want  []string
	}{{"phone-b1-07", nil}, {"phone-new", []string{"b1-07"}}, {"phone-b2-09", nil}, {"phone-b2-08", []string{"b2-08"}}} {
		got, err := s.Lookup(ctx, "users", "phone", []byte(tc.token), 10)
		must(t, "Lookup", err)
		if !equalStrings(got, tc.want) {
			t.Errorf("Lookup(%s) = %q, want %q", tc.token, got, tc.want)
		}
	}
}
