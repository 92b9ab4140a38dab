package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sekisho/sekisho"
)

func testRecords(t *testing.T, open func(t *testing.T) sekisho.Store) {
	t.Run("CreateGet", func(t *testing.T) { testCreateGet(t, open(t)) })
	t.Run("CreateMany", func(t *testing.T) { testCreateMany(t, open(t)) })
	t.Run("CreateConflict", func(t *testing.T) { testCreateConflict(t, open) })
	t.Run("Update", func(t *testing.T) { testUpdate(t, open(t)) })
	t.Run("UpdateRefused", func(t *testing.T) { testUpdateRefused(t, open) })
	t.Run("Erase", func(t *testing.T) { testErase(t, open(t)) })
	t.Run("Lookup", func(t *testing.T) { testLookup(t, open(t)) })
	t.Run("CountAndList", func(t *testing.T) { testCountAndList(t, open(t)) })
	t.Run("Rewrap", func(t *testing.T) { testRewrap(t, open(t)) })
	t.Run("Locate", func(t *testing.T) { testLocate(t, open(t)) })
}

// testLocate: LocateRecords gives each record's org, region and erasure,
// as GetRecords's records have them, in the order asked, once each, and
// skips what does not exist.
func testLocate(t *testing.T, s sekisho.Store) {
	l, ok := s.(sekisho.RecordLocator)
	if !ok {
		t.Skip("not a sekisho.RecordLocator")
	}
	ctx := t.Context()
	a, b, c := NewRecord("users", "a", "acme", "jp"), NewRecord("users", "b", "beta", "th"), NewRecord("users", "c", "acme", "tw")
	other := NewRecord("partners", "a", "gamma", "id")
	must(t, "CreateRecords", s.CreateRecords(ctx, []*sekisho.SealedRecord{a, b, c}))
	must(t, "CreateRecords other collection", s.CreateRecords(ctx, []*sekisho.SealedRecord{other}))
	must(t, "EraseRecord", s.EraseRecord(ctx, "users", "c", c.UpdatedAt.Add(time.Minute)))
	// More ids than one statement takes (SQLite: 500), an id asked twice
	// in different statements.
	var many []*sekisho.SealedRecord
	var manyIDs []string
	var manyWant []sekisho.RecordPlace
	regions := []string{"jp", "th", "tw", "id"}
	for i := range 1100 {
		r := NewRecord("partners", fmt.Sprintf("p%04d", i), "acme", regions[i%len(regions)])
		many = append(many, r)
		manyIDs = append(manyIDs, r.ID)
		manyWant = append(manyWant, sekisho.RecordPlace{ID: r.ID, Org: "acme", Region: r.Region})
	}
	must(t, "CreateRecords many", s.CreateRecords(ctx, many))
	slices.Reverse(manyIDs)
	slices.Reverse(manyWant)
	manyIDs = append(manyIDs, manyIDs[3], manyIDs[900])
	for _, tc := range []struct {
		name       string
		collection string
		ids        []string
		want       []sekisho.RecordPlace
	}{
		{"ManyStatements", "partners", manyIDs, manyWant},
		{"OrderAsked", "users", []string{"b", "a"}, []sekisho.RecordPlace{{ID: "b", Org: "beta", Region: "th"}, {ID: "a", Org: "acme", Region: "jp"}}},
		{"ErasedKeepsItsPlace", "users", []string{"c"}, []sekisho.RecordPlace{{ID: "c", Org: "acme", Region: "tw", Erased: true}}},
		{"MissingSkippedOnce", "users", []string{"zz", "a", "missing", "a", "c"}, []sekisho.RecordPlace{{ID: "a", Org: "acme", Region: "jp"}, {ID: "c", Org: "acme", Region: "tw", Erased: true}}},
		{"OneCollection", "partners", []string{"a", "b"}, []sekisho.RecordPlace{{ID: "a", Org: "gamma", Region: "id"}}},
		{"NoIDs", "users", nil, nil},
		{"UnknownCollection", "nothing", []string{"a"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := l.LocateRecords(ctx, tc.collection, tc.ids)
			must(t, "LocateRecords", err)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("LocateRecords(%s, %q) = %+v, want %+v", tc.collection, tc.ids, got, tc.want)
			}
			// The same places as the records GetRecords returns.
			var once []string
			for _, id := range tc.ids {
				if !slices.Contains(once, id) {
					once = append(once, id)
				}
			}
			recs, err := s.GetRecords(ctx, tc.collection, once)
			must(t, "GetRecords", err)
			var fromRecs []sekisho.RecordPlace
			for _, r := range recs {
				fromRecs = append(fromRecs, r.Place())
			}
			if !slices.Equal(got, fromRecs) {
				t.Fatalf("LocateRecords = %+v, GetRecords' records are at %+v", got, fromRecs)
			}
		})
	}
}

