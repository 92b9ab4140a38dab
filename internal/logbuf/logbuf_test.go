package logbuf

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
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
			line := []byte(strings.Repeat(string(rune('a'+g)), 20) + "\n")
			for range 200 {
				w.Write(line)
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
	for _, l := range lines {
		if len(l) != 20 || strings.Count(l, l[:1]) != 20 {
			t.Fatalf("a line was torn: %q", l)
		}
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
