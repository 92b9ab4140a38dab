package importer

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// FuzzNDJSONLine: nothing is lost. Every non-blank line of an NDJSON
// import is either imported or rejected with its own line number, in
// order, and the import itself never fails on bad rows.
func FuzzNDJSONLine(f *testing.F) {
	f.Add([]byte(`{"region":"jp","fields":{"phone":"+81 90-1234-5678","n":3}}`))
	f.Add([]byte(`{"region":"jp","fields":{"phone":"nope"}}`))
	f.Add([]byte(`{"region":"jp","fields":{"usage":{"a":[1,2,{"b":null}]}}}`))
	f.Add([]byte(`{"region":"jp","fields":{"n":1e400}}`))
	f.Add([]byte("{\"region\":\"th\"}\n\n  \n{"))
	f.Add([]byte(`{"region":"jp","fields":{"phone":"+66 81 234 5678"},"region":"th"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if bytes.Count(data, []byte("\n")) > 64 {
			return
		}
		want := 0
		for _, l := range strings.Split(string(data), "\n") {
			if strings.TrimSpace(l) != "" {
				want++
			}
		}
		sink := &memSink{s: schema}
		var lines []int
		sum, err := Run(context.Background(), bytes.NewReader(data), sink, Options{Format: NDJSON, BatchSize: 3,
			OnReject: func(r Rejection) { lines = append(lines, r.Line) }})
		if err != nil {
			t.Fatalf("import stopped: %v", err)
		}
		if sum.Imported+sum.Rejected != want || sum.Imported != len(sink.rows) {
			t.Fatalf("%d lines: imported %d (sink holds %d), rejected %d", want, sum.Imported, len(sink.rows), sum.Rejected)
		}
		for _, it := range sink.rows {
			lines = append(lines, it.Line)
		}
		seen := map[int]bool{}
		for _, l := range lines {
			if l < 1 || seen[l] {
				t.Fatalf("line %d reported twice or out of range (%v)", l, lines)
			}
			seen[l] = true
		}
	})
}

// FuzzCSVLine: a CSV import under the users-like schema either refuses its
// header, or accounts for every row: imported plus rejected is what the
// sink kept plus the rejections reported, each row once, by a line number
// after the header.
func FuzzCSVLine(f *testing.F) {
	f.Add([]byte("region,phone,n,usage\njp,+81 90-1234-5678,3,{}\n"))
	f.Add([]byte("region,phone\njp,\"+81 90\n-1234\"\nth,x,y\n\n"))
	f.Add([]byte("\ufeffregion,usage\njp,\"{\"\"a\"\":1}\"\njp,{bad\n"))
	f.Add([]byte("region,phone\njp,\"unterminated\n"))
	f.Add([]byte("phone\n+81 90-1234-5678\n"))
	f.Add([]byte("region,nosuch\njp,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		sink := &memSink{s: schema}
		var rejected []Rejection
		sum, err := Run(context.Background(), bytes.NewReader(data), sink, Options{Format: CSV, Schema: schema, BatchSize: 2,
			OnReject: func(r Rejection) { rejected = append(rejected, r) }})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "CSV header") {
				t.Fatalf("import stopped after its header: %v", err)
			}
			return
		}
		if sum.Imported != len(sink.rows) || sum.Rejected != len(rejected) {
			t.Fatalf("imported %d (sink %d), rejected %d (reported %d)", sum.Imported, len(sink.rows), sum.Rejected, len(rejected))
		}
		nl := bytes.Count(data, []byte("\n")) + 1
		seen := map[int]bool{}
		for _, it := range sink.rows {
			if it.Line < 2 || it.Line > nl || seen[it.Line] {
				t.Fatalf("row at line %d (of %d) out of range or twice", it.Line, nl)
			}
			seen[it.Line] = true
		}
		for _, r := range rejected {
			if r.Line < 1 || r.Line > nl || r.Err == nil {
				t.Fatalf("rejection %v out of range (of %d lines)", r, nl)
			}
		}
	})
}