// testRewrap: RewrapRecords changes the wrapped
// key, the KEK version, the version (+1) and UpdatedAt of each record whose
// version is still the one given, in one call; a record changed since, an
// erased one or a missing one is reported not done and left as it is.
func testRewrap(t *testing.T, s sekisho.Store) {
	ctx := t.Context()
	a, b, c := NewRecord("users", "a", "acme", "jp"), NewRecord("users", "b", "acme", "jp"), NewRecord("users", "c", "acme", "jp")
	must(t, "CreateRecords", s.CreateRecords(ctx, []*sekisho.SealedRecord{a, b, c}))
	bu := updated(b, "moved-on")
	must(t, "UpdateRecord", s.UpdateRecord(ctx, bu))
	must(t, "EraseRecord", s.EraseRecord(ctx, "users", "c", c.UpdatedAt.Add(time.Minute)))
	at := a.UpdatedAt.Add(time.Hour)
	done, err := s.RewrapRecords(ctx, []sekisho.Rewrap{
		{Collection: "users", ID: "a", Region: "jp", Version: a.Version, KEKVersion: 7, WrappedDEK: []byte("rewrapped-a"), UpdatedAt: at},
		{Collection: "users", ID: "b", Region: "jp", Version: b.Version, KEKVersion: 7, WrappedDEK: []byte("rewrapped-b"), UpdatedAt: at},
		{Collection: "users", ID: "c", Region: "jp", Version: c.Version, KEKVersion: 7, WrappedDEK: []byte("rewrapped-c"), UpdatedAt: at},
		{Collection: "users", ID: "nope", Region: "jp", Version: 1, KEKVersion: 7, WrappedDEK: []byte("x"), UpdatedAt: at},
	})
	must(t, "RewrapRecords", err)
	if !slices.Equal(done, []bool{true, false, false, false}) {
		t.Fatalf("RewrapRecords done = %v, want [true false false false]", done)
	}
	want := *a
	want.KEKVersion, want.WrappedDEK, want.Version, want.UpdatedAt = 7, []byte("rewrapped-a"), a.Version+1, at
	wantRecord(t, s, &want)
	wantRecord(t, s, bu)
	if got := getOne(t, s, "users", "c"); got == nil || !got.Erased() {
		t.Fatalf("the erased record came back: %+v", got)
	}
}

// getOne returns the record collection/id, or nil if GetRecords skips it.
func getOne(t *testing.T, s sekisho.Store, collection, id string) *sekisho.SealedRecord {
	t.Helper()
	recs, err := s.GetRecords(t.Context(), collection, []string{id})
	must(t, "GetRecords", err)
	switch len(recs) {
	case 0:
		return nil
	case 1:
		return recs[0]
	}
	t.Fatalf("GetRecords(%s, [%s]) returned %d records", collection, id, len(recs))
	return nil
}

