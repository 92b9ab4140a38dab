package sekisho

import (
	"context"
	"sync"
)

// Durable collects, for one request, the writes that a store accepted but
// has not made durable yet, so that the answer waits for them: the HTTP
// layer puts one in every request's context (WithDurable) and waits before
// the first byte of the answer leaves. The embedded store's replay records
// are such writes: a DPoP proof's jti is decided at once and committed with
// the next group commit (normally the request's own audit event, which the
// answer waits for anyway, so that waiting then costs nothing).
type Durable struct {
	mu    sync.Mutex
	waits []func(context.Context) error
}

type durableKey struct{}

// WithDurable returns ctx carrying a new Durable, and the Durable.
func WithDurable(ctx context.Context) (context.Context, *Durable) {
	d := &Durable{}
	return context.WithValue(ctx, durableKey{}, d), d
}

// DurableFrom returns the Durable of ctx, or nil.
func DurableFrom(ctx context.Context) *Durable {
	d, _ := ctx.Value(durableKey{}).(*Durable)
	return d
}

// Add registers wait, which returns once a write is durable (or why it
// cannot be).
func (d *Durable) Add(wait func(context.Context) error) {
	d.mu.Lock()
	d.waits = append(d.waits, wait)
	d.mu.Unlock()
}

// Wait runs the registered waits (each once) and returns the first error.
func (d *Durable) Wait(ctx context.Context) error {
	d.mu.Lock()
	waits := d.waits
	d.waits = nil
	d.mu.Unlock()
	for _, w := range waits {
		if err := w(ctx); err != nil {
			return err
		}
	}
	return nil
}
