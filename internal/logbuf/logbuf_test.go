package logbuf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/slogtest"
	"time"
)

// sink records each write the Writer passes on.
type sink struct {
	mu     sync.Mutex
	writes []string
	err    error
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes = append(s.writes, string(p))
	return len(p), s.err
}

func (s *sink) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.writes...)
}

func TestLinesAreBatchedAndFlushedInOrder(t *testing.T) {
	s := &sink{}
	w := New(s, 1<<10, time.Hour) // no timer flush during the test
	for i := range 5 {
		w.Write([]byte(strings.Repeat("x", i) + "\n"))
	}
	if got := s.snapshot(); len(got) != 0 {
		t.Fatalf("written before a flush: %q", got)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got := s.snapshot()
	if len(got) != 1 || got[0] != "\nx\nxx\nxxx\nxxxx\n" {
		t.Fatalf("one batch in order, got %q", got)
	}
}

func TestAFullBufferIsWrittenBeforeTheLineThatWouldOverflowIt(t *testing.T) {
	s := &sink{}
	w := New(s, 10, time.Hour)
	w.Write([]byte("aaaa\n"))
	w.Write([]byte("bbbb\n")) // exactly full: held
	if got := s.snapshot(); len(got) != 0 {
		t.Fatalf("a buffer that is full but not over was written: %q", got)
	}
	w.Write([]byte("c\n"))
	if got := s.snapshot(); len(got) != 1 || got[0] != "aaaa\nbbbb\n" {
		t.Fatalf("want the full buffer written whole, got %q", got)
	}
	w.Write([]byte(strings.Repeat("L", 25) + "\n")) // longer than the buffer
	got := s.snapshot()
	if len(got) != 3 || got[1] != "c\n" || got[2] != strings.Repeat("L", 25)+"\n" {
		t.Fatalf("a long line goes out on its own after what was held, got %q", got)
	}
}

func TestHeldLinesAreWrittenAfterTheDelay(t *testing.T) {
	s := &sink{}
	w := New(s, 1<<10, 10*time.Millisecond)
	defer w.Close()
	w.Write([]byte("one\n"))
	deadline := time.Now().Add(10 * time.Second)
	for len(s.snapshot()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the held line was never written")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The timer is armed again for the next line.
	w.Write([]byte("two\n"))
	for len(s.snapshot()) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the second held line was never written")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := s.snapshot(); got[0] != "one\n" || got[1] != "two\n" {
		t.Fatalf("got %q", got)
	}
}

// A steady stream of lines, each sooner after the last than the delay, is
// written every delay: the timer is armed by the first line held, not
// pushed back by every line (which would hold the stream until the buffer
// filled: 1 MiB here, minutes of it).
func TestASteadyStreamIsWrittenEveryDelay(t *testing.T) {
	s := &sink{}
	w := New(s, 1<<20, 50*time.Millisecond)
	defer w.Close()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.snapshot()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a stream of lines 5 ms apart was never written (the timer is pushed back by each line)")
		}
		w.Write([]byte("line\n"))
		time.Sleep(5 * time.Millisecond)
	}
	if got := s.snapshot()[0]; len(got) < 2*len("line\n") {
		t.Fatalf("the first write holds %q: want a batch of lines", got)
	}
}

func TestALineAsLongAsTheBufferGoesOutAtOnce(t *testing.T) {
	s := &sink{}
	w := New(s, 10, time.Hour)
	w.Write([]byte("123456789\n"))
	if got := s.snapshot(); len(got) != 1 || got[0] != "123456789\n" {
		t.Fatalf("got %q", got)
	}
	w.Write([]byte("12345678\n")) // one byte less: held
	if got := s.snapshot(); len(got) != 1 {
		t.Fatalf("a line shorter than the buffer was written at once: %q", got)
	}
}