// wantRecord fails unless the stored record equals want.
func wantRecord(t *testing.T, s sekisho.Store, want *sekisho.SealedRecord) {
	t.Helper()
	got := getOne(t, s, want.Collection, want.ID)
	if got == nil {
		t.Fatalf("record %s/%s not found", want.Collection, want.ID)
	}
	if d := DiffRecord(want, got); d != "" {
		t.Fatalf("record %s/%s: %s", want.Collection, want.ID, d)
	}
}

func ids(recs []*sekisho.SealedRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func testCreateGet(t *testing.T, s sekisho.Store) {
	ctx := t.Context()
	a := NewRecord("users", "a", "acme", "jp")
	b := NewRecord("users", "b", "acme", "th")
	b.KEKVersion = 7
	b.Honeytoken = true
	b.Index["phone"] = []byte{0, 1, 2, 0xff}
	c := NewRecord("users", "c", "beta", "jp")
	// Times in another zone are the same instants; they come back in UTC.
	c.CreatedAt = At(5).In(jst)
	c.UpdatedAt = At(6).In(jst)
	c.Fields = map[string][]byte{"empty": {}, "bin": {0, 0, 0}}
	c.Index = nil
	other := NewRecord("partners", "a", "acme", "jp")
	must(t, "CreateRecords", s.CreateRecords(ctx, []*sekisho.SealedRecord{a, b, c}))
	must(t, "CreateRecords other collection", s.CreateRecords(ctx, []*sekisho.SealedRecord{other}))
	must(t, "CreateRecords empty", s.CreateRecords(ctx, nil))

	for _, tc := range []struct {
		name       string
		collection string
		ids        []string
		want       []*sekisho.SealedRecord
	}{
		{"OrderAsked", "users", []string{"c", "a", "b"}, []*sekisho.SealedRecord{c, a, b}},
		{"MissingSkipped", "users", []string{"zz", "b", "missing", "a"}, []*sekisho.SealedRecord{b, a}},
		{"OneCollection", "partners", []string{"a", "b"}, []*sekisho.SealedRecord{other}},
		{"NoneFound", "users", []string{"x", "y"}, nil},
		{"NoIDs", "users", nil, nil},
		{"UnknownCollection", "nothing", []string{"a"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.GetRecords(ctx, tc.collection, tc.ids)
			must(t, "GetRecords", err)
			if !slices.Equal(ids(got), ids(tc.want)) {
				t.Fatalf("GetRecords(%s, %q) = ids %q, want %q", tc.collection, tc.ids, ids(got), ids(tc.want))
			}
			for i := range got {
				if d := DiffRecord(tc.want[i], got[i]); d != "" {
					t.Errorf("record %s: %s", got[i].ID, d)
				}
			}
		})
	}
}

// testCreateMany writes one large batch, as an import does.
func testCreateMany(t *testing.T, s sekisho.Store) {
	ctx := t.Context()
	const n = sekisho.MaxBatch
	recs := make([]*sekisho.SealedRecord, n)
	for i := range recs {
		recs[i] = NewRecord("users", fmt.Sprintf("r%05d", i), "acme", "jp")
	}
	must(t, "CreateRecords", s.CreateRecords(ctx, recs))
	count, err := s.CountRecords(ctx, "users", "")
	must(t, "CountRecords", err)
	if count != n {
		t.Fatalf("CountRecords = %d, want %d", count, n)
	}
	got, err := s.GetRecords(ctx, "users", []string{"r00999", "r00000", "r00500"})
	must(t, "GetRecords", err)
	want := []*sekisho.SealedRecord{recs[999], recs[0], recs[500]}
	if len(got) != len(want) {
		t.Fatalf("GetRecords returned %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if d := DiffRecord(want[i], got[i]); d != "" {
			t.Errorf("record %s: %s", want[i].ID, d)
		}
	}
}

// testCreateConflict checks that a batch with an existing id writes nothing.
func testCreateConflict(t *testing.T, open func(t *testing.T) sekisho.Store) {
	for _, tc := range []struct {
		name  string
		batch []string // ids; "a" exists already
	}{
		{"ExistingAlone", []string{"a"}},
		{"ExistingFirst", []string{"a", "n1", "n2"}},
		{"ExistingLast", []string{"n1", "n2", "a"}},
		// Decided: an id repeated within one batch is a conflict too.
		{"RepeatedInBatch", []string{"n1", "n2", "n1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			ctx := t.Context()
			a := NewRecord("users", "a", "acme", "jp")
			must(t, "CreateRecords", s.CreateRecords(ctx, []*sekisho.SealedRecord{a}))
			var batch []*sekisho.SealedRecord
			for _, id := range tc.batch {
				r := NewRecord("users", id, "beta", "th")
				r.Fields["name"] = []byte("overwritten")
				batch = append(batch, r)
			}
			wantCode(t, "CreateRecords", s.CreateRecords(ctx, batch), sekisho.EConflict)
			wantRecord(t, s, a)
			got, err := s.GetRecords(ctx, "users", []string{"n1", "n2"})
			must(t, "GetRecords", err)
			if len(got) != 0 {
				t.Fatalf("failed CreateRecords wrote %q", ids(got))
			}
			n, err := s.CountRecords(ctx, "users", "")
			must(t, "CountRecords", err)
			if n != 1 {
				t.Fatalf("CountRecords = %d after a failed batch, want 1", n)
			}
			found, err := s.Lookup(ctx, "users", "email", []byte("tok-email:n1\x00"), 10)
			must(t, "Lookup", err)
			if len(found) != 0 {
				t.Fatalf("failed CreateRecords left index entries for %q", found)
			}
		})
	}
}

// updated returns the next version of r: fields, index, key and time changed.
func updated(r *sekisho.SealedRecord, tag string) *sekisho.SealedRecord {
	u := *r
	u.Version = r.Version + 1
	u.KEKVersion = r.KEKVersion + 1
	u.WrappedDEK = []byte("dek2:" + tag)
	u.Fields = map[string][]byte{
		"name":  []byte("ct-name2:" + tag),
		"phone": []byte("ct-phone:" + tag),
	}
	u.Index = map[string][]byte{"phone": []byte("tok-phone:" + tag)}
	u.UpdatedAt = r.UpdatedAt.Add(90 * 1e9)
	return &u
}

func testUpdate(t *testing.T, s sekisho.Store) {
	ctx := t.Context()
	r := NewRecord("users", "a", "acme", "jp")
	must(t, "CreateRecords", s.CreateRecords(ctx, []*sekisho.SealedRecord{r}))
	// Decided: an update replaces the fields, the index, the wrapped key and
	// its KEK version (key rotation re-wraps through UpdateRecord), the
	// version and UpdatedAt; the suite keeps ID, Org, Region, CreatedAt.
	u := updated(r, "v2")
	must(t, "UpdateRecord v2", s.UpdateRecord(ctx, u))
	wantRecord(t, s, u)
	u3 := updated(u, "v3")
	must(t, "UpdateRecord v3", s.UpdateRecord(ctx, u3))
	wantRecord(t, s, u3)

	// The index follows the update: the old token is gone, the new one found.
	for _, tc := range []struct {
		field, token string
		want         []string
	}{
		{"email", "tok-email:a\x00", nil},
		{"phone", "tok-phone:v2", nil},
		{"phone", "tok-phone:v3", []string{"a"}},
	} {
		got, err := s.Lookup(ctx, "users", tc.field, []byte(tc.token), 10)
		must(t, "Lookup", err)
		if !equalStrings(got, tc.want) {
			t.Errorf("Lookup(%s, %q) = %q, want %q", tc.field, tc.token, got, tc.want)
		}
	}
}

func testUpdateRefused(t *testing.T, open func(t *testing.T) sekisho.Store) {
	for _, tc := range []struct {
		name   string
		mutate func(u *sekisho.SealedRecord)
		code   sekisho.ErrorCode
	}{
		{"StaleVersion", func(u *sekisho.SealedRecord) { u.Version = 2 }, sekisho.EConflict}, // stored is 2: based on 1
		{"OlderVersion", func(u *sekisho.SealedRecord) { u.Version = 1 }, sekisho.EConflict},
		{"SkippedVersion", func(u *sekisho.SealedRecord) { u.Version = 4 }, sekisho.EConflict}, // stored is 2, 4-1 != 2
		{"ZeroVersion", func(u *sekisho.SealedRecord) { u.Version = 0 }, sekisho.EConflict},
		{"Missing", func(u *sekisho.SealedRecord) { u.ID = "missing" }, sekisho.ENotFound},
		{"MissingVersion1", func(u *sekisho.SealedRecord) { u.ID = "missing"; u.Version = 1 }, sekisho.ENotFound},
		{"OtherCollection", func(u *sekisho.SealedRecord) { u.Collection = "partners" }, sekisho.ENotFound},
		{"Erased", func(u *sekisho.SealedRecord) { u.ID = "erased"; u.Version = 2 }, sekisho.EGone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			ctx := t.Context()
			r := NewRecord("users", "a", "acme", "jp")
			e := NewRecord("users", "erased", "acme", "jp")
			must(t, "CreateRecords", s.CreateRecords(ctx, []*sekisho.SealedRecord{r, e}))
			v2 := updated(r, "v2")
			must(t, "UpdateRecord", s.UpdateRecord(ctx, v2))
			must(t, "EraseRecord", s.EraseRecord(ctx, "users", "erased", At(10)))

			u := updated(v2, "refused")
			tc.mutate(u)
			wantCode(t, "UpdateRecord", s.UpdateRecord(ctx, u), tc.code)
			wantRecord(t, s, v2)
			if g := getOne(t, s, "users", "erased"); g == nil || !g.Erased() || len(g.Fields) != 0 {
				t.Fatalf("refused update changed the erased record: %+v", g)
			}
			if g := getOne(t, s, "partners", "a"); g != nil {
				t.Fatalf("refused update created partners/a")
			}
			got, err := s.Lookup(ctx, "users", "phone", []byte("tok-phone:refused"), 10)
			must(t, "Lookup", err)
			if len(got) != 0 {
				t.Fatalf("refused update wrote index entries for %q", got)
			}
		})
	}
}

