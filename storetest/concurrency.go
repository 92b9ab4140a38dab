package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/sekisho/sekisho"
)

// racers is how many goroutines race in each case: enough to collide, few
// enough for a small machine.
const racers = 8

// race runs f(i) for i in [0, racers) at once and returns their errors.
func race(f func(i int) error) []error {
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one call succeeded, the others failing with
// EConflict, and returns the winner.
func oneWinner(t *testing.T, what string, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch sekisho.Code(err) {
		case "":
			if winner >= 0 {
				t.Fatalf("%s: both %d and %d succeeded", what, winner, i)
			}
			winner = i
		case sekisho.EConflict:
		default:
			t.Fatalf("%s: racer %d: %v, want success or EConflict", what, i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("%s: no racer succeeded", what)
	}
	return winner
}

func testConcurrency(t *testing.T, open func(t *testing.T) sekisho.Store) {
	t.Run("UpdateRecord", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		r := NewRecord("users", "a", "acme", "jp")
		must(t, "CreateRecords", s.CreateRecords(ctx, []*sekisho.SealedRecord{r}))
		ups := make([]*sekisho.SealedRecord, racers)
		for i := range ups {
			ups[i] = updated(r, fmt.Sprint("racer-", i))
		}
		w := oneWinner(t, "UpdateRecord", race(func(i int) error { return s.UpdateRecord(ctx, ups[i]) }))
		wantRecord(t, s, ups[w])
		got, err := s.Lookup(ctx, "users", "phone", ups[w].Index["phone"], 10)
		must(t, "Lookup", err)
		if !equalStrings(got, []string{"a"}) {
			t.Fatalf("Lookup of the winner's token = %q, want [a]", got)
		}
		for i := range ups {
			if i == w {
				continue
			}
			got, err := s.Lookup(ctx, "users", "phone", ups[i].Index["phone"], 10)
			must(t, "Lookup", err)
			if len(got) != 0 {
				t.Fatalf("a losing update left its index entry")
			}
		}
	})
	t.Run("AppendAudit", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		must(t, "AppendAudit", s.AppendAudit(ctx, Entries(0, 2), nil))
		batches := make([][]sekisho.AuditEntry, racers)
		for i := range batches {
			batches[i] = Entries(2, 3)
			for j := range batches[i] {
				batches[i][j].RequestID = fmt.Sprint("racer-", i)
			}
		}
		w := oneWinner(t, "AppendAudit", race(func(i int) error {
			return s.AppendAudit(ctx, batches[i], []sekisho.AuditNode{{Level: 1, Index: 1, Hash: []byte{byte(i)}}})
		}))
		wantSize(t, s, 5)
		got, err := s.AuditLeaves(ctx, 0, 10)
		must(t, "AuditLeaves", err)
		wantEntries(t, "AuditLeaves", append(Entries(0, 2), batches[w]...), got)
		hashes, err := s.AuditNodes(ctx, []sekisho.AuditNode{{Level: 1, Index: 1}})
		must(t, "AuditNodes", err)
		if len(hashes) != 1 || len(hashes[0]) != 1 || hashes[0][0] != byte(w) {
			t.Fatalf("AuditNodes = %x, want the winner's [%02x]", hashes, w)
		}
	})
	t.Run("CreateRecords", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		oneWinner(t, "CreateRecords", race(func(i int) error {
			return s.CreateRecords(ctx, []*sekisho.SealedRecord{
				NewRecord("users", fmt.Sprint("own-", i), "acme", "jp"),
				NewRecord("users", "shared", "acme", "jp"),
			})
		}))
		n, err := s.CountRecords(ctx, "users", "")
		must(t, "CountRecords", err)
		if n != 2 {
			t.Fatalf("CountRecords = %d after racing creates, want 2", n)
		}
	})
	t.Run("PutObject", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		must(t, "PutObject", s.PutObject(ctx, NewObject("org", "acme", "acme", 1)))
		w := oneWinner(t, "PutObject", race(func(i int) error {
			o := NewObject("org", "acme", "acme", 2)
			o.Body = fmt.Appendf(nil, `{"racer":%d}`, i)
			return s.PutObject(ctx, o)
		}))
		got, err := s.GetObject(ctx, "org", "acme")
		must(t, "GetObject", err)
		if want := fmt.Sprintf(`{"racer":%d}`, w); string(got.Body) != want {
			t.Fatalf("GetObject body = %s, want %s", got.Body, want)
		}
	})
}