func TestAfterCloseLinesAreWrittenAtOnce(t *testing.T) {
	s := &sink{}
	w := New(s, 1<<10, time.Hour)
	w.Write([]byte("held\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("late\n"))
	if got := s.snapshot(); len(got) != 2 || got[0] != "held\n" || got[1] != "late\n" {
		t.Fatalf("got %q", got)
	}
}

// Handler is a slog.Handler like any other (testing/slogtest), batched or
// not.
func TestHandlerConformance(t *testing.T) {
	var out bytes.Buffer
	w := New(&out, 1<<16, time.Hour)
	h := Handler{Handler: slog.NewJSONHandler(w, nil), W: w, Level: slog.LevelWarn}
	results := func() []map[string]any {
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		var ms []map[string]any
		for _, l := range bytes.Split(bytes.TrimSuffix(out.Bytes(), []byte("\n")), []byte("\n")) {
			var m map[string]any
			if err := json.Unmarshal(l, &m); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			ms = append(ms, m)
		}
		return ms
	}
	if err := slogtest.TestHandler(h, results); err != nil {
		t.Fatal(err)
	}
}

func TestWarningsFlushAtOnce(t *testing.T) {
	s := &sink{}
	w := New(s, 1<<10, time.Hour)
	log := slog.New(Handler{Handler: slog.NewJSONHandler(w, nil), W: w, Level: slog.LevelWarn}).With("node", "a")
	log.Info("request", "status", 200)
	if got := s.snapshot(); len(got) != 0 {
		t.Fatalf("an info line was written at once: %q", got)
	}
	log.Warn("disk nearly full")
	got := s.snapshot()
	if len(got) != 1 || !strings.Contains(got[0], `"msg":"request"`) || !strings.Contains(got[0], `"msg":"disk nearly full"`) || !strings.Contains(got[0], `"node":"a"`) {
		t.Fatalf("want the info and the warning in one write, got %q", got)
	}
	if i, j := strings.Index(got[0], "request"), strings.Index(got[0], "disk"); i > j {
		t.Fatalf("lines out of order: %q", got[0])
	}
	// A handler derived with a group flushes on warnings too.
	log.WithGroup("g").Error("failed", "k", 1)
	if got := s.snapshot(); len(got) != 2 || !strings.Contains(got[1], `"g":{"k":1}`) {
		t.Fatalf("want the grouped error written at once, got %q", got)
	}
}

func TestCloseWritesWhatIsHeldAndReportsAnError(t *testing.T) {
	s := &sink{err: errors.New("disk full")}
	w := New(s, 1<<10, time.Hour)
	w.Write([]byte("last\n"))
	if err := w.Close(); err == nil || err.Error() != "disk full" {
		t.Fatalf("Close = %v, want the write's error", err)
	}
	if got := s.snapshot(); len(got) != 1 || got[0] != "last\n" {
		t.Fatalf("got %q", got)
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("the error is reported once, then %v", err)
	}
}

func TestConcurrentLinesStayWhole(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	w := New(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) }), 256, time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				w.Write(fmt.Appendf(nil, "%s%04d\n", strings.Repeat(string(rune('a'+g)), 16), i))
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 8*200 {
		t.Fatalf("%d lines, want %d", len(lines), 8*200)
	}
	next := map[byte]int{}
	for _, l := range lines {
		if len(l) != 20 || strings.Count(l[:16], l[:1]) != 16 {
			t.Fatalf("a line was torn: %q", l)
		}
		n, err := strconv.Atoi(l[16:])
		if err != nil || n != next[l[0]] {
			t.Fatalf("goroutine %c's line %q out of order (want its line %d)", l[0], l, next[l[0]])
		}
		next[l[0]]++
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// BenchmarkLogLine is one request's log line through slog's JSON handler to
// a file (the bench's serve.log), written at once (direct) and batched: the write system call a
// line is what batching saves.
func BenchmarkLogLine(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "serve.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	attrs := []slog.Attr{slog.String("method", "GET"), slog.String("route", "/v1/collections/{c}/records/{id}"), slog.Int("status", 200),
		slog.Float64("duration_ms", 1.234), slog.String("request_id", "0193a1b2c3d4e5f60718293a4b5c6d7e"),
		slog.String("principal", "bench-svc-1"), slog.String("org", "operator"), slog.String("purpose", "ops")}
	b.Run("direct", func(b *testing.B) {
		log := slog.New(slog.NewJSONHandler(f, nil))
		b.ReportAllocs()
		for b.Loop() {
			log.LogAttrs(b.Context(), slog.LevelInfo, "request", attrs...)
		}
	})
	b.Run("batched", func(b *testing.B) {
		w := New(f, 64<<10, 100*time.Millisecond)
		defer w.Close()
		log := slog.New(Handler{Handler: slog.NewJSONHandler(w, nil), W: w, Level: slog.LevelWarn})
		b.ReportAllocs()
		for b.Loop() {
			log.LogAttrs(b.Context(), slog.LevelInfo, "request", attrs...)
		}
	})
}