func testErase(t *testing.T, s sekisho.Store) {
	ctx := t.Context()
	r := NewRecord("users", "a", "acme", "jp")
	r.Honeytoken = false
	keep := NewRecord("users", "b", "acme", "jp")
	keep.Index["email"] = r.Index["email"] // same token, must survive
	must(t, "CreateRecords", s.CreateRecords(ctx, []*sekisho.SealedRecord{r, keep}))
	at := At(3600).In(jst)
	must(t, "EraseRecord", s.EraseRecord(ctx, "users", "a", at))

	got := getOne(t, s, "users", "a")
	if got == nil {
		t.Fatal("erased record is gone; want a tombstone")
	}
	if !got.Erased() || got.WrappedDEK != nil {
		t.Errorf("WrappedDEK = %q after erasure, want nil", got.WrappedDEK)
	}
	if len(got.Fields) != 0 {
		t.Errorf("Fields = %q after erasure, want none", got.Fields)
	}
	if len(got.Index) != 0 {
		t.Errorf("Index = %q after erasure, want none", got.Index)
	}
	if got.ID != "a" || got.Collection != "users" || got.Org != "acme" || got.Region != "jp" {
		t.Errorf("tombstone = %s/%s org %q region %q, want users/a org acme region jp", got.Collection, got.ID, got.Org, got.Region)
	}
	for _, err := range []error{
		checkTime("CreatedAt", r.CreatedAt, got.CreatedAt),
		checkTime("ErasedAt", at, got.ErasedAt),
	} {
		if err != nil {
			t.Error(err)
		}
	}

	found, err := s.Lookup(ctx, "users", "email", r.Index["email"], 10)
	must(t, "Lookup", err)
	if !equalStrings(found, []string{"b"}) {
		t.Errorf("Lookup after erasure = %q, want [b]", found)
	}
	n, err := s.CountRecords(ctx, "users", "acme")
	must(t, "CountRecords", err)
	if n != 1 {
		t.Errorf("CountRecords after erasure = %d, want 1", n)
	}
	places, err := s.CountRecordsByPlace(ctx, "users", time.Time{})
	must(t, "CountRecordsByPlace", err)
	if len(places) != 1 || places[0].Records != 1 {
		t.Errorf("CountRecordsByPlace after erasure = %+v, want one place with 1 record", places)
	}
	// Only records created before the time given: none before their
	// creation, the one after it.
	if places, err = s.CountRecordsByPlace(ctx, "users", keep.CreatedAt); err != nil || len(places) != 0 {
		t.Errorf("CountRecordsByPlace before the records' creation = %+v, %v; want none", places, err)
	}
	if places, err = s.CountRecordsByPlace(ctx, "users", keep.CreatedAt.Add(time.Second)); err != nil || len(places) != 1 || places[0].Records != 1 ||
		places[0].Org != keep.Org || places[0].Region != keep.Region {
		t.Errorf("CountRecordsByPlace after the records' creation = %+v, %v; want %s/%s: 1", places, err, keep.Org, keep.Region)
	}
	list, err := s.ListRecordIDs(ctx, "users", "", "", 10)
	must(t, "ListRecordIDs", err)
	if !equalStrings(list, []string{"b"}) {
		t.Errorf("ListRecordIDs after erasure = %q, want [b]", list)
	}
	wantRecord(t, s, keep)

	// Decided: erasing again is EGone and keeps the first erasure time;
	// erasing what does not exist (here, or in this collection) is ENotFound.
	wantCode(t, "EraseRecord again", s.EraseRecord(ctx, "users", "a", At(7200)), sekisho.EGone)
	if g := getOne(t, s, "users", "a"); g == nil || checkTime("ErasedAt", at, g.ErasedAt) != nil {
		t.Errorf("second erasure changed the tombstone: %+v", g)
	}
	wantCode(t, "EraseRecord missing", s.EraseRecord(ctx, "users", "missing", At(1)), sekisho.ENotFound)
	wantCode(t, "EraseRecord other collection", s.EraseRecord(ctx, "partners", "b", At(1)), sekisho.ENotFound)
	wantRecord(t, s, keep)
}

