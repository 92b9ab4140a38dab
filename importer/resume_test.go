package importer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// marking is a Resumer that keeps rows and marks in memory and can fail
// after a number of batches (an interrupted import).
type marking struct {
	memSink
	marks     map[string]map[int][32]byte
	failAfter int // batches written before Write fails; <0 never
	written   int
	finished  bool
}

func (m *marking) Stored(_ context.Context, job string) (map[int][32]byte, error) {
	return m.marks[job], nil
}

func (m *marking) WriteBatch(ctx context.Context, b Batch) ([]error, error) {
	if m.failAfter >= 0 && m.written >= m.failAfter {
		return nil, errors.New("killed")
	}
	m.written++
	errs, err := m.memSink.Write(ctx, b.Items)
	if m.marks[b.Job] == nil {
		m.marks[b.Job] = map[int][32]byte{}
	}
	m.marks[b.Job][b.N] = b.Sum
	return errs, err
}

func (m *marking) Finished(_ context.Context, job string) error {
	delete(m.marks, job)
	m.finished = true
	return nil
}

// An import stopped after 3 batches and run again with the same job skips
// exactly those 3 batches (Resumed counts their rows, bad rows included) and
// writes the rest once; a batch whose rows changed since is written again,
// not skipped; a complete import forgets its marks.
func TestResumeSkipsStoredBatches(t *testing.T) {
	var lines []string
	for i := range 25 {
		if i == 4 {
			lines = append(lines, `{"region":"jp","fields":{"phone":"nope"}}`) // a bad row in batch 0
			continue
		}
		lines = append(lines, fmt.Sprintf(`{"region":"jp","fields":{"n":%d}}`, i))
	}
	input := strings.Join(lines, "\n") + "\n"
	sink := &marking{memSink: memSink{s: schema}, marks: map[string]map[int][32]byte{}, failAfter: 3}
	o := Options{Format: NDJSON, BatchSize: 5, Job: "job1"}
	if _, err := Resume(context.Background(), strings.NewReader(input), sink, o); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("first run: %v, want the interruption", err)
	}
	if len(sink.rows) != 14 || len(sink.marks["job1"]) != 3 {
		t.Fatalf("after the interruption: %d rows, %d marks; want 14 and 3", len(sink.rows), len(sink.marks["job1"]))
	}
	// Batch 1 changed since (a row edited): it is written again.
	changed := strings.Replace(input, `"n":7}`, `"n":70}`, 1)
	sink.failAfter = -1
	sum, err := Resume(context.Background(), strings.NewReader(changed), sink, o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Resumed != 10 || sum.Imported != 15 || sum.Rejected != 0 {
		t.Fatalf("resumed run: %+v; want batches 0 and 2 skipped (10 rows), 15 imported", sum)
	}
	seen := map[string]int{}
	for _, r := range sink.rows {
		seen[string(r.Input.Fields["n"])]++
	}
	for i := range 25 {
		if i == 4 {
			continue
		}
		want := 1
		if i >= 5 && i < 10 {
			want = 2 // batch 1: written by the first run and, changed, by the second
		}
		if i == 7 {
			want = 1
		}
		if seen[fmt.Sprint(i)] != want {
			t.Errorf("row n=%d written %d times, want %d", i, seen[fmt.Sprint(i)], want)
		}
	}
	if seen["70"] != 1 {
		t.Errorf("the changed row written %d times, want 1", seen["70"])
	}
	if !sink.finished || sink.marks["job1"] != nil {
		t.Fatal("a complete import did not forget its marks")
	}
	// Control: without a job nothing is skipped.
	sink2 := &marking{memSink: memSink{s: schema}, marks: map[string]map[int][32]byte{"": {0: {}}}, failAfter: -1}
	sum, err = Run(context.Background(), strings.NewReader(input), sink2, Options{Format: NDJSON, BatchSize: 5})
	if err != nil || sum.Resumed != 0 || sum.Imported != 24 || sum.Rejected != 1 {
		t.Fatalf("without a job: %+v, %v", sum, err)
	}
}

// batchSum gives the bytes of the sum earlier versions wrote in their
// marks (fmt's "%d\x00" before each row), so that a run of this version
// resumes an import an earlier one was interrupted in. Control: another
// row order gives another sum.
func TestBatchSumUnchanged(t *testing.T) {
	rows := []row{{raw: []byte(`{"region":"jp"}`)}, {raw: []byte("")}, {raw: bytes.Repeat([]byte("x"), 1234)}}
	h := sha256.New()
	for _, rw := range rows {
		fmt.Fprintf(h, "%d\x00", len(rw.raw))
		h.Write(rw.raw)
	}
	var want [32]byte
	copy(want[:], h.Sum(nil))
	if got := batchSum(rows); got != want {
		t.Fatalf("batchSum = %x, want %x", got, want)
	}
	if batchSum([]row{rows[1], rows[0], rows[2]}) == want {
		t.Fatal("the sum does not depend on the rows' order")
	}
}
