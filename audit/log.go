package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/sekisho/sekisho"
)

// ErrClosed is returned by the methods of a Log after Close.
var ErrClosed = errors.New("audit: log is closed")

// Options configure a Log. The zero value is usable.
type Options struct {
	// Origin is the first line of every checkpoint, naming the log
	// (C2SP tlog-checkpoint); default "sekisho.local/audit".
	Origin string
	// MaxBatch is the most events one commit writes; default 1000. A single
	// AppendBatch larger than this is written alone, in one commit.
	MaxBatch int
	// MaxRetries bounds how often a commit is retried after another writer
	// appended first (EConflict); default 100.
	MaxRetries int
	// WitnessDir, if set, receives a copy of every checkpoint this Log makes,
	// as the file checkpoint-<size>, for a witness outside the operator.
	WitnessDir string
	// Verifier, if set, checks the signature of the latest stored checkpoint
	// before a new one is made on top of it.
	Verifier note.Verifier
	// Logger receives the errors of RunCheckpointer; default: discarded.
	Logger *slog.Logger
	// Now returns the current time; default time.Now. It stamps events whose
	// Time is zero and checkpoints.
	Now func() time.Time
	// CommitDelay bounds how long a commit waits for more events while
	// the writer yields its processor (see linger): a negative value
	// turns the wait off; default DefaultCommitDelay. A commit's fixed
	// cost (the transaction, its WAL pages, the sync) is then shared by
	// the events of requests that were already running on the machine's
	// processors, and an idle machine commits at once.
	CommitDelay time.Duration
	// CommitGroup is how many waiting events end the wait at once;
	// default DefaultCommitGroup.
	CommitGroup int

	// yield gives the processor away while a commit waits; default
	// runtime.Gosched (tests replace it).
	yield func()
}

// The defaults of Options.CommitDelay and Options.CommitGroup.
const (
	DefaultCommitDelay = 600 * time.Microsecond
	DefaultCommitGroup = 14
)

// DefaultOrigin is the checkpoint origin when Options.Origin is empty.
const DefaultOrigin = "sekisho.local/audit"

// Log appends events to an audit store as an RFC 6962 Merkle tree and signs
// checkpoints of it. Appends from many goroutines are group-committed by one
// writer goroutine: while one commit is being written, the next appends
// collect, and go to the store together in the next AppendAudit call.
//
// Several Logs (on several nodes) may share one store: a commit that finds the
// store grown by another writer reloads the tree's right edge and retries.
type Log struct {
	store  sekisho.AuditStore
	signer note.Signer
	opts   Options
	ctx    context.Context // for the writer's store calls; never cancelled

	reqs chan *appendReq
	quit chan struct{} // closed by Close
	done chan struct{} // closed when the writer has drained and exited

	// Owned by the writer goroutine.
	size uint64
	rng  *compact.Range

	// Counted by the writer goroutine, read by Stats and CommitLatency.
	commits, events atomic.Uint64
	latency         *latency
}

// Stats returns how many store commits the log has made and how many events
// they wrote: events per commit is how many appends one group commit (one
// durable write of the store) served.
func (l *Log) Stats() (commits, events uint64) {
	return l.commits.Load(), l.events.Load()
}

type appendReq struct {
	ctx     context.Context
	entries []sekisho.AuditEntry
	res     chan appendRes // buffered, 1
}

type appendRes struct {
	first uint64
	err   error
}

func newRangeFactory() *compact.RangeFactory {
	return &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
}

