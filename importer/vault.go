package importer

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sekisho/sekisho"
	"github.com/sekisho/sekisho/regions"
	"github.com/sekisho/sekisho/vault"
)

// VaultSink writes batches straight into a vault, as a pipeline: batch k is
// validated and sealed on all cores while the batches before it commit
// (one at a time on SQLite, several at once on separate connections on
// PostgreSQL). Each batch is one transaction and one audit event naming
// every record id, written before the records.
//
// On a store that loads in bulk (a single SQLite or PostgreSQL store, see
// sekisho.BulkLoader) it is a Resumer: each batch is written with a mark in
// the same transaction, so an interrupted import run again skips exactly the
// batches that were stored. After Bulk, call Close when done.
type VaultSink struct {
	v          *vault.Vault
	collection string
	caller     sekisho.Caller

	loader   sekisho.BulkLoader // nil unless Bulk
	began    bool
	inflight []*commit
	skipped  int // rows whose keyed record was already stored
}

// commit is a batch's commit in flight.
type commit struct {
	done  chan error
	rows  int // rows to be written
	batch *vault.PreparedBatch
}

// NewVaultSink returns a sink that imports into collection of v as caller
// (whose org owns the records).
func NewVaultSink(v *vault.Vault, caller sekisho.Caller, collection string) *VaultSink {
	return &VaultSink{v: v, collection: collection, caller: caller}
}

// Bulk switches to the bulk path when the vault's store offers it (the
// caller holds the store alone, as import --data does: the data directory's
// lock) and reports whether it did.
func (s *VaultSink) Bulk() bool {
	l, ok := s.v.Loader()
	if ok {
		s.loader = l
	}
	return ok
}

// Existing is the number of keyed rows whose record was already stored and
// was not written again.
func (s *VaultSink) Existing() int { return s.skipped }

// Write prepares items (validation, authorisation, sealing) and starts their
// commit once the commits before it allow.
func (s *VaultSink) Write(ctx context.Context, items []Item) ([]error, error) {
	return s.write(ctx, items, nil)
}

// mark is the body of an import's batch mark.
type mark struct {
	Job      string `json:"job"`
	N        int    `json:"n"`
	Sum      string `json:"sum"`
	Rows     int    `json:"rows"`
	Lines    [2]int `json:"lines"`
	Imported int    `json:"imported"`
}

func markPrefix(job string) string { return job + "/" }

// Stored implements Resumer.
func (s *VaultSink) Stored(ctx context.Context, job string) (map[int][32]byte, error) {
	if s.loader == nil {
		return nil, nil
	}
	marks, err := s.v.ImportMarks(ctx, s.caller.Org, markPrefix(job))
	if err != nil {
		return nil, err
	}
	out := make(map[int][32]byte, len(marks))
	for _, o := range marks {
		var m mark
		if err := json.Unmarshal(o.Body, &m); err != nil || m.Job != job {
			continue
		}
		var sum [32]byte
		if b, err := hex.DecodeString(m.Sum); err == nil && len(b) == 32 {
			copy(sum[:], b)
			out[m.N] = sum
		}
	}
	return out, nil
}

// WriteBatch implements Resumer.
func (s *VaultSink) WriteBatch(ctx context.Context, b Batch) ([]error, error) {
	if s.loader == nil {
		if len(b.Items) == 0 {
			return nil, nil
		}
		return s.write(ctx, b.Items, nil)
	}
	return s.write(ctx, b.Items, &b)
}

// Finished implements Resumer: the import is complete, its marks go.
func (s *VaultSink) Finished(ctx context.Context, job string) error {
	if s.loader == nil {
		return nil
	}
	return s.v.DeleteImportMarks(ctx, s.caller.Org, markPrefix(job))
}

func (s *VaultSink) write(ctx context.Context, items []Item, b *Batch) ([]error, error) {
	if s.loader != nil && !s.began {
		if err := s.loader.BeginBulk(ctx); err != nil {
			return nil, err
		}
		s.began = true
	}
	inputs := make([]*sekisho.RecordInput, len(items))
	for i, it := range items {
		inputs[i] = it.Input
	}
	p, err := s.v.PrepareBatch(ctx, s.caller, s.collection, inputs)
	if err != nil {
		return nil, err
	}
	depth := 1
	if s.loader != nil {
		depth = max(1, s.loader.LoadParallel())
	}
	if len(s.inflight) >= depth {
		// Wait for the oldest; after a failure, for all (counting their rows).
		if err := s.waitOldest(); err != nil {
			s.inflight = append([]*commit{{done: errChan(err)}}, s.inflight...)
			return nil, s.Flush(ctx)
		}
	}
	errs := make([]error, len(p.Items))
	c := &commit{done: make(chan error, 1), batch: p}
	for i, r := range p.Items {
		errs[i] = r.Err
		if r.Err == nil {
			c.rows++
		}
	}
	var m *sekisho.Object
	if b != nil {
		body, err := json.Marshal(mark{Job: b.Job, N: b.N, Sum: hex.EncodeToString(b.Sum[:]), Rows: b.Rows, Lines: b.Lines, Imported: c.rows})
		if err != nil {
			return nil, err
		}
		m = &sekisho.Object{ID: fmt.Sprintf("%s%08d", markPrefix(b.Job), b.N), Org: s.caller.Org, Body: body}
	}
	s.inflight = append(s.inflight, c)
	go func() {
		if m != nil {
			c.done <- s.v.CommitBatchMarked(ctx, p, m)
			return
		}
		c.done <- s.v.CommitBatch(ctx, p)
	}()
	return errs, nil
}

func errChan(err error) chan error {
	c := make(chan error, 1)
	c <- err
	return c
}

// waitOldest waits for the oldest commit in flight; its error is a
// *LostError counting its rows.
func (s *VaultSink) waitOldest() error {
	c := s.inflight[0]
	s.inflight = s.inflight[1:]
	err := <-c.done
	var lost *LostError
	if errors.As(err, &lost) {
		return lost
	}
	if c.batch != nil {
		for _, it := range c.batch.Items {
			if it.Existing {
				s.skipped++
			}
		}
	}
	var pe *regions.PartialWriteError
	if errors.As(err, &pe) {
		// Some regions committed: only the others' rows are lost.
		lost := 0
		for _, ids := range pe.Failed {
			lost += len(ids)
		}
		return &LostError{Rows: lost, Err: err}
	}
	if err != nil {
		return &LostError{Rows: c.rows, Err: err}
	}
	return nil
}

// Flush waits for the commits in flight.
func (s *VaultSink) Flush(ctx context.Context) error {
	var lost *LostError
	for len(s.inflight) > 0 {
		err := s.waitOldest()
		var l *LostError
		if errors.As(err, &l) {
			if lost == nil {
				lost = &LostError{Err: l.Err}
			}
			lost.Rows += l.Rows
		}
	}
	if lost != nil {
		return lost
	}
	return nil
}

// Close waits for the commits in flight and, after Bulk, has the store build
// what the bulk load deferred (its sorted index entries).
func (s *VaultSink) Close(ctx context.Context) error {
	err := s.Flush(ctx)
	if s.began {
		s.began = false
		err = errors.Join(err, s.loader.EndBulk(ctx))
	}
	return err
}
