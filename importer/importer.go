// Package importer streams records from NDJSON or CSV into a sink (the vault
// directly, or a server's API), in batches, reporting every bad row by its
// line number without stopping or corrupting the rest.
package importer

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
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
	return "", fmt.Errorf("cannot tell the format of %s from its name: use --format ndjson or --format csv", name)
}

// Item is one row of the input.
type Item struct {
	Line  int
	Input *sekisho.RecordInput
}

// Sink writes a batch of rows and returns one error (or nil) per row; an
// error return of its own stops the import (the store or server is down).
type Sink interface {
	Write(ctx context.Context, items []Item) ([]error, error)
}

// Flusher is a Sink that writes in the background; Flush waits for the
// writes in flight. Its error, and Write's, may be a *LostError.
type Flusher interface {
	Flush(ctx context.Context) error
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
	Elapsed  time.Duration
}

// Rate is the number of rows (imported or rejected) per second.
func (s Summary) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Imported+s.Rejected) / s.Elapsed.Seconds()
}

func (s Summary) String() string {
	return fmt.Sprintf("imported %d records, rejected %d, in %s (%.0f records/s)",
		s.Imported, s.Rejected, s.Elapsed.Round(time.Millisecond), s.Rate())
}

// Options configure Run.
type Options struct {
	Format    Format
	Schema    *sekisho.Schema // needed for CSV, to type the cells
	BatchSize int             // default 1000
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

// Run imports everything r holds into sink.
func Run(ctx context.Context, r io.Reader, sink Sink, o Options) (Summary, error) {
	start := time.Now()
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	cr := &countingReader{r: r}
	var sum Summary
	var next func() (Item, *Rejection, error)
	switch o.Format {
	case NDJSON:
		next = ndjsonReader(cr, o.KeyLines)
	case CSV:
		if o.Schema == nil {
			return sum, errors.New("importer: CSV needs the collection's schema")
		}
		var err error
		if next, err = csvReader(cr, o.Schema, o.KeyLines); err != nil {
			return sum, err
		}
	default:
		return sum, fmt.Errorf("importer: unknown format %q", o.Format)
	}
	reject := func(rj Rejection) {
		sum.Rejected++
		if o.OnReject != nil {
			o.OnReject(rj)
		}
	}
	batch := make([]Item, 0, o.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		errs, err := sink.Write(ctx, batch)
		if err != nil {
			var lost *LostError
			if errors.As(err, &lost) {
				sum.Imported -= lost.Rows
			}
			return fmt.Errorf("write batch ending at line %d: %w", batch[len(batch)-1].Line, err)
		}
		for i, e := range errs {
			if e != nil {
				reject(Rejection{Line: batch[i].Line, Err: e})
			} else {
				sum.Imported++
			}
		}
		batch = batch[:0]
		sum.Elapsed = time.Since(start)
		if o.OnProgress != nil {
			o.OnProgress(cr.n, sum)
		}
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		it, rj, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return sum, err
		}
		if rj != nil {
			reject(*rj)
		} else {
			batch = append(batch, it)
		}
		if o.MaxRejects > 0 && sum.Rejected >= o.MaxRejects {
			return sum, fmt.Errorf("stopped after %d rejected rows", sum.Rejected)
		}
		if len(batch) == o.BatchSize {
			if err := flush(); err != nil {
				return sum, err
			}
		}
	}
	if err := flush(); err != nil {
		return sum, err
	}
	if f, ok := sink.(Flusher); ok {
		if err := f.Flush(ctx); err != nil {
			var lost *LostError
			if errors.As(err, &lost) {
				sum.Imported -= lost.Rows
			}
			sum.Elapsed = time.Since(start)
			return sum, err
		}
	}
	sum.Elapsed = time.Since(start)
	return sum, nil
}

// maxLine bounds one NDJSON line (one record).
const maxLine = sekisho.MaxRecordBytes

func ndjsonReader(r io.Reader, keyLines bool) func() (Item, *Rejection, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine+1)
	line := 0
	return func() (Item, *Rejection, error) {
		for sc.Scan() {
			line++
			b := sc.Bytes()
			if len(strings.TrimSpace(string(b))) == 0 {
				continue
			}
			in, err := sekisho.DecodeRecordInput(b)
			if err != nil {
				return Item{}, &Rejection{Line: line, Err: err}, nil
			}
			if keyLines && in.Key == "" {
				in.Key = lineKey(b)
			}
			return Item{Line: line, Input: in}, nil, nil
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return Item{}, nil, fmt.Errorf("line %d is longer than %d bytes", line+1, maxLine)
			}
			return Item{}, nil, err
		}
		return Item{}, nil, io.EOF
	}
}

func csvReader(r io.Reader, s *sekisho.Schema, keyLines bool) (func() (Item, *Rejection, error), error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("CSV header: %w", err)
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
			return nil, fmt.Errorf("CSV header: collection %s has no field %q", s.Collection, h)
		}
		fields[i] = f
	}
	if regionCol < 0 {
		return nil, errors.New("CSV header: a region column is required")
	}
	return func() (Item, *Rejection, error) {
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				return Item{}, nil, io.EOF
			}
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return Item{}, &Rejection{Line: pe.StartLine, Err: sekisho.Errorf(sekisho.EInvalid, "CSV: %v", pe.Err)}, nil
			}
			if err != nil {
				return Item{}, nil, err
			}
			// FieldPos only after a record was read: after an error it
			// panics (found by FuzzCSVLine: an unterminated quote at the end).
			line, _ := cr.FieldPos(0)
			if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
				continue
			}
			if len(rec) != len(header) {
				return Item{}, &Rejection{Line: line, Err: sekisho.Errorf(sekisho.EInvalid, "row has %d cells, the header %d", len(rec), len(header))}, nil
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
				in.Key = lineKey([]byte(strings.Join(rec, "\x1f")))
			}
			return Item{Line: line, Input: in}, nil, nil
		}
	}, nil
}

// ResolveFormat is the format named by flag ("ndjson", "csv"), or when flag
// is empty the one the file name says.
func ResolveFormat(flag, file string) (Format, error) {
	switch f := Format(flag); f {
	case "":
		return FormatOf(file)
	case NDJSON, CSV:
		return f, nil
	}
	return "", fmt.Errorf("--format %q: want ndjson or csv", flag)
}
