package storetest

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/sekisho/sekisho"
)

// NewObject returns an object whose body is JSON with spacing and key order
// that a re-encoding store would change.
func NewObject(kind, id, org string, version int64) *sekisho.Object {
	return &sekisho.Object{
		Kind:    kind,
		ID:      id,
		Org:     org,
		Version: version,
		Body:    fmt.Appendf(nil, `{"z": 1, "id":"%s",  "a":[1,2], "v": %d}`, id, version),
		Updated: At(int(version)),
	}
}

func diffObject(want, got *sekisho.Object) string {
	if got == nil {
		return "object is nil"
	}
	if got.Kind != want.Kind || got.ID != want.ID || got.Org != want.Org || got.Version != want.Version {
		return fmt.Sprintf("object = %s/%s org %q version %d, want %s/%s org %q version %d",
			got.Kind, got.ID, got.Org, got.Version, want.Kind, want.ID, want.Org, want.Version)
	}
	if !bytes.Equal(got.Body, want.Body) {
		return fmt.Sprintf("Body = %q, want %q", got.Body, want.Body)
	}
	if err := checkTime("Updated", want.Updated, got.Updated); err != nil {
		return err.Error()
	}
	return ""
}

func wantObject(t *testing.T, s sekisho.Store, want *sekisho.Object) {
	t.Helper()
	got, err := s.GetObject(t.Context(), want.Kind, want.ID)
	must(t, "GetObject", err)
	if d := diffObject(want, got); d != "" {
		t.Fatalf("GetObject(%s, %s): %s", want.Kind, want.ID, d)
	}
}

func testObjects(t *testing.T, open func(t *testing.T) sekisho.Store) {
	t.Run("Versions", func(t *testing.T) { testObjectVersions(t, open) })
	t.Run("List", func(t *testing.T) { testObjectList(t, open(t)) })
	t.Run("Delete", func(t *testing.T) { testObjectDelete(t, open(t)) })
}

func testObjectVersions(t *testing.T, open func(t *testing.T) sekisho.Store) {
	s := open(t)
	ctx := t.Context()
	// Decided: a missing object is ENotFound.
	_, err := s.GetObject(ctx, "org", "acme")
	wantCode(t, "GetObject missing", err, sekisho.ENotFound)
	wantCode(t, "PutObject new at 2", s.PutObject(ctx, NewObject("org", "acme", "acme", 2)), sekisho.EConflict)
	_, err = s.GetObject(ctx, "org", "acme")
	wantCode(t, "GetObject after refused put", err, sekisho.ENotFound)

	v1 := NewObject("org", "acme", "acme", 1)
	v1.Updated = At(1).In(jst)
	must(t, "PutObject v1", s.PutObject(ctx, v1))
	wantObject(t, s, v1)
	// The same id under another kind is another object.
	p1 := NewObject("principal", "acme", "acme", 1)
	must(t, "PutObject other kind", s.PutObject(ctx, p1))
	wantObject(t, s, p1)
	wantObject(t, s, v1)

	for _, tc := range []struct {
		name    string
		version int64
	}{
		{"RecreateAt1", 1},
		{"SkipTo3", 3},
		{"Zero", 0},
		{"Negative", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := NewObject("org", "acme", "acme", tc.version)
			bad.Body = []byte(`{"refused":true}`)
			wantCode(t, "PutObject", s.PutObject(ctx, bad), sekisho.EConflict)
			wantObject(t, s, v1)
		})
	}
	v2 := NewObject("org", "acme", "acme", 2)
	must(t, "PutObject v2", s.PutObject(ctx, v2))
	wantObject(t, s, v2)
	wantCode(t, "PutObject v2 again", s.PutObject(ctx, v2), sekisho.EConflict)
	v3 := NewObject("org", "acme", "acme", 3)
	v3.Body = []byte{} // an empty body round-trips as empty
	must(t, "PutObject v3", s.PutObject(ctx, v3))
	got, err := s.GetObject(ctx, "org", "acme")
	must(t, "GetObject", err)
	if len(got.Body) != 0 || got.Version != 3 {
		t.Fatalf("GetObject after v3 = version %d body %q, want version 3, empty body", got.Version, got.Body)
	}
	wantObject(t, s, p1)
}

