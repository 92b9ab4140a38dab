package incident_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/access"
	"github.com/sekisho/sekisho/audit"
	"github.com/sekisho/sekisho/incident"
	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/sqlite"
)

var (
	t0      = time.Date(2023, 9, 10, 0, 0, 0, 0, time.UTC)
	since   = t0.Add(4 * 24 * time.Hour)
	until   = t0.Add(11 * 24 * time.Hour)
	regions = []string{"jp", "th", "tw", "id"}
)

// actor is a principal on a device.
type actor struct{ principal, device, org string }

var actors = []actor{
	{"mallory", "dev-m1", "sub"},
	{"mallory", "dev-m2", "sub"},
	{"sub-svc", "dev-s", "sub"},
	{"alice", "dev-a", "operator"},
	{"bob", "dev-b", "affiliate"},
}

// history builds a store with the default schemas, records of two orgs in
// four regions (some erased), grants, and a generated audit log: reads with
// values, masked reads, lookups returning ids only, updates, erasures,
// creates, denials and authentication failures, by suspects and by others,
// spread around the window and on its edges.
func history(t testing.TB) sekisho.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sekisho.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ss, err := schemas.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ss {
		s.Version = 1
		if err := st.PutSchema(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	var recs []*sekisho.SealedRecord
	ids := map[string][]string{}
	for _, coll := range schemas.Names {
		for i := range 120 {
			id := fmt.Sprintf("%s%04d", coll[:1], i)
			org := "operator"
			if i%3 == 0 {
				org = "affiliate"
			}
			recs = append(recs, &sekisho.SealedRecord{ID: id, Collection: coll, Org: org, Region: regions[i%4], KEKVersion: 1,
				WrappedDEK: []byte("dek"), Fields: map[string][]byte{"x": []byte("sealed")}, Index: map[string][]byte{},
				Version: 1, CreatedAt: t0, UpdatedAt: t0})
			ids[coll] = append(ids[coll], id)
		}
	}
	if err := st.CreateRecords(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"u0005", "u0006"} {
		if err := st.EraseRecord(ctx, "users", id, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	putJSON(t, st, sekisho.KindPrincipal, "mallory", "sub", access.Principal{ID: "mallory", Org: "sub", Roles: []string{access.RoleMember}, Status: access.StatusActive})
	putJSON(t, st, sekisho.KindDevice, "dev-b", "affiliate", access.Device{ID: "dev-b", Principal: "bob", Org: "affiliate", Status: access.StatusApproved})
	putJSON(t, st, sekisho.KindPrincipal, "bob", "affiliate", access.Principal{ID: "bob", Org: "affiliate", Roles: []string{access.RoleSupport}, Status: access.StatusActive})
	// sub may read the operator's users and employees in jp and th.
	putJSON(t, st, sekisho.KindGrant, "g-1", "operator", access.Grant{ID: "g-1", GrantorOrg: "operator", GranteeOrg: "sub",
		Collections: []string{"users", "employees"}, Regions: []string{"jp", "th"}, Purposes: []string{"support"},
		Actions: []string{"read", "lookup"}, Expires: t0.Add(365 * 24 * time.Hour), Status: access.StatusActive})
	// A grant that expired before the window reaches nothing.
	putJSON(t, st, sekisho.KindGrant, "g-2", "operator", access.Grant{ID: "g-2", GrantorOrg: "operator", GranteeOrg: "sub",
		Collections: []string{"partners"}, Regions: []string{"jp"}, Purposes: []string{"support"},
		Actions: []string{"read"}, Expires: t0.Add(time.Hour), Status: access.StatusActive})

	log, err := audit.New(ctx, st, nil, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	rng := rand.New(rand.NewPCG(8, 8))
	fieldsOf := map[string][]string{}
	for _, s := range ss {
		fieldsOf[s.Collection] = s.FieldNames()
	}
	var evs []sekisho.Event
	span := 14 * 24 * time.Hour
	for i := range 3000 {
		a := actors[rng.IntN(len(actors))]
		coll := schemas.Names[rng.IntN(3)]
		tm := t0.Add(time.Duration(rng.Int64N(int64(span))))
		switch i {
		case 10:
			tm = since // on the edge: in
		case 11:
			tm = until // on the edge: out
		case 12:
			tm = until.Add(-time.Microsecond) // in
		case 13:
			tm = since.Add(-time.Microsecond) // out
		}
		ev := sekisho.Event{Time: tm, RequestID: fmt.Sprintf("r%d", i), Org: a.org, Principal: a.principal, Device: a.device,
			Purpose: "support", Collection: coll, Decision: sekisho.Allow}
		pick := func(n int) []string {
			var out []string
			for range n {
				out = append(out, ids[coll][rng.IntN(len(ids[coll]))])
			}
			slices.Sort(out)
			return slices.Compact(out)
		}
		fs := fieldsOf[coll]
		someFields := func() []string {
			out := slices.Clone(fs[:1+rng.IntN(len(fs))])
			slices.Sort(out)
			return out
		}
		switch k := rng.IntN(10); k {
		case 0, 1, 2:
			ev.Action, ev.Records, ev.Fields = "read", pick(1), someFields()
			ev.Masked = rng.IntN(3) == 0
		case 3:
			ev.Action, ev.Records, ev.Fields = "batch-get", pick(5), someFields()
		case 4:
			ev.Action, ev.Records, ev.Fields = "lookup", pick(2), []string{}
		case 5:
			ev.Action, ev.Records, ev.Fields = "update", pick(1), fs[:1]
		case 6:
			ev.Action, ev.Records = "erase", pick(1)
		case 7:
			ev.Action, ev.Records, ev.Fields = "create", pick(1), fs
		case 8:
			ev.Action, ev.Records, ev.Decision, ev.Reason = "read", pick(3), sekisho.Deny, "no grant"
		case 9:
			ev = sekisho.Event{Time: tm, RequestID: ev.RequestID, Device: a.device, Action: "authenticate", Decision: sekisho.Deny, Reason: "bad token"}
		}
		if i >= 10 && i <= 13 {
			ev = sekisho.Event{Time: tm, Org: "sub", Principal: "mallory", Device: "dev-m1", Action: "read",
				Collection: "partners", Records: []string{fmt.Sprintf("p%04d", 100+i)}, Fields: []string{"name"}, Decision: sekisho.Allow}
		}
		if i == 20 {
			// A record that never existed: region unknown.
			ev = sekisho.Event{Time: since.Add(time.Hour), Org: "sub", Principal: "mallory", Device: "dev-m1", Action: "read",
				Collection: "users", Records: []string{"u9999"}, Fields: []string{"phone"}, Decision: sekisho.Allow}
		}
		evs = append(evs, ev)
	}
	if _, err := log.AppendBatch(ctx, evs); err != nil {
		t.Fatal(err)
	}
	return st
}

func putJSON(t testing.TB, st sekisho.ObjectStore, kind, id, org string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := st.PutObject(context.Background(), &sekisho.Object{Kind: kind, ID: id, Org: org, Version: 1, Body: b, Updated: t0}); err != nil {
		t.Fatal(err)
	}
}

// expected is an independent count: every leaf of the log, decoded with
// sekisho.UnmarshalEvent, filtered and counted by the rules of the package doc.
type expected struct {
	exposed, possible map[string]bool
	fields            map[string]bool
	denied            int
	exposedByColl     map[string]int
	fieldEvents       map[string][]uint64
	exposedByRegion   map[string]int
	sensitiveSubjects map[string]bool
	deniedIndexes     []uint64
}

func count(t *testing.T, st sekisho.Store, in *incident.Incident) expected {
	ctx := context.Background()
	size, _ := st.AuditSize(ctx)
	leaves, err := st.AuditLeaves(ctx, 0, int(size))
	if err != nil {
		t.Fatal(err)
	}
	ss, _ := schemas.Defaults()
	sensitive := map[string]bool{}
	for _, s := range ss {
		for _, f := range s.Fields {
			if f.Classification == sekisho.ClassSensitive {
				sensitive[s.Collection+"."+f.Name] = true
			}
		}
	}
	x := expected{exposed: map[string]bool{}, possible: map[string]bool{}, fields: map[string]bool{}, exposedByColl: map[string]int{},
		fieldEvents: map[string][]uint64{}, exposedByRegion: map[string]int{}, sensitiveSubjects: map[string]bool{}}
	touched := map[string]bool{}
	for _, l := range leaves {
		ev, err := sekisho.UnmarshalEvent(l.Leaf)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Time.Before(in.Since) || !ev.Time.Before(in.Until) {
			continue
		}
		if !slices.Contains(in.Principals, ev.Principal) && !slices.Contains(in.Devices, ev.Device) && !slices.Contains(in.Orgs, ev.Org) {
			continue
		}
		if ev.Decision == sekisho.Deny {
			x.denied++
			x.deniedIndexes = append(x.deniedIndexes, l.Index)
			continue
		}
		for _, r := range ev.Records {
			key := ev.Collection + "/" + r
			switch {
			case (ev.Action == "read" || ev.Action == "batch-get" || ev.Action == "lookup") && len(ev.Fields) > 0:
				x.exposed[key] = true
				x.fieldEvents[key] = append(x.fieldEvents[key], l.Index)
				for _, f := range ev.Fields {
					x.fields[key+"."+f] = true
					if sensitive[ev.Collection+"."+f] {
						x.sensitiveSubjects[key] = true
					}
				}
			case ev.Action == "read" || ev.Action == "batch-get" || ev.Action == "lookup" || ev.Action == "update" || ev.Action == "erase":
				touched[key] = true
				x.fieldEvents[key] = append(x.fieldEvents[key], l.Index)
			}
		}
	}
	for k := range touched {
		if !x.exposed[k] {
			x.possible[k] = true
		}
	}
	for k := range x.exposed {
		var coll, id string
		for i := range k {
			if k[i] == '/' {
				coll, id = k[:i], k[i+1:]
			}
		}
		x.exposedByColl[coll]++
		region := "unknown"
		if recs, _ := st.GetRecords(ctx, coll, []string{id}); len(recs) == 1 {
			region = recs[0].Region
		}
		x.exposedByRegion[region]++
	}
	return x
}

func TestScopeEqualsIndependentCount(t *testing.T) {
	st := history(t)
	ctx := context.Background()
	cases := []struct {
		name string
		in   incident.Incident
	}{
		{"principal", incident.Incident{ID: "inc-p", Principals: []string{"mallory"}}},
		{"device", incident.Incident{ID: "inc-d", Devices: []string{"dev-m2", "dev-b"}}},
		{"org and principal overlapping", incident.Incident{ID: "inc-o", Orgs: []string{"sub"}, Principals: []string{"mallory", "alice"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Since, in.Until, in.Cause = since, until, incident.CauseUnauthorizedAccess
			if err := in.Validate(); err != nil {
				t.Fatal(err)
			}
			sc, err := incident.Compute(ctx, st, access.NewDirectory(st), []sekisho.LogStore{{Store: st}}, &in)
			if err != nil {
				t.Fatal(err)
			}
			x := count(t, st, &in)
			if sc.SubjectsExposed != len(x.exposed) || sc.SubjectsExposed == 0 {
				t.Errorf("subjects_exposed = %d, independent count %d", sc.SubjectsExposed, len(x.exposed))
			}
			if sc.FieldsExposed != len(x.fields) {
				t.Errorf("fields_exposed = %d, independent count %d", sc.FieldsExposed, len(x.fields))
			}
			if sc.SubjectsPossible != len(x.possible) || sc.SubjectsPossible == 0 {
				t.Errorf("subjects_possible = %d, independent count %d", sc.SubjectsPossible, len(x.possible))
			}
			if sc.DeniedAttempts != x.denied || sc.DeniedAttempts == 0 {
				t.Errorf("denied_attempts = %d, independent count %d", sc.DeniedAttempts, x.denied)
			}
			for coll, n := range x.exposedByColl {
				if got := sc.ByCollection[coll].SubjectsExposed; got != n {
					t.Errorf("by_collection[%s] = %d, independent count %d", coll, got, n)
				}
			}
			for r, n := range x.exposedByRegion {
				if got := sc.ByRegion[r]; got == nil || got.SubjectsExposed != n {
					t.Errorf("by_region[%s] = %+v, independent count %d", r, got, n)
				}
			}
			if got := sc.ByClassification["sensitive"]; got == nil || got.SubjectsExposed != len(x.sensitiveSubjects) {
				t.Errorf("by_classification[sensitive] = %+v, independent count %d", got, len(x.sensitiveSubjects))
			}
			for _, s := range sc.Subjects {
				k := s.Collection + "/" + s.ID
				if !slices.Equal(s.Events, x.fieldEvents[k]) {
					t.Errorf("subject %s events %v, independent %v", k, s.Events, x.fieldEvents[k])
				}
			}
			var denied []uint64
			for _, a := range sc.Denied {
				denied = append(denied, a.Index)
			}
			if !slices.Equal(denied, x.deniedIndexes) {
				t.Errorf("denied indexes differ")
			}
		})
	}
}

func TestScopeWindowEdgesAndWorstCase(t *testing.T) {
	st := history(t)
	ctx := context.Background()
	in := incident.Incident{ID: "inc-1", Principals: []string{"mallory"}, Since: since, Until: until}
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	sc, err := incident.Compute(ctx, st, access.NewDirectory(st), []sekisho.LogStore{{Store: st}}, &in)
	if err != nil {
		t.Fatal(err)
	}
	// Events 10 (at since) and 12 (until - 1µs) are in, 11 (at until) and 13 are out.
	in10, in12, out11, out13 := false, false, false, false
	for _, s := range sc.Subjects {
		for _, e := range s.Events {
			in10 = in10 || e == 10
			in12 = in12 || e == 12
			out11 = out11 || e == 11
			out13 = out13 || e == 13
		}
	}
	for _, a := range sc.Denied {
		in10 = in10 || a.Index == 10
		in12 = in12 || a.Index == 12
		out11 = out11 || a.Index == 11
		out13 = out13 || a.Index == 13
	}
	if out11 || out13 {
		t.Errorf("events on or after until, or before since, were counted")
	}
	if !in10 || !in12 {
		t.Errorf("events at since and just before until were not counted")
	}
	var unknown bool
	for _, s := range sc.Subjects {
		if s.ID == "u9999" {
			unknown = s.Region == incident.RegionUnknown && s.Country == ""
		}
	}
	if !unknown {
		t.Errorf("a record that never existed should be in region unknown")
	}
	// Worst case: sub's own records (none) + g-1: operator's users and
	// employees in jp and th (g-2 expired): operator holds i%3 != 0 of 120
	// per collection; jp and th are i%4 in {0,1}; users u0005 is erased.
	// Plus every subject the log shows touched outside of that.
	var want int64
	reach := func(coll string, i int) bool {
		return (coll == "users" || coll == "employees") && i%3 != 0 && i%4 <= 1 && !(coll == "users" && (i == 5 || i == 6))
	}
	for _, coll := range []string{"users", "employees"} {
		for i := range 120 {
			if reach(coll, i) {
				want++
			}
		}
	}
	for _, s := range sc.Subjects {
		var i int
		if _, err := fmt.Sscanf(s.ID[1:], "%d", &i); err != nil || i >= 120 || !reach(s.Collection, i) {
			want++
		}
	}
	if sc.WorstCaseSubjects != want {
		t.Errorf("worst_case_subjects = %d, want %d (%+v)", sc.WorstCaseSubjects, want, sc.WorstCase)
	}
	if sc.WorstCaseSubjects < int64(sc.SubjectsExposed+sc.SubjectsPossible) {
		t.Errorf("worst case %d is less than exposed + possible", sc.WorstCaseSubjects)
	}
}

func TestScopeDeterministicAndKeys(t *testing.T) {
	st := history(t)
	ctx := context.Background()
	in := incident.Incident{ID: "inc-1", Principals: []string{"mallory"}, Devices: []string{"dev-b"}, Since: since, Until: until}
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	var outs [][]byte
	for range 3 {
		sc, err := incident.Compute(ctx, st, access.NewDirectory(st), []sekisho.LogStore{{Store: st}}, &in)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		incident.WriteJSON(&b, sc)
		incident.WriteSubjectsCSV(&b, sc, "")
		incident.WriteCSV(&b, sc)
		incident.WriteTable(&b, sc)
		outs = append(outs, b.Bytes())
	}
	if !bytes.Equal(outs[0], outs[1]) || !bytes.Equal(outs[1], outs[2]) {
		t.Fatal("the same log gave different outputs")
	}
	sc, _ := incident.Compute(ctx, st, access.NewDirectory(st), []sekisho.LogStore{{Store: st}}, &in)
	var b bytes.Buffer
	incident.WriteJSON(&b, sc)
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b.Bytes(), &top); err != nil {
		t.Fatal(err)
	}
	want := []string{"incident", "suspects", "window", "subjects_exposed", "fields_exposed", "by_collection", "by_region",
		"by_classification", "subjects_possible", "denied_attempts", "worst_case_subjects", "log_size", "events_read", "worst_case",
		"subjects_plaintext", "subjects_masked_only", "ciphertext", "entrustment"}
	var got []string
	for k := range top {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("top-level keys %v, want %v", got, want)
	}
	var sub struct {
		Suspects map[string]json.RawMessage `json:"suspects"`
		Window   map[string]string          `json:"window"`
	}
	json.Unmarshal(b.Bytes(), &sub)
	if len(sub.Suspects) != 3 || sub.Suspects["principals"] == nil || sub.Suspects["devices"] == nil || sub.Suspects["orgs"] == nil {
		t.Errorf("suspects keys: %v", sub.Suspects)
	}
	if sub.Window["since"] != "2023-09-14T00:00:00Z" || sub.Window["until"] != "2023-09-21T00:00:00Z" || len(sub.Window) != 2 {
		t.Errorf("window: %v", sub.Window)
	}
}

func TestIncidentStore(t *testing.T) {
	st := history(t)
	ctx := context.Background()
	bad := []incident.Incident{
		{Since: since, Until: until},
		{Principals: []string{"p"}, Until: until},
		{Principals: []string{"p"}, Since: until, Until: since},
		{Principals: []string{"p"}, Since: since, Until: until, Cause: "aliens"},
	}
	for i, in := range bad {
		if err := incident.Create(ctx, st, &in, t0); sekisho.Code(err) != sekisho.EInvalid {
			t.Errorf("bad incident %d: err %v, want invalid", i, err)
		}
	}
	in := &incident.Incident{Principals: []string{"mallory", "mallory"}, Since: since, Until: until, Cause: incident.CauseMalware}
	if err := incident.Create(ctx, st, in, t0); err != nil {
		t.Fatal(err)
	}
	got, err := incident.Get(ctx, st, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Principals, []string{"mallory"}) || !got.DiscoveredAt.Equal(until) || !got.UnauthorizedAccess() {
		t.Errorf("stored incident %+v", got)
	}
	if _, err := incident.Get(ctx, st, "inc-nope"); sekisho.Code(err) != sekisho.ENotFound {
		t.Errorf("missing incident: %v", err)
	}
}

// storeOnly is a store that is no sekisho.RecordLocator.
type storeOnly struct{ sekisho.Store }

// slowAudit is a store whose QueryAudit waits a little, so that the scope's
// reads overlap, counts the queries running at once, and fails every query
// of a slice that starts at or after failFrom (when set).
type slowAudit struct {
	sekisho.Store
	failFrom      time.Time
	running, most atomic.Int32
}

var errBrokenLog = errors.New("the log's disk is gone")

func (s *slowAudit) QueryAudit(ctx context.Context, f sekisho.AuditFilter) ([]sekisho.AuditEntry, error) {
	r := s.running.Add(1)
	defer s.running.Add(-1)
	for m := s.most.Load(); r > m && !s.most.CompareAndSwap(m, r); m = s.most.Load() {
	}
	select {
	case <-time.After(2 * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if !s.failFrom.IsZero() && !f.Since.Before(s.failFrom) {
		return nil, errBrokenLog
	}
	return s.Store.QueryAudit(ctx, f)
}

// TestScopeReadsSlicesAtOnce: the window's slices are read several at a
// time and the scope is the one read one slice and one batch of records at
// a time (the same outputs, byte for byte); a slice that cannot be read fails the scope
// with its error, and no read outlives Compute.
func TestScopeReadsSlicesAtOnce(t *testing.T) {
	st := history(t)
	ctx := context.Background()
	in := incident.Incident{ID: "inc-1", Principals: []string{"mallory"}, Devices: []string{"dev-b"}, Since: since, Until: until}
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	outputs := func(sc *incident.Scope) []byte {
		var b bytes.Buffer
		incident.WriteJSON(&b, sc)
		incident.WriteSubjectsCSV(&b, sc, "")
		return b.Bytes()
	}
	plain, err := incident.ComputeOneAtATime(ctx, st, access.NewDirectory(st), []sekisho.LogStore{{Store: st}}, &in)
	if err != nil {
		t.Fatal(err)
	}
	slow := &slowAudit{Store: st}
	sc, err := incident.Compute(ctx, st, access.NewDirectory(st), []sekisho.LogStore{{Store: slow}}, &in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(outputs(sc), outputs(plain)) {
		t.Error("the scope read several slices at a time differs from the scope read one slice at a time")
	}
	if slow.most.Load() < 2 {
		t.Errorf("at most %d queries at once: the slices were read one after another", slow.most.Load())
	}
	// Control: one slice at a time never overlaps.
	seq := &slowAudit{Store: st}
	if _, err := incident.ComputeOneAtATime(ctx, st, access.NewDirectory(st), []sekisho.LogStore{{Store: seq}}, &in); err != nil {
		t.Fatal(err)
	}
	if seq.most.Load() != 1 {
		t.Errorf("one slice at a time ran %d queries at once", seq.most.Load())
	}
	if plain.SubjectsExposed == 0 {
		t.Fatal("no subject exposed: the comparison shows nothing")
	}
	// A store that cannot locate records: the subjects' places come from
	// the records themselves, the same.
	records, err := incident.Compute(ctx, storeOnly{st}, access.NewDirectory(st), []sekisho.LogStore{{Store: st}}, &in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(outputs(records), outputs(plain)) {
		t.Error("the scope over a store that is no RecordLocator differs")
	}

	broken := &slowAudit{Store: st, failFrom: since.Add(3 * 24 * time.Hour)}
	_, err = incident.Compute(ctx, st, access.NewDirectory(st), []sekisho.LogStore{{Store: broken}}, &in)
	if !errors.Is(err, errBrokenLog) {
		t.Fatalf("scope over a broken log: err = %v, want %v", err, errBrokenLog)
	}
	if n := broken.running.Load(); n != 0 {
		t.Errorf("%d queries still running after Compute returned", n)
	}
}
