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

func (m *memSink) Flush(context.Context) error { return nil }
func (m *memSink) Existing() int               { return 0 }

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

func (f *failingSink) Flush(context.Context) error { return nil }
func (f *failingSink) Existing() int               { return 0 }

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

// lateSink accepts every row and loses some of them in its background
// writes: Flush says how many.
type lateSink struct {
	memSink
	lost    int
	flushed int
}

func (l *lateSink) Flush(context.Context) error {
	l.flushed++
	if l.lost == 0 {
		return nil
	}
	return &LostError{Rows: l.lost, Err: errors.New("commit failed")}
}

// Run flushes the sink once at the end (Flush is part of Sink, not asked
// for by assertion), and rows lost in a background write are not counted.
func TestRunFlushesTheSink(t *testing.T) {
	in := strings.Repeat(`{"region":"jp","fields":{"n":1}}`+"\n", 10)
	for _, lost := range []int{0, 4} {
		sink := &lateSink{memSink: memSink{s: schema}, lost: lost}
		sum, err := Run(context.Background(), strings.NewReader(in), sink, Options{Format: NDJSON, BatchSize: 3})
		if sink.flushed != 1 || sum.Imported != 10-lost || (err == nil) != (lost == 0) {
			t.Errorf("lost %d: flushed %d times, %+v, %v; want one flush, %d imported", lost, sink.flushed, sum, err, 10-lost)
		}
	}
}

// Resuming is asked for, not found by assertion: Run refuses a Job and
// Resume needs one.
func TestResumeIsExplicit(t *testing.T) {
	in := `{"region":"jp","fields":{"n":1}}` + "\n"
	sink := &marking{memSink: memSink{s: schema}, marks: map[string]map[int][32]byte{}, failAfter: -1}
	if _, err := Run(context.Background(), strings.NewReader(in), sink, Options{Format: NDJSON, Job: "j"}); err == nil {
		t.Error("Run accepted a Job")
	}
	if _, err := Resume(context.Background(), strings.NewReader(in), sink, Options{Format: NDJSON}); err == nil {
		t.Error("Resume ran without a Job")
	}
	if sum, err := Resume(context.Background(), strings.NewReader(in), sink, Options{Format: NDJSON, Job: "j"}); err != nil || sum.Imported != 1 || !sink.finished {
		t.Errorf("Resume with a Job: %+v, %v, finished %v", sum, err, sink.finished)
	}
}

func TestCSVHeaderErrors(t *testing.T) {
	for _, in := range []string{"phone,n\n+819012345678,1\n", "region,shoe\njp,1\n", ""} {
		if _, err := Run(context.Background(), strings.NewReader(in), &memSink{s: schema}, Options{Format: CSV, Schema: schema}); err == nil {
			t.Errorf("header of %q accepted", in)
		}
	}
}

// The format errors name the flag that sets the input's format,
// --input-format (--format is the output's).
func TestResolveFormat(t *testing.T) {
	for _, tc := range []struct {
		flag, file string
		want       Format
		err        string
	}{
		{"", "a.csv", CSV, ""},
		{"", "a.jsonl", NDJSON, ""},
		{"csv", "a.ndjson", CSV, ""},
		{"", "a.txt", "", "give --input-format ndjson or --input-format csv"},
		{"xml", "a.csv", "", `--input-format "xml": want ndjson or csv`},
	} {
		got, err := ResolveFormat(tc.flag, tc.file)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ResolveFormat(%q, %q) = %q, %v; want %q, %q", tc.flag, tc.file, got, err, tc.want, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), "--format") {
			t.Errorf("ResolveFormat(%q, %q): %v names --format", tc.flag, tc.file, err)
		}
	}
}