func testObjectList(t *testing.T, s sekisho.Store) {
	ctx := t.Context()
	objs := []*sekisho.Object{
		NewObject("device", "d-b", "acme", 1),
		NewObject("device", "D-z", "beta", 1),
		NewObject("device", "d-a", "acme", 1),
		NewObject("device", "d-c", "beta", 1),
		NewObject("principal", "d-a", "acme", 1),
	}
	for _, o := range objs {
		must(t, "PutObject", s.PutObject(ctx, o))
	}
	// An update keeps one entry with the latest version.
	must(t, "PutObject v2", s.PutObject(ctx, NewObject("device", "d-c", "beta", 2)))
	for _, tc := range []struct {
		name, kind, org string
		want            []string // kind/id@version
	}{
		// By id in byte order: "D-z" before "d-a".
		{"Kind", "device", "", []string{"D-z@1", "d-a@1", "d-b@1", "d-c@2"}},
		{"KindOrg", "device", "acme", []string{"d-a@1", "d-b@1"}},
		{"OtherOrg", "device", "beta", []string{"D-z@1", "d-c@2"}},
		{"OtherKind", "principal", "", []string{"d-a@1"}},
		{"UnknownKind", "grant", "", nil},
		{"UnknownOrg", "device", "gamma", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := s.ListObjects(ctx, tc.kind, tc.org)
			must(t, "ListObjects", err)
			var got []string
			for _, o := range list {
				if o.Kind != tc.kind {
					t.Errorf("ListObjects(%s) returned an object of kind %s", tc.kind, o.Kind)
				}
				if tc.org != "" && o.Org != tc.org {
					t.Errorf("ListObjects(%s, %s) returned an object of org %s", tc.kind, tc.org, o.Org)
				}
				if d := diffObject(NewObject(o.Kind, o.ID, o.Org, o.Version), o); d != "" {
					t.Errorf("ListObjects: %s/%s: %s", o.Kind, o.ID, d)
				}
				got = append(got, fmt.Sprintf("%s@%d", o.ID, o.Version))
			}
			if !equalStrings(got, tc.want) {
				t.Fatalf("ListObjects(%s, %q) = %q, want %q", tc.kind, tc.org, got, tc.want)
			}
		})
	}
}

func testObjectDelete(t *testing.T, s sekisho.Store) {
	ctx := t.Context()
	must(t, "PutObject", s.PutObject(ctx, NewObject("grant", "g1", "acme", 1)))
	must(t, "PutObject", s.PutObject(ctx, NewObject("grant", "g2", "acme", 1)))
	must(t, "PutObject", s.PutObject(ctx, NewObject("policy", "g1", "acme", 1)))
	must(t, "DeleteObject", s.DeleteObject(ctx, "grant", "g1"))
	_, err := s.GetObject(ctx, "grant", "g1")
	wantCode(t, "GetObject deleted", err, sekisho.ENotFound)
	wantObject(t, s, NewObject("policy", "g1", "acme", 1))
	list, err := s.ListObjects(ctx, "grant", "")
	must(t, "ListObjects", err)
	if len(list) != 1 || list[0].ID != "g2" {
		t.Fatalf("ListObjects after delete = %d objects, want only g2", len(list))
	}
	// Decided: deleting a missing object is ENotFound.
	wantCode(t, "DeleteObject again", s.DeleteObject(ctx, "grant", "g1"), sekisho.ENotFound)
	wantCode(t, "DeleteObject missing kind", s.DeleteObject(ctx, "nothing", "g2"), sekisho.ENotFound)
	// Decided: a deleted object can be created again, from version 1.
	wantCode(t, "PutObject v2 of deleted", s.PutObject(ctx, NewObject("grant", "g1", "acme", 2)), sekisho.EConflict)
	again := NewObject("grant", "g1", "beta", 1)
	must(t, "PutObject again", s.PutObject(ctx, again))
	wantObject(t, s, again)
}
