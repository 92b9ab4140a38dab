// Package importer streams records from NDJSON or CSV into a sink (the vault
// directly, or a server's API), in batches, reporting every bad row by its
// line number without stopping or corrupting the rest.
package importer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sekisho/sekisho"
)

// Format of an import file.
type Format string

// Formats.
const (
	NDJSON Format = "ndjson"
	CSV    Format = "csv"
)

// FormatOf guesses the format from a file name.
func FormatOf(name string) (Format, error) {
	switch {
	case strings.HasSuffix(name, ".csv"):
		return CSV, nil
	case strings.HasSuffix(name, ".ndjson"), strings.HasSuffix(name, ".jsonl"), strings.HasSuffix(name, ".json"):
		return NDJSON, nil
	}
	return "", fmt.Errorf("cannot tell the format of %s from its name: give --input-format ndjson or --input-format csv", name)
}

// Item is one row of the input.
type Item struct {
	Line  int
	Input *sekisho.RecordInput
}

// Sink writes a batch of rows and returns one error (or nil) per row; an
// error return of its own stops the import (the store or server is down).
// A sink may write in the background: Run calls Flush once every batch is
// given, and counts as lost the rows of a *LostError from Write or Flush.
type Sink interface {
	Write(ctx context.Context, items []Item) ([]error, error)
	// Flush waits for the writes in flight (nil at once for a sink that
	// writes before Write returns).
	Flush(ctx context.Context) error
	// Existing is the number of keyed rows whose record was already stored
	// and was not written again.
	Existing() int
}

// LostError says that rows a sink had accepted were not written after all
// (a background commit failed), so the summary must not count them.
type LostError struct {
	Rows int
	Err  error
}

func (e *LostError) Error() string {
	return fmt.Sprintf("%d accepted rows were not written: %v", e.Rows, e.Err)
}

func (e *LostError) Unwrap() error { return e.Err }

// Rejection is a bad row.
type Rejection struct {
	Line int
	Err  error
}

func (r Rejection) String() string {
	return fmt.Sprintf("line %d: %s", r.Line, describe(r.Err))
}

func describe(err error) string {
	var e *sekisho.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// Summary is what an import did.
type Summary struct {
	Imported int
	Rejected int
	// Resumed is the number of rows of batches that an earlier, interrupted
	// run of the same import had stored: they were skipped.
	Resumed int
	Elapsed time.Duration
}

// Rate is the number of rows (imported or rejected) per second.
func (s Summary) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Imported+s.Rejected) / s.Elapsed.Seconds()
}

func (s Summary) String() string {
	out := fmt.Sprintf("imported %d records, rejected %d, in %s (%.0f records/s)",
		s.Imported, s.Rejected, s.Elapsed.Round(time.Millisecond), s.Rate())
	if s.Resumed > 0 {
		out += fmt.Sprintf("; %d rows were stored by the interrupted run before and were skipped", s.Resumed)
	}
	return out
}

// Options configure Run.
type Options struct {
	Format    Format
	Schema    *sekisho.Schema // needed for CSV, to type the cells
	BatchSize int             // rows per batch (bad rows included); default 1000
	// OnReject is called for every bad row, in line order.
	OnReject func(Rejection)
	// OnProgress is called after every batch with the bytes read so far and
	// the running summary.
	OnProgress func(bytesRead int64, s Summary)
	// MaxRejects stops the import after this many bad rows (0: no limit).
	MaxRejects int
	// KeyLines gives every row without an idempotency key of its own
	// (RecordInput.Key, the NDJSON "key" or the CSV key column) the key
	// "line:" + SHA-256 of its bytes, so that running the same file again
	// (after an interruption) writes no record twice.
	KeyLines bool
	// Job names this import for resuming (see JobID and Resume): the
	// batches an interrupted run with the same Job stored are skipped.
	// Resume needs it; Run refuses it.
	Job string
}

// Batch is a batch of rows as a Resumer writes it.
type Batch struct {
	Job   string
	N     int      // 0 for the first batch of the input
	Sum   [32]byte // SHA-256 of the batch's rows, good and bad
	Rows  int      // rows read, good and bad
	Lines [2]int   // first and last line
	Items []Item   // the good rows
}

// Resumer is a Sink that stores, with each batch, a mark of it (in the same
// transaction as its records), so that an import interrupted at any point
// can be run again and continue where it stopped, without duplicates.
type Resumer interface {
	Sink
	// Stored returns the sums of the batches of job already stored, by batch
	// number.
	Stored(ctx context.Context, job string) (map[int][32]byte, error)
	// WriteBatch is Write with the batch's mark.
	WriteBatch(ctx context.Context, b Batch) ([]error, error)
	// Finished is called after the whole input is stored: the marks of job
	// may be forgotten (running the same file again imports it again).
	Finished(ctx context.Context, job string) error
}