func testLookup(t *testing.T, s sekisho.Store) {
	ctx := t.Context()
	shared := []byte{0x00, 0xff, 's', 'h', 0x00}
	var recs []*sekisho.SealedRecord
	for _, id := range []string{"m", "B", "a", "z", "k"} {
		r := NewRecord("users", id, "acme", "jp")
		r.Index["phone"] = shared
		recs = append(recs, r)
	}
	// The same token under another field, and in another collection.
	o1 := NewRecord("users", "other-field", "acme", "jp")
	o1.Index["email"] = shared
	o2 := NewRecord("partners", "other-coll", "acme", "jp")
	o2.Index["phone"] = shared
	recs = append(recs, o1)
	must(t, "CreateRecords", s.CreateRecords(ctx, recs))
	must(t, "CreateRecords", s.CreateRecords(ctx, []*sekisho.SealedRecord{o2}))

	for _, tc := range []struct {
		name       string
		collection string
		field      string
		token      []byte
		limit      int
		want       []string
	}{
		// Decided: ids come in id (byte) order, so a limit is deterministic.
		{"AllSameToken", "users", "phone", shared, 100, []string{"B", "a", "k", "m", "z"}},
		{"Limit", "users", "phone", shared, 2, []string{"B", "a"}},
		{"LimitExact", "users", "phone", shared, 5, []string{"B", "a", "k", "m", "z"}},
		{"OtherField", "users", "email", shared, 100, []string{"other-field"}},
		{"OtherCollection", "partners", "phone", shared, 100, []string{"other-coll"}},
		{"UniqueToken", "users", "email", []byte("tok-email:k\x00"), 100, []string{"k"}},
		{"PrefixOfToken", "users", "phone", shared[:4], 100, nil},
		{"TokenExtended", "users", "phone", append(slices.Clone(shared), 0), 100, nil},
		{"UnknownField", "users", "nope", shared, 100, nil},
		{"UnknownCollection", "nope", "phone", shared, 100, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Lookup(ctx, tc.collection, tc.field, tc.token, tc.limit)
			must(t, "Lookup", err)
			if !equalStrings(got, tc.want) {
				t.Fatalf("Lookup(%s, %s, %q, %d) = %q, want %q", tc.collection, tc.field, tc.token, tc.limit, got, tc.want)
			}
		})
	}
}