// New opens the log kept in store, loading its current size and right edge,
// and starts its writer. signer signs checkpoints (see LoadOrCreateKeys); it
// may be nil for a Log that only appends and serves proofs.
func New(ctx context.Context, store sekisho.AuditStore, signer note.Signer, opts Options) (*Log, error) {
	if opts.Origin == "" {
		opts.Origin = DefaultOrigin
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	if opts.CommitDelay == 0 {
		opts.CommitDelay = DefaultCommitDelay
	}
	if opts.CommitGroup <= 0 {
		opts.CommitGroup = DefaultCommitGroup
	}
	if opts.yield == nil {
		opts.yield = runtime.Gosched
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = 100
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	l := &Log{
		store:   store,
		signer:  signer,
		opts:    opts,
		ctx:     context.WithoutCancel(ctx),
		reqs:    make(chan *appendReq),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		latency: newLatency(),
	}
	if err := l.reload(ctx); err != nil {
		return nil, err
	}
	go l.run()
	return l, nil
}

// Store returns the store the log is kept in.
func (l *Log) Store() sekisho.AuditStore { return l.store }

// Origin returns the origin line of the log's checkpoints.
func (l *Log) Origin() string { return l.opts.Origin }

// reload reads the store's size and the hashes of the compact range [0, size).
func (l *Log) reload(ctx context.Context) error {
	size, err := l.store.AuditSize(ctx)
	if err != nil {
		return fmt.Errorf("audit: read log size: %w", err)
	}
	rng, err := loadRange(ctx, l.store, size)
	if err != nil {
		return err
	}
	l.size, l.rng = size, rng
	return nil
}

// loadRange builds the compact range [0, size) from the stored perfect
// subtree hashes.
func loadRange(ctx context.Context, store sekisho.AuditStore, size uint64) (*compact.Range, error) {
	ids := compact.RangeNodes(0, size, nil)
	hashes, err := fetchNodes(ctx, store, ids)
	if err != nil {
		return nil, fmt.Errorf("audit: load tree edge at size %d: %w", size, err)
	}
	rng, err := newRangeFactory().NewRange(0, size, hashes)
	if err != nil {
		return nil, fmt.Errorf("audit: load tree edge at size %d: %w", size, err)
	}
	return rng, nil
}

func fetchNodes(ctx context.Context, store sekisho.AuditStore, ids []compact.NodeID) ([][]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	q := make([]sekisho.AuditNode, len(ids))
	for i, id := range ids {
		q[i] = sekisho.AuditNode{Level: id.Level, Index: id.Index}
	}
	hashes, err := store.AuditNodes(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(hashes) != len(ids) {
		return nil, fmt.Errorf("store returned %d node hashes for %d nodes", len(hashes), len(ids))
	}
	return hashes, nil
}

// AppendRegional implements vault.Auditor: a single log keeps the events
// of every region, so it is Append.
func (l *Log) AppendRegional(ctx context.Context, ev sekisho.Event, _ map[string]string) error {
	_, err := l.Append(ctx, ev)
	return err
}

// Append records ev and returns its index once it is durable in the store. An
// event with a zero Time is stamped with the current time. If ctx ends first,
// Append returns ctx's error and the event may or may not have been recorded:
// the caller must treat it as not recorded (and return no data).
func (l *Log) Append(ctx context.Context, ev sekisho.Event) (uint64, error) {
	return l.AppendBatch(ctx, []sekisho.Event{ev})
}

// AppendBatch records evs, with consecutive indexes, in one commit, and
// returns the index of the first once all are durable. It is meant for
// imports; the caller chooses the batch size (one store transaction).
func (l *Log) AppendBatch(ctx context.Context, evs []sekisho.Event) (uint64, error) {
	if len(evs) == 0 {
		return 0, sekisho.Errorf(sekisho.EInvalid, "no audit events to append")
	}
	// Encode in the caller's goroutine so that the writer only writes.
	entries := make([]sekisho.AuditEntry, len(evs))
	var now time.Time
	for i, ev := range evs {
		if ev.Time.IsZero() {
			if now.IsZero() {
				now = l.opts.Now()
			}
			ev.Time = now
		}
		if err := ev.Validate(); err != nil {
			return 0, err
		}
		entries[i] = Entry(ev, sekisho.MarshalEvent(ev))
	}
	r := &appendReq{ctx: ctx, entries: entries, res: make(chan appendRes, 1)}
	select {
	case l.reqs <- r:
	case <-l.done:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case res := <-r.res:
		return res.first, res.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Close stops accepting appends, waits for the pending ones to be committed,
// and stops the writer. It is safe to call more than once.
func (l *Log) Close() error {
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	<-l.done
	return nil
}

// run is the writer goroutine: it takes one request, then every request that
// arrived while the previous commit was being written (up to MaxBatch
// events), and commits them together.
func (l *Log) run() {
	defer close(l.done)
	for {
		var batch []*appendReq
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
		case <-l.quit:
			// Drain: a sender that won the race with quit is served; the
			// others see done closed.
			for {
				select {
				case r := <-l.reqs:
					l.commit([]*appendReq{r})
				default:
					return
				}
			}
		}
		batch, n := l.drain(batch, len(batch[0].entries))
		if n < l.opts.CommitGroup && l.opts.CommitDelay > 0 {
			batch = l.linger(batch, n)
		}
		l.commit(batch)
	}
}

// linger adds to batch (n events) the appends that arrive while the writer
// yields its processor: each runtime.Gosched lets the goroutines that are
// ready to run (requests on their way to an Append) run first; when a yield
// brought no event, or CommitGroup events are waiting, or CommitDelay has
// passed, the batch is committed. On an idle processor a yield returns at
// once, so a lone event waits microseconds, not the delay.
func (l *Log) linger(batch []*appendReq, n int) []*appendReq {
	deadline := time.Now().Add(l.opts.CommitDelay)
	for n < l.opts.CommitGroup {
		l.opts.yield()
		before := n
		if batch, n = l.drain(batch, n); n == before || time.Now().After(deadline) {
			break
		}
	}
	return batch
}

// drain adds to batch (n events) the appends waiting now, up to MaxBatch
// events, and returns it with its new count.
func (l *Log) drain(batch []*appendReq, n int) ([]*appendReq, int) {
	for n < l.opts.MaxBatch {
		select {
		case r := <-l.reqs:
			batch = append(batch, r)
			n += len(r.entries)
		default:
			return batch, n
		}
	}
	return batch, n
}

// commit writes the entries of batch, with the perfect subtree nodes they
// complete, in one AppendAudit call, and answers each request.
func (l *Log) commit(batch []*appendReq) {
	// Requests whose caller has gone are not written: nobody waits for them
	// and no data was returned on their strength.
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.res <- appendRes{err: err}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	var err error
	for attempt := 0; ; attempt++ {
		var first uint64
		first, err = l.write(live)
		if err == nil {
			for _, r := range live {
				r.res <- appendRes{first: first}
				first += uint64(len(r.entries))
			}
			return
		}
		// After any failure the store's state is uncertain: reload it.
		if rerr := l.reload(l.ctx); rerr != nil {
			err = errors.Join(err, rerr)
			break
		}
		if sekisho.Code(err) != sekisho.EConflict || attempt+1 >= l.opts.MaxRetries {
			break
		}
	}
	for _, r := range live {
		r.res <- appendRes{err: fmt.Errorf("audit: append: %w", err)}
	}
}

// write appends the entries of reqs at the current size. On success it
// advances the in-memory tree edge; on failure it leaves it unchanged.
func (l *Log) write(reqs []*appendReq) (uint64, error) {
	if l.rng == nil {
		return 0, errors.New("audit: tree edge not loaded")
	}
	first := l.size
	rng, err := newRangeFactory().NewRange(0, l.size, cloneHashes(l.rng.Hashes()))
	if err != nil {
		return 0, err
	}
	var entries []sekisho.AuditEntry
	var nodes []sekisho.AuditNode
	visit := func(id compact.NodeID, hash []byte) {
		nodes = append(nodes, sekisho.AuditNode{Level: id.Level, Index: id.Index, Hash: hash})
	}
	idx := first
	for _, r := range reqs {
		for _, e := range r.entries {
			e.Index = idx
			idx++
			entries = append(entries, e)
			if err := rng.Append(rfc6962.DefaultHasher.HashLeaf(e.Leaf), visit); err != nil {
				return 0, err
			}
		}
	}
	start := time.Now()
	if err := l.store.AppendAudit(l.ctx, entries, nodes); err != nil {
		return 0, err
	}
	l.latency.observe(time.Since(start))
	l.commits.Add(1)
	l.events.Add(uint64(len(entries)))
	l.size, l.rng = idx, rng
	return first, nil
}

func cloneHashes(h [][]byte) [][]byte {
	out := make([][]byte, len(h))
	copy(out, h)
	return out
}

func (l *Log) logger() *slog.Logger {
	if l.opts.Logger != nil {
		return l.opts.Logger
	}
	return slog.New(slog.DiscardHandler)
}
