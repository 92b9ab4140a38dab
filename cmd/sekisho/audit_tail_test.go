package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sekisho/sekisho/audit"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func tailLines(t *testing.T, out string) []tailLine {
	t.Helper()
	var ls []tailLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var tl tailLine
		if err := json.Unmarshal([]byte(l), &tl); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		ls = append(ls, tl)
	}
	return ls
}

// TestAuditTail: tail prints the newest events in order, and with --follow
// the events appended while it runs, each once, beside the open data
// directory.
func TestAuditTail(t *testing.T) {
	dir, _ := auditDataDir(t)
	out, code := runCLI(t, "audit", "tail", "--data", dir, "-n", "5", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	last := tailLines(t, out)
	if len(last) != 5 || last[4].Index != 299 || last[0].Index != 295 || last[4].Event.RequestID != "req-0299" {
		t.Fatalf("tail -n 5: %+v", last)
	}
	if out, code := runCLI(t, "audit", "tail", "--data", dir, "-n", "2"); code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, "#299") {
		t.Fatalf("tail as a table: exit %d\n%s", code, out)
	}

	in, err := openInstance(context.Background(), instanceOptions{DataDir: dir, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var buf syncBuffer
	done := make(chan error, 1)
	f := auditTailFlags{lines: 0, follow: true, interval: 20 * time.Millisecond, format: "json"}
	f.src.data = dir
	go func() { done <- runAuditTail(ctx, &buf, f) }()
	time.Sleep(100 * time.Millisecond)
	base := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		if _, err := in.log.Append(context.Background(), testEvent(base, 300+i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(tailLines(t, buf.String())) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := tailLines(t, buf.String())
	if len(got) != 3 || got[0].Index != 300 || got[2].Index != 302 || got[2].Event.RequestID != "req-0302" || got[0].Log != audit.DefaultLog {
		t.Fatalf("followed: %+v", got)
	}
}