// JobID names the import of the file of size bytes whose first MiB is head
// into what parts say (collection, org, ...), with batches of batch rows.
func JobID(head []byte, size int64, batch int, parts ...string) string {
	h := sha256.New()
	fmt.Fprintf(h, "sekisho-import\x00%d\x00%d\x00", size, batch)
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\x00", len(p), p)
	}
	h.Write(head)
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// lineKey is the idempotency key of a row's bytes.
func lineKey(b []byte) string {
	h := sha256.Sum256(b)
	return "line:" + hex.EncodeToString(h[:])
}

// countingReader counts the bytes read, for progress.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// row is one raw row of the input, decoded later (in parallel).
type row struct {
	line int
	raw  []byte   // NDJSON: the line; CSV: the cells joined by 0x1f
	csv  []string // CSV cells
	rej  *Rejection
}

// Run imports everything r holds into sink. Rows are read in batches of
// BatchSize; a batch is decoded on all cores, then written.
func Run(ctx context.Context, r io.Reader, sink Sink, o Options) (Summary, error) {
	if o.Job != "" {
		return Summary{}, errors.New("importer: a Job is resumed with Resume")
	}
	return run(ctx, r, sink, nil, o)
}

// Resume is Run into a sink that marks the batches it stores: the batches
// of o.Job that an interrupted run stored (Resumer.Stored, with the same
// rows) are skipped, every other batch is written with its mark
// (Resumer.WriteBatch), and the marks are forgotten once all is stored
// (Resumer.Finished).
func Resume(ctx context.Context, r io.Reader, sink Resumer, o Options) (Summary, error) {
	if o.Job == "" {
		return Summary{}, errors.New("importer: Resume needs a Job")
	}
	return run(ctx, r, sink, sink, o)
}

// run is Run, and Resume when res is not nil.
func run(ctx context.Context, r io.Reader, sink Sink, res Resumer, o Options) (Summary, error) {
	start := time.Now()
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	cr := &countingReader{r: r}
	var sum Summary
	var next func() (row, error)
	var decode func(row) (Item, *Rejection)
	switch o.Format {
	case NDJSON:
		next, decode = ndjsonReader(cr, o.KeyLines)
	case CSV:
		if o.Schema == nil {
			return sum, errors.New("importer: CSV needs the collection's schema")
		}
		var err error
		if next, decode, err = csvReader(cr, o.Schema, o.KeyLines); err != nil {
			return sum, err
		}
	default:
		return sum, fmt.Errorf("importer: unknown format %q", o.Format)
	}
	var stored map[int][32]byte
	if res != nil {
		var err error
		if stored, err = res.Stored(ctx, o.Job); err != nil {
			return sum, fmt.Errorf("read the marks of an earlier run: %w", err)
		}
	}
	rows := make([]row, 0, o.BatchSize)
	n := 0
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		defer func() { rows, n = rows[:0], n+1 }()
		b := Batch{Job: o.Job, N: n, Rows: len(rows), Lines: [2]int{rows[0].line, rows[len(rows)-1].line}}
		b.Sum = batchSum(rows)
		if s, ok := stored[n]; ok && s == b.Sum {
			sum.Resumed += len(rows)
			return nil
		}
		// Decode on all cores; report the bad rows in line order.
		items := make([]Item, len(rows))
		rejs := make([]*Rejection, len(rows))
		parallel(len(rows), func(i int) {
			if rows[i].rej != nil {
				rejs[i] = rows[i].rej
				return
			}
			items[i], rejs[i] = decode(rows[i])
		})
		good := make([]Item, 0, len(rows))
		at := make([]int, 0, len(rows))
		for i := range rows {
			if rejs[i] == nil {
				good = append(good, items[i])
				at = append(at, i)
			}
		}
		b.Items = good
		var errs []error
		var err error
		if res != nil {
			errs, err = res.WriteBatch(ctx, b)
		} else if len(good) > 0 {
			errs, err = sink.Write(ctx, good)
		}
		if err != nil {
			var lost *LostError
			if errors.As(err, &lost) {
				sum.Imported -= lost.Rows
			}
			return fmt.Errorf("write batch ending at line %d: %w", b.Lines[1], err)
		}
		for j, e := range errs {
			if e != nil {
				rejs[at[j]] = &Rejection{Line: good[j].Line, Err: e}
			}
		}
		for i := range rows {
			if rejs[i] != nil {
				sum.Rejected++
				if o.OnReject != nil {
					o.OnReject(*rejs[i])
				}
			} else {
				sum.Imported++
			}
		}
		sum.Elapsed = time.Since(start)
		if o.OnProgress != nil {
			o.OnProgress(cr.n, sum)
		}
		if o.MaxRejects > 0 && sum.Rejected >= o.MaxRejects {
			return fmt.Errorf("stopped after %d rejected rows", sum.Rejected)
		}
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		rw, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return sum, err
		}
		rows = append(rows, rw)
		if len(rows) == o.BatchSize {
			if err := flush(); err != nil {
				return sum, err
			}
		}
	}
	if err := flush(); err != nil {
		return sum, err
	}
	if err := sink.Flush(ctx); err != nil {
		var lost *LostError
		if errors.As(err, &lost) {
			sum.Imported -= lost.Rows
		}
		sum.Elapsed = time.Since(start)
		return sum, err
	}
	if res != nil {
		if err := res.Finished(ctx, o.Job); err != nil {
			return sum, err
		}
	}
	sum.Elapsed = time.Since(start)
	return sum, nil
}

