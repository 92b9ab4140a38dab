package gen

import (
	"testing"

	"github.com/sekisho/sekisho/schemas"
	"github.com/sekisho/sekisho/values"
)

// Every generated value passes its schema's validation.
func TestGeneratedRecordsValidate(t *testing.T) {
	defs, err := schemas.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	g := New(1)
	for _, s := range defs {
		for i := 0; i < 2000; i++ {
			in, err := g.Record(s.Collection)
			if err != nil {
				t.Fatal(err)
			}
			for name, v := range in.Fields {
				f, ok := s.Field(name)
				if !ok {
					t.Fatalf("%s: generated unknown field %s", s.Collection, name)
				}
				if _, err := values.Normalize(f, v, in.Region); err != nil {
					t.Fatalf("%s.%s = %s (%s): %v", s.Collection, name, v, in.Region, err)
				}
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	a, b := New(7).User(), New(7).User()
	if string(a.Fields["phone"]) != string(b.Fields["phone"]) || a.Region != b.Region {
		t.Fatal("same seed gave different records")
	}
}
