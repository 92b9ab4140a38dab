package storetest

import (
	"reflect"
	"testing"

	"github.com/sekisho/sekisho"
)

// NewSchema returns a valid schema of collection at the given version.
func NewSchema(collection string, version int64) *sekisho.Schema {
	return &sekisho.Schema{
		Collection:  collection,
		Description: "people of " + collection,
		Fields: []sekisho.Field{
			{Name: "name", Type: sekisho.TypeString, Classification: sekisho.ClassIdentifier, Required: true, MaxLength: 200},
			{Name: "email", Type: sekisho.TypeEmail, Classification: sekisho.ClassContact, Lookup: true, Mask: sekisho.MaskEmailDomain},
			{Name: "notes", Type: sekisho.TypeJSON, Classification: sekisho.ClassSensitive, Description: "free-form"},
		},
		Version: version,
	}
}

func testSchemas(t *testing.T, open func(t *testing.T) sekisho.Store) {
	s := open(t)
	ctx := t.Context()

	list, err := s.ListSchemas(ctx)
	must(t, "ListSchemas", err)
	if len(list) != 0 {
		t.Fatalf("ListSchemas on an empty store = %d schemas", len(list))
	}
	// Decided: a missing schema is ENotFound.
	_, err = s.GetSchema(ctx, "users")
	wantCode(t, "GetSchema missing", err, sekisho.ENotFound)

	// New collections start at version 1.
	wantCode(t, "PutSchema new at 2", s.PutSchema(ctx, NewSchema("users", 2)), sekisho.EConflict)
	wantCode(t, "PutSchema new at 0", s.PutSchema(ctx, NewSchema("users", 0)), sekisho.EConflict)
	_, err = s.GetSchema(ctx, "users")
	wantCode(t, "GetSchema after refused puts", err, sekisho.ENotFound)

	v1 := NewSchema("users", 1)
	must(t, "PutSchema v1", s.PutSchema(ctx, v1))
	wantSchema(t, s, v1)

	v2 := NewSchema("users", 2)
	v2.Fields = append(v2.Fields, sekisho.Field{Name: "phone", Type: sekisho.TypePhone, Classification: sekisho.ClassContact, Lookup: true, Mask: sekisho.MaskLast4})
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
			bad := NewSchema("users", tc.version)
			bad.Description = "refused"
			wantCode(t, "PutSchema", s.PutSchema(ctx, bad), sekisho.EConflict)
			wantSchema(t, s, v1)
		})
	}
	must(t, "PutSchema v2", s.PutSchema(ctx, v2))
	wantSchema(t, s, v2)
	wantCode(t, "PutSchema v2 again", s.PutSchema(ctx, v2), sekisho.EConflict)

	must(t, "PutSchema employees", s.PutSchema(ctx, NewSchema("employees", 1)))
	must(t, "PutSchema partners", s.PutSchema(ctx, NewSchema("partners", 1)))
	list, err = s.ListSchemas(ctx)
	must(t, "ListSchemas", err)
	// Decided: ListSchemas is in collection order, latest version of each.
	want := []*sekisho.Schema{NewSchema("employees", 1), NewSchema("partners", 1), v2}
	if len(list) != len(want) {
		t.Fatalf("ListSchemas = %d schemas, want %d", len(list), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(list[i], want[i]) {
			t.Errorf("ListSchemas[%d] = %+v, want %+v", i, list[i], want[i])
		}
	}
}

func wantSchema(t *testing.T, s sekisho.Store, want *sekisho.Schema) {
	t.Helper()
	got, err := s.GetSchema(t.Context(), want.Collection)
	must(t, "GetSchema", err)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetSchema(%s) = %+v, want %+v", want.Collection, got, want)
	}
}