func testCountAndList(t *testing.T, s sekisho.Store) {
	ctx := t.Context()
	// Byte order puts upper case before lower case, "a-" before "a0", and
	// multi-byte UTF-8 last; a locale collation would not.
	acme := []string{"Zed", "a-1", "a0", "b", "c", "日本"}
	beta := []string{"Alpha", "a1", "bb"}
	var recs []*sekisho.SealedRecord
	for _, id := range acme {
		recs = append(recs, NewRecord("users", id, "acme", "jp"))
	}
	for _, id := range beta {
		recs = append(recs, NewRecord("users", id, "beta", "th"))
	}
	recs = append(recs, NewRecord("users", "erased", "acme", "jp"))
	recs = append(recs, NewRecord("partners", "p1", "acme", "jp"))
	must(t, "CreateRecords", s.CreateRecords(ctx, recs))
	must(t, "EraseRecord", s.EraseRecord(ctx, "users", "erased", At(1)))

	all := slices.Concat(acme, beta)
	slices.Sort(all) // Go's string order is byte order

	for _, tc := range []struct {
		collection, org string
		want            int64
	}{
		{"users", "", int64(len(acme) + len(beta))},
		{"users", "acme", int64(len(acme))},
		{"users", "beta", int64(len(beta))},
		{"users", "gamma", 0},
		{"partners", "", 1},
		{"nothing", "", 0},
	} {
		n, err := s.CountRecords(ctx, tc.collection, tc.org)
		must(t, "CountRecords", err)
		if n != tc.want {
			t.Errorf("CountRecords(%s, %q) = %d, want %d", tc.collection, tc.org, n, tc.want)
		}
	}

	for _, tc := range []struct {
		name            string
		collection, org string
		after           string
		limit           int
		want            []string
	}{
		{"All", "users", "", "", 100, all},
		{"FirstPage", "users", "", "", 3, all[:3]},
		{"SecondPage", "users", "", all[2], 3, all[3:6]},
		{"AfterNonexistentID", "users", "", "a00", 2, []string{"a1", "b"}},
		{"AfterLast", "users", "", all[len(all)-1], 10, nil},
		{"Org", "users", "acme", "", 100, []string{"Zed", "a-1", "a0", "b", "c", "日本"}},
		{"OrgPage", "users", "beta", "Alpha", 1, []string{"a1"}},
		{"OtherCollection", "partners", "", "", 100, []string{"p1"}},
		{"UnknownOrg", "users", "gamma", "", 100, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListRecordIDs(ctx, tc.collection, tc.org, tc.after, tc.limit)
			must(t, "ListRecordIDs", err)
			if !equalStrings(got, tc.want) {
				t.Fatalf("ListRecordIDs(%s, %q, after %q, %d) = %q, want %q", tc.collection, tc.org, tc.after, tc.limit, got, tc.want)
			}
		})
	}

	// Paging through everything visits every live id once.
	var paged []string
	after := ""
	for range 20 {
		page, err := s.ListRecordIDs(ctx, "users", "", after, 2)
		must(t, "ListRecordIDs", err)
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1]
	}
	if !equalStrings(paged, all) {
		t.Fatalf("paging by 2 = %q, want %q", paged, all)
	}
}