// batchSum is a batch's mark sum: SHA-256 over each row's length in
// decimal, a NUL, and its bytes (the bytes fmt's "%d\x00" gave: marks of
// an interrupted run of an earlier version still match).
func batchSum(rows []row) [32]byte {
	h := sha256.New()
	var n []byte
	for _, rw := range rows {
		n = append(strconv.AppendInt(n[:0], int64(len(rw.raw)), 10), 0)
		h.Write(n)
		h.Write(rw.raw)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// parallel runs fn(0..n-1) on all cores.
func parallel(n int, fn func(int)) {
	workers := min(runtime.GOMAXPROCS(0), max(1, n/64))
	if workers == 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// maxLine bounds one NDJSON line (one record).
const maxLine = sekisho.MaxRecordBytes

func ndjsonReader(r io.Reader, keyLines bool) (func() (row, error), func(row) (Item, *Rejection)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine+1)
	line := 0
	next := func() (row, error) {
		for sc.Scan() {
			line++
			b := sc.Bytes()
			if len(bytes.TrimSpace(b)) == 0 {
				continue
			}
			return row{line: line, raw: bytes.Clone(b)}, nil
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return row{}, fmt.Errorf("line %d is longer than %d bytes", line+1, maxLine)
			}
			return row{}, err
		}
		return row{}, io.EOF
	}
	decode := func(rw row) (Item, *Rejection) {
		in, err := sekisho.DecodeRecordInput(rw.raw)
		if err != nil {
			return Item{}, &Rejection{Line: rw.line, Err: err}
		}
		if keyLines && in.Key == "" {
			in.Key = lineKey(rw.raw)
		}
		return Item{Line: rw.line, Input: in}, nil
	}
	return next, decode
}

func csvReader(r io.Reader, s *sekisho.Schema, keyLines bool) (func() (row, error), func(row) (Item, *Rejection), error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("CSV header: %w", err)
	}
	regionCol, keyCol := -1, -1
	fields := make([]sekisho.Field, len(header))
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if h == "region" {
			regionCol = i
			continue
		}
		if h == "key" {
			keyCol = i
			continue
		}
		f, ok := s.Field(h)
		if !ok {
			return nil, nil, fmt.Errorf("CSV header: collection %s has no field %q", s.Collection, h)
		}
		fields[i] = f
	}
	if regionCol < 0 {
		return nil, nil, errors.New("CSV header: a region column is required")
	}
	next := func() (row, error) {
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				return row{}, io.EOF
			}
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return row{line: pe.StartLine, raw: []byte(pe.Error()),
					rej: &Rejection{Line: pe.StartLine, Err: sekisho.Errorf(sekisho.EInvalid, "CSV: %v", pe.Err)}}, nil
			}
			if err != nil {
				return row{}, err
			}
			// FieldPos only after a record was read: after an error it
			// panics (found by FuzzCSVLine: an unterminated quote at the end).
			line, _ := cr.FieldPos(0)
			if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
				continue
			}
			return row{line: line, raw: []byte(strings.Join(rec, "\x1f")), csv: rec}, nil
		}
	}
	decode := func(rw row) (Item, *Rejection) {
		rec := rw.csv
		if len(rec) != len(header) {
			return Item{}, &Rejection{Line: rw.line, Err: sekisho.Errorf(sekisho.EInvalid, "row has %d cells, the header %d", len(rec), len(header))}
		}
		in := &sekisho.RecordInput{Fields: map[string]json.RawMessage{}}
		for i, cell := range rec {
			if i == regionCol {
				in.Region = strings.TrimSpace(cell)
				continue
			}
			if i == keyCol {
				in.Key = cell
				continue
			}
			if cell == "" {
				continue
			}
			if fields[i].Type == sekisho.TypeJSON {
				in.Fields[fields[i].Name] = json.RawMessage(cell)
			} else {
				b, _ := json.Marshal(cell)
				in.Fields[fields[i].Name] = b
			}
		}
		if keyLines && in.Key == "" {
			in.Key = lineKey(rw.raw)
		}
		return Item{Line: rw.line, Input: in}, nil
	}
	return next, decode, nil
}

// ResolveFormat is the format named by flag (sekisho import's
// --input-format: "ndjson", "csv"), or when flag is empty the one the file
// name says. Its error is the command's message.
func ResolveFormat(flag, file string) (Format, error) {
	switch f := Format(flag); f {
	case "":
		return FormatOf(file)
	case NDJSON, CSV:
		return f, nil
	}
	return "", fmt.Errorf("--input-format %q: want ndjson or csv", flag)
}
