package httpapi

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/sqlite"
)

// countingStore is a real SQLite store that counts the audit entries its
// QueryAudit returns: how much of the log a grant usage update reads.
type countingStore struct {
	*sqlite.Store
	read int
}

func (s *countingStore) QueryAudit(ctx context.Context, f sekisho.AuditFilter) ([]sekisho.AuditEntry, error) {
	es, err := s.Store.QueryAudit(ctx, f)
	s.read += len(es)
	return es, err
}

// TestGrantTallyReadsOnlyWhatIsNew: GET /v1/grants/usage's counts come
// from a tally that reads each audit event once. Before, every call read
// the whole log since the oldest grant (every org's events), which an
// admin could make the server do as often as it liked. A second update
// reads only the events appended since the first (negative: not the
// whole log again), and its counts equal a fresh tally's over the whole
// log (positive control: nothing is lost or counted twice).
func TestGrantTallyReadsOnlyWhatIsNew(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "sekisho.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	store := &countingStore{Store: st}
	signer, _, err := audit.LoadOrCreateKeys(dir, audit.DefaultOrigin)
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.New(ctx, store, signer, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	logs := []audit.RegionLog{{Log: log}}
	t0 := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	n := 0
	appendEv := func(decision string, policy, reason string, records ...string) {
		t.Helper()
		n++
		ev := sekisho.Event{Time: t0.Add(time.Duration(n) * time.Minute), RequestID: "r", Org: "aff", Principal: "eve",
			Action: "records.get", Collection: "users", Records: records, Decision: decision, Policy: policy, Reason: reason}
		if _, err := log.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	appendEv(sekisho.Allow, "grant:g1", "permitted by grant:g1", "a", "b")
	appendEv(sekisho.Allow, "grant:g1,own-org", "permitted by grant:g1, own-org", "c")
	appendEv(sekisho.Deny, "guard", "volume budget exceeded (grant g2: records per hour)")
	appendEv(sekisho.Allow, "own-org", "records of the caller's own org", "d")
	appendEv(sekisho.Deny, "grant:g2", "grant g2 does not list field phone")

	var tally grantTally
	counts, scanned, err := tally.update(ctx, logs)
	if err != nil {
		t.Fatal(err)
	}
	if store.read != 5 || scanned != 5 {
		t.Fatalf("first update read %d events, scanned %d; want the log's 5", store.read, scanned)
	}
	want := map[string]*grantCount{
		"g1": {reads: 2, records: 3, last: t0.Add(2 * time.Minute)},
		"g2": {refusals: 1},
	}
	if !reflect.DeepEqual(counts, want) {
		t.Fatalf("counts %v, want %v", show(counts), show(want))
	}

	appendEv(sekisho.Allow, "grant:g2", "permitted by grant:g2", "e", "f", "g")
	appendEv(sekisho.Deny, "grant:g1", "volume budget exceeded (grant g1: records total)")
	store.read = 0
	counts, scanned, err = tally.update(ctx, logs)
	if err != nil {
		t.Fatal(err)
	}
	if store.read != 2 || scanned != 7 {
		t.Fatalf("second update read %d events (want the 2 new ones), scanned %d (want 7)", store.read, scanned)
	}
	var fresh grantTally
	all, _, err := fresh.update(ctx, logs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(counts, all) {
		t.Fatalf("incremental counts %v, a fresh tally's %v", show(counts), show(all))
	}
	if g2 := counts["g2"]; g2.reads != 1 || g2.records != 3 || g2.refusals != 1 || !g2.last.Equal(t0.Add(6*time.Minute)) {
		t.Fatalf("g2 after the second update: %+v", *g2)
	}
	// Nothing new: nothing read.
	store.read = 0
	if _, _, err := tally.update(ctx, logs); err != nil || store.read != 0 {
		t.Fatalf("an update with nothing new read %d events (%v)", store.read, err)
	}
}

func show(m map[string]*grantCount) map[string]grantCount {
	out := map[string]grantCount{}
	for k, v := range m {
		out[k] = *v
	}
	return out
}
