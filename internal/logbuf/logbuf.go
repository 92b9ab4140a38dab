// Package logbuf batches a server's log lines into fewer writes: a write
// system call per request line cost the hot read more than formatting it
// (bench/README.md, fourteenth session). Lines are held for at most a
// delay, or until a buffer's worth is waiting, and a record at warning
// level or above is written out at once with everything before it.
//
// This is what nginx's access_log buffer=size flush=time does. A process
// that dies without Close loses at most the last delay's lines; the audit
// log, not this one, is the record of every decision.
package logbuf

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Writer buffers whole writes (a slog handler writes one line a call) and
// passes them to the underlying writer in batches. It is safe for
// concurrent use.
type Writer struct {
	w     io.Writer
	size  int
	delay time.Duration

	mu     sync.Mutex
	buf    []byte
	timer  *time.Timer // armed while buf holds lines
	err    error       // the first error of a write, returned by Flush
	closed bool        // after Close every write goes straight through
}

// New returns a Writer that writes to w when size bytes are waiting or
// delay after the first line was held, whichever comes first.
func New(w io.Writer, size int, delay time.Duration) *Writer {
	return &Writer{w: w, size: size, delay: delay, buf: make([]byte, 0, size)}
}

// Write holds p (copied) until the next flush. It never fails: an error
// of the underlying writer is kept for the next Flush or Close to return.
// After Close it writes p at once.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf)+len(p) > b.size && len(b.buf) > 0 {
		b.flushLocked()
	}
	if b.closed || len(p) >= b.size {
		// A line as long as the buffer goes out on its own, as does
		// every line after Close (a goroutine that logs during the
		// process's last moments).
		b.writeLocked(p)
		return len(p), nil
	}
	b.buf = append(b.buf, p...)
	// The timer is armed when the buffer goes from empty to holding a
	// line, never pushed back by the lines after it: a steady stream is
	// written every delay, not held until the buffer fills.
	if b.timer == nil {
		b.timer = time.AfterFunc(b.delay, b.tick)
	} else if len(b.buf) == len(p) {
		b.timer.Reset(b.delay)
	}
	return len(p), nil
}

func (b *Writer) tick() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

// Flush writes out what is held and returns the first error any write
// met since the last Flush.
func (b *Writer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	err := b.err
	b.err = nil
	return err
}

// Close writes out what is held and stops the batching: later lines are
// written at once. It returns the first error of a write not yet
// returned.
func (b *Writer) Close() error {
	b.mu.Lock()
	b.closed = true
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
	return b.Flush()
}

func (b *Writer) flushLocked() {
	if len(b.buf) == 0 {
		return
	}
	b.writeLocked(b.buf)
	b.buf = b.buf[:0]
}

func (b *Writer) writeLocked(p []byte) {
	if _, err := b.w.Write(p); err != nil && b.err == nil {
		b.err = err
	}
}

// Handler is a slog.Handler that flushes its Writer after every record at
// Level or above, so that warnings and errors are never held back.
type Handler struct {
	slog.Handler
	W     *Writer
	Level slog.Level
}

// Handle implements slog.Handler. A write error of the flush is the
// handler's error (a failed write of a held line is reported with the next
// record at Level or above, or by Close).
func (h Handler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= h.Level {
		if ferr := h.W.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

// WithAttrs implements slog.Handler.
func (h Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return Handler{Handler: h.Handler.WithAttrs(as), W: h.W, Level: h.Level}
}

// WithGroup implements slog.Handler.
func (h Handler) WithGroup(name string) slog.Handler {
	return Handler{Handler: h.Handler.WithGroup(name), W: h.W, Level: h.Level}
}
