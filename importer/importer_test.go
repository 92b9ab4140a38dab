package importer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/values"
)

// memSink accepts every row whose fields validate against the schema, like
// the vault does, and keeps them.
type memSink struct {
	s    *sekisho.Schema
	rows []Item
}

func (m *memSink) Write(_ context.Context, items []Item) ([]error, error) {
	errs := make([]error, len(items))
	for i, it := range items {
		for name, v := range it.Input.Fields {
			f, ok := m.s.Field(name)
			if !ok {
				errs[i] = sekisho.Errorf(sekisho.EInvalid, "no field %s", name)
				break
			}
			if _, err := values.Normalize(f, v, it.Input.Region); err != nil {
				errs[i] = err
				break
			}
		}
		if errs[i] == nil {
			m.rows = append(m.rows, it)
		}
	}
	return errs, nil
}

var schema = &sekisho.Schema{Collection: "users", Fields: []sekisho.Field{
	{Name: "phone", Type: sekisho.TypePhone, Classification: sekisho.ClassContact},
	{Name: "n", Type: sekisho.TypeInteger, Classification: sekisho.ClassOther},
	{Name: "usage", Type: sekisho.TypeJSON, Classification: sekisho.ClassUsage},
}}

func TestBadRowsReportedByLine(t *testing.T) {
	tests := []struct {
		name    string
		format  Format
		input   string
		lines   []int // rejected lines
		written int
	}{
		{"ndjson", NDJSON, strings.Join([]string{
			`{"region":"jp","fields":{"phone":"+819012345678"}}`,
			`{"region":"jp","fields":{"phone":"nope"}}`,
			``,
			`{"region":"jp","fields":`,
			`{"region":"jp","fields":{"phone":"+819012345679","n":3}}`,
			`{"region":"jp","fields":{"shoe":"1"}}`,
			`{"region":"jp","fields":{"n":"x"}}`,
		}, "\n"), []int{2, 4, 6, 7}, 2},
		{"csv", CSV, "region,phone,n,usage\n" +
			"jp,+819012345678,1,{}\n" +
			"jp,not-a-phone,2,{}\n" +
			"jp,+819012345679,3\n" +
			"th,+66812345678,,\"{\"\"a\"\":1}\"\n" +
			"jp,\"+819012345670,4,{}\n", []int{3, 4, 6}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &memSink{s: schema}
			var got []int
			sum, err := Run(context.Background(), strings.NewReader(tc.input), sink, Options{Format: tc.format, Schema: schema, BatchSize: 2,
				OnReject: func(r Rejection) { got = append(got, r.Line) }})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.lines) {
				t.Fatalf("rejected lines %v, want %v", got, tc.lines)
			}
			if sum.Imported != tc.written || len(sink.rows) != tc.written || sum.Rejected != len(tc.lines) {
				t.Fatalf("summary %+v, sink has %d rows; want %d imported", sum, len(sink.rows), tc.written)
			}
		})
	}
}

type failingSink struct{ calls int }

func (f *failingSink) Write(context.Context, []Item) ([]error, error) {
	f.calls++
	return nil, errors.New("store is down")
}

func TestSinkFailureStops(t *testing.T) {
	in := strings.Repeat(`{"region":"jp","fields":{"n":1}}`+"\n", 10)
	sink := &failingSink{}
	_, err := Run(context.Background(), strings.NewReader(in), sink, Options{Format: NDJSON, BatchSize: 3})
	if err == nil || !strings.Contains(err.Error(), "line 3") || sink.calls != 1 {
		t.Fatalf("err = %v after %d calls; want a stop at the first batch, naming its last line", err, sink.calls)
	}
}

func TestCSVHeaderErrors(t *testing.T) {
	for _, in := range []string{"phone,n\n+819012345678,1\n", "region,shoe\njp,1\n", ""} {
		if _, err := Run(context.Background(), strings.NewReader(in), &memSink{s: schema}, Options{Format: CSV, Schema: schema}); err == nil {
			t.Errorf("header of %q accepted", in)
		}
	}
}
